"""The ``"csr"`` backend: sparse-matrix kernels for irregular graphs (random, strided).

The graph's edges already are a CSR matrix over targets (``indptr``,
``src``). Per batch element and head, the kernel runs PyTorch's sparse CSR
routines, which never form an ``(E, D)`` tensor::

    S = SDDMM(q, k^T) on the edges * scale (+ bias)     # (E,) sampled matmul
    W = segment softmax of S over each target's edges    # (E,)
    out = W @ v                                          # SpMM, (N, Dv)

The backward keeps only the weights ``W (B, H, E)`` and uses the transposed
CSR (edges sorted by source, cached on the graph) for the key side::

    dP = SDDMM(dout, v^T),  dS = W * (dP + dW - sum_j W (dP + dW))
    dq = dS @ k * scale,    dk = dS^T @ q * scale,    dv = W^T @ dout

Fixed in-degree patterns such as ``random(n, k)`` cost ``O(E * D)`` work with
no gather of ``(E, D)`` rows, where the block backend would waste whole tiles.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch.autograd.function import once_differentiable

from graphattn.backends.base import AttentionRequest, accumulation_dtype, register_backend
from graphattn.graph import TokenGraph

__all__ = ["csr_attention"]


def _structure(graph: TokenGraph, device: torch.device) -> dict[str, torch.Tensor]:
    """CSR over targets and over sources (edge permutation), cached on the graph."""

    def build() -> dict[str, torch.Tensor]:
        src, dst = graph.src, graph.dst  # (E,)
        perm = torch.argsort(src * graph.num_nodes + dst)  # (E,) edges sorted by source
        indptr_t = torch.zeros(graph.num_src_nodes + 1, dtype=torch.long)
        torch.cumsum(graph.out_degree(), 0, out=indptr_t[1:])
        # MKL's sparse routines are fastest with 32-bit indices
        index = torch.int32 if graph.num_edges < 2**31 else torch.long
        parts = {
            "indptr": graph.indptr.to(index),
            "src": src.to(index),
            "dst": dst,
            "perm": perm,
            "indptr_t": indptr_t.to(index),
            "dst_t": dst[perm].to(index),
            "offsets": graph.indptr,
        }
        return {key: t.to(device) for key, t in parts.items()}

    return graph.cached(("csr_structure", str(device)), build)


def _matrix(indptr, cols, values, shape) -> torch.Tensor:
    """A CSR matrix without the beta-state warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(indptr, cols, values, shape)


def _sddmm(st, a: torch.Tensor, b: torch.Tensor, shape) -> torch.Tensor:
    """``<a_i, b_j>`` for every edge ``j -> i``: values ``(E,)``; ``a (N, D)``, ``b (M, D)``."""
    pattern = _matrix(st["indptr"], st["src"], a.new_zeros(st["src"].numel()), shape)
    return torch.sparse.sampled_addmm(pattern, a, b.t(), beta=0.0).values()


def _segment_softmax(score: torch.Tensor, st) -> torch.Tensor:
    """Softmax of ``score (R, E)`` over each target's edges; empty or all ``-inf`` rows give 0."""
    offsets = st["offsets"].expand(score.shape[0], -1)  # (R, N + 1)
    smax = torch.segment_reduce(score, "max", offsets=offsets, axis=1, unsafe=True)  # (R, N)
    smax = smax.masked_fill_(smax == -math.inf, 0.0)
    p = torch.exp_(score - smax[:, st["dst"]])  # (R, E)
    total = torch.segment_reduce(p, "sum", offsets=offsets, axis=1, unsafe=True)  # (R, N)
    return p.div_(total.clamp_min_(torch.finfo(p.dtype).tiny)[:, st["dst"]])


def _heads(x: torch.Tensor, acc: torch.dtype) -> torch.Tensor:
    """``(B, L, H, D)`` -> ``(B, H, L, D)`` contiguous in ``acc``."""
    return x.to(acc).transpose(1, 2).contiguous()


