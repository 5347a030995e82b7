"""The attention function registered with transformers as ``"graphattn"``.

transformers calls it from every attention module that goes through its
``AttentionInterface`` with ``query (B, H, N, D)``, ``key``/``value
(B, H_kv, M, D)``, the mask its mask function built (see
:mod:`graphattn.hf.masks`) and the forward's extra keyword arguments, among
them ``token_graph`` and ``cross_graph``. The call runs
:func:`graphattn.graph_attention` on the call's graph (see
:mod:`graphattn.hf.graphs`) with the model's own additive terms as a
per-edge bias: T5's relative ``position_bias``, a float mask's values.
Padding (keys an example may not read) drops those edges from a graph of the
example's own in a large call, and is a ``-inf`` bias in a small one. Each
kernel runs on the keys its graph reads, so a generated token under a window
graph attends over the window, not the whole cache. Graphs, key spans and
per-example graphs are built once per mask, so once per forward for every
layer. Gemma2-style ``softcap`` is a score transform and runs through
:mod:`graphattn.variants`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from graphattn._cache import ObjectCache
from graphattn.functional import graph_attention
from graphattn.graph import TokenGraph
from graphattn.hf.edits import (
    AttentionEdit,
    apply_edit,
    attnlrp_inputs,
    current_edit,
    zero_values,
)
from graphattn.hf.graphs import Call, default_graph, is_cross_attention, mask_graph
from graphattn.hf.keywords import GRAPH_KWARGS, graph_keyword
from graphattn.hf.masks import MaskLayout, layout_of
from graphattn.hf.offsets import CROSS_OFFSET
from graphattn.hf.outputs import wants_dense_weights
from graphattn.hf.record import active_recordings
from graphattn.hf.resolve import graph_of
from graphattn.hf.tracking import received, watch
from graphattn.variants import AttentionVariant, dot_product_score, variant_attention

__all__ = ["UNSUPPORTED", "graphattn_attention"]

UNSUPPORTED = ("s_aux",)  # keyword arguments whose meaning graphattn does not implement
_SPANS = ObjectCache("graphattn.hf.attention")  # key spans of the calls' graphs (see _key_span)


# B * E from which padded examples run on graphs of their own (below, one call with a bias)
PER_EXAMPLE_EDGES = 2**16


@dataclass(frozen=True)
class _Part:
    """One kernel call of a plan: the keys it reads and its graph on those keys."""

    keys: slice  # the keys lo .. hi that the graph reads
    graph: TokenGraph  # (N, hi - lo)
    keep: torch.Tensor | None  # (E_b,) the call graph's edges this example keeps; None: batch


@dataclass(frozen=True)
class _Plan:
    """What one call runs on, built once per mask (so once per forward, for every layer).

    One part for the whole batch, or one per example on its graph without its
    padded keys: no ``(B, E)`` bias, and each kernel keeps its fused path.
    """

    graph: TokenGraph  # the call's graph (N, M); weights and recordings follow its edges
    padding: torch.Tensor | None  # (B, E, 1) -inf where example b may not use edge e, or None
    parts: tuple[_Part, ...]


def _plan_of(graph: TokenGraph, padding: torch.Tensor | None) -> _Plan:
    """The plan of a call on ``graph`` whose examples may not use the edges where
    ``padding (B, E, h)`` is ``-inf``.

    Per-key holes (``h == 1``) of a call with at least :data:`PER_EXAMPLE_EDGES`
    ``B * E`` become one graph per example, without those edges: cheaper than a
    ``(B, E, H)`` bias in every kernel. A smaller call keeps the bias, so a
    large batch of short sequences stays one kernel call.

    Examples
    --------
    >>> from graphattn import patterns
    >>> g = patterns.causal(400)
    >>> padding = torch.zeros(2, g.num_edges, 1)
    >>> padding[0, g.src < 100] = float("-inf")  # example 0: its first 100 tokens are padding
    >>> [(p.keys, p.graph.num_edges) for p in _plan_of(g, padding).parts]
    [(slice(100, 400, None), 45150), (slice(0, 400, None), 80200)]
    """
    per_key = padding is not None and padding.shape[-1] == 1
    if not per_key or padding.shape[0] * graph.num_edges < PER_EXAMPLE_EDGES:
        return _Plan(graph, padding, (_Part(*_key_span(graph), None),))
    parts = []
    for kept in (padding[..., 0] == 0).cpu():  # (E,) per example
        keep = kept.nonzero()[:, 0]  # (E_b,)
        own = TokenGraph(graph.edge_index[:, keep], graph.num_nodes,
                         num_src_nodes=graph.num_src_nodes, cross=graph.is_cross)  # fmt: skip
        parts.append(_Part(*_key_span(own), keep))
    return _Plan(graph, None, tuple(parts))


def _key_span(graph: TokenGraph) -> tuple[slice, TokenGraph]:
    """The keys ``lo .. hi`` that ``graph`` reads, and its edges on those keys alone.

    A generated token under a window graph reads the last few keys of the
    cache: its kernel then runs on those, a full ``(1, hi - lo)`` graph, not on
    the whole cache. The edges keep their order, so biases and weights do too.

    Examples
    --------
    >>> keys, g = _key_span(TokenGraph([[5, 6], [0, 0]], 1, num_src_nodes=8))
    >>> keys, g.num_src_nodes, g.edge_index.tolist()
    (slice(5, 7, None), 2, [[0, 1], [0, 0]])
    """

    def build() -> tuple[int, int]:
        if graph.num_edges == 0:
            return 0, graph.num_src_nodes
        return int(graph.src.min()), int(graph.src.max()) + 1

    lo, hi = _SPANS.get(graph, "key_span", build)
    if (lo, hi) == (0, graph.num_src_nodes):
        return slice(0, hi), graph
    edge_index = torch.stack([graph.src - lo, graph.dst])  # (2, E), still canonical
    return slice(lo, hi), TokenGraph(edge_index, graph.num_nodes, num_src_nodes=hi - lo, cross=True)


def _allowed(mask: Any, m: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The mask as ``allowed (B, h, N, M)`` bool and its additive values (float masks)."""
    if not isinstance(mask, torch.Tensor) or mask.dim() != 4:
        return None, None
    mask = mask[..., :m]  # a static cache's mask may be longer than the keys
    if mask.dtype == torch.bool:
        return mask, None
    allowed = mask > torch.finfo(mask.dtype).min / 2  # eager masks use finfo.min
    return allowed, torch.where(
        allowed, mask, torch.zeros((), dtype=mask.dtype, device=mask.device)
    )


