"""The ``"edge"`` backend: sparse CSR attention over targets, with a memory-saving backward.

Edges are sorted by target, so the graph *is* a CSR matrix ``(N, M)``: row
``i`` lists the sources of target ``i``. Per batch element and head, the
scores at the edges are a sampled dense-dense product (SDDMM,
``torch.sparse.sampled_addmm``), the softmax runs over each row's values for
all ``B * H`` heads at once (``torch.segment_reduce``), and the output is a
sparse-dense product (SpMM) of the weights with ``v``. No ``(E, D)`` tensor is
ever formed, so fixed in-degree patterns such as ``random(n, k)`` cost
``O(E * D)`` work where the block backend would waste whole tiles::

    S = SDDMM(q, k^T) on the edges * scale (+ bias)     # (B, H, E)
    W = segment softmax of S over each target's edges    # (B, H, E)
    out = (W * dropout mask) @ v                         # SpMM, (N, Dv) per head

The targets are walked in chunks whose ``(B, H, E_chunk)`` buffers fit a fixed
element budget. Only the per-edge weights ``(B, H, E)`` (and the dropout mask)
are kept for the backward, which recomputes what it needs::

    dP_ij = <dout_i, v_j>                        (SDDMM, times the dropout mask)
    dS_ij = w_ij * (dW_ij - sum_j' w_ij' dW_ij')  with dW = dP + grad of weights
    dq = scale * dS @ k,   dk = scale * dS^T @ q,   dv = P^T @ dout,   dbias = dS

where the transposed products use each chunk's edges sorted by source (a CSR
of the transpose, cached with the chunks in :data:`~graphattn.backends.base.PLANS`).
"""

from __future__ import annotations

import math
import warnings
from functools import partial

import torch
from torch.autograd.function import once_differentiable

from graphattn.backends.base import (
    PLANS,
    AttentionRequest,
    KernelCall,
    accumulation_dtype,
    contain_nonfinite,
    dropout_keep,
    register_backend,
    safe_total,
)
from graphattn.graph import TokenGraph

__all__ = [
    "CHUNK_ELEMENTS",
    "EdgeChunk",
    "chunks_on",
    "edge_attention",
    "edge_backward",
    "edge_chunks",
    "edge_forward",
]

# Elements of the largest per-chunk buffer (B, H, E_chunk).
CHUNK_ELEMENTS = 2**24


def edge_chunks(graph: TokenGraph, max_edges: int) -> list[tuple[int, int, int, int]]:
    """Split the targets into runs ``(t_lo, t_hi, e_lo, e_hi)`` of at most ``max_edges`` edges.

    Every run holds whole targets: a target whose in-degree exceeds
    ``max_edges`` gets a run of its own. The plan is cached while the graph lives.

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

    return PLANS.get(graph, ("edge_chunks", max_edges), build)


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    """A CSR matrix on trusted, already valid indices."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


