"""The ``"edge"`` backend: sparse CSR attention over targets, with a memory-saving backward.

Edges are sorted by target, so the graph *is* a CSR matrix ``(N, M)``: row
``i`` lists the sources of target ``i``. Per batch element and head, the
scores at the edges are a sampled dense-dense product (SDDMM,
``torch.sparse.sampled_addmm``), the softmax runs over each row's values, and
the output is a sparse-dense product (SpMM) of the weights with ``v``. No
``(E, H, D)`` tensor is ever formed. The targets are walked in chunks whose
``(B, E_chunk, H)`` buffers fit a fixed element budget; only the per-edge
weights ``(B, E, H)`` (and the dropout mask) are kept for the backward, which
recomputes what it needs:

    dP_ij = <dout_i, v_j>                        (SDDMM, times the dropout mask)
    dS_ij = w_ij * (dW_ij - sum_j' w_ij' dW_ij')  with dW = dP + grad of weights
    dq = scale * dS @ k,   dk = scale * dS^T @ q,   dv = P^T @ dout,   dbias = dS

where the transposed products use the chunk's edges re-sorted by source.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch.autograd.function import once_differentiable

from graphattn.backends.base import (
    AttentionRequest,
    accumulation_dtype,
    dropout_keep,
    edges_on,
    register_backend,
)
from graphattn.graph import TokenGraph

__all__ = ["CHUNK_ELEMENTS", "edge_attention", "edge_chunks"]

# Elements of the largest per-chunk buffer (B, E_chunk, H).
CHUNK_ELEMENTS = 2**24


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


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    """A CSR matrix on trusted, already valid indices."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def _sddmm(pattern: torch.Tensor, a: torch.Tensor, b: torch.Tensor, alpha: float) -> torch.Tensor:
    """``alpha * (a @ b.T)`` at the nonzeros of the CSR ``pattern``, as values ``(E_chunk,)``."""
    return torch.sparse.sampled_addmm(pattern, a, b.t(), beta=0.0, alpha=alpha).values()


