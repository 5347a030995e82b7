"""A token graph as text: the ASCII grid behind :meth:`TokenGraph.to_string`.

Examples
--------
>>> from graphattn.graph import TokenGraph
>>> print(to_string(TokenGraph([[0, 1], [1, 0]])))
TokenGraph(N=2, E=2, density=0.5)
. x
x .
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphattn.graph.convert import to_dense_mask

if TYPE_CHECKING:
    from graphattn.graph.core import TokenGraph

__all__ = ["to_string"]


def to_string(graph: TokenGraph, max_nodes: int = 64) -> str:
    """``repr(graph)`` above a grid of ``x`` (edge ``j -> i``) and ``.``, one row per target."""
    n, m = graph.num_nodes, graph.num_src_nodes
    if max(n, m) > max_nodes:
        raise ValueError(
            f"to_string draws graphs of at most max_nodes={max_nodes} nodes; this one has "
            f"N={n}, M={m} (use graphattn.plot.draw_pattern)"
        )
    mask = to_dense_mask(graph)  # (N, M)
    rows = [" ".join("x" if v else "." for v in row) for row in mask.tolist()]
    return "\n".join([repr(graph), *rows])
