"""Dense patterns: every token sees all of the sequence, or all of its past.

:func:`full` (bidirectional), :func:`causal` (autoregressive) and
:func:`prefix_lm` (a bidirectional prefix, then causal).
"""

from __future__ import annotations

import torch

from graphattn._validate import check_int
from graphattn.graph import TokenGraph
from graphattn.patterns._common import check_nodes, make_graph, ragged_edges

__all__ = ["causal", "full", "prefix_lm"]


def full(n: int) -> TokenGraph:
    """Bidirectional attention: every ``i`` attends to every ``j`` (``N * N`` edges).

    The encoder pattern of the Transformer (Vaswani et al., 2017) and BERT.

    Parameters
    ----------
    n : int
        Number of tokens.

    Returns
    -------
    TokenGraph
        ``N * N`` edges, named ``full``.

    Examples
    --------
    >>> full(3).num_edges
    9
    """
    n = check_nodes(n, "n", low=1)
    return make_graph(ragged_edges(torch.full((n,), n), lambda i, r: r), n, "full")


def causal(n: int) -> TokenGraph:
    """Causal (autoregressive) attention: ``i`` attends to every ``j <= i``.

    The decoder pattern of the Transformer (Vaswani et al., 2017) and GPT;
    ``N (N + 1) / 2`` edges, self-loops included.

    Parameters
    ----------
    n : int
        Number of tokens.

    Returns
    -------
    TokenGraph
        ``N (N + 1) / 2`` edges, named ``causal``.

    Examples
    --------
    >>> print(causal(3).to_string())
    TokenGraph('causal', N=3, E=6, density=0.667)
    x . .
    x x .
    x x x
    """
    n = check_nodes(n, "n", low=1)
    return make_graph(ragged_edges(torch.arange(1, n + 1), lambda i, r: r), n, "causal")


def prefix_lm(n: int, prefix: int) -> TokenGraph:
    """Prefix LM (Raffel et al. 2020, T5; Dong et al. 2019, UniLM).

    ``i`` attends to ``j`` iff ``j < prefix`` or ``j <= i``: the first
    ``prefix`` tokens see each other bidirectionally, the rest is causal.
    ``prefix=0`` (or 1) is :func:`causal`, ``prefix=n`` is :func:`full`.

    Parameters
    ----------
    n : int
        Number of tokens.
    prefix : int
        Length of the bidirectional prefix, in ``[0, n]``.

    Returns
    -------
    TokenGraph
        Named ``prefix_lm(prefix=p)``.

    Raises
    ------
    ValueError
        If ``prefix`` is not in ``[0, n]``.

    Examples
    --------
    >>> print(prefix_lm(4, 2).to_string())
    TokenGraph('prefix_lm(prefix=2)', N=4, E=11, density=0.688)
    x x . .
    x x . .
    x x x .
    x x x x
    """
    n = check_nodes(n, "n", low=1)
    prefix = check_int(prefix, "prefix", low=0, high=n)
    counts = torch.arange(1, n + 1).clamp(min=prefix)  # (N,) sources 0 .. count-1
    return make_graph(ragged_edges(counts, lambda i, r: r), n, f"prefix_lm(prefix={prefix})")
