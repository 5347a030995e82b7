"""Composition of patterns: named unions and intersections of graphs of the same size.

``a | b``, ``a & b`` and ``a - b`` work on any :class:`TokenGraph` and name
the result after its parts; :func:`union` and :func:`intersection` combine
any number of graphs the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import reduce

from graphattn.graph import TokenGraph

__all__ = ["intersection", "union"]


def union(*graphs: TokenGraph) -> TokenGraph:
    """Edges in any of ``graphs`` (same sizes), named ``a | b | ...``.

    Parameters
    ----------
    *graphs : TokenGraph
        Graphs of the same sizes.

    Returns
    -------
    TokenGraph
        Their union.

    Examples
    --------
    >>> from graphattn.patterns import global_tokens, sliding_window
    >>> union(sliding_window(8, 2), global_tokens(8, 1)).name
    'sliding_window(w=2) | global_tokens(globals=1)'
    """
    return _combine(graphs, TokenGraph.__or__)


def intersection(*graphs: TokenGraph) -> TokenGraph:
    """Edges in every one of ``graphs`` (same sizes), named ``a & b & ...``.

    Parameters
    ----------
    *graphs : TokenGraph
        Graphs of the same sizes.

    Returns
    -------
    TokenGraph
        Their intersection.

    Examples
    --------
    >>> from graphattn.patterns import causal, full
    >>> intersection(full(4), causal(4)) == causal(4)
    True
    """
    return _combine(graphs, TokenGraph.__and__)


def _combine(graphs: Sequence[TokenGraph], op: Callable) -> TokenGraph:
    if not graphs:
        raise ValueError("graphs is empty; give at least one TokenGraph")
    if not all(isinstance(g, TokenGraph) for g in graphs):
        raise TypeError("every argument must be a TokenGraph")
    return reduce(op, graphs)  # named by the operators themselves: "a | b | c"
