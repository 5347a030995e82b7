"""Ablation importance and the faithfulness of an attribution (Spearman correlation)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from graphattn._validate import check_number

__all__ = ["ablation_importance", "faithfulness", "spearman"]


def ablation_importance(
    model_fn: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    target: int | tuple[int, ...] | Callable[[torch.Tensor], torch.Tensor],
    *,
    replace_with: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """How much the target output drops when each input token is blanked out.

    For every token ``j`` (index along dimension 0 of ``inputs``) the token
    is replaced by ``replace_with`` (a zero embedding, a mask-token id, ...)
    and the model is run again; ``importance[j] = y - y_j`` where ``y`` is
    the target output of the intact input and ``y_j`` that of the ablated
    one (Abnar & Zuidema 2020 blank out one token at a time). Positive
    values mean the token supports the target. ``N + 1`` model calls, under
    ``torch.no_grad()``.

    Parameters
    ----------
    model_fn : callable
        Maps ``inputs`` to an output tensor.
    inputs : Tensor, shape (N, ...)
        Tokens along dimension 0: ids ``(N,)`` or embeddings ``(N, C)``.
    target : int, tuple of int, or callable
        Index into the output selecting one scalar (``output[target]``),
        or a function from the output to a one-element tensor.
    replace_with : float or Tensor
        Value written over the ablated token; a tensor must broadcast to
        ``inputs[j]``.

    Returns
    -------
    Tensor, shape (N,), float64
        ``importance[j]``.

    Raises
    ------
    TypeError
        If ``model_fn``/``target`` are not callable/indices or ``inputs`` is
        not a tensor.
    ValueError
        If ``inputs`` has no token, or the target does not select one value.

    Examples
    --------
    >>> x = torch.tensor([1.0, 2.0, 3.0])
    >>> ablation_importance(lambda t: (t * torch.tensor([1.0, 0.0, 2.0])).sum(), x, ())
    tensor([1., 0., 6.], dtype=torch.float64)
    """
    if not callable(model_fn):
        raise TypeError(f"model_fn must be callable, got {type(model_fn).__name__}")
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs must be a tensor (N, ...), got {type(inputs).__name__}")
    if inputs.dim() == 0 or inputs.shape[0] == 0:
        raise ValueError(f"inputs must have shape (N, ...) with N > 0, got {tuple(inputs.shape)}")
    if not (callable(target) or isinstance(target, (int, tuple))) or isinstance(target, bool):
        raise TypeError(f"target must be an index or a callable, got {type(target).__name__}")
    if not isinstance(replace_with, torch.Tensor):
        check_number(replace_with, "replace_with")
    fill = torch.as_tensor(replace_with, dtype=inputs.dtype, device=inputs.device)

    def score(x: torch.Tensor) -> float:
        out = model_fn(x)
        y = target(out) if callable(target) else out[target]
        if not isinstance(y, torch.Tensor) or y.numel() != 1:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"target must select one value of the output, got {got}")
        return float(y)

    with torch.no_grad():
        base = score(inputs)
        importance = torch.empty(inputs.shape[0], dtype=torch.float64)  # (N,)
        for j in range(inputs.shape[0]):
            ablated = inputs.clone()
            ablated[j] = fill
            importance[j] = base - score(ablated)
    return importance


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n of ``x (n,)`` with ties given the average of the ranks they span."""
    order = torch.argsort(x, stable=True)  # (n,)
    sorted_x = x[order]
    new_group = torch.ones_like(sorted_x, dtype=torch.bool)
    new_group[1:] = sorted_x[1:] != sorted_x[:-1]
    group = torch.cumsum(new_group.long(), 0) - 1  # (n,) tie group of each sorted position
    positions = torch.arange(1, x.numel() + 1, dtype=torch.float64)  # (n,)
    count = torch.bincount(group).double()  # (G,)
    mean_rank = torch.zeros_like(count).index_add_(0, group, positions) / count  # (G,)
    ranks = torch.empty(x.numel(), dtype=torch.float64)
    ranks[order] = mean_rank[group]
    return ranks


def spearman(x: Any, y: Any) -> float:
    """Spearman's rank correlation of two 1-D sequences (ties get average ranks).

    The Pearson correlation of the two rank vectors. ``nan`` when either
    input is constant (the correlation is undefined).

    Raises
    ------
    ValueError
        If the inputs are not 1-D of one length >= 2 or hold NaN.

    Examples
    --------
    >>> spearman([1, 2, 3, 4], [10, 20, 30, 40])
    1.0
    >>> spearman([1, 2, 2, 3], [1, 3, 2, 4])  # ties: ranks 1, 2.5, 2.5, 4
    0.9486832980505138
    """
    return _spearman(_vector(x, "x"), _vector(y, "y"), "x and y")


def _vector(value: Any, name: str) -> torch.Tensor:
    """``value``, a tensor or a sequence of numbers, as a float64 CPU tensor."""
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__"):
        raise TypeError(f"{name} must be a 1-D tensor or sequence, got {type(value).__name__}")
    try:
        return torch.as_tensor(value, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must hold numbers, got {value!r:.80}") from err


def _spearman(a: torch.Tensor, b: torch.Tensor, names: str) -> float:
    """Spearman's rho of two float64 vectors; ``names`` names them in errors."""
    if a.dim() != 1 or b.dim() != 1 or a.numel() != b.numel() or a.numel() < 2:
        raise ValueError(
            f"{names} must be two 1-D sequences of one length >= 2, got shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    if bool(torch.isnan(a).any() | torch.isnan(b).any()):
        raise ValueError(f"{names} must not hold NaN")
    ra, rb = _average_ranks(a), _average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float((ra * ra).sum()) * float((rb * rb).sum()))
    return float((ra * rb).sum()) / denom if denom > 0 else math.nan


def faithfulness(attribution: Any, importance: Any) -> float:
    """Spearman correlation between an attribution and ablation importance.

    Abnar & Zuidema (2020) judge rollout and flow by how well the share
    they give each input token ranks like that token's ablation importance
    (:func:`ablation_importance`); 1 is a perfect ranking.

    Parameters
    ----------
    attribution : Tensor or sequence, shape (N,)
        E.g. a row of :func:`attention_rollout` or :func:`attention_flow`.
    importance : Tensor or sequence, shape (N,)
        E.g. :func:`ablation_importance` for the same output token.

    Returns
    -------
    float
        Spearman's rho in [-1, 1]; ``nan`` if either input is constant.

    Raises
    ------
    ValueError
        If the inputs are not 1-D of one length >= 2 or hold NaN.

    Examples
    --------
    >>> faithfulness(torch.tensor([0.1, 0.5, 0.4]), torch.tensor([0.0, 2.0, 1.0]))
    1.0
    """
    a, b = _vector(attribution, "attribution"), _vector(importance, "importance")
    return _spearman(a, b, "attribution and importance")
