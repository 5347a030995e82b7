"""Token graphs: the directed graphs that attention runs on.

An edge ``j -> i`` means "token i attends to token j": the source ``j`` gives
keys and values, the target ``i`` gives the query. ``edge_index`` row 0 holds
sources, row 1 targets (PyG's ``flow="source_to_target"``).

:class:`TokenGraph` is one class; each of its topics is a module of this
package whose functions its methods call:

- :mod:`~graphattn.graph.core`: the class, construction and canonical order;
- :mod:`~graphattn.graph.convert`: dense masks and networkx graphs;
- :mod:`~graphattn.graph.algebra`: ``|``, ``&``, ``-``, reversal, self loops,
  subgraphs, permutations and batches;
- :mod:`~graphattn.graph.files`: JSON/NPZ files;
- :mod:`~graphattn.graph.view`: the ASCII grid of :meth:`TokenGraph.to_string`
  and the small SVG a notebook shows;
- :mod:`~graphattn.graph.text`: :meth:`TokenGraph.from_tokens` and the hook
  through which the patterns layer resolves pattern names.

This package imports nothing from graphattn but its private utilities
(``_validate``, ``_files``, ``_cache``).
"""

from graphattn.graph.convert import DEFAULT_MAX_DENSE
from graphattn.graph.core import OwnedEdges, TokenGraph
from graphattn.graph.files import FORMAT_NAME, FORMAT_VERSION
from graphattn.graph.text import register_pattern_resolver

__all__ = [
    "DEFAULT_MAX_DENSE",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "OwnedEdges",
    "TokenGraph",
    "register_pattern_resolver",
]