class _CSRAttention(torch.autograd.Function):
    """Per-head SDDMM / SpMM attention that saves only the weights for backward."""

    @staticmethod
    def forward(ctx, q, k, v, bias, graph, scale):
        acc = accumulation_dtype(q.dtype)
        st = _structure(graph, q.device)
        b, n, h, _ = q.shape
        m = k.shape[1]
        qh, kh, vh = _heads(q, acc), _heads(k, acc), _heads(v, acc)  # (B, H, L, D)
        score = q.new_empty((b, h, graph.num_edges), dtype=acc)  # (B, H, E)
        for i in range(b):
            for j in range(h):
                score[i, j] = _sddmm(st, qh[i, j], kh[i, j], (n, m))
        score.mul_(scale)
        if bias is not None:
            score += bias.to(acc).transpose(1, 2)
        weights = _segment_softmax(score.view(b * h, -1), st).view(b, h, -1)  # (B, H, E)
        out = q.new_empty((b, h, n, v.shape[-1]), dtype=acc)  # (B, H, N, Dv)
        for i in range(b):
            for j in range(h):
                w = _matrix(st["indptr"], st["src"], weights[i, j], (n, m))
                out[i, j] = torch.sparse.mm(w, vh[i, j])
        ctx.save_for_backward(q, k, v, weights)
        ctx.graph, ctx.scale, ctx.has_bias = graph, scale, bias is not None
        ctx.set_materialize_grads(False)
        return out.transpose(1, 2).to(q.dtype), weights.transpose(1, 2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_weights):
        q, k, v, weights = ctx.saved_tensors
        acc = weights.dtype
        st = _structure(ctx.graph, q.device)
        b, n, h, _ = q.shape
        m = k.shape[1]
        qh, kh, vh = _heads(q, acc), _heads(k, acc), _heads(v, acc)  # (B, H, L, D)
        dw = torch.zeros_like(weights)  # (B, H, E) gradient w.r.t. the weights
        dv = torch.zeros_like(vh)  # (B, H, M, Dv)
        if grad_out is not None:
            go = _heads(grad_out, acc)  # (B, H, N, Dv)
            for i in range(b):
                for j in range(h):
                    dw[i, j] = _sddmm(st, go[i, j], vh[i, j], (n, m))
                    wt = _matrix(st["indptr_t"], st["dst_t"], weights[i, j, st["perm"]], (m, n))
                    dv[i, j] = torch.sparse.mm(wt, go[i, j])
        if grad_weights is not None:
            dw += grad_weights.to(acc).transpose(1, 2)
        offsets = st["offsets"].expand(b * h, -1)  # (BH, N + 1)
        row = torch.segment_reduce(
            (weights * dw).view(b * h, -1), "sum", offsets=offsets, axis=1, unsafe=True
        )  # (BH, N) sum_j w_ij dw_ij
        ds = weights * (dw - row.view(b, h, -1)[:, :, st["dst"]])  # (B, H, E) d score
        dbias = ds.transpose(1, 2).contiguous() if ctx.has_bias else None  # (B, E, H)
        ds = ds * ctx.scale
        dq, dk = torch.empty_like(qh), torch.empty_like(kh)  # (B, H, L, D)
        for i in range(b):
            for j in range(h):
                ds_ij = _matrix(st["indptr"], st["src"], ds[i, j], (n, m))
                dq[i, j] = torch.sparse.mm(ds_ij, kh[i, j])
                ds_t = _matrix(st["indptr_t"], st["dst_t"], ds[i, j, st["perm"]], (m, n))
                dk[i, j] = torch.sparse.mm(ds_t, qh[i, j])
        back = lambda t, like: t.transpose(1, 2).to(like.dtype)  # noqa: E731
        return back(dq, q), back(dk, k), back(dv, v), dbias, None, None


def csr_attention(
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
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Kernel of the ``"csr"`` backend (contract in :mod:`graphattn.backends.base`).

    Raises
    ------
    ValueError
        If ``dropout_p > 0`` (use the ``"edge"`` backend for dropout).

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> q = k = torch.zeros(1, 2, 1, 4)
    >>> v = torch.arange(2.0).view(1, 2, 1, 1)
    >>> out, w = csr_attention(q, k, v, g, scale=0.5, bias=None, return_weights=True,
    ...                        dropout_p=0.0, generator=None)
    >>> out.flatten().tolist(), w.flatten().tolist()
    ([0.0, 0.5], [1.0, 0.5, 0.5])
    """
    if dropout_p > 0:
        raise ValueError(f"the csr backend has no dropout; got dropout_p={dropout_p}")
    out, weights = _CSRAttention.apply(q, k, v, bias, graph, scale)
    return out, (weights if return_weights else None)


def _supports(request: AttentionRequest) -> str | None:
    """CSR kernels run on CPU (and CUDA) for everything but dropout and empty graphs."""
    if request.dropout > 0:
        return "no dropout in the csr backend (use 'edge')"
    if request.graph.num_edges == 0:
        return "a graph without edges (use 'edge')"
    if request.device.type not in ("cpu", "cuda"):
        return f"torch.sparse CSR kernels are not available on {request.device.type}"
    return None


register_backend("csr", csr_attention, _supports)