def _call(module, cross: bool, n: int, m: int, layout: MaskLayout | None, kwargs: dict) -> Call:
    """The call's sizes and offsets, from its own inputs alone."""
    if cross:  # the cross mask's layout starts at 0; the module's call says where (see offsets)
        return Call(module, True, n, m, int(kwargs.get(CROSS_OFFSET) or 0), 0)
    if layout is not None:
        return Call(module, False, n, m, layout.q_offset, layout.kv_offset)
    return Call(module, False, n, m, max(m - n, 0), 0)


def _key_padding(graph: TokenGraph, valid: torch.Tensor | None) -> torch.Tensor | None:
    """``-inf`` on the edges whose source is padding in example b, ``(B, E, 1)``."""
    if valid is None or bool(valid.all()):
        return None
    holes = ~valid[:, graph.src.to(valid.device)]  # (B, E)
    bias = torch.zeros(holes.shape, dtype=torch.float32, device=valid.device)
    return bias.masked_fill(holes, float("-inf")).unsqueeze(-1)  # (B, E, 1)


def _plan(call: Call, mask: Any, layout, kwargs: dict) -> _Plan:
    """The call's :class:`_Plan`, built once per mask."""
    name, spec, future = graph_keyword(call, kwargs)
    per_layer = call.layer if isinstance(spec, (list, tuple)) else None
    key = (id(spec), future, per_layer, call.cross, call.n, call.m, call.q_offset, call.kv_offset)
    cache = layout.cache if layout is not None else {}  # the mask lives for one forward
    if key not in cache:
        cache[key] = _plan_of(*_build(call, (name, spec, future), mask, layout, kwargs))
    return cache[key]


def _build(call: Call, keyword: tuple, mask: Any, layout, kwargs: dict):
    name, spec, future = keyword
    allowed, _ = _allowed(mask, call.m)
    if spec is None and allowed is not None:
        return mask_graph(allowed, call.cross)
    if spec is None:
        causal = kwargs.get("is_causal", getattr(call.module, "is_causal", False))
        graph = default_graph(call, bool(causal))
    else:
        graph = graph_of(name, spec, call, future=future)
    if layout is not None:
        valid = layout.key_valid
    else:  # a mask transformers did not build through graph_mask
        valid = None if allowed is None else allowed.any(dim=(1, 2))  # (B, M): unread keys
    return graph, _key_padding(graph, valid)


