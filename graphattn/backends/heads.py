"""Returned weights reduced over heads: one weight per edge instead of ``H``.

A caller that keeps only a reduction of the weights (a recording with
``heads="mean"``) asks the kernel for it (``KernelCall.head_reduction``). A
kernel that can reduces each batch of scores as it computes them, so the
``(B, E, H)`` weights never exist whole; for every other kernel the
dispatcher reduces its ``(B, E, H)`` weights with :func:`reduce_heads`.
"""

from __future__ import annotations

import torch

from graphattn.backends.base import edges_on
from graphattn.graph import TokenGraph

__all__ = ["HEAD_REDUCTIONS", "check_head_reduction", "reduce_head_dim", "reduce_heads"]

HEAD_REDUCTIONS = ("mean", "max", "min", "norm")


def check_head_reduction(mode: object) -> str | None:
    """``mode`` if it is None or one of :data:`HEAD_REDUCTIONS`.

    Raises
    ------
    TypeError
        If ``mode`` is neither None nor a string.
    ValueError
        If it is another string.

    Examples
    --------
    >>> check_head_reduction("mean")
    'mean'
    >>> check_head_reduction("sum")
    Traceback (most recent call last):
        ...
    ValueError: head_reduction must be None or one of ('mean', 'max', 'min', 'norm'), got 'sum'
    """
    if mode is not None and not isinstance(mode, str):
        raise TypeError(f"head_reduction must be None or a string, got {type(mode).__name__}")
    if mode is not None and mode not in HEAD_REDUCTIONS:
        raise ValueError(f"head_reduction must be None or one of {HEAD_REDUCTIONS}, got {mode!r}")
    return mode


def reduce_head_dim(
    w: torch.Tensor, mode: str, sizes: torch.Tensor | None = None, dim: int = 1
) -> torch.Tensor:
    """``w`` reduced over its head dimension ``dim``.

    ``"mean"``, ``"max"``, ``"min"`` reduce the weights; ``"norm"`` is
    ``sqrt(sum_h (w_h * sizes_h)^2)``, the length of ``sum_h w_h v_h`` over
    the concatenated heads, with ``sizes`` the values' norms ``||v_h||``
    broadcast against ``w``.

    Examples
    --------
    >>> w = torch.tensor([[0.6, 0.8], [0.2, 0.4]])  # (H, E)
    >>> reduce_head_dim(w, "max", dim=0).tolist()
    [0.6000000238418579, 0.800000011920929]
    >>> reduce_head_dim(w, "norm", torch.tensor([[1.0], [0.0]]), dim=0).tolist()
    [0.6000000238418579, 0.800000011920929]
    """
    if mode == "mean":
        return w.mean(dim)
    if mode == "max":
        return w.amax(dim)
    if mode == "min":
        return w.amin(dim)
    return torch.linalg.vector_norm(w * sizes, dim=dim)


def reduce_heads(
    weights: torch.Tensor, mode: str, v: torch.Tensor, graph: TokenGraph
) -> torch.Tensor:
    """Weights ``(B, E, H)`` of ``graph`` reduced over heads: ``(B, E)``.

    ``v (B, M, H, Dv)`` are the call's values, one per head; ``"norm"`` reads
    their norms at every edge's source.

    Examples
    --------
    >>> g = TokenGraph([[0, 1], [1, 1]])  # 0 -> 1 and 1 -> 1
    >>> w = torch.tensor([[[0.5, 0.25], [0.75, 0.25]]])  # (B, E, H)
    >>> v = torch.tensor([[[[3.0], [0.0]], [[1.0], [1.0]]]])  # (B, M, H, Dv)
    >>> reduce_heads(w, "mean", v, g).tolist()
    [[0.375, 0.5]]
    >>> reduce_heads(w, "norm", v, g)  # |(0.5 * 3, 0.25 * 0)|, |(0.75 * 1, 0.25 * 1)|
    tensor([[1.5000, 0.7906]])
    """
    sizes = None
    if mode == "norm":
        src = edges_on(graph, v.device)[0]  # (E,)
        sizes = v.norm(dim=-1).to(weights.dtype)[:, src]  # (B, E, H): ||v_j^h|| at each edge
    return reduce_head_dim(weights, mode, sizes, dim=2)  # (B, E)
