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
from graphattn.flow import nn_adapters  # noqa: F401 (registers graphattn's own models)
from graphattn.flow.adapters import (
    METHODS,
    ContributionAdapter,
    adapter_for,
    register_adapter,
    run_model,
    unsupported,
)
from graphattn.flow.blocks import AttentionBlock, ContributionRun
from graphattn.flow.decompose import (
    alti,
    attention_shares,
    globenc,
    grad_attention_shares,
    value_zeroing,
)
from graphattn.flow.lrp import attnlrp
from graphattn.graph import TokenGraph

__all__ = [
    "METHODS",
    "block_contributions",
    "contributions",
    "register_contributions",
    "run_model",
]

Layers = list[tuple[TokenGraph, torch.Tensor]]


def register_contributions(
    accepts: Callable[[Any], bool],
    compute: Callable[..., Layers],
    methods: tuple[str, ...],
) -> None:
    """Register an integration's ``compute`` for the models ``accepts(model)`` is true of.

    The short form of ``register_adapter(accepts, ContributionAdapter(compute=compute,
    methods=methods))`` (see :mod:`graphattn.flow.adapters`): ``compute`` is
    called as ``compute(model, input_ids, method, graph, normalize=normalize)``
    and :func:`contributions` refuses a method not in ``methods``.

    Raises
    ------
    TypeError, ValueError
        If ``accepts`` or ``compute`` is not callable, or a method is unknown.

    Examples
    --------
    >>> from graphattn.flow.adapters import unregister_adapter
    >>> def accepts(model):
    ...     return model == "tiny"
    >>> register_contributions(accepts, lambda *args, normalize: [], ("attention",))
    >>> contributions("tiny", torch.zeros(1, 2), "attention")
    []
    >>> unregister_adapter(accepts)
    """
    if not callable(accepts) or not callable(compute):
        raise TypeError("accepts and compute must be callables")
    register_adapter(accepts, ContributionAdapter(compute=compute, methods=tuple(methods)))


def _check_method(method: Any) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


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


def _check_input_ids(input_ids: object, no_mapping: bool) -> None:
    """``input_ids`` is a tensor or a pair (a mapping too, unless the adapter refuses them)."""
    kinds = (torch.Tensor, tuple, list) + (() if no_mapping else (Mapping,))
    if not isinstance(input_ids, kinds):
        what = "a tensor or a pair of tensors" + ("" if no_mapping else " or a mapping")
        raise TypeError(f"input_ids must be {what}, got {type(input_ids).__name__}")


def contributions(
    model: Any, input_ids: Any, method: str = "alti", graph: Any = None, *, normalize: bool = True
) -> list[tuple[TokenGraph, torch.Tensor]]:
    """Per-layer, per-edge contributions of a model on an input.

    Parameters
    ----------
    model : GraphTransformer, GraphLM, GraphSeq2Seq, BertModel, a ContributionModel, ...
        Any model with an adapter (see :mod:`graphattn.flow.adapters`,
        :func:`~graphattn.flow.adapters.register_adapter`): a Hugging Face model on
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
    adapter = adapter_for(model)
    _check_input_ids(input_ids, adapter is not None and not adapter.mappings)
    if adapter is None:
        raise unsupported(model)
    if method not in adapter.methods:
        raise ValueError(
            f"method {method!r} is not available for {type(model).__name__}; "
            f"its integration offers {adapter.methods}"
        )
    if adapter.compute is not None:
        return adapter.compute(model, input_ids, method, graph, normalize=normalize)
    return _from_blocks(adapter, model, input_ids, method, graph, normalize)


def _from_blocks(
    adapter: ContributionAdapter, model: Any, inputs: Any, method: str, graph: Any, normalize: bool
) -> Layers:
    """``method`` computed by flow from the blocks that ``adapter.run`` gives."""
    if method == "attnlrp":
        return attnlrp(model, inputs, graph)  # or the adapter's own attnlrp
    if method == "grad_attention":
        with torch.enable_grad():
            return _grad_attention(adapter.run(model, inputs, graph), normalize)
    with torch.no_grad():
        run = adapter.run(model, inputs, graph)
        return [block_contributions(b, method, normalize) for b in run.blocks]
