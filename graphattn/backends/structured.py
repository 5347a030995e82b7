"""Returned weights of a full or causal graph, row by row, with no per-edge index.

The edges of such a graph sit row-major in the score matrix (a causal
graph's are its lower triangle), so the weights of a batch of target rows are
one matmul, the rows' first ``i + 1`` scores (causal) and an ``exp`` written
straight into their range of edge ids: no tile plan and no edge positions,
whose first build for a causal graph of 8k tokens took longer than the
attention itself. Weights reduced over heads are reduced batch by batch, so
the per-head weights of the whole graph never exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from graphattn.backends.base import KernelCall, accumulation_dtype
from graphattn.backends.dense import mask_structure
from graphattn.backends.heads import reduce_head_dim

__all__ = [
    "FLASH",
    "FUSED_MAX_LSE",
    "HeadReduction",
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
    weights by :func:`structured_weights`, reduced over heads to ``(B, E)``
    as they are computed when ``call.head_reduction`` asks. None for other
    calls, or where ``|lse|`` exceeds :data:`FUSED_MAX_LSE` (its float32
    rounding would become a relative error of every weight above ~4e-6).
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
    causal, mode = structure == "causal", call.head_reduction
    if mode is None:
        w = structured_weights(qp, kp, (n, m), causal, chunk_elements)  # (BH, E)
        weights = w.view(b, h, -1).transpose(1, 2)  # (B, E, H)
    else:
        sizes = vt.norm(dim=-1).unsqueeze(2) if mode == "norm" else None  # (B, H, 1, M)
        reduction = HeadReduction(mode, h, sizes)
        weights = structured_weights(qp, kp, (n, m), causal, chunk_elements, reduction)  # (B, E)
    return out.transpose(1, 2).to(q.dtype).contiguous(), weights


def _first_edge(row: int, causal: bool, m: int) -> int:
    """Edge id of the first edge of target ``row``: ``row (row + 1) / 2`` causal, ``row m`` full."""
    return row * (row + 1) // 2 if causal else row * m


@dataclass(frozen=True)
class HeadReduction:
    """How :func:`structured_weights` reduces each batch of rows over heads."""

    mode: str  # one of graphattn.backends.heads.HEAD_REDUCTIONS
    heads: int  # H: the BH rows of the operands are (B, H)
    sizes: torch.Tensor | None = None  # "norm": the values' norms ||v_jh||, (B, H, 1, M)


def structured_weights(
    qp: torch.Tensor,
    kp: torch.Tensor,
    shape: tuple[int, int],
    causal: bool,
    chunk_elements: int,
    reduction: HeadReduction | None = None,
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
    reduction : HeadReduction, optional
        Reduce each batch of rows over heads as it is computed: the result is
        ``(B, E)`` and the ``(BH, E)`` weights never exist whole.

    Examples
    --------
    >>> q = torch.tensor([[[0.0, 0.0]], [[0.0, -0.6931472]]])  # row 1: lse = log 2
    >>> k = torch.ones(2, 1, 2)
    >>> structured_weights(q, k, (2, 2), True, 16).tolist()
    [[1.0, 0.5, 0.5]]
    >>> q2 = torch.cat([q, torch.zeros(2, 1, 2)], 1)  # a second head: q = 0, lse = 0
    >>> structured_weights(q2, k.expand(2, 2, 2), (2, 2), True, 16, HeadReduction("max", 2))
    tensor([[1., 1., 1.]])
    """
    (n, m), bh = shape, qp.shape[1]
    rows_out = bh if reduction is None else bh // reduction.heads  # BH, or B when reduced
    w = qp.new_empty(rows_out, _first_edge(n, causal, m))  # (BH | B, E)
    kt = kp[:m].permute(1, 2, 0).contiguous()  # (BH, D, M)
    rows = max(1, chunk_elements // (bh * m))
    for r0 in range(0, n, rows):
        r1 = min(r0 + rows, n)
        width = r1 if causal else m
        s = torch.matmul(qp[r0:r1].transpose(0, 1), kt[..., :width])  # (BH, T, width)
        e0, e1 = _first_edge(r0, causal, m), _first_edge(r1, causal, m)
        if reduction is None:
            s = _lower_rows(s, r0) if causal else s.flatten(1)  # (BH, E_r)
            torch.exp(s, out=w[:, e0:e1])
        else:
            w[:, e0:e1] = _reduced_rows(s, reduction, width, r0 if causal else None)  # (B, E_r)
    return w


def _reduced_rows(
    s: torch.Tensor, reduction: HeadReduction, width: int, r0: int | None
) -> torch.Tensor:
    """Folded scores ``s (BH, T, width)`` as weights reduced over heads: ``(B, E_r)``.

    ``r0`` is the first row of a causal batch (its edges are its lower
    triangle), None for a full graph's rows. The ``exp`` runs over whole
    rows (a causal batch's non-edges too: its small upper corner, which may
    overflow but is dropped); the edges are then taken from ``H`` times
    fewer elements.
    """
    s = s.exp_().unflatten(0, (-1, reduction.heads))  # (B, H, T, width)
    sizes = None if reduction.sizes is None else reduction.sizes[..., :width]  # (B, H, 1, width)
    r = reduce_head_dim(s, reduction.mode, sizes)  # (B, T, width)
    return r.flatten(1) if r0 is None else _lower_rows(r, r0)  # (B, E_r)


def _lower_rows(s: torch.Tensor, r0: int) -> torch.Tensor:
    """The edges ``j <= i`` of causal rows ``i = r0, r0 + 1, ...`` of ``s (X, T, width)``.

    Each row's first ``i + 1`` scores, joined by one ``cat`` in edge order:
    ``(X, E_r)``. One pass (an index gather spent as long building its int64
    positions for every batch; a boolean mask takes two passes).
    """
    return torch.cat([s[:, t, : r0 + t + 1] for t in range(s.shape[1])], 1)
