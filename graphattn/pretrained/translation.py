"""The shipped translation models: real cross-attention on the synthetic language pair.

Two small :class:`~graphattn.nn.GraphSeq2Seq` models trained on
:class:`~graphattn.experiments.ReorderTask` ship with the package
(``graphattn/pretrained/data/*.safetensors``, built by
``python examples/build_demo_translation.py``, fixed seed): one with full
cross graphs, one with a diagonal window cross graph. Each file holds the
weights and, in its metadata, the variant, the model size, the seed and the
accuracy measured when it was built. The demo draws their cross-attention and
the attribution benchmark (``graphattn attribution``) scores methods on it.
:mod:`graphattn.demo.translation` is this module's old path (an alias).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from graphattn.experiments.seq2seq.config import (
    Seq2SeqExperiment,
    Seq2SeqVariant,
    cross_attention_experiments,
)
from graphattn.experiments.seq2seq.tasks import BOS, EOS, PAD
from graphattn.experiments.seq2seq.training import new_model

__all__ = ["DATA_DIR", "TRANSLATION_MODELS", "load_translation_model", "translate_with_weights"]

DATA_DIR = Path(__file__).with_name("data")
#: Shipped models: file stem -> the variant it was trained with.
TRANSLATION_MODELS = {
    "reorder-full": Seq2SeqVariant("full"),
    "reorder-window2": Seq2SeqVariant("window 2", cross="window", window=2),
}


def load_translation_model(name: str) -> tuple[Any, dict[str, Any]]:
    """A shipped model (eval mode) and its metadata (variant, experiment, seed, accuracy).

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`TRANSLATION_MODELS`.

    Examples
    --------
    >>> model, meta = load_translation_model("reorder-full")
    >>> meta["variant"]["cross"], meta["exact_match"] > 0.9
    ('full', True)
    """
    from safetensors import safe_open

    if name not in TRANSLATION_MODELS:
        raise ValueError(f"name must be one of {sorted(TRANSLATION_MODELS)}, got {name!r}")
    path = DATA_DIR / f"{name}.safetensors"
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["graphattn.translation"])
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iter
    exp = demo_experiment()
    model = new_model(exp, TRANSLATION_MODELS[name], meta["seed"])
    model.load_state_dict(state)
    return model.eval(), meta


def demo_experiment() -> Seq2SeqExperiment:
    """The experiment the shipped models were trained in (the documented one's budget)."""
    return cross_attention_experiments()["reorder"]


@torch.no_grad()
def translate_with_weights(model: Any, words: list[str]) -> dict[str, Any]:
    """Translate a source sentence greedily; the cross graph and weights of every layer.

    Returns
    -------
    dict
        ``tgt`` (the translation, without BOS), ``src`` (the words and
        ``<eos>``), ``cross`` (last layer's ``(graph, weights (E, H))`` with
        token labels) and ``layers`` (what
        :func:`graphattn.flow.cross_rollout` takes).
    """
    task = demo_experiment().task
    vocab = task.src_vocab
    unknown = [w for w in words if w not in vocab[3:]]
    if unknown:
        raise ValueError(f"unknown source words {unknown}; known: {vocab[3:]}")
    src = torch.tensor([[vocab.index(w) for w in words] + [EOS]])  # (1, M) with EOS
    out_ids = model.generate(src, max_new_tokens=task.max_tgt_len)[0]  # (T,)
    out_ids = out_ids[out_ids != PAD]
    tgt = torch.cat([torch.tensor([BOS]), out_ids])[None, :-1]  # (1, N) BOS + all but the last
    res = model(src, tgt, need_weights=True)
    enc, dec, cross = res.sequence_layers(0)
    src_words = [*words, "<eos>"]
    tgt_words = task.tgt_words(out_ids)
    g, w = cross[-1]
    g = g.with_tokens(tgt_words, src_tokens=src_words)
    return {"src": src_words, "tgt": tgt_words, "cross": (g, w), "layers": (enc, dec, cross)}
