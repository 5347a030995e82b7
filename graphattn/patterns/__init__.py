"""Named attention patterns: builders that return :class:`~graphattn.graph.TokenGraph` s.

Every builder states exactly which sources ``j`` each target ``i`` attends to
(edge ``j -> i``), the off-by-one convention of its window and the paper it
comes from. Builders are vectorized: they write the canonical ``(2, E)`` edge
list directly, with no Python loop over tokens (but ``random_cross``, whose
rows each draw from their own generator).

Window convention (all builders): a causal window of size ``w`` lets ``i``
attend to the ``w`` keys ``i - w < j <= i`` (itself included); a bidirectional
window of size ``w`` lets ``i`` attend to ``|i - j| < w`` (``2w - 1`` keys).

:func:`get` builds a pattern by name (``TokenGraph.from_tokens`` uses it);
:func:`available` lists the names.

One module per family (a trailing ``_`` where the plain name is taken):

- :mod:`~graphattn.patterns.dense`: ``full``, ``causal``, ``prefix_lm``;
- :mod:`~graphattn.patterns.local`: ``sliding_window``, ``block_diagonal``, ``documents``;
- :mod:`~graphattn.patterns.sparse`: ``strided``, ``fixed`` (Sparse Transformer);
- :mod:`~graphattn.patterns.global_`: ``global_tokens``, ``star``,
  ``attention_sink``, ``longformer``, ``bigbird``;
- :mod:`~graphattn.patterns.random_`: ``random``;
- :mod:`~graphattn.patterns.cross_`: ``cross``, ``cross_window``, ``diagonal_window``,
  ``random_cross``, ``no_cross`` (encoder -> decoder);
- :mod:`~graphattn.patterns.predicates`: ``from_predicate``;
- :mod:`~graphattn.patterns.compose`: ``union``, ``intersection``;
- :mod:`~graphattn.patterns.registry`: ``get``, ``available`` and the name -> builder table.

Adding a pattern: one builder ``fn(n, ...) -> TokenGraph`` in its family's
module (or a module of its own) and one line in the registry's table; then
:func:`get` and :func:`available` know it. To call it as ``patterns.NAME``
too, import it here and list it in ``__all__``.
"""

from graphattn.patterns.compose import intersection, union
from graphattn.patterns.cross_ import cross, cross_window, diagonal_window, no_cross, random_cross
from graphattn.patterns.dense import causal, full, prefix_lm
from graphattn.patterns.global_ import attention_sink, bigbird, global_tokens, longformer, star
from graphattn.patterns.local import block_diagonal, documents, sliding_window
from graphattn.patterns.predicates import from_predicate
from graphattn.patterns.random_ import random
from graphattn.patterns.registry import available, get
from graphattn.patterns.sparse import fixed, strided

__all__ = [
    "attention_sink",
    "available",
    "bigbird",
    "block_diagonal",
    "causal",
    "cross",
    "cross_window",
    "diagonal_window",
    "documents",
    "fixed",
    "from_predicate",
    "full",
    "get",
    "global_tokens",
    "intersection",
    "longformer",
    "no_cross",
    "prefix_lm",
    "random",
    "random_cross",
    "sliding_window",
    "star",
    "strided",
    "union",
]
