"""Cross (encoder -> decoder) patterns: bipartite graphs of ``N`` targets and ``M`` sources.

:func:`cross` (every target sees every source) and :func:`cross_window` (a
window around the diagonal alignment). The module is ``cross_`` because the
package exports the builder under the name ``cross``.
"""

from __future__ import annotations

import torch

from graphattn._validate import check_bool, check_int
from graphattn.graph import TokenGraph
from graphattn.patterns._common import (
    band_edges,
    check_nodes,
    make_graph,
    ragged_edges,
    window_offsets,
)

__all__ = ["cross", "cross_window", "diagonal_window", "no_cross", "random_cross"]


def _sizes(n_dst: int, n_src: int) -> tuple[int, int]:
    """``(n_dst, n_src)`` checked: each an int >= 1 whose index arrays fit in memory."""
    return check_nodes(n_dst, "n_dst", low=1), check_nodes(n_src, "n_src", low=1)


def cross(n_dst: int, n_src: int) -> TokenGraph:
    """Full cross attention (encoder -> decoder): every target ``i`` attends to every source ``j``.

    A cross graph with ``N = n_dst`` targets (decoder tokens) and
    ``M = n_src`` sources (encoder tokens), as in the Transformer's
    encoder-decoder attention (Vaswani et al., 2017).

    Parameters
    ----------
    n_dst : int
        Number of target (decoder) tokens ``N``.
    n_src : int
        Number of source (encoder) tokens ``M``.

    Returns
    -------
    TokenGraph
        A cross graph named ``cross``.

    Examples
    --------
    >>> cross(2, 3)
    TokenGraph('cross', N=2, M=3, cross, E=6, density=1)
    """
    n_dst, n_src = _sizes(n_dst, n_src)
    ei = ragged_edges(torch.full((n_dst,), n_src), lambda i, r: r)  # (2, N * M)
    return make_graph(ei, n_dst, "cross", n_src)


def cross_window(n_dst: int, n_src: int, window: int, causal: bool = False) -> TokenGraph:
    """Monotonic (windowed) cross attention around the diagonal alignment.

    Target ``i`` is aligned with source ``c_i = floor(i * n_src / n_dst)``. It
    attends to ``|j - c_i| < window``, or with ``causal=True`` (streaming,
    e.g. simultaneous translation) to ``c_i - window < j <= c_i``, always with
    ``0 <= j < n_src``. Local monotonic alignment in the spirit of Raffel et
    al. 2017 (monotonic attention) and Chiu & Raffel 2018 (MoChA).

    Parameters
    ----------
    n_dst : int
        Number of target (decoder) tokens ``N``.
    n_src : int
        Number of source (encoder) tokens ``M``.
    window : int
        Window around the aligned source, in ``[1, n_src]``.
    causal : bool
        Only sources up to the aligned one.

    Returns
    -------
    TokenGraph
        A cross graph named ``cross_window(window=...)``.

    Raises
    ------
    ValueError
        If ``window`` is not in ``[1, n_src]``.

    Examples
    --------
    >>> print(cross_window(3, 6, 2).to_string())
    TokenGraph('cross_window(window=2)', N=3, M=6, cross, E=8, density=0.444)
    x x . . . .
    . x x x . .
    . . . x x x
    """
    n_dst, n_src = _sizes(n_dst, n_src)
    window = check_int(window, "window", low=1, high=n_src)
    causal = check_bool(causal, "causal")
    centers = torch.arange(n_dst) * n_src // n_dst  # (N,) non-decreasing
    ei = band_edges(centers, window_offsets(window, causal, 1), n_src)
    name = f"cross_window(window={window}" + (", causal=True" if causal else "") + ")"
    return make_graph(ei, n_dst, name, n_src)


def diagonal_window(n_dst: int, n_src: int, window: int) -> TokenGraph:
    """Cross graph: target ``i`` reads sources ``|j - c_i| < window``, ``c_i = min(i, n_src - 1)``.

    The monotonic (diagonal) alignment of equal-length sentences; row ``i``
    depends on ``i`` and ``n_src`` only, so a model generating more tokens
    than it was trained on sees the same rows (unlike :func:`cross_window`,
    whose centers stretch with ``n_dst``). Used by the seq2seq studies
    (:class:`~graphattn.experiments.seq2seq.Seq2SeqVariant`, ``cross="window"``).

    Parameters
    ----------
    n_dst, n_src : int
        Numbers of targets ``N`` (decoder tokens) and sources ``M`` (encoder tokens).
    window : int
        Window around the aligned source, at least 1 (wider than ``n_src``
        reads every source).

    Returns
    -------
    TokenGraph
        A cross graph named ``diagonal_window(window=...)``.

    Examples
    --------
    >>> print(diagonal_window(3, 4, 2).to_string())
    TokenGraph('diagonal_window(window=2)', N=3, M=4, cross, E=8, density=0.667)
    x x . .
    x x x .
    . x x x
    """
    n_dst, n_src = _sizes(n_dst, n_src)
    window = check_int(window, "window", low=1)
    centers = torch.arange(n_dst).clamp(max=n_src - 1)  # (N,)
    j = torch.arange(n_src)  # (M,)
    mask = (j[None, :] - centers[:, None]).abs() < window  # (N, M)
    dst, src = mask.nonzero(as_tuple=True)
    return TokenGraph(torch.stack([src, dst]), n_dst, num_src_nodes=n_src, cross=True,
                      name=f"diagonal_window(window={window})")


def random_cross(n_dst: int, n_src: int, k: int, seed: int = 0) -> TokenGraph:
    """Cross graph: target ``i`` reads ``min(k, n_src)`` random source tokens.

    Row ``i``'s sources depend on ``(i, n_src, seed)`` only (not on
    ``n_dst``), so generation sees the rows training saw. Each row has its own
    generator, so this builder loops over the targets. The graph is named
    ``random_cross(k=...)``.

    Parameters
    ----------
    n_dst, n_src : int
        Numbers of targets ``N`` (decoder tokens) and sources ``M`` (encoder tokens).
    k : int
        Sources per target, at least 1.
    seed : int
        Seed of the draws, at least 0.

    Examples
    --------
    >>> g = random_cross(3, 5, 2)
    >>> g.in_degree().tolist(), g == random_cross(3, 5, 2)
    ([2, 2, 2], True)
    """
    n_dst, n_src = _sizes(n_dst, n_src)
    k = check_int(k, "k", low=1)
    seed = check_int(seed, "seed", low=0)
    rows = []
    for i in range(n_dst):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + i * 1_009 + n_src)
        src = torch.randperm(n_src, generator=gen)[: min(k, n_src)]  # (k,)
        rows.append(torch.stack([src, torch.full_like(src, i)]))
    return TokenGraph(torch.cat(rows, dim=1), n_dst, num_src_nodes=n_src, cross=True,
                      name=f"random_cross(k={k})")


def no_cross(n_dst: int, n_src: int) -> TokenGraph:
    """The cross graph without edges: the decoder never reads the source.

    Examples
    --------
    >>> no_cross(2, 3)
    TokenGraph('no_cross', N=2, M=3, cross, E=0, density=0)
    """
    n_dst, n_src = _sizes(n_dst, n_src)
    return TokenGraph(torch.empty(2, 0, dtype=torch.long), n_dst, num_src_nodes=n_src, cross=True,
                      name="no_cross")
