"""The ``"edge"`` backend: segment softmax over targets, chunked, with a memory-saving backward.

Edges are sorted by target (CSR order), so the incoming edges of a run of
consecutive targets are one contiguous slice of ``edge_index``. The kernel walks
the targets in chunks whose edges fit a fixed element budget, computes each
chunk's scores, softmax and messages, and keeps only the per-edge weights
``(B, E, H)``. The backward walks the same chunks again and recomputes what it
needs from ``q``, ``k``, ``v`` and the saved weights:

    dP_ij = <dout_i, v_j>                       (times the dropout mask)
    dS_ij = w_ij * (dP_ij + dW_ij - sum_j' w_ij' (dP_ij' + dW_ij'))
    dq_i  = scale * sum_j dS_ij k_j,   dk_j = scale * sum_i dS_ij q_i,
    dv_j  = sum_i p_ij dout_i,         dbias_ij = dS_ij

so no ``(E, H, D)`` tensor is ever saved; peak extra memory is one chunk.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from graphattn.backends.base import (
    AttentionRequest,
    accumulation_dtype,
    dropout_keep,
    edges_on,
    register_backend,
    segment_softmax,
)
from graphattn.graph import TokenGraph

__all__ = ["CHUNK_ELEMENTS", "edge_attention", "edge_chunks"]

# Elements of the largest per-chunk intermediate (B, E_chunk, H, max(D, Dv)).
CHUNK_ELEMENTS = 2**22


def edge_chunks(graph: TokenGraph, max_edges: int) -> list[tuple[int, int, int, int]]:
    """Split the targets into runs ``(t_lo, t_hi, e_lo, e_hi)`` of at most ``max_edges`` edges.

    Every run holds whole targets: a target whose in-degree exceeds
    ``max_edges`` gets a run of its own. The plan is cached on the graph.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1, 0, 1, 2], [0, 1, 1, 2, 2, 2]])
    >>> edge_chunks(g, 3)
    [(0, 2, 0, 3), (2, 3, 3, 6)]
    """
    if max_edges < 1:
        raise ValueError(f"max_edges must be >= 1, got {max_edges}")

    def build() -> list[tuple[int, int, int, int]]:
        indptr = graph.indptr  # (N + 1,)
        n, runs, t = graph.num_nodes, [], 0
        while t < n:
            limit = int(indptr[t]) + max_edges
            end = int(torch.searchsorted(indptr, limit, right=True)) - 1  # last t' with room
            end = min(max(end, t + 1), n)
            runs.append((t, end, int(indptr[t]), int(indptr[end])))
            t = end
        return runs

    return graph.cached(("edge_chunks", max_edges), build)


class _EdgeAttention(torch.autograd.Function):
    """Chunked edge attention whose backward recomputes from the saved weights."""

    @staticmethod
    def forward(ctx, q, k, v, bias, graph, scale, dropout_p, generator, chunks):
        acc = accumulation_dtype(q.dtype)
        b, n, h, _ = q.shape
        src, dst = edges_on(graph, q.device)  # (E,)
        weights = torch.zeros(b, graph.num_edges, h, dtype=acc, device=q.device)  # (B, E, H)
        out = torch.zeros(b, n, h, v.shape[-1], dtype=acc, device=q.device)  # (B, N, H, Dv)
        keep = None
        if dropout_p > 0:
            keep = dropout_keep(tuple(weights.shape), dropout_p, generator, q.device)  # (B, E, H)
        for t_lo, t_hi, e_lo, e_hi in chunks:
            if e_lo == e_hi:
                continue
            s, d = src[e_lo:e_hi], dst[e_lo:e_hi]  # (Ec,)
            score = (q[:, d].to(acc) * k[:, s].to(acc)).sum(-1) * scale  # (B, Ec, H)
            if bias is not None:
                score = score + bias[:, e_lo:e_hi]
            w = segment_softmax(score, d - t_lo, t_hi - t_lo)  # (B, Ec, H)
            weights[:, e_lo:e_hi] = w
            if keep is not None:
                w = w * keep[:, e_lo:e_hi].to(acc) / (1.0 - dropout_p)
            message = w.unsqueeze(-1) * v[:, s].to(acc)  # (B, Ec, H, Dv)
            out[:, t_lo:t_hi].index_add_(1, d - t_lo, message)
        ctx.save_for_backward(q, k, v, weights, keep)
        ctx.graph, ctx.scale, ctx.dropout_p, ctx.chunks = graph, scale, dropout_p, chunks
        ctx.bias_dtype = None if bias is None else bias.dtype
        ctx.set_materialize_grads(False)
        return out.to(q.dtype), weights

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_weights):
        q, k, v, weights, keep = ctx.saved_tensors
        acc, scale, p_drop = weights.dtype, ctx.scale, ctx.dropout_p
        src, dst = edges_on(ctx.graph, q.device)  # (E,)
        dq = torch.zeros(q.shape, dtype=acc, device=q.device)  # (B, N, H, D)
        dk = torch.zeros(k.shape, dtype=acc, device=q.device)  # (B, M, H, D)
        dv = torch.zeros(v.shape, dtype=acc, device=q.device)  # (B, M, H, Dv)
        dbias = torch.zeros_like(weights) if ctx.bias_dtype is not None else None  # (B, E, H)
        for t_lo, t_hi, e_lo, e_hi in ctx.chunks:
            if e_lo == e_hi:
                continue
            s, d = src[e_lo:e_hi], dst[e_lo:e_hi]  # (Ec,)
            w = weights[:, e_lo:e_hi]  # (B, Ec, H)
            dw = torch.zeros_like(w)  # (B, Ec, H) gradient w.r.t. the pre-dropout weights
            if grad_out is not None:
                go = grad_out[:, d].to(acc)  # (B, Ec, H, Dv)
                dp = (go * v[:, s].to(acc)).sum(-1)  # (B, Ec, H)
                p = w
                if keep is not None:
                    drop = keep[:, e_lo:e_hi].to(acc) / (1.0 - p_drop)  # (B, Ec, H)
                    dp, p = dp * drop, w * drop
                dw = dw + dp
                dv.index_add_(1, s, p.unsqueeze(-1) * go)
            if grad_weights is not None:
                dw = dw + grad_weights[:, e_lo:e_hi].to(acc)
            row = torch.zeros(w.shape[0], t_hi - t_lo, w.shape[2], dtype=acc, device=q.device)
            row.index_add_(1, d - t_lo, w * dw)  # (B, Nc, H) sum_j w_ij dw_ij
            ds = w * (dw - row[:, d - t_lo])  # (B, Ec, H) gradient w.r.t. the scores
            if dbias is not None:
                dbias[:, e_lo:e_hi] = ds
            ds = (ds * scale).unsqueeze(-1)  # (B, Ec, H, 1)
            dq.index_add_(1, d, ds * k[:, s].to(acc))
            dk.index_add_(1, s, ds * q[:, d].to(acc))
        dq, dk, dv = dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)
        if dbias is not None:
            dbias = dbias.to(ctx.bias_dtype)
        return dq, dk, dv, dbias, None, None, None, None, None


def edge_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    graph: TokenGraph,
    *,
    scale: float,
    bias: torch.Tensor | None,
    return_weights: bool,
    dropout_p: float,
    generator: torch.Generator | None,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Kernel of the ``"edge"`` backend (contract in :mod:`graphattn.backends.base`).

    ``chunk_elements`` bounds the largest per-chunk intermediate
    ``(B, E_chunk, H, max(D, Dv))``; every chunk holds at least one whole target.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> q = k = torch.zeros(1, 2, 1, 4)
    >>> v = torch.arange(2.0).view(1, 2, 1, 1)
    >>> out, w = edge_attention(q, k, v, g, scale=0.5, bias=None, return_weights=True,
    ...                         dropout_p=0.0, generator=None)
    >>> out.flatten().tolist(), w.flatten().tolist()
    ([0.0, 0.5], [1.0, 0.5, 0.5])
    """
    b, _, h, d = q.shape
    per_edge = b * h * max(d, v.shape[-1])
    chunks = edge_chunks(graph, max(1, chunk_elements // per_edge))
    out, weights = _EdgeAttention.apply(
        q, k, v, bias, graph, scale, dropout_p, generator, chunks
    )
    return out, (weights if return_weights else None)


def _supports(request: AttentionRequest) -> str | None:
    """The edge backend runs every request."""
    return None


register_backend("edge", edge_attention, _supports)