class EdgeChunk:
    """The CSR pieces of one run of targets and of its transpose, on one device.

    ``crow``/``col`` (and ``crow_t``/``col_t``) are 32-bit where the edges
    allow it, which MKL's sparse routines run fastest; ``offsets``,
    ``local_dst`` and ``perm`` stay 64-bit for ``segment_reduce`` and indexing.
    """

    def __init__(self, graph: TokenGraph, run: tuple[int, int, int, int], device):
        self.t_lo, self.t_hi, self.e_lo, self.e_hi = run
        self.rows, self.num_src = self.t_hi - self.t_lo, graph.num_src_nodes
        index = torch.int32 if graph.num_edges < 2**31 else torch.long
        offsets = graph.indptr[self.t_lo : self.t_hi + 1] - self.e_lo  # (Nc + 1,)
        col = graph.src[self.e_lo : self.e_hi]  # (Ec,) sources
        local_dst = graph.dst[self.e_lo : self.e_hi] - self.t_lo  # (Ec,)
        perm = torch.argsort(col, stable=True)  # (Ec,) edges by (source, target)
        crow_t = torch.zeros(self.num_src + 1, dtype=torch.long)  # (M + 1,)
        torch.cumsum(torch.bincount(col, minlength=self.num_src), 0, out=crow_t[1:])
        self.offsets, self.local_dst, self.perm = (
            t.to(device) for t in (offsets, local_dst, perm)
        )
        self.crow, self.col = offsets.to(device, index), col.to(device, index)
        self.crow_t = crow_t.to(device, index)
        self.col_t = local_dst[perm].to(device, index)  # (Ec,) targets by source

    def matrix(self, values: torch.Tensor) -> torch.Tensor:
        """The chunk as a CSR matrix ``(Nc, M)`` holding ``values (Ec,)`` in edge order."""
        return _csr(self.crow, self.col, values, (self.rows, self.num_src))

    def transposed(self, values: torch.Tensor) -> torch.Tensor:
        """The transposed chunk ``(M, Nc)`` holding ``values (Ec,)`` in source order."""
        return _csr(self.crow_t, self.col_t, values, (self.num_src, self.rows))

    def sddmm(self, a: torch.Tensor, b: torch.Tensor, alpha: float, out: torch.Tensor) -> None:
        """``out[i, j] = alpha * <a_t, b_s>`` at the chunk's edges ``s -> t`` for every head.

        ``a (B, H, N, D)`` and ``b (B, H, M, D)``; ``out (B, H, Ec)``.
        """
        pattern = self.matrix(out.new_zeros(self.e_hi - self.e_lo))  # (Nc, M)
        for i in range(a.shape[0]):
            for j in range(a.shape[1]):
                rows = a[i, j, self.t_lo : self.t_hi]  # (Nc, D)
                out[i, j] = torch.sparse.sampled_addmm(
                    pattern, rows, b[i, j].t(), beta=0.0, alpha=alpha
                ).values()  # (Ec,)

    def per_edge(self, x: torch.Tensor) -> torch.Tensor:
        """Each target's value of ``x (R, Nc)`` at its edges, ``(R, Ec)``.

        ``index_select`` rather than advanced indexing: about twice as fast on CPU.
        """
        return x.index_select(1, self.local_dst)

    def row_sum(self, x: torch.Tensor) -> torch.Tensor:
        """Sum of ``x (R, Ec)`` over each target's edges, ``(R, Nc)``."""
        offsets = self.offsets.expand(x.shape[0], -1)  # (R, Nc + 1)
        return torch.segment_reduce(x, "sum", offsets=offsets, axis=1, unsafe=True)

    def softmax_(self, score: torch.Tensor, lse: torch.Tensor | None = None) -> torch.Tensor:
        """Softmax of ``score (R, Ec)`` in place over each target's edges; all ``-inf`` give 0.

        ``lse (R, Nc)``, when given, receives each target's log-sum-exp
        (``-inf`` for a target without edges).
        """
        offsets = self.offsets.expand(score.shape[0], -1)  # (R, Nc + 1)
        smax = torch.segment_reduce(score, "max", offsets=offsets, axis=1, unsafe=True)  # (R, Nc)
        smax = smax.masked_fill_(smax == -math.inf, 0.0)  # empty / all -inf targets
        p = score.sub_(self.per_edge(smax)).exp_()  # (R, Ec)
        total = self.row_sum(p)  # (R, Nc)
        if lse is not None:
            lse.copy_(smax).add_(total.log())  # in lse's dtype (float64 keeps log(total) exact)
        return p.div_(self.per_edge(safe_total(total)))


def chunks_on(graph: TokenGraph, device: torch.device, max_edges: int) -> list[EdgeChunk]:
    """The non-empty chunks of :func:`edge_chunks` on ``device``, cached while the graph lives."""

    def build() -> list[EdgeChunk]:
        runs = edge_chunks(graph, max_edges)
        return [EdgeChunk(graph, run, device) for run in runs if run[2] < run[3]]

    return PLANS.get(graph, ("edge_chunks_on", str(device), max_edges), build)


def _heads(x: torch.Tensor, acc: torch.dtype) -> torch.Tensor:
    """``(B, L, H, D)`` -> ``(B, H, L, D)`` contiguous in ``acc``."""
    return x.to(acc).transpose(1, 2).contiguous()


