"""Local patterns: each token sees a neighbourhood of its own position.

:func:`sliding_window` (a causal or bidirectional, optionally dilated window)
and the block-local patterns :func:`block_diagonal` and :func:`documents`
(several sequences packed into one). Windows count the token itself, see
:mod:`graphattn.patterns`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from graphattn._validate import check_bool, check_int
from graphattn.graph import TokenGraph
from graphattn.patterns._common import (
    band_edges,
    block_edges,
    check_nodes,
    make_graph,
    window_offsets,
)

__all__ = ["block_diagonal", "documents", "sliding_window"]


def sliding_window(n: int, window: int, causal: bool = True, dilation: int = 1) -> TokenGraph:
    """Local attention over a (dilated) window.

    Causal: ``i`` attends to ``j = i - k * dilation`` for ``k = 0 .. window-1``
    with ``j >= 0``; for ``dilation=1`` that is ``i - window < j <= i``, the
    ``window`` keys ending at ``i`` itself. Bidirectional (``causal=False``):
    ``j = i + k * dilation`` for ``-window < k < window`` with ``0 <= j < n``;
    for ``dilation=1``, ``|i - j| < window``. ``window=1`` is self-attention
    only. Local attention: Parmar et al. 2018 (Image Transformer); dilated
    windows: Beltagy et al. 2020 (Longformer).

    Parameters
    ----------
    n : int
        Number of tokens.
    window : int
        Keys per side, the token itself included, in ``[1, n]``.
    causal : bool
        Only look back (default) or both ways.
    dilation : int
        Step between the keys of the window, ``>= 1``.

    Returns
    -------
    TokenGraph
        Named ``sliding_window(w=...)`` plus the non-default options.

    Raises
    ------
    ValueError
        If ``window`` is not in ``[1, n]`` or ``dilation < 1``.

    Examples
    --------
    >>> print(sliding_window(4, 2).to_string())
    TokenGraph('sliding_window(w=2)', N=4, E=7, density=0.438)
    x . . .
    x x . .
    . x x .
    . . x x
    >>> print(sliding_window(5, 2, causal=False, dilation=2).to_string())
    TokenGraph('sliding_window(w=2, causal=False, dilation=2)', N=5, E=11, density=0.44)
    x . x . .
    . x . x .
    x . x . x
    . x . x .
    . . x . x
    """
    n = check_nodes(n, "n", low=1)
    window = check_int(window, "window", low=1, high=n)
    dilation = check_int(dilation, "dilation", low=1)
    causal = check_bool(causal, "causal")
    offsets = window_offsets(window, causal, dilation)
    name = f"sliding_window(w={window}"
    name += "" if causal else ", causal=False"
    name += "" if dilation == 1 else f", dilation={dilation}"
    return make_graph(band_edges(torch.arange(n), offsets, n), n, name + ")")


def _sizes(n: int, sizes: int | Sequence[int], name: str) -> torch.Tensor:
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
        size = check_int(sizes, name, low=1, high=n)
        nb = -(-n // size)
        out = torch.full((nb,), size)
        out[-1] = n - size * (nb - 1)
        return out
    listing = isinstance(sizes, Sequence) or hasattr(sizes, "__array__")  # tensors, numpy arrays
    if isinstance(sizes, (str, bytes, bool)) or not listing:
        raise TypeError(f"{name} must be an int or a non-empty sequence of ints, got {sizes!r}")
    out = torch.as_tensor(list(sizes))
    if out.dtype == torch.bool or out.is_floating_point() or out.dim() != 1 or not out.numel():
        raise TypeError(f"{name} must be an int or a non-empty sequence of ints")
    out = out.long()
    if int(out.min()) < 1:
        raise ValueError(f"{name} must all be >= 1, got {out.tolist()[:8]}")
    if int(out.sum()) != n:
        raise ValueError(f"{name} must sum to n={n}, got {int(out.sum())}")
    return out


def block_diagonal(n: int, sizes: int | Sequence[int], causal: bool = False) -> TokenGraph:
    """Independent blocks: ``i`` attends to every ``j`` of its own block (``j <= i`` if causal).

    ``sizes`` is a block size (consecutive blocks of that many tokens, the last
    one shorter if needed) or the list of block sizes, summing to ``n``.
    Packing several sequences into one, as in Krell et al. 2021 (packing
    without cross-contamination).

    Parameters
    ----------
    n : int
        Number of tokens.
    sizes : int or sequence of int
        Block size, or the sizes of the blocks (summing to ``n``).
    causal : bool
        Keep only ``j <= i`` inside each block.

    Returns
    -------
    TokenGraph
        Named ``block_diagonal(sizes=...)``.

    Raises
    ------
    ValueError
        If a size is < 1 or the sizes do not sum to ``n``.

    Examples
    --------
    >>> print(block_diagonal(5, [2, 3]).to_string())
    TokenGraph('block_diagonal(sizes=[2, 3])', N=5, E=13, density=0.52)
    x x . . .
    x x . . .
    . . x x x
    . . x x x
    . . x x x
    """
    n = check_nodes(n, "n", low=1)
    sz = _sizes(n, sizes, "sizes")
    causal = check_bool(causal, "causal")
    label = sizes if isinstance(sizes, int) else sz.tolist()
    name = f"block_diagonal(sizes={label}" + (", causal=True" if causal else "") + ")"
    return make_graph(block_edges(sz, causal), n, name)


def documents(lengths: Sequence[int], causal: bool = True) -> TokenGraph:
    """Several documents packed in one sequence: causal attention inside each document.

    ``i`` attends to ``j`` iff both are in the same document and ``j <= i``
    (every ``j`` of the document if ``causal=False``). ``N = sum(lengths)``.
    Packing as in Krell et al. 2021. By name: ``get("documents", n, lengths=...)``
    with ``sum(lengths) == n``.

    Parameters
    ----------
    lengths : sequence of int
        Length of every document, each ``>= 1``.
    causal : bool
        Causal inside each document (default).

    Returns
    -------
    TokenGraph
        ``N = sum(lengths)`` tokens, named ``documents(lengths=...)``.

    Examples
    --------
    >>> g = documents([2, 2])
    >>> g.edge_index.tolist()
    [[0, 0, 1, 2, 2, 3], [0, 1, 1, 2, 3, 3]]
    """
    if isinstance(lengths, (int, str)) or not isinstance(lengths, Sequence):
        raise TypeError(f"lengths must be a sequence of ints, got {type(lengths).__name__}")
    causal = check_bool(causal, "causal")
    sz = _sizes(sum(int(x) for x in lengths), lengths, "lengths")
    name = f"documents(lengths={sz.tolist()}" + ("" if causal else ", causal=False") + ")"
    return make_graph(block_edges(sz, causal), int(sz.sum()), name)
