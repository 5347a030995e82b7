"""Token graphs: the directed graphs that attention runs on.

An edge ``j -> i`` means "token i attends to token j": the source ``j`` gives
keys and values, the target ``i`` gives the query. ``edge_index`` row 0 holds
sources, row 1 targets (PyG's ``flow="source_to_target"``).
"""

from graphattn.graph.core import (
    DEFAULT_MAX_DENSE,
    FORMAT_NAME,
    FORMAT_VERSION,
    OwnedEdges,
    TokenGraph,
)

__all__ = ["DEFAULT_MAX_DENSE", "FORMAT_NAME", "FORMAT_VERSION", "OwnedEdges", "TokenGraph"]
