"""Contribution-based attribution: per-edge shares of each target's layer output.

:func:`contributions` runs a model and returns, per layer, ``(graph, c (B, E))``
where ``c[b, e] >= 0`` is the share of target ``dst[e]``'s layer output that
came from source ``src[e]``; every target with entries has shares summing to 1.
The layers feed :func:`attention_rollout` (with ``residual=0`` for the methods
that already include the residual), :func:`attention_flow`, :func:`top_paths`
and the drawings, one batch element at a time: ``[(g, c[b]) for g, c in layers]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from graphattn._validate import check_bool
from graphattn.flow.blocks import AttentionBlock, ContributionModel, ContributionRun
from graphattn.flow.decompose import (
    alti,
    attention_shares,
    globenc,
    grad_attention_shares,
    value_zeroing,
)
from graphattn.flow.lrp import attnlrp
from graphattn.flow.nn_models import model_run
from graphattn.flow.nn_seq2seq import seq2seq_run
from graphattn.graph import TokenGraph
from graphattn.nn import GraphLM, GraphSeq2Seq, GraphTransformer

__all__ = [
    "METHODS",
    "block_contributions",
    "contributions",
    "register_contributions",
    "run_model",
]

#: The methods of :func:`contributions`.
METHODS = ("alti", "globenc", "value_zeroing", "grad_attention", "attention", "attnlrp")

Layers = list[tuple[TokenGraph, torch.Tensor]]
# (accepts(model) -> bool, compute(model, inputs, method, graph, normalize=) -> layers, methods)
_INTEGRATIONS: list[tuple[Callable[[Any], bool], Callable[..., Layers], tuple[str, ...]]] = []


def register_contributions(
    accepts: Callable[[Any], bool],
    compute: Callable[..., Layers],
    methods: tuple[str, ...],
) -> None:
    """Let an integration compute :func:`contributions` for the models it accepts.

    A model that is neither graphattn's own nor a :class:`ContributionModel`
    goes to the first registered ``compute`` whose ``accepts(model)`` is
    true, called as ``compute(model, input_ids, method, graph,
    normalize=normalize)``; :func:`contributions` refuses a method not in its
    ``methods``.
    ``graphattn.hf`` registers Hugging Face models running on
    ``attn_implementation="graphattn"`` this way, at import.
    """
    if not callable(accepts) or not callable(compute):
        raise TypeError("accepts and compute must be callables")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods must be among {METHODS}, got {unknown}")
    entry = (accepts, compute, tuple(methods))
    if entry not in _INTEGRATIONS:
        _INTEGRATIONS.append(entry)


def _integration(model: Any, method: str) -> Callable[..., Layers] | None:
    """The registered ``compute`` for ``model``, checking that it offers ``method``."""
    for accepts, compute, methods in _INTEGRATIONS:
        if accepts(model):
            if method not in methods:
                raise ValueError(
                    f"method {method!r} is not available for {type(model).__name__}; "
                    f"its integration offers {methods}"
                )
            return compute
    return None


def _check_method(method: Any) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def run_model(model: Any, inputs: Any, graph: Any = None) -> ContributionRun:
    """The :class:`ContributionRun` of any supported model.

    A :class:`ContributionModel` runs itself; ``GraphTransformer`` and
    ``GraphLM`` run through :func:`graphattn.flow.nn_models.model_run`,
    ``GraphSeq2Seq`` (inputs ``(src, tgt)``) through
    :func:`graphattn.flow.nn_seq2seq.seq2seq_run`.

    Raises
    ------
    TypeError
        If ``model`` is none of these.
    """
    if isinstance(model, (GraphTransformer, GraphLM)):
        return model_run(model, inputs, graph)
    if isinstance(model, GraphSeq2Seq):
        return seq2seq_run(model, inputs, graph)
    if isinstance(model, ContributionModel):
        return model.contribution_run(inputs, graph)
    raise TypeError(
        "model must be a GraphTransformer, a GraphLM, a GraphSeq2Seq, implement "
        "ContributionModel (contribution_run) or belong to a registered integration (Hugging "
        f"Face models after import graphattn.hf), got {type(model).__name__}; contributions "
        f"offers the methods {', '.join(METHODS)} for those"
    )


def block_contributions(
    block: AttentionBlock, method: str, normalize: bool = True
) -> tuple[TokenGraph, torch.Tensor]:
    """``(graph, c (B, E))`` of one block by ``"alti"``, ``"globenc"``,
    ``"value_zeroing"`` or ``"attention"`` (``"grad_attention"`` and
    ``"attnlrp"`` need the whole model: use :func:`contributions`);
    ``normalize`` as there.

    Examples
    --------
    >>> from graphattn import GraphTransformer, patterns
    >>> from graphattn.flow import run_model
    >>> model = GraphTransformer(8, 2, 1, 16, dropout=0.0)
    >>> g = patterns.get("causal", 3)
    >>> block = run_model(model, torch.randn(1, 3, 8), g).blocks[0]
    >>> graph, c = block_contributions(block, "alti")
    >>> c.shape, torch.allclose(c.sum(1), torch.tensor([3.0]))
    (torch.Size([1, 6]), True)
    """
    if not isinstance(block, AttentionBlock):
        raise TypeError(f"block must be an AttentionBlock, got {type(block).__name__}")
    method = _check_method(method)
    if method == "alti":
        return alti(block, normalize)
    if method == "globenc":
        return globenc(block, normalize)
    if method == "value_zeroing":
        return value_zeroing(block, normalize=normalize)
    if method == "attention":
        return block.graph, attention_shares(block.graph, block.weights, normalize)
    raise ValueError(f"{method!r} needs the whole model: call contributions(model, ...)")


def _grad_attention(run: ContributionRun, normalize: bool) -> Layers:
    """``mean_h max(0, dscore/dalpha_eh * alpha_eh)`` per edge, normalized per target."""
    weights = [b.weights for b in run.blocks]
    grads = torch.autograd.grad(run.score, weights, allow_unused=True)
    return [(block.graph, grad_attention_shares(block.graph, w, g, normalize))
            for block, w, g in zip(run.blocks, weights, grads, strict=True)]


def _check_input_ids(input_ids: object, graphattn_model: bool) -> None:
    """``input_ids`` is a tensor or a pair (a mapping too, except for graphattn's own models)."""
    kinds = (torch.Tensor, tuple, list) + (() if graphattn_model else (Mapping,))
    if not isinstance(input_ids, kinds):
        what = "a tensor or a pair of tensors" + ("" if graphattn_model else " or a mapping")
        raise TypeError(f"input_ids must be {what}, got {type(input_ids).__name__}")


def contributions(
    model: Any, input_ids: Any, method: str = "alti", graph: Any = None, *, normalize: bool = True
) -> list[tuple[TokenGraph, torch.Tensor]]:
    """Per-layer, per-edge contributions of a model on an input.

    Parameters
    ----------
    model : GraphTransformer, GraphLM, GraphSeq2Seq, BertModel, a ContributionModel, ...
        Or a registered model: a Hugging Face model on
        ``attn_implementation="graphattn"`` (after ``import graphattn.hf``)
        offers ``"value_zeroing"``, ``"grad_attention"`` and ``"attention"``,
        and ``"alti"`` and ``"globenc"`` for the families of
        :data:`graphattn.hf.blocks.FAMILIES`; a Hugging Face encoder-decoder
        (T5, BART, Marian) the first three and, T5 and BART, ``"attnlrp"``,
        its inputs a mapping with
        ``"input_ids"`` and ``"decoder_input_ids"``, its layers ordered as a
        ``GraphSeq2Seq``'s.
        A ``GraphSeq2Seq`` returns its encoder layers, then per decoder layer
        its self layer and its cross layer (read them apart with
        :func:`split_cross_layers` for :func:`cross_rollout`).
    input_ids : Tensor, pair of Tensors or mapping
        Token ids ``(B, N)``; for a ``GraphTransformer`` (which takes
        features) the features ``(B, N, C)``; for a ``GraphSeq2Seq`` the pair
        ``(src (B, M), tgt (B, N))`` of source and decoder input ids. For a
        Hugging Face model also a tokenizer's batch (a mapping with
        ``"input_ids"`` and optionally ``"attention_mask"``,
        ``"token_type_ids"``, ``"position_ids"``), padded left or right:
        each example's contributions are those it has alone, with 0 on every
        edge from or into padding (see
        :func:`graphattn.hf.hf_contributions`).
    method : {"alti", "globenc", "value_zeroing", "grad_attention", "attention", "attnlrp"}
        ``"attnlrp"``: Achtibat et al. (2024), relevance of each edge's
        message under the AttnLRP rules, returned as a
        :class:`~graphattn.flow.lrp.Relevance` (see :func:`graphattn.flow.lrp.attnlrp`;
        for an encoder-decoder a
        :class:`~graphattn.flow.lrp_seq2seq.Seq2SeqRelevance`, with the
        source tokens' relevance too).
        ``"alti"``: Ferrando et al. (2022), L1 distance of the decomposed
        output of attention + residual + first norm. ``"globenc"``: Modarressi
        et al. (2022), L2 norms through both residuals and both norms (FFN
        skipped). ``"value_zeroing"``: Mohebbi et al. (2023), cosine distance
        of the whole layer's output when one source's value is zeroed.
        ``"grad_attention"``: Chefer et al. (2021), positive part of
        gradient x attention, mean over heads, of the model's score.
        ``"attention"``: the raw weights, mean over heads. See
        ``docs/flow.md`` for the formulas.
    graph : TokenGraph or list of TokenGraphs, optional
        The graph of every layer (or one per layer); default the model's own.
        For a ``GraphSeq2Seq`` a triple ``(encoder, decoder self, cross)`` of
        such graphs.
    normalize : bool
        True (default): each target's entries are divided by their sum, so
        every layer is a distribution per target, as rollout, flow and the
        pictures expect. False: the scores before that division (GlobEnc's
        norms ``||...||_2``, ALTI's L1 gains, Value Zeroing's distances), so
        that ``attention_rollout(layers, residual=0.0, normalize=False)``
        composes them as GlobEnc's authors do (see ``docs/flow.md``).

    Returns
    -------
    list of ``(TokenGraph, Tensor (B, E))``
        One per layer. ``"alti"`` and ``"globenc"`` count the residual as the
        target's contribution to itself, so on a self graph without self
        loops their graph is the layer's graph plus self loops.

    Raises
    ------
    TypeError, ValueError
        On an unknown method, an unsupported model or inputs it rejects.

    Examples
    --------
    >>> from graphattn import GraphLM
    >>> lm = GraphLM(20, 8, 2, 2, pattern=("sliding_window", {"window": 3}), max_len=8)
    >>> layers = contributions(lm, torch.randint(20, (1, 5)), "alti")
    >>> g, c = layers[0]
    >>> c.shape, torch.allclose(c.sum(1), torch.tensor([5.0]))
    (torch.Size([1, 12]), True)
    >>> from graphattn.flow import attention_rollout
    >>> attention_rollout([(g, c[0]) for g, c in layers], residual=0.0).shape
    torch.Size([5, 5])
    """
    method = _check_method(method)
    normalize = check_bool(normalize, "normalize")
    own = isinstance(model, (GraphTransformer, GraphLM, GraphSeq2Seq, ContributionModel))
    _check_input_ids(input_ids, isinstance(model, (GraphTransformer, GraphLM, GraphSeq2Seq)))
    compute = None if own else _integration(model, method)
    if compute is not None:
        return compute(model, input_ids, method, graph, normalize=normalize)
    if method == "attnlrp":
        return attnlrp(model, input_ids, graph)
    if method == "grad_attention":
        with torch.enable_grad():
            return _grad_attention(run_model(model, input_ids, graph), normalize)
    with torch.no_grad():
        run = run_model(model, input_ids, graph)
        return [block_contributions(b, method, normalize) for b in run.blocks]
