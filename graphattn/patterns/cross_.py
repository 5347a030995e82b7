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

__all__ = ["cross", "cross_window"]


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
    n_dst = check_nodes(n_dst, "n_dst", low=1)
    n_src = check_nodes(n_src, "n_src", low=1)
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
    n_dst = check_nodes(n_dst, "n_dst", low=1)
    n_src = check_nodes(n_src, "n_src", low=1)
    window = check_int(window, "window", low=1, high=n_src)
    causal = check_bool(causal, "causal")
    centers = torch.arange(n_dst) * n_src // n_dst  # (N,) non-decreasing
    ei = band_edges(centers, window_offsets(window, causal, 1), n_src)
    name = f"cross_window(window={window}" + (", causal=True" if causal else "") + ")"
    return make_graph(ei, n_dst, name, n_src)
