"""The ``"split"`` backend: tiles where a graph is locally dense, sparse kernels elsewhere.

Some graphs are a dense band plus scattered edges: Sparse Transformer's
strided pattern (a local window and every ``stride``-th earlier token), a
window plus token-level random edges. Neither kernel suits the whole graph:
the block backend would compute nearly empty tiles for the scattered edges,
and the edge backend gathers every band edge one by one. This backend cuts the
edges in two by the tile they fall in (``block_size`` tokens square): edges in
tiles whose fill reaches ``min_fill`` run on the block kernel, the others on the
edge kernel, and the two partial softmaxes are merged exactly by their
log-sum-exp::

    out_1, lse_1 = block(G_tiles)            out_2, lse_2 = edge(G_rest)
    lse = logaddexp(lse_1, lse_2)                                   # (B, H, N)
    out = exp(lse_1 - lse) * out_1 + exp(lse_2 - lse) * out_2       # (B, N, H, Dv)

The backward runs each part's own backward with the *merged* ``out`` and
``lse``: with them, ``exp(s_ij - lse_i)`` is the probability of edge ``j -> i``
in the whole softmax and ``delta_i = <dout_i, out_i>`` its row term, so each
part contributes exactly its edges' share of ``dq``, ``dk`` and ``dv``.
Bias, returned weights and dropout are left to the other backends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial

import torch
from torch.autograd.function import once_differentiable

from graphattn.backends import block, edge
from graphattn.backends.base import (
    PLANS,
    AttentionRequest,
    KernelCall,
    accumulation_dtype,
    contain_nonfinite,
    register_backend,
)
from graphattn.backends.tiles import BLOCK_SIZE, block_plan, block_size_for, tile_counts
from graphattn.graph import OwnedEdges, TokenGraph

__all__ = ["MIN_TILE_FILL", "SplitPlan", "split_attention", "split_plan", "tile_share"]

MIN_TILE_FILL = 0.25  # a tile this full of edges goes to the block kernel


@dataclass(frozen=True)
class SplitPlan:
    """A graph cut in two: edges of well-filled tiles and the rest (see :func:`split_plan`)."""

    tiles: TokenGraph  # edges of tiles whose fill reaches min_fill
    rest: TokenGraph  # every other edge
    block_size: int
    min_fill: float


def _part(graph: TokenGraph, keep: torch.Tensor) -> TokenGraph:
    """The edges of ``graph`` selected by ``keep (E,)``, on the same nodes (still canonical)."""
    return TokenGraph(
        OwnedEdges(graph.edge_index[:, keep]),
        graph.num_nodes,
        num_src_nodes=graph.num_src_nodes,
        cross=graph.is_cross,
    )


def split_plan(
    graph: TokenGraph, block_size: int = BLOCK_SIZE, min_fill: float = MIN_TILE_FILL
) -> SplitPlan:
    """Cut ``graph`` into the edges of well-filled tiles and the rest (cached).

    Parameters
    ----------
    graph : TokenGraph
        The graph.
    block_size : int
        Tile side, in tokens (the block kernel's block size).
    min_fill : float
        A tile whose share of edge positions reaches this goes to the block
        kernel, in ``(0, 1]``.

    Returns
    -------
    SplitPlan
        ``tiles`` and ``rest``, two graphs on the same nodes whose edge sets
        partition the graph's.

    Raises
    ------
    ValueError
        If ``block_size`` or ``min_fill`` is out of range.

    Examples
    --------
    >>> from graphattn import patterns
    >>> plan = split_plan(patterns.strided(1024, 64), block_size=64)
    >>> plan.tiles.num_edges, plan.rest.num_edges  # the band (and strided edges in it), the rest
    (64480, 6720)
    """
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    if not isinstance(min_fill, (int, float)) or not 0 < min_fill <= 1:
        raise ValueError(f"min_fill must be in (0, 1], got {min_fill!r}")

    def build() -> SplitPlan:
        keys, counts = tile_counts(graph, block_size)  # (P,) each
        nkb = -(-graph.num_src_nodes // block_size)
        tile = graph.dst // block_size * nkb + graph.src // block_size  # (E,) tile of each edge
        dense = counts[torch.searchsorted(keys, tile)] >= min_fill * block_size**2  # (E,)
        return SplitPlan(_part(graph, dense), _part(graph, ~dense), block_size, float(min_fill))

    return PLANS.get(graph, ("split_plan", block_size, float(min_fill)), build)


def tile_share(
    graph: TokenGraph, block_size: int = BLOCK_SIZE, min_fill: float = MIN_TILE_FILL
) -> float:
    """Share of the edges that :func:`split_plan` would send to the block kernel.

    Computed from the tile counts alone, without building the two parts.

    Examples
    --------
    >>> from graphattn import patterns
    >>> g = patterns.strided(1024, 64)
    >>> tile_share(g, 64) == split_plan(g, 64).tiles.num_edges / g.num_edges
    True
    >>> round(tile_share(g, 64), 2)
    0.91
    """
    if graph.num_edges == 0:
        return 0.0
    counts = tile_counts(graph, block_size)[1]  # (P,)
    return float(counts[counts >= min_fill * block_size**2].sum()) / graph.num_edges


def _block_lse(lse: torch.Tensor, b: int, h: int, n: int) -> torch.Tensor:
    """Block layout ``(Nq, B * H)`` with ``+inf`` for empty rows -> ``(B, H, N)`` with ``-inf``."""
    out = lse[:n].t().reshape(b, h, n)  # (B, H, N)
    return out.masked_fill(out == math.inf, -math.inf)


class _SplitAttention(torch.autograd.Function):
    """Block part + edge part, merged by log-sum-exp; each part's backward on the merged result."""

    @staticmethod
    def forward(ctx, q, k, v, call: KernelCall, plan: SplitPlan, tile: int, max_edges: int):
        # q, k, v are call's own tensors, passed apart so that autograd tracks them
        b, n, h, _ = q.shape
        neg = torch.full((b, h, n), -math.inf, dtype=block.LSE_DTYPE, device=q.device)
        out1 = out2 = lse_b = bplan = w2 = None
        lse1 = lse2 = neg
        if plan.tiles.num_edges:
            bplan = block_plan(plan.tiles, tile, q.device)  # tiles of side `tile`
            tiles, chunk = replace(call, graph=plan.tiles), block.CHUNK_ELEMENTS
            out1, lse_b, _ = block.block_forward(
                tiles, plan=bplan, emaps=None, chunk_elements=chunk
            )  # (B, N, H, Dv), (Nq, BH)
            lse1 = _block_lse(lse_b, b, h, n)
        if plan.rest.num_edges:
            lse2 = torch.empty(b, h, n, dtype=block.LSE_DTYPE, device=q.device)
            out2, w2, _ = edge.edge_forward(
                replace(call, graph=plan.rest), max_edges=max_edges, lse=lse2
            )  # (B, N, H, Dv), (B, H, E2)
        lse = torch.logaddexp(lse1, lse2)  # (B, H, N); -inf where no edge at all
        safe = lse.masked_fill(lse == -math.inf, 0.0)
        a1, a2 = ((x - safe).exp().to(q.dtype) for x in (lse1, lse2))  # (B, H, N) part shares
        out = q.new_zeros(b, n, h, v.shape[-1])  # (B, N, H, Dv)
        for a, o in ((a1, out1), (a2, out2)):
            if o is not None:
                out.addcmul_(a.transpose(1, 2).unsqueeze(-1), o)
        if w2 is not None and any(ctx.needs_input_grad[:3]):
            # the edge part's weights as shares of the merged softmax, for the backward
            w2.mul_(a2.index_select(2, plan.rest.dst.to(q.device)))  # (B, H, E2)
        if bplan is not None:  # the block part's lse buffer now holds the merged lse
            merged = lse.masked_fill(lse == -math.inf, math.inf)  # (B, H, N); +inf: no edge
            lse_b[:n] = merged.reshape(b * h, n).t()  # (N, BH); padding rows stay +inf
        ctx.save_for_backward(q, k, v, out, lse_b, w2)
        ctx.plan, ctx.bplan, ctx.scale, ctx.max_edges = plan, bplan, call.scale, max_edges
        ctx.set_materialize_grads(False)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        q, k, v, out, lse_b, w2 = ctx.saved_tensors  # lse_b: merged, (Nq, BH)
        if grad_out is None:
            return None, None, None, None, None, None, None
        plan, needs = ctx.plan, ctx.needs_input_grad[:3]
        grads = []
        if ctx.bplan is not None:
            tiles = KernelCall(q, k, v, plan.tiles, scale=ctx.scale)
            grads.append(
                block.block_backward(
                    tiles, plan=ctx.bplan, emaps=None, chunk_elements=block.CHUNK_ELEMENTS,
                    out=out, lse=lse_b, weights=None, grad_out=grad_out, grad_weights=None,
                )[:3]  # fmt: skip
            )
        if w2 is not None:
            delta = (grad_out * out).sum(-1).transpose(1, 2).contiguous()  # (B, H, N)
            rest = KernelCall(q, k, v, plan.rest, scale=ctx.scale)
            grads.append(
                edge.edge_backward(
                    rest, weights=w2, keep=None, max_edges=ctx.max_edges, needs=(*needs, False),
                    grad_out=grad_out, grad_weights=None, delta=delta,
                )[:3]  # fmt: skip
            )
        total = [None, None, None]
        for part in grads:
            for i, g in enumerate(part):
                if g is not None and needs[i]:
                    total[i] = g if total[i] is None else total[i] + g
        for i, x in enumerate((q, k, v)):
            if needs[i] and total[i] is None:  # no edge in either part
                total[i] = torch.zeros_like(x)
        return (*total, None, None, None, None)


def split_attention(
    call: KernelCall,
    *,
    block_size: int | None = None,
    min_fill: float = MIN_TILE_FILL,
) -> tuple[torch.Tensor, None]:
    """Kernel of the ``"split"`` backend (contract in :mod:`graphattn.backends.base`).

    ``block_size`` is the tile side of the cut (:func:`split_plan`) and of
    the block part; None: the cut at :data:`~graphattn.backends.tiles.BLOCK_SIZE`
    and the block part at the side
    :func:`~graphattn.backends.tiles.block_size_for` chooses for its edges
    (without a backward, a band's tiles fill better at 32 or 16 tokens).

    Raises
    ------
    ValueError
        If a bias, the weights or dropout is asked for (the other backends
        run those).

    Examples
    --------
    >>> from graphattn import patterns
    >>> g = patterns.strided(256, 16)
    >>> q, k, v = torch.randn(3, 1, 256, 2, 8).unbind(0)
    >>> call = KernelCall(q, k, v, g, scale=8**-0.5)
    >>> out, _ = split_attention(call, block_size=16)
    >>> ref, _ = edge.edge_attention(call)
    >>> torch.allclose(out, ref, atol=1e-5)
    True
    """
    if call.bias is not None or call.return_weights or call.dropout_p > 0:
        raise ValueError("the split backend takes no bias, weights or dropout")
    return contain_nonfinite(call, partial(_split, block_size=block_size, min_fill=min_fill))


def _split(
    call: KernelCall, *, block_size: int | None, min_fill: float
) -> tuple[torch.Tensor, None]:
    """The split kernel proper (its block part computes on whole tiles)."""
    plan = split_plan(call.graph, BLOCK_SIZE if block_size is None else block_size, min_fill)
    grad = call.request().needs_grad
    tile = block_size_for(plan.tiles, grad) if block_size is None else block_size
    acc = accumulation_dtype(call.q.dtype)
    b, _, h, _ = call.q.shape
    max_edges = max(1, edge.CHUNK_ELEMENTS // (b * h))
    q, k, v = call.q.to(acc), call.k.to(acc), call.v.to(acc)
    out = _SplitAttention.apply(q, k, v, replace(call, q=q, k=k, v=v), plan, tile, max_edges)
    return out.to(call.q.dtype), None


def _supports(request: AttentionRequest) -> str | None:
    """The split backend runs plain attention: no bias, weights or dropout."""
    if request.has_bias:
        return "no per-edge bias in the split backend"
    if request.return_weights:
        return "the split backend returns no weights"
    if request.dropout > 0:
        return "no dropout in the split backend (use 'edge')"
    return None


register_backend("split", split_attention, _supports)
