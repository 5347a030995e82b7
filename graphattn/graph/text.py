"""Token graphs from text: label a pattern's nodes with tokens.

The graph layer knows no pattern by name; the patterns layer, which builds on
it, registers its lookup with :func:`register_pattern_resolver` when it is
imported (``import graphattn`` does so). :func:`from_tokens` backs
:meth:`TokenGraph.from_tokens`.

Examples
--------
>>> from graphattn.graph import TokenGraph
>>> one_edge = lambda n: TokenGraph([[0], [1]], n)
>>> g = from_tokens(TokenGraph, "a b c", one_edge)
>>> g.tokens, g.edge_index.tolist()
(['a', 'b', 'c'], [[0], [1]])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphattn.graph.core import TokenGraph

__all__ = ["PatternResolver", "from_tokens", "register_pattern_resolver"]

PatternResolver = Callable[..., "TokenGraph"]
"""``resolver(name, n, **params)`` builds the pattern ``name`` on ``n`` tokens."""

_resolver: PatternResolver | None = None


def register_pattern_resolver(resolver: PatternResolver | None) -> None:
    """Make ``resolver(name, n, **params)`` the lookup of pattern names (None removes it).

    :mod:`graphattn.patterns` registers its ``get`` here when imported.

    Raises
    ------
    TypeError
        If ``resolver`` is neither callable nor None.
    """
    global _resolver
    if resolver is not None and not callable(resolver):
        raise TypeError(f"resolver must be callable or None, got {type(resolver).__name__}")
    _resolver = resolver


def from_tokens(
    cls: type[TokenGraph],
    tokens: str | Sequence[str],
    pattern: str | Callable[..., TokenGraph],
    **params: Any,
) -> TokenGraph:
    """The ``cls`` graph ``pattern`` builds on ``len(tokens)`` nodes, labelled with ``tokens``.

    ``tokens`` is a list of labels or a string, split on whitespace.
    ``pattern`` is a name for the registered resolver, or a callable
    ``pattern(n, **params)`` that returns a :class:`TokenGraph`.

    Raises
    ------
    ValueError
        If ``tokens`` is empty, or ``pattern`` is a name and no resolver is registered.
    TypeError
        If ``pattern`` is neither a name nor a callable, or the callable does
        not return a ``cls``.
    """
    labels = tokens.split() if isinstance(tokens, str) else list(tokens)
    if not labels:
        raise ValueError("tokens is empty; a token graph needs at least one token")
    if isinstance(pattern, str):
        if _resolver is None:
            raise ValueError(
                f"pattern={pattern!r} names a pattern, but no pattern resolver is registered; "
                "import graphattn.patterns (or graphattn) first, or pass a callable n -> TokenGraph"
            )
        graph = _resolver(pattern, len(labels), **params)
    elif callable(pattern):
        graph = pattern(len(labels), **params)
        if not isinstance(graph, cls):
            raise TypeError(f"pattern must return a {cls.__name__}, got {type(graph).__name__}")
    else:
        raise TypeError(
            f"pattern must be a pattern name or a callable n -> TokenGraph, "
            f"got {type(pattern).__name__}"
        )
    return graph.with_tokens(labels)
