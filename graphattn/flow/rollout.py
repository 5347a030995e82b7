"""Attention rollout (Abnar & Zuidema, 2020) on token graphs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from graphattn._validate import check_bool
from graphattn.flow._layers import (
    apply,
    check_dropped,
    check_options,
    check_self_layers,
    check_targets,
    compute_dtype,
    layer_operator,
)
from graphattn.flow.batch import per_example

__all__ = ["attention_rollout"]


@per_example(torch.stack)
def attention_rollout(
    layers: Sequence[Any],
    *,
    residual: float = 0.5,
    head_reduce: str = "mean",
    targets: Any = None,
    dropped: Sequence[Any] | None = None,
    normalize: bool = True,
) -> torch.Tensor:
    """Attention rollout: the share of every input token in every output token.

    Each layer ``l`` becomes ``A_l = residual * I + (1 - residual) * W_l`` with
    every row renormalized to sum 1, where ``W_l[i, j]`` is the head-reduced
    weight of edge ``j -> i``; the rollout is the product from the first
    layer up, ``R = A_L ... A_2 A_1``. Row ``i`` of ``R`` is a distribution
    over the input tokens ``j`` (Abnar & Zuidema 2020, "Quantifying Attention
    Flow in Transformers").

    Without ``targets`` the full ``(N, N)`` result is built bottom-up
    (``R <- A_l R``, sparse ``A_l``). With ``targets`` only their rows are
    computed, top-down (``X <- X A_l`` starting from the one-hot rows of the
    targets), so memory is ``(T, N)`` and time ``O(L * nnz * T)`` with no
    ``N x N`` intermediate.

    Layers pruned to their strongest edges
    (:func:`graphattn.flow.prune.prune_top_k`, ``graphattn.hf.record(top_k=)``)
    give their per-target dropped mass as ``dropped``: it stays in each row's
    normalization, so every kept entry of ``A_l`` is the unpruned one and
    ``R`` is the exact rollout restricted to paths of kept edges. Row ``i``
    then sums to ``1 - lost_i``, where ``lost_i = 1 - R[i].sum()`` is exactly
    the share of output ``i`` that flowed through a pruned edge (and the
    L1 distance to the unpruned row); with nothing pruned the result is the
    unpruned one, bit for bit.

    Parameters
    ----------
    layers : sequence of (TokenGraph, Tensor)
        One ``(graph, weights)`` pair per layer, first layer first; weights
        ``(E,)`` or ``(E, H)`` in ``graph.edge_index`` column order. All
        graphs are self graphs over the same ``N`` tokens.
    residual : float
        Weight of the identity (the residual connection), in [0, 1].
    head_reduce : {"mean", "max", "min"}
        How heads are combined per edge (see :func:`aggregate_heads`).
    targets : int, sequence of int or LongTensor, optional
        Output tokens whose rows to compute.
    dropped : sequence of Tensor or None, optional
        Per layer, the weight of every target's pruned incoming edges,
        ``(N,)`` or (for ``head_reduce="mean"``) ``(N, H)``; None for a layer
        that lost nothing.
    normalize : bool
        True (default): every row of every ``A_l`` is renormalized to sum 1
        (Abnar & Zuidema). False: ``A_l = residual * I + (1 - residual) *
        W_l`` as given, ``R`` the plain product: with ``residual=0`` and the
        raw GlobEnc norms (``contributions(..., "globenc",
        normalize=False)``) this is GlobEnc's composition as its authors
        compute it, where a token whose norms sum low damps every path
        through it.

    Returns
    -------
    Tensor, shape (N, N) or (T, N), or (B, N, N) or (B, T, N)
        ``R[i, j]`` share of input ``j`` in output ``i`` (rows in the order of
        ``targets``); float64 if any weights are float64, else float32, on the
        weights' device. Rows sum to 1 (rows of isolated targets with
        ``residual=0`` are zero; rows of pruned layers to ``1 - lost``; with
        ``normalize=False`` they sum to what the product gives). Batched
        weights (``(B, E)``, ``(B, E, H)``, see :mod:`graphattn.flow.batch`)
        give one result per example, stacked. Differentiable with respect to
        the weights.

    Raises
    ------
    TypeError, ValueError
        For malformed layers (weights length differing from the graph's
        edge count, negative weights, cross graphs, layers over different
        token counts), a residual outside [0, 1], an unknown
        ``head_reduce``, or targets out of range.

    Examples
    --------
    >>> from graphattn.graph import TokenGraph
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])     # 0 -> 0, 0 -> 1, 1 -> 1 (causal)
    >>> w = torch.tensor([1.0, 0.5, 0.5])
    >>> attention_rollout([(g, w)])
    tensor([[1.0000, 0.0000],
            [0.2500, 0.7500]])
    >>> attention_rollout([(g, w), (g, w)], targets=[1])
    tensor([[0.4375, 0.5625]])

    The edge ``0 -> 1`` pruned away, its weight 0.5 kept as dropped mass:

    >>> kept = TokenGraph([[0, 1], [0, 1]])
    >>> r = attention_rollout([(kept, torch.tensor([1.0, 0.5]))],
    ...                       dropped=[torch.tensor([0.0, 0.5])])
    >>> r, 1 - r.sum(1)                              # the lost share of each output
    (tensor([[1.0000, 0.0000],
            [0.0000, 0.7500]]), tensor([0.0000, 0.2500]))
    >>> attention_rollout([(g, 2 * w)], residual=0.0, normalize=False)  # raw scores, no division
    tensor([[2., 0.],
            [1., 1.]])
    """
    checked = check_self_layers(layers)
    residual = check_options(residual, head_reduce)
    lost = check_dropped(dropped, checked, head_reduce)
    normalize = check_bool(normalize, "normalize")
    n = checked[0].graph.num_nodes
    rows = None if targets is None else check_targets(targets, n)
    dtype = compute_dtype(checked)
    ops = [
        layer_operator(layer, residual, head_reduce, dtype, d, normalize)
        for layer, d in zip(checked, lost, strict=True)
    ]  # A_l, first layer first
    init = dict(n=n, dtype=dtype, device=checked[0].weights.device)
    return _full_rollout(ops, **init) if rows is None else _target_rows(ops, rows, **init)


def _full_rollout(ops: list, *, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The whole rollout ``R (N, N)``, bottom-up: ``R <- A_l R`` from the identity."""
    out = torch.eye(n, dtype=dtype, device=device)  # (N, N)
    for op in ops:
        out = apply(op, out)  # (N, N): A_l @ R
    return out


def _target_rows(
    ops: list, rows: torch.Tensor, *, n: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """The rows ``rows (T,)`` of the rollout ``(T, N)``, top-down from their one-hot rows."""
    # Top-down on Y = X^T (N, T): X <- X A_l  is  Y <- A_l^T Y.
    y = torch.zeros(n, rows.numel(), dtype=dtype, device=device)  # (N, T)
    y[rows.to(device), torch.arange(rows.numel(), device=device)] = 1.0
    for op in reversed(ops):
        y = apply(op, y, transpose=True)  # (N, T)
    return y.T.contiguous()  # (T, N)
