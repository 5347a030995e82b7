"""How far a sparse attention pattern moves a pretrained model's outputs.

Run the same texts on a reference graph (BERT's own full graph) and on another
one, and compare per token (cosine similarity of the final hidden states) and
per text (cosine similarity of the sentence embeddings). A pattern that keeps
both near 1 can replace full attention in this model without retraining; one
that does not changes what the model computes.

``python -m graphattn.pretrained.drift`` prints the table shown in the docs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from graphattn import patterns
from graphattn._markdown import table_lines
from graphattn.graph import TokenGraph
from graphattn.pretrained.bert import BertModel, GraphSpec

__all__ = [
    "DRIFT_GRAPHS",
    "DRIFT_TEXTS",
    "Drift",
    "Pattern",
    "measure_drift",
    "drift_table",
    "main",
    "window_and_specials",
]


@dataclass(frozen=True)
class Pattern:
    """A named pattern of :mod:`graphattn.patterns` with its parameters, built per text length.

    Calling it with a length ``n`` gives ``patterns.get(name, n, **params)``, so
    it can stand for the graph of texts of any length in :class:`BertModel`.

    Parameters
    ----------
    name : str
        One of :func:`graphattn.patterns.available`.
    params : mapping
        The builder's other arguments, e.g. ``{"window": 3}``.

    Raises
    ------
    ValueError
        If ``name`` is not a known pattern (the message lists the valid names).

    Examples
    --------
    >>> p = Pattern("sliding_window", {"window": 2, "causal": False})
    >>> p.label
    'sliding_window(window=2, causal=False)'
    >>> p(4).num_edges
    10
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in patterns.available():
            raise ValueError(
                f"unknown pattern {self.name!r}; valid names: {', '.join(patterns.available())}"
            )

    @property
    def label(self) -> str:
        """``name(param=value, ...)``, as shown in tables."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})" if args else self.name

    def __call__(self, n: int) -> TokenGraph:
        return patterns.get(self.name, n, **self.params)


@dataclass
class Drift:
    """How far one graph moves the model from the reference graph on a set of texts.

    Attributes
    ----------
    label : str
        The compared graph's name.
    density : Tensor, shape (B,)
        Edges of each text's graph over ``n * n``.
    token_cosine : list of Tensor
        Per text, shape ``(n_b,)``: cosine similarity of every real token's
        final hidden state under the two graphs.
    sentence_cosine : Tensor, shape (B,)
        Cosine similarity of the two sentence embeddings of each text.
    """

    label: str
    density: torch.Tensor
    token_cosine: list[torch.Tensor]
    sentence_cosine: torch.Tensor

    def summary(self) -> dict[str, float]:
        """Means and minima over all texts and tokens.

        Examples
        --------
        >>> d = Drift("x", torch.tensor([0.5]), [torch.tensor([1.0, 0.5])], torch.tensor([0.9]))
        >>> d.summary()["token_cosine_min"]
        0.5
        """
        tokens = torch.cat(self.token_cosine)  # (sum n_b,)
        return {
            "density": self.density.mean().item(),
            "token_cosine_mean": tokens.mean().item(),
            "token_cosine_min": tokens.min().item(),
            "sentence_cosine_mean": self.sentence_cosine.mean().item(),
            "sentence_cosine_min": self.sentence_cosine.min().item(),
        }


def measure_drift(
    model: BertModel,
    texts: str | Sequence[str],
    graph: GraphSpec | Sequence[GraphSpec],
    *,
    reference: GraphSpec | Sequence[GraphSpec] = None,
    label: str | None = None,
) -> Drift:
    """Compare the model's outputs on ``graph`` with those on ``reference``.

    Parameters
    ----------
    model : BertModel
        A model with a tokenizer.
    texts : str or sequence of str
    graph : TokenGraph, callable ``n -> TokenGraph`` (e.g. :class:`Pattern`) or list per layer
        The graph to test (see :meth:`BertModel.forward`).
    reference : same kinds, optional
        The graph to compare with; ``None`` is BERT's own full graph.
    label : str, optional
        Name in tables; defaults to the pattern's label or the graph's name.

    Returns
    -------
    Drift

    Raises
    ------
    ValueError, TypeError
        As :meth:`BertModel.forward` for texts or graphs that do not fit.

    Examples
    --------
    >>> from graphattn.pretrained import tiny_bert
    >>> model = tiny_bert()
    >>> same = measure_drift(model, ["the bank", "the river bank"], Pattern("full"))
    >>> round(same.sentence_cosine.min().item(), 4)
    1.0
    >>> d = measure_drift(model, "the river bank", Pattern("causal"))
    >>> d.label, d.token_cosine[0].shape, bool(d.sentence_cosine[0] < 1)
    ('causal', torch.Size([5]), True)
    """
    ids, _ = model.tokenize(texts)
    with torch.no_grad():
        ref = model(ids, reference)
        out = model(ids, graph, need_weights=True)
    cos = F.cosine_similarity(ref.last_hidden_state, out.last_hidden_state, dim=-1)  # (B, N)
    lengths = out.attention_mask.sum(1).tolist()  # (B,)
    token_cosine = [cos[b, :n] for b, n in enumerate(lengths)]
    sentence_cosine = (ref.pooled() * out.pooled()).sum(-1)  # (B,), both unit length
    density = torch.tensor(
        [out.sentence(b)[-1][0].density for b in range(len(lengths))]
    )  # (B,) of the last layer's graph
    if label is None:
        label = graph.label if isinstance(graph, Pattern) else getattr(graph, "name", None)
    return Drift(label or "graph", density, token_cosine, sentence_cosine)


def drift_table(
    model: BertModel, texts: Sequence[str], graphs: Mapping[str, GraphSpec | Sequence[GraphSpec]]
) -> str:
    """A Markdown table of :meth:`Drift.summary` for each graph, least to most drift.

    Parameters
    ----------
    model : BertModel
    texts : sequence of str
    graphs : mapping of label to graph
        Graphs as :meth:`BertModel.forward` takes them (a :class:`Pattern` or
        another callable suits texts of different lengths).

    Returns
    -------
    str

    Examples
    --------
    >>> from graphattn.pretrained import tiny_bert
    >>> table = drift_table(tiny_bert(), ["the bank"], {"full": Pattern("full")})
    >>> print(table.splitlines()[-1])
    | full | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 |
    """
    rows = [
        measure_drift(model, texts, g, label=k).summary() | {"label": k} for k, g in graphs.items()
    ]
    rows.sort(key=lambda r: -r["sentence_cosine_mean"])
    header = ["graph", "density", "token cos (mean)", "token cos (min)", "sentence cos (mean)",
              "sentence cos (min)"]
    keys = ("density", "token_cosine_mean", "token_cosine_min")
    keys += ("sentence_cosine_mean", "sentence_cosine_min")
    cells = [[r["label"], *(f"{r[k]:.3f}" for k in keys)] for r in rows]
    return "\n".join(table_lines(header, cells, align=["---"] + ["---:"] * 5))


def window_and_specials(n: int, window: int = 4) -> TokenGraph:
    """A custom graph: a bidirectional window plus ``[CLS]`` and ``[SEP]`` as global tokens.

    ``[CLS]`` is the first token and ``[SEP]`` the last.

    BERT heads park much of their attention on ``[CLS]`` and ``[SEP]``; keeping
    those two edges for every token lets a narrow window stay close to the full
    graph.

    Examples
    --------
    >>> print(window_and_specials(5, window=1).to_string())
    TokenGraph('window_and_specials(window=1)', N=5, E=19, density=0.76)
    x x x x x
    x x . . x
    x . x . x
    x . . x x
    x x x x x
    """
    window = min(window, n)
    g = patterns.sliding_window(n, window, causal=False) | patterns.global_tokens(n, [0, n - 1])
    return TokenGraph(g.edge_index, n, name=f"window_and_specials(window={window})")


# Texts of 17 to 20 tokens, so that windows of a few tokens are really sparse.
DRIFT_TEXTS = (
    "He left the roses by the bank of the river and walked back to the village alone.",
    "She deposited the money at the bank before the branch closed for the long weekend.",
    "The committee postponed its decision because two members had not read the final report.",
    "Graph attention lets every token gather information from the tokens it is connected to.",
    "After the storm, the fishermen repaired their nets and waited for the sea to calm down.",
    "A small model trained on enough data can still surprise the people who built it.",
)

DRIFT_GRAPHS: dict[str, GraphSpec] = {
    p.label: p
    for p in (
        Pattern("full"),
        Pattern("causal"),
        Pattern("sliding_window", {"window": 2, "causal": False}),
        Pattern("sliding_window", {"window": 4, "causal": False}),
        Pattern("sliding_window", {"window": 8, "causal": False}),
        Pattern("sliding_window", {"window": 8}),
        Pattern("longformer", {"window": 4, "globals": 1}),
        Pattern("bigbird", {"window": 3, "num_global": 2, "num_random": 3}),
        Pattern("star"),
        Pattern("attention_sink", {"sinks": 1, "window": 4}),
    )
}
DRIFT_GRAPHS["custom: window_and_specials(window=2)"] = lambda n: window_and_specials(n, 2)
DRIFT_GRAPHS["custom: window_and_specials(window=4)"] = window_and_specials


def main(argv: Sequence[str] | None = None) -> int:
    """Print the drift table of :data:`DRIFT_GRAPHS` on :data:`DRIFT_TEXTS`.

    ``python -m graphattn.pretrained.drift`` runs all-MiniLM-L6-v2;
    ``--tiny`` runs the built-in random model instead.
    """
    from graphattn.pretrained.loading import load_minilm, tiny_bert

    parser = argparse.ArgumentParser(
        prog="python -m graphattn.pretrained.drift",
        description="How far sparse attention patterns move a pretrained model.",
    )
    parser.add_argument("--tiny", action="store_true", help="use the built-in random model")
    args = parser.parse_args(argv)
    model = tiny_bert() if args.tiny else load_minilm()
    name = "built-in tiny random BERT" if args.tiny else "all-MiniLM-L6-v2"
    print(f"{name}, {len(DRIFT_TEXTS)} texts; cosine similarity to the full graph\n")
    print(drift_table(model, DRIFT_TEXTS, DRIFT_GRAPHS))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