def edge_forward(
    call: KernelCall, *, max_edges: int, lse: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Output ``(B, N, H, Dv)``, weights ``(B, H, E)`` and dropout mask ``(B, H, E)`` (or None).

    The targets are walked in chunks of at most ``max_edges`` edges. ``lse (B,
    H, N)``, when given, receives each target's log-sum-exp (``-inf`` where a
    target has no edge). Shared by the edge backend and the split backend
    (:mod:`graphattn.backends.split`); ``call.return_weights`` is not read.
    """
    q, graph = call.q, call.graph
    acc = accumulation_dtype(q.dtype)
    b, n, h, _ = q.shape
    dev = q.device
    qh, kh, vh = _heads(q, acc), _heads(call.k, acc), _heads(call.v, acc)  # (B, H, L, D)
    weights = torch.empty(b, h, graph.num_edges, dtype=acc, device=dev)  # (B, H, E)
    out = torch.zeros(b, h, n, call.v.shape[-1], dtype=acc, device=dev)  # (B, H, N, Dv)
    keep = None
    if call.dropout_p > 0:
        keep = dropout_keep((b, graph.num_edges, h), call.dropout_p, call.generator, dev)
        keep = keep.transpose(1, 2).contiguous()  # (B, H, E)
    if lse is not None:
        lse.fill_(-math.inf)  # targets in no chunk have no edge
    for c in chunks_on(graph, dev, max_edges):
        w = weights[:, :, c.e_lo : c.e_hi]  # (B, H, Ec) view, filled in place
        c.sddmm(qh, kh, call.scale, w)
        if call.bias is not None:
            w += call.bias[:, c.e_lo : c.e_hi].to(acc).transpose(1, 2)
        rows = None if lse is None else lse.view(b * h, n)[:, c.t_lo : c.t_hi]  # (BH, Nc)
        c.softmax_(w.view(b * h, -1), rows)  # (BH, Ec)
        if keep is not None:
            w = w * keep[:, :, c.e_lo : c.e_hi].to(acc) / (1.0 - call.dropout_p)
        for i in range(b):
            for j in range(h):
                out[i, j, c.t_lo : c.t_hi] = torch.sparse.mm(c.matrix(w[i, j]), vh[i, j])
    return out.transpose(1, 2).to(q.dtype), weights, keep  # (B, N, H, Dv), (B, H, E)


def edge_backward(
    call: KernelCall,
    *,
    weights: torch.Tensor,
    keep: torch.Tensor | None,
    max_edges: int,
    needs: tuple[bool, bool, bool, bool],
    grad_out: torch.Tensor | None,
    grad_weights: torch.Tensor | None,
    delta: torch.Tensor | None = None,
) -> tuple[torch.Tensor | None, ...]:
    """``(dq, dk, dv, dbias)`` of :func:`edge_forward`; ``needs`` flags q, k, v, bias.

    ``weights`` and ``keep`` are :func:`edge_forward`'s ``(B, H, E)``;
    ``grad_out (B, N, H, Dv)`` and ``grad_weights (B, H, E)`` may be None.
    ``dbias`` is ``(B, H, E)``; the others ``(B, L, H, D)``, None where not
    needed. By default each target's ``sum_j w_ij dW_ij`` is taken over this
    graph's edges; the split backend passes ``delta = <dout, out> (B, H, N)``
    of the merged softmax instead, with ``weights`` rescaled to it.
    """
    acc = weights.dtype
    need_q, need_k, need_v, need_bias = needs
    b, _, h, _ = call.q.shape
    qh, kh = _heads(call.q, acc), _heads(call.k, acc)  # (B, H, L, D)
    vh = _heads(call.v, acc) if grad_out is not None else None  # (B, H, M, Dv)
    go = _heads(grad_out, acc) if grad_out is not None else None  # (B, H, N, Dv)
    dq = torch.zeros_like(qh) if need_q else None  # (B, H, N, D)
    dk = torch.zeros_like(kh) if need_k else None  # (B, H, M, D)
    dv = qh.new_zeros(b, h, call.v.shape[1], call.v.shape[-1]) if need_v else None  # (B, H, M, Dv)
    dbias = torch.zeros_like(weights) if need_bias else None  # (B, H, E)
    for c in chunks_on(call.graph, call.q.device, max_edges):
        ds, p = _score_grad(
            c, weights=weights, keep=keep, dropout_p=call.dropout_p, go=go, vh=vh,
            grad_weights=grad_weights, delta=delta,
        )  # fmt: skip
        if dbias is not None:
            dbias[:, :, c.e_lo : c.e_hi] = ds
        ds = ds.mul_(call.scale)  # scores were q k^T * scale
        _input_grads(c, ds=ds, p=p, qh=qh, kh=kh, go=go, dq=dq, dk=dk, dv=dv)
    back = lambda t, like: None if t is None else t.transpose(1, 2).to(like.dtype)  # noqa: E731
    return back(dq, call.q), back(dk, call.k), back(dv, call.v), dbias


def _score_grad(
    c: EdgeChunk,
    *,
    weights: torch.Tensor,
    keep: torch.Tensor | None,
    dropout_p: float,
    go: torch.Tensor | None,
    vh: torch.Tensor | None,
    grad_weights: torch.Tensor | None,
    delta: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the chunk's scores ``(B, H, Ec)`` and its weights after dropout ``(B, H, Ec)``.

    ``go (B, H, N, Dv)`` and ``vh (B, H, M, Dv)`` are the output gradient and
    values, head-major (None without an output gradient).
    """
    b, h = weights.shape[:2]
    w = weights[:, :, c.e_lo : c.e_hi]  # (B, H, Ec)
    p = w  # weights after dropout
    if keep is not None:
        drop = keep[:, :, c.e_lo : c.e_hi].to(w.dtype) / (1.0 - dropout_p)  # (B, H, Ec)
        p = w * drop
    # (B, H, Ec) gradient w.r.t. the pre-dropout weights; the SDDMM fills it all
    dw = torch.empty_like(w) if go is not None else torch.zeros_like(w)
    if go is not None:
        c.sddmm(go, vh, 1.0, dw)  # <dout_i, v_j>
        if keep is not None:
            dw *= drop
    if grad_weights is not None:
        dw += grad_weights[:, :, c.e_lo : c.e_hi].to(w.dtype)
    if delta is None:
        row = c.row_sum((w * dw).view(b * h, -1))  # (BH, Nc) sum_j w_ij dw_ij
    else:
        row = delta.reshape(b * h, -1)[:, c.t_lo : c.t_hi]  # (BH, Nc)
    return dw.sub_(c.per_edge(row).view(b, h, -1)).mul_(w), p  # (B, H, Ec) each


