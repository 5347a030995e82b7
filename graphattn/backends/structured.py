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

__all__ = ["structured_weights"]


def _first_edge(row: int, causal: bool, m: int) -> int:
    """Edge id of the first edge of target ``row``: ``row (row + 1) / 2`` causal, ``row m`` full."""
    return row * (row + 1) // 2 if causal else row * m


def structured_weights(
    qp: torch.Tensor,
    kp: torch.Tensor,
    shape: tuple[int, int],
    causal: bool,
    chunk_elements: int,
    rest: tuple[torch.Tensor, torch.Tensor, float] | None = None,
) -> torch.Tensor:
    """Weights ``(BH, E)`` of a full or causal graph in edge order.

    Parameters
    ----------
    qp, kp : Tensor ``(>= N, BH, D)``, ``(>= M, BH, D)``
        Node-major queries and keys. Without ``rest`` their product is
        already ``score * scale - lse`` (the log-sum-exp folded in as one more
        feature); with ``rest = (hi, lo, scale)``, ``(BH, >= N)`` each, the
        product is the raw score and ``lse = hi + lo`` is subtracted in two
        exact steps.
    shape : (N, M)
        Targets and sources (``N == M`` when ``causal``).
    causal : bool
        Edges ``j <= i`` (else every pair).
    chunk_elements : int
        Score elements computed at once.

    Examples
    --------
    >>> q = torch.zeros(2, 1, 1)  # lse = log 1 for row 0, log 2 for row 1
    >>> k = torch.ones(2, 1, 1)
    >>> rest = (torch.tensor([[0.0, 0.6931472]]), torch.zeros(1, 2), 1.0)
    >>> structured_weights(q, k, (2, 2), True, 16, rest).tolist()
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
        if rest is not None:
            hi, lo, scale = rest
            s.mul_(scale).sub_(hi[:, r0:r1, None]).sub_(lo[:, r0:r1, None])
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