class _Chunk:
    """The CSR pieces of one run of targets, on the inputs' device."""

    def __init__(self, indptr, src, dst, run, num_src: int):
        self.t_lo, self.t_hi, self.e_lo, self.e_hi = run
        self.rows = self.t_hi - self.t_lo
        self.crow = indptr[self.t_lo : self.t_hi + 1] - self.e_lo  # (Nc + 1,)
        self.col = src[self.e_lo : self.e_hi]  # (Ec,) sources
        self.local_dst = dst[self.e_lo : self.e_hi] - self.t_lo  # (Ec,)
        self.num_src = num_src

    def matrix(self, values: torch.Tensor) -> torch.Tensor:
        """The chunk as a CSR matrix ``(Nc, M)`` holding ``values (Ec,)``."""
        return _csr(self.crow, self.col, values, (self.rows, self.num_src))

    def transposed(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(crow_t (M + 1,), col_t (Ec,), perm (Ec,))``: the chunk's edges sorted by source."""
        perm = torch.argsort(self.col, stable=True)  # (Ec,) by (source, target)
        crow_t = torch.zeros(self.num_src + 1, dtype=torch.long, device=self.col.device)
        torch.cumsum(torch.bincount(self.col, minlength=self.num_src), 0, out=crow_t[1:])
        return crow_t, self.local_dst[perm], perm


def _chunks_on(graph: TokenGraph, device: torch.device, max_edges: int) -> list[_Chunk]:
    indptr = graph.cached(("indptr_on", str(device)), lambda: graph.indptr.to(device))
    src, dst = edges_on(graph, device)  # (E,)
    return [
        _Chunk(indptr, src, dst, run, graph.num_src_nodes)
        for run in edge_chunks(graph, max_edges)
        if run[2] < run[3]
    ]


def _heads(x: torch.Tensor, acc: torch.dtype) -> list[list[torch.Tensor]]:
    """``x (B, L, H, D)`` as ``[b][h] -> (L, D)`` contiguous matrices in dtype ``acc``."""
    return [[x[b, :, h].to(acc).contiguous() for h in range(x.shape[2])] for b in range(x.shape[0])]


def _per_head_sddmm(c: _Chunk, a, bmat, alpha: float, acc, device) -> torch.Tensor:
    """Per-head SDDMM of ``a[b][h] (N, D)`` and ``bmat[b][h] (M, D)`` at the chunk's edges."""
    pattern = c.matrix(torch.zeros(c.e_hi - c.e_lo, dtype=acc, device=device))
    nb, nh = len(a), len(a[0])
    out = torch.empty(nb, nh, c.e_hi - c.e_lo, dtype=acc, device=device)  # (B, H, Ec)
    for i in range(nb):
        for j in range(nh):
            out[i, j] = _sddmm(pattern, a[i][j][c.t_lo : c.t_hi], bmat[i][j], alpha)
    return out


def _take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[:, :, index]`` for ``x (B, H, L)`` and ``index (K,)``, as a gather ``(B, H, K)``."""
    return x.gather(2, index.expand(*x.shape[:2], -1))


def _row_sum(x: torch.Tensor, c: _Chunk) -> torch.Tensor:
    """Sum of ``x (B, H, Ec)`` over each target's edges, ``(B, H, Nc)``."""
    offsets = c.crow.expand(*x.shape[:2], -1).contiguous()  # (B, H, Nc + 1)
    return torch.segment_reduce(x, "sum", offsets=offsets, axis=2, unsafe=True)


def _row_softmax(score: torch.Tensor, c: _Chunk) -> torch.Tensor:
    """Softmax of ``score (B, H, Ec)`` over each target's edges; all ``-inf`` rows give 0."""
    offsets = c.crow.expand(*score.shape[:2], -1).contiguous()  # (B, H, Nc + 1)
    smax = torch.segment_reduce(score, "max", offsets=offsets, axis=2, unsafe=True)  # (B, H, Nc)
    smax = smax.masked_fill(smax == -math.inf, 0.0)  # empty / all -inf targets
    p = torch.exp(score - _take(smax, c.local_dst))  # (B, H, Ec)
    denom = _row_sum(p, c).clamp_min(torch.finfo(p.dtype).tiny)  # (B, H, Nc)
    return p / _take(denom, c.local_dst)  # (B, H, Ec)


class _EdgeAttention(torch.autograd.Function):
    """CSR edge attention whose backward recomputes from the saved weights ``(B, H, E)``."""

    @staticmethod
    def forward(ctx, q, k, v, bias, graph, scale, dropout_p, generator, max_edges):
        acc = accumulation_dtype(q.dtype)
        b, n, h, _ = q.shape
        dev = q.device
        weights = torch.zeros(b, h, graph.num_edges, dtype=acc, device=dev)  # (B, H, E)
        out = torch.zeros(b, n, h, v.shape[-1], dtype=acc, device=dev)  # (B, N, H, Dv)
        keep = None
        if dropout_p > 0:
            keep = dropout_keep((b, graph.num_edges, h), dropout_p, generator, dev)  # (B, E, H)
            keep = keep.transpose(1, 2).contiguous()  # (B, H, E)
        qs, ks, vs = _heads(q, acc), _heads(k, acc), _heads(v, acc)  # [b][h] -> (L, D)
        for c in _chunks_on(graph, dev, max_edges):
            score = _per_head_sddmm(c, qs, ks, scale, acc, dev)  # (B, H, Ec)
            if bias is not None:
                score += bias[:, c.e_lo : c.e_hi].transpose(1, 2)
            w = _row_softmax(score, c)  # (B, H, Ec)
            weights[:, :, c.e_lo : c.e_hi] = w
            if keep is not None:
                w = w * keep[:, :, c.e_lo : c.e_hi].to(acc) / (1.0 - dropout_p)
            for i in range(b):
                for j in range(h):
                    out[i, c.t_lo : c.t_hi, j] = c.matrix(w[i, j]) @ vs[i][j]  # (Nc, Dv)
        ctx.save_for_backward(q, k, v, weights, keep)
        ctx.graph, ctx.scale, ctx.dropout_p, ctx.max_edges = graph, scale, dropout_p, max_edges
        ctx.bias_dtype = None if bias is None else bias.dtype
        ctx.set_materialize_grads(False)
        return out.to(q.dtype), weights

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_weights):
        q, k, v, weights, keep = ctx.saved_tensors
        acc, scale, p_drop, dev = weights.dtype, ctx.scale, ctx.dropout_p, q.device
        need_q, need_k, need_v, need_bias = ctx.needs_input_grad[:4]
        b, _, h, _ = q.shape
        dq = torch.zeros(q.shape, dtype=acc, device=dev) if need_q else None  # (B, N, H, D)
        dk = torch.zeros(k.shape, dtype=acc, device=dev) if need_k else None  # (B, M, H, D)
        dv = torch.zeros(v.shape, dtype=acc, device=dev) if need_v else None  # (B, M, H, Dv)
        dbias = torch.zeros_like(weights) if need_bias else None  # (B, H, E)
        qs, ks = _heads(q, acc), _heads(k, acc)  # [b][h] -> (L, D)
        vs = _heads(v, acc) if grad_out is not None else None
        gos = _heads(grad_out, acc) if grad_out is not None else None  # [b][h] -> (N, Dv)
        for c in _chunks_on(ctx.graph, dev, ctx.max_edges):
            w = weights[:, :, c.e_lo : c.e_hi]  # (B, H, Ec)
            p = w  # weights after dropout
            dw = torch.zeros_like(w)  # (B, H, Ec) gradient w.r.t. the pre-dropout weights
            if keep is not None:
                drop = keep[:, :, c.e_lo : c.e_hi].to(acc) / (1.0 - p_drop)  # (B, H, Ec)
                p = w * drop
            if grad_out is not None:
                dp = _per_head_sddmm(c, gos, vs, 1.0, acc, dev)  # (B, H, Ec) <dout_i, v_j>
                dw += dp if keep is None else dp * drop
            if grad_weights is not None:
                dw += grad_weights[:, :, c.e_lo : c.e_hi].to(acc)
            row = _row_sum(w * dw, c)  # (B, H, Nc) sum_j w_ij dw_ij
            ds = w * (dw - _take(row, c.local_dst))  # (B, H, Ec) grad w.r.t. scores
            if dbias is not None:
                dbias[:, :, c.e_lo : c.e_hi] = ds
            ds = ds * scale
            if need_k or need_v:
                crow_t, col_t, perm = c.transposed()
                ds_t, p_t = _take(ds, perm), _take(p, perm)  # (B, H, Ec) by source
            for i in range(b):
                for j in range(h):
                    if need_q:
                        dq[i, c.t_lo : c.t_hi, j] = c.matrix(ds[i, j]) @ ks[i][j]  # (Nc, D)
                    if need_k:
                        m_t = _csr(crow_t, col_t, ds_t[i, j], (c.num_src, c.rows))  # (M, Nc)
                        dk[i, :, j] += m_t @ qs[i][j][c.t_lo : c.t_hi]  # (M, D)
                    if need_v and grad_out is not None:
                        m_t = _csr(crow_t, col_t, p_t[i, j], (c.num_src, c.rows))  # (M, Nc)
                        dv[i, :, j] += m_t @ gos[i][j][c.t_lo : c.t_hi]  # (M, Dv)
        dq = dq.to(q.dtype) if need_q else None
        dk = dk.to(k.dtype) if need_k else None
        dv = dv.to(v.dtype) if need_v else None
        if dbias is not None:
            dbias = dbias.transpose(1, 2).to(ctx.bias_dtype)  # (B, E, H)
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

    ``chunk_elements`` bounds the per-chunk buffers ``(B, E_chunk, H)``; every
    chunk holds at least one whole target.

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
    b, _, h, _ = q.shape
    max_edges = max(1, chunk_elements // (b * h))
    out, weights = _EdgeAttention.apply(
        q, k, v, bias, graph, scale, dropout_p, generator, max_edges
    )  # weights (B, H, E)
    return out, (weights.transpose(1, 2) if return_weights else None)  # (B, E, H)


def _supports(request: AttentionRequest) -> str | None:
    """The edge backend runs every request."""
    return None


register_backend("edge", edge_attention, _supports)
