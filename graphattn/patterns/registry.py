"""Patterns by name: the registry that :func:`get` and :func:`available` read.

Adding a pattern to the library is one builder ``fn(n, ...) -> TokenGraph``
(in the module of its family, or a module of its own) and one line in
``_REGISTRY`` below.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from graphattn._validate import check_str
from graphattn.graph import TokenGraph, register_pattern_resolver
from graphattn.patterns.cross_ import (
    cross,
    cross_window,
    diagonal_window,
    no_cross,
    random_cross,
)
from graphattn.patterns.dense import causal, full, prefix_lm
from graphattn.patterns.global_ import attention_sink, bigbird, global_tokens, longformer, star
from graphattn.patterns.local import block_diagonal, documents, sliding_window
from graphattn.patterns.random_ import random
from graphattn.patterns.sparse import fixed, strided

__all__ = ["available", "get", "is_cross"]


def _documents_n(n: int, lengths: Sequence[int], causal: bool = True) -> TokenGraph:
    """:func:`documents` as ``get("documents", n, lengths=...)`` calls it: ``sum(lengths) == n``."""
    g = documents(lengths, causal=causal)
    if g.num_nodes != n:
        raise ValueError(f"lengths must sum to n={n}, got {g.num_nodes}")
    return g


_REGISTRY: dict[str, Callable[..., TokenGraph]] = {
    "attention_sink": attention_sink,
    "bigbird": bigbird,
    "block_diagonal": block_diagonal,
    "causal": causal,
    "cross": cross,
    "cross_window": cross_window,
    "diagonal_window": diagonal_window,
    "documents": _documents_n,
    "fixed": fixed,
    "full": full,
    "global_tokens": global_tokens,
    "longformer": longformer,
    "no_cross": no_cross,
    "prefix_lm": prefix_lm,
    "random": random,
    "random_cross": random_cross,
    "sliding_window": sliding_window,
    "star": star,
    "strided": strided,
}


def available() -> list[str]:
    """Names accepted by :func:`get`, sorted.

    Examples
    --------
    >>> "sliding_window" in available()
    True
    """
    return sorted(_REGISTRY)


def is_cross(name: str) -> bool:
    """Whether the pattern called ``name`` is a cross pattern (it takes ``n_src`` sources).

    Raises
    ------
    ValueError
        If ``name`` is unknown.

    Examples
    --------
    >>> is_cross("cross_window"), is_cross("causal")
    (True, False)
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown pattern {name!r}; valid names: {', '.join(available())}")
    return "n_src" in inspect.signature(_REGISTRY[name]).parameters


def get(name: str, n: int, **params: Any) -> TokenGraph:
    """Build the pattern called ``name`` on ``n`` tokens (``n`` targets for cross patterns).

    ``params`` are the builder's other arguments, e.g.
    ``get("sliding_window", 512, window=64)``; ``get("cross", n, n_src=m)``.

    Parameters
    ----------
    name : str
        One of :func:`available`.
    n : int
        Number of tokens (targets of a cross pattern).
    **params
        The builder's other arguments, by keyword.

    Returns
    -------
    TokenGraph
        The built pattern.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If ``name`` is unknown (the message lists :func:`available`), a
        parameter is not one of the builder's, a required one is missing, or
        a value is out of range.

    Examples
    --------
    >>> get("sliding_window", 6, window=3).name
    'sliding_window(w=3)'
    """
    check_str(name, "name")
    if name not in _REGISTRY:
        raise ValueError(f"unknown pattern {name!r}; valid names: {', '.join(available())}")
    builder = _REGISTRY[name]
    accepted = list(inspect.signature(builder).parameters)[1:]
    unknown = sorted(set(params) - set(accepted))
    try:
        if unknown:
            raise TypeError(f"unknown parameter {', '.join(map(repr, unknown))}")
        inspect.signature(builder).bind(n, **params)
    except TypeError as err:
        raise ValueError(
            f"bad parameters for pattern {name!r}: {err}; it takes {', '.join(accepted)}"
        ) from None
    return builder(n, **params)


register_pattern_resolver(get)  # TokenGraph.from_tokens(tokens, name) looks names up here