def _edge_values(dense: torch.Tensor | None, graph: TokenGraph, n: int, m: int):
    """A dense ``(b, h, N', M')`` additive term at the graph's edges, ``(b, E, h)``."""
    if dense is None:
        return None
    dense = dense[..., -n:, :m]  # the call's query rows and keys
    dst, src = graph.dst.to(dense.device), graph.src.to(dense.device)  # (E,)
    return dense[:, :, dst, src].transpose(1, 2)  # (b, E, h)


def _edge_bias(call: Call, graph: TokenGraph, padding, mask, kwargs: dict, b: int, h: int):
    """Padding, position bias and float-mask values summed per edge, ``(B, E, H)`` or None."""
    _, mask_values = _allowed(mask, call.m)
    terms = [padding]
    terms.append(_edge_values(kwargs.get("position_bias"), graph, call.n, call.m))
    terms.append(_edge_values(mask_values, graph, call.n, call.m))
    terms = [t for t in terms if t is not None]
    if not terms:
        return None
    total = terms[0]
    for term in terms[1:]:
        total = total + term  # broadcasts (B|1, E, H|1)
    return total.expand(b, graph.num_edges, h)  # (B, E, H)


def _softcapped(softcap: float) -> AttentionVariant:
    def score(q_i: torch.Tensor, k_j: torch.Tensor, edges) -> torch.Tensor:
        s = dot_product_score(q_i, k_j, edges)  # (B, E, H)
        s = softcap * torch.tanh(s / softcap)
        return s if edges.attr is None else s + edges.attr

    return AttentionVariant(f"softcap({softcap})", score)


def _run(q, k, v, graph, scale, bias, dropout: float, softcap, need: tuple):
    """``out (B, N, H, Dv)`` and weights ``(B, E, H)``, ``(B, E)`` reduced, or None.

    ``k``, ``v (B, M, H_kv, D)`` keep their key heads: the kernels' front door
    repeats them. ``need`` is ``(need_weights, head_reduction)``; the
    softcapped variant does not reduce (the recording does).
    """
    need_weights, reduction = need
    if softcap is None:
        result = graph_attention(
            q, k, v, graph, scale=scale, bias=bias, dropout_p=dropout,
            return_weights=need_weights, head_reduction=reduction,
        )  # fmt: skip
    elif dropout:
        raise ValueError(f"softcap with attention dropout {dropout} is not supported; use eval()")
    else:
        attr = None if bias is None else bias.to(q.dtype)  # (B, E, H) edge features of the score
        variant = _softcapped(float(softcap))
        result = variant_attention(
            q, k, v, graph, variant, edge_attr=attr, scale=scale, return_weights=need_weights
        )
    return result if need_weights else (result, None)


def _attend(plan: _Plan, q, k, v, bias, options: tuple):
    """``out (B, N, H, Dv)``, weights ``(B, E[, H])`` on ``plan.graph`` (or None), part by part."""
    scale, dropout, softcap, need = options
    if plan.parts[0].keep is None:
        part = plan.parts[0]
        kb, vb = k[:, part.keys], v[:, part.keys]  # (B, hi - lo, H_kv, D): the keys read
        return _run(q, kb, vb, part.graph, scale, bias, dropout, softcap, need)
    outs, weights = [], None
    for b, part in enumerate(plan.parts):
        keep = part.keep.to(q.device)  # (E_b,)
        own_bias = None if bias is None else bias[b : b + 1, keep]  # (1, E_b, H)
        qb, kb, vb = q[b : b + 1], k[b : b + 1, part.keys], v[b : b + 1, part.keys]
        out, w = _run(qb, kb, vb, part.graph, scale, own_bias, dropout, softcap, need)
        outs.append(out)
        if w is not None:
            if weights is None:
                weights = w.new_zeros(len(plan.parts), plan.graph.num_edges, *w.shape[2:])
            weights[b, keep] = w[0]  # (E_b[, H]) at the kept edges; padded ones stay 0
    return torch.cat(outs), weights  # (B, N, H, Dv)


