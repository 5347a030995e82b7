"""Patterns from predicates: edge ``j -> i`` iff ``fn(i, j)``, like FlexAttention's ``mask_mod``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from graphattn._validate import check_str
from graphattn.graph import TokenGraph
from graphattn.patterns._common import check_nodes, make_graph

__all__ = ["PREDICATE_TILE", "from_predicate"]

PREDICATE_TILE = 1 << 22  # mask elements evaluated at once by from_predicate (and random(p=...))


def from_predicate(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    n_dst: int,
    n_src: int | None = None,
    *,
    name: str | None = None,
) -> TokenGraph:
    """A graph from a predicate: edge ``j -> i`` iff ``fn(i, j)`` is True.

    ``fn`` receives broadcast index tensors, ``i`` of shape ``(R, 1)`` and ``j``
    of shape ``(1, M)``, like FlexAttention's ``mask_mod``, and returns a bool
    tensor broadcastable to ``(R, M)``. It is evaluated on tiles of rows, so
    no ``N x M`` table is built at once. ``n_src`` given makes a cross graph
    with ``M = n_src`` sources; otherwise ``M = n_dst``.

    Parameters
    ----------
    fn : callable
        ``fn(i, j) -> bool tensor``, as FlexAttention's ``mask_mod``.
    n_dst : int
        Number of targets ``N``.
    n_src : int, optional
        Number of sources ``M`` of a cross graph.
    name : str, optional
        Name of the result (default ``predicate``).

    Returns
    -------
    TokenGraph
        Edges ``j -> i`` where ``fn(i, j)`` holds.

    Raises
    ------
    TypeError
        If ``fn`` is not callable or does not return a bool tensor.
    ValueError
        If ``fn``'s result does not broadcast to ``(R, M)``.

    Examples
    --------
    >>> from graphattn.patterns import sliding_window
    >>> g = from_predicate(lambda i, j: (j <= i) & (i - j < 2), 4)
    >>> g == sliding_window(4, 2)
    True
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable as fn(i, j), got {type(fn).__name__}")
    n = check_nodes(n_dst, "n_dst", low=1)
    m = n if n_src is None else check_nodes(n_src, "n_src", low=1)
    name = check_str(name, "name", optional=True)
    j = torch.arange(m)[None, :]  # (1, M)
    rows = max(1, PREDICATE_TILE // m)
    parts = []
    for r0 in range(0, n, rows):
        i = torch.arange(r0, min(n, r0 + rows))[:, None]  # (R, 1)
        keep = fn(i, j)
        if not isinstance(keep, torch.Tensor) or keep.dtype != torch.bool:
            got = keep.dtype if isinstance(keep, torch.Tensor) else type(keep).__name__
            raise TypeError(f"fn must return a bool tensor, got {got}")
        try:
            keep = keep.expand(i.shape[0], m)  # (R, M)
        except RuntimeError as err:
            raise ValueError(
                f"fn's result of shape {tuple(keep.shape)} does not broadcast to "
                f"{(i.shape[0], m)}"
            ) from err
        dst, src = keep.nonzero(as_tuple=True)
        parts.append(torch.stack([src, dst + r0]))
    return make_graph(torch.cat(parts, 1), n, name or "predicate", None if n_src is None else m)
