"""Returned weights of a full or causal graph, row by row, with no per-edge index.

The edges of such a graph sit row-major in the score matrix (a causal
graph's are its lower triangle), so the weights of a batch of target rows are
one matmul, a gather of the lower triangle (causal) and an ``exp`` written
straight into their range of edge ids: no tile plan and no edge positions,
whose first build for a causal graph of 8k tokens took longer than the
attention itself.
"""

from __future__ import annotations

import torch

from graphattn.backends.base import KernelCall, accumulation_dtype
from graphattn.backends.dense import mask_structure

__all__ = [
    "FLASH",
    "FUSED_MAX_LSE",
    "fold_lse",
    "fused_precise",
    "structured_attention",
    "structured_weights",
]

FLASH = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
FUSED_MAX_LSE = 64.0  # the fused CPU kernels (float32 lse inside) run up to this |lse|


def fused_precise(lse: torch.Tensor, acc: torch.dtype) -> bool:
    """Whether the fused kernels' float32 log-sum-exp is precise enough for these scores.

    They keep it in float32 inside; its rounding, ~6e-8 |lse|, becomes a
    relative error of every weight and gradient. Up to :data:`FUSED_MAX_LSE`
    that stays below ~4e-6; beyond, the plain tiles with a float64 lse run
    instead. Rows without an edge (``lse = inf``) do not count; float64
    (``acc``) is always precise.
    """
    if acc == torch.float64:
        return True
    finite = lse[torch.isfinite(lse)]
    return not finite.numel() or float(finite.abs().max()) <= FUSED_MAX_LSE


def fold_lse(
    qp: torch.Tensor, kp: torch.Tensor, lse: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``([q * scale, -lse], [k, 1])``: their product is ``score * scale - lse``.

    ``qp (rows, BH, D)``, ``kp (rows_k, BH, D)`` node-major and ``lse (rows, BH)``
    in their dtype; returns ``(rows, BH, D + 1)`` and ``(rows_k, BH, D + 1)``.
    """
    ones = kp.new_ones(kp.shape[0], kp.shape[1], 1)
    return torch.cat([qp * scale, -lse.unsqueeze(-1)], -1), torch.cat([kp, ones], -1)


def structured_attention(call: KernelCall, chunk_elements: int):
    """``(out (B, N, H, Dv), weights (B, E, H))`` of a recorded full or causal graph, or None.

    For a call that returns weights with no gradient, no bias and ``D == Dv``
    on CPU: the fused kernel runs the graph whole at any length (skipping a
    causal graph's upper triangle) and its log-sum-exp, folded into the
    matmul as one more feature (``[q * scale, -lse] . [k, 1]``), gives the
    weights by :func:`structured_weights`. None for other calls, or where
    ``|lse|`` exceeds :data:`FUSED_MAX_LSE` (its float32 rounding would
    become a relative error of every weight above ~4e-6).
    """
    q, k, v = call.q, call.k, call.v
    structure = mask_structure(call.graph)
    if FLASH is None or structure == "general" or call.bias is not None:
        return None
    if q.device.type != "cpu" or q.shape[-1] != v.shape[-1] or call.request().needs_grad:
        return None
    acc = accumulation_dtype(q.dtype)
    qt, kt, vt = (x.transpose(1, 2).to(acc) for x in (q, k, v))  # (B, H, L, D)
    out, lse = FLASH(qt, kt, vt, is_causal=structure == "causal", scale=call.scale)  # lse (B, H, N)
    if not fused_precise(lse, acc):
        return None
    (b, n, h, _), m = q.shape, k.shape[1]
    qp, kp = (x.flatten(0, 1).transpose(0, 1) for x in (qt, kt))  # (L, BH, D) node-major
    qp, kp = fold_lse(qp, kp, lse.flatten(0, 1).t(), call.scale)  # (L, BH, D + 1)
    w = structured_weights(qp, kp, (n, m), structure == "causal", chunk_elements)  # (BH, E)
    weights = w.view(b, h, -1).transpose(1, 2)  # (B, E, H)
    return out.transpose(1, 2).to(q.dtype).contiguous(), weights


def _first_edge(row: int, causal: bool, m: int) -> int:
    """Edge id of the first edge of target ``row``: ``row (row + 1) / 2`` causal, ``row m`` full."""
    return row * (row + 1) // 2 if causal else row * m


def structured_weights(
    qp: torch.Tensor, kp: torch.Tensor, shape: tuple[int, int], causal: bool, chunk_elements: int
) -> torch.Tensor:
    """Weights ``(BH, E)`` of a full or causal graph in edge order, from a folded log-sum-exp.

    Parameters
    ----------
    qp, kp : Tensor ``(>= N, BH, D + 1)``, ``(>= M, BH, D + 1)``
        Node-major ``[q * scale, -lse]`` and ``[k, 1]``: their product is
        ``score * scale - lse``, whose ``exp`` is the weight.
    shape : (N, M)
        Targets and sources (``N == M`` when ``causal``).
    causal : bool
        Edges ``j <= i`` (else every pair).
    chunk_elements : int
        Score elements computed at once.

    Examples
    --------
    >>> q = torch.tensor([[[0.0, 0.0]], [[0.0, -0.6931472]]])  # row 1: lse = log 2
    >>> k = torch.ones(2, 1, 2)
    >>> structured_weights(q, k, (2, 2), True, 16).tolist()
    [[1.0, 0.5, 0.5]]
    """
    (n, m), bh = shape, qp.shape[1]
    w = qp.new_empty(bh, _first_edge(n, causal, m))  # (BH, E)
    kt = kp[:m].permute(1, 2, 0).contiguous()  # (BH, D, M)
    rows = max(1, chunk_elements // (bh * m))
    for r0 in range(0, n, rows):
        r1 = min(r0 + rows, n)
        width = r1 if causal else m
        s = torch.matmul(qp[r0:r1].transpose(0, 1), kt[..., :width])  # (BH, T, width)
        e0, e1 = _first_edge(r0, causal, m), _first_edge(r1, causal, m)
        s = s.flatten(1)  # (BH, T * width)
        if causal:
            s = s.index_select(1, _lower_triangle(r0, r1, s.device))  # (BH, E_rows)
        torch.exp(s, out=w[:, e0:e1])
    return w


def _lower_triangle(r0: int, r1: int, device: torch.device) -> torch.Tensor:
    """Flat positions ``(E_rows,)`` of the edges ``j <= i`` of rows ``r0:r1`` in scores ``(T, r1)``.

    One gather per batch of rows (a per-row copy, or a boolean mask, was
    slower: many small parallel calls, or a two-pass select).
    """
    lengths = torch.arange(r0 + 1, r1 + 1, device=device)  # (T,) row i has i + 1 edges
    skip = torch.arange(r1 - r0, device=device) * r1 - (torch.cumsum(lengths, 0) - lengths)
    return torch.arange(int(lengths.sum()), device=device) + skip.repeat_interleave(lengths)