def graphattn_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attention of one transformers module as message passing on a token graph.

    Parameters
    ----------
    module : torch.nn.Module
        The calling attention module (its kind and ``layer_idx`` are read).
    query : Tensor, shape (B, H, N, D)
    key, value : Tensor, shape (B, H_kv, M, D)
    attention_mask : Tensor (B, 1, N, M) or None
        The mask transformers built (bool, or additive float).
    scaling : float, optional
        Score scale, default ``1/sqrt(D)``.
    dropout : float
        Attention dropout (transformers passes 0 in eval mode).
    **kwargs
        ``token_graph``, ``cross_graph``, ``position_bias``, ``softcap``,
        ``output_attentions`` and the model's other keywords.

    Returns
    -------
    out : Tensor, shape (B, N, H, Dv)
    weights : Tensor (B, H, N, M) or None
        Dense weights only when ``output_attentions`` is set.

    Raises
    ------
    ValueError
        If a graph does not fit the call (the message names the layer and the
        sizes), ``cross_graph`` is given to a model without cross-attention,
        or the call needs a feature graphattn does not implement.
    """
    _check_supported(module, kwargs)
    cross = is_cross_attention(module)
    watch(module)
    if any(kwargs.get(k) is not None for k in GRAPH_KWARGS):
        received(module)
    n, m = query.shape[2], key.shape[2]
    layout = layout_of(attention_mask)
    call = _call(module, cross, n, m, layout, kwargs)
    plan = _plan(call, attention_mask, layout, kwargs)
    graph = plan.graph
    bias = _edge_bias(call, graph, plan.padding, attention_mask, kwargs, *query.shape[:2])
    recordings = active_recordings()
    dense = wants_dense_weights(kwargs)
    edit = current_edit()  # contribution methods edit self- and cross-attention calls alike
    q, k, v = _node_major(query, key, value, edit, call.layer)  # (B, *, H, D)
    need = _needs_weights(recordings, call.layer, dense, edit)
    reduction = _head_reduction(recordings, call.layer, dense, edit) if need else None
    options = (scaling, dropout, kwargs.get("softcap"), (need, reduction))
    out, weights = _attend(plan, q, k, v, bias, options)
    if edit is not None and edit.explicit:
        out, weights = apply_edit(out, weights, v, graph)
    if recordings:
        _record(recordings, call, graph, weights, v)
    return out, (_dense(weights, graph, query.dtype) if dense else None)


def _check_supported(module: torch.nn.Module, kwargs: dict) -> None:
    """``ValueError`` if the call passes a keyword of :data:`UNSUPPORTED`."""
    for name in UNSUPPORTED:
        if kwargs.get(name) is not None:
            raise ValueError(
                f"{type(module).__name__} passes {name}, which graphattn does not support"
            )


def _node_major(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    edit: AttentionEdit | None,
    layer: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``q, k, v (B, *, H, D)`` from transformers' ``(B, H, *, D)``, as ``edit`` wants them.

    A contribution method may zero value vectors (Value Zeroing) or divide
    the inputs' gradients (AttnLRP); without an edit they are only transposed.
    """
    q, k, v = query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)  # (B, *, H, D)
    v = zero_values(v, edit, layer)
    if edit is not None and edit.lrp:
        q, k, v = attnlrp_inputs(q, k, v)
    return q, k, v


def _needs_weights(recordings: list, layer: int, dense: bool, edit: AttentionEdit | None) -> bool:
    """Whether the kernel must return weights: for a recording, dense output or an explicit edit."""
    wanted = any(r.wants(layer) for r in recordings)  # record(layers=) may skip this one
    return wanted or dense or (edit is not None and edit.explicit)


def _head_reduction(
    recordings: list, layer: int, dense: bool, edit: AttentionEdit | None
) -> str | None:
    """The head reduction every recording keeping ``layer`` asks for, if they agree on one.

    The kernel then returns ``(B, E)`` weights (on a full or causal graph it
    never holds ``(B, E, H)``). None where any of them keeps every head, they
    differ, or the weights are also wanted dense or by an explicit edit.
    """
    modes = {r.options.heads for r in recordings if r.wants(layer)}
    if dense or (edit is not None and edit.explicit) or len(modes) != 1:
        return None
    return modes.pop()


def _record(
    recordings: list, call: Call, graph: TokenGraph, weights: torch.Tensor, values: torch.Tensor
) -> None:
    """Hand the call's weights ``(B, E[, H])`` and values ``(B, M, H_kv, D)`` to every recording."""
    module, cross = call.module, call.cross
    decoder = cross or bool(
        getattr(module, "is_decoder", False) or getattr(module, "is_causal", False)
    )
    kind = dict(cross=cross, decoder=decoder, layer=call.layer, module=type(module).__name__)
    for recording in recordings:
        recording.add(**kind, graph=graph, weights=weights, values=values)


def _dense(weights: torch.Tensor, graph: TokenGraph, dtype) -> torch.Tensor:
    """Per-edge weights ``(B, E, H)`` as the dense ``(B, H, N, M)`` of ``output_attentions``."""
    return graph.to_dense(weights.to(dtype))  # (B, H, N, M) on the call's (N, M) graph