def _input_grads(c: EdgeChunk, *, ds, p, qh, kh, go, dq, dk, dv) -> None:
    """Add the chunk's share to ``dq``, ``dk``, ``dv`` (head-major, None where not needed).

    ``ds (B, H, Ec)`` is the scaled score gradient, ``p (B, H, Ec)`` the
    weights after dropout; ``dv`` needs ``go``, the output gradient.
    """
    rows = slice(c.t_lo, c.t_hi)
    for i in range(ds.shape[0]):
        for j in range(ds.shape[1]):
            if dq is not None:
                dq[i, j, rows] = torch.sparse.mm(c.matrix(ds[i, j]), kh[i, j])  # (Nc, D)
            if dk is not None:
                ds_t = c.transposed(ds[i, j].index_select(0, c.perm))  # (M, Nc)
                dk[i, j] += torch.sparse.mm(ds_t, qh[i, j, rows])  # (M, D)
            if dv is not None and go is not None:
                p_t = c.transposed(p[i, j].index_select(0, c.perm))  # (M, Nc)
                dv[i, j] += torch.sparse.mm(p_t, go[i, j, rows])  # (M, Dv)


class _EdgeAttention(torch.autograd.Function):
    """CSR edge attention whose backward recomputes from the saved weights ``(B, H, E)``."""

    @staticmethod
    def forward(ctx, q, k, v, bias, call: KernelCall, max_edges: int):
        # q, k, v, bias are call's own tensors, passed apart so that autograd tracks them
        out, weights, keep = edge_forward(call, max_edges=max_edges)
        ctx.save_for_backward(q, k, v, weights, keep)
        ctx.graph, ctx.scale, ctx.dropout_p = call.graph, call.scale, call.dropout_p
        ctx.max_edges = max_edges
        ctx.bias_dtype = None if bias is None else bias.dtype
        ctx.set_materialize_grads(False)
        return out, weights

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_weights):
        q, k, v, weights, keep = ctx.saved_tensors
        call = KernelCall(q, k, v, ctx.graph, scale=ctx.scale, dropout_p=ctx.dropout_p)
        dq, dk, dv, dbias = edge_backward(
            call, weights=weights, keep=keep, max_edges=ctx.max_edges,
            needs=ctx.needs_input_grad[:4], grad_out=grad_out, grad_weights=grad_weights,
        )  # fmt: skip
        if dbias is not None:
            dbias = dbias.transpose(1, 2).to(ctx.bias_dtype)  # (B, E, H)
        return dq, dk, dv, dbias, None, None


def edge_attention(
    call: KernelCall, *, chunk_elements: int = CHUNK_ELEMENTS
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Kernel of the ``"edge"`` backend (contract in :mod:`graphattn.backends.base`).

    ``chunk_elements`` bounds the per-chunk buffers ``(B, E_chunk, H)``; every
    chunk holds at least one whole target.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> q = k = torch.zeros(1, 2, 1, 4)
    >>> v = torch.arange(2.0).view(1, 2, 1, 1)
    >>> out, w = edge_attention(KernelCall(q, k, v, g, scale=0.5, return_weights=True))
    >>> out.flatten().tolist(), w.flatten().tolist()
    ([0.0, 0.5], [1.0, 0.5, 0.5])
    """
    return contain_nonfinite(call, partial(_edge, chunk_elements=chunk_elements))


def _edge(call: KernelCall, *, chunk_elements: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The edge kernel proper, chunk by chunk of targets."""
    b, _, h, _ = call.q.shape
    max_edges = max(1, chunk_elements // (b * h))
    out, weights = _EdgeAttention.apply(call.q, call.k, call.v, call.bias, call, max_edges)
    return out, (weights.transpose(1, 2) if call.return_weights else None)  # (B, E, H)


def _supports(request: AttentionRequest) -> str | None:
    """The edge backend runs every request."""
    return None


register_backend("edge", edge_attention, _supports)
