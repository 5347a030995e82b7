"""Factorized sparse patterns of the Sparse Transformer (Child et al. 2019).

:func:`strided` and :func:`fixed`, each with its two factorized heads merged
into one graph; every ``j <= i`` reaches ``i`` in two layers.
"""

from __future__ import annotations

import torch

from graphattn._validate import check_bool, check_int
from graphattn.graph import TokenGraph
from graphattn.patterns._common import (
    block_edges,
    check_nodes,
    column_edges,
    make_graph,
    ragged_edges,
    union_graph,
)

__all__ = ["fixed", "strided"]


def strided(n: int, stride: int, causal: bool = True) -> TokenGraph:
    """Sparse Transformer strided pattern (Child et al. 2019), both heads merged.

    ``i`` attends to the local window ``i - stride < j <= i`` and to every
    ``j <= i`` with ``(i - j) % stride == 0``. Child et al. write the local
    head as ``i - stride <= j <= i``; ``j = i - stride`` is in the strided head
    anyway, so the union is the same. ``causal=False`` drops ``j <= i``
    (local ``|i - j| < stride``, strided every ``j`` with ``(i - j) % stride == 0``).
    Every ``j <= i`` reaches ``i`` in two layers.

    Parameters
    ----------
    n : int
        Number of tokens.
    stride : int
        The period ``l`` of the paper, in ``[1, n]``.
    causal : bool
        Keep only ``j <= i`` (default).

    Returns
    -------
    TokenGraph
        Named ``strided(stride=l)``.

    Raises
    ------
    ValueError
        If ``stride`` is not in ``[1, n]``.

    Examples
    --------
    >>> print(strided(5, 2).to_string())
    TokenGraph('strided(stride=2)', N=5, E=13, density=0.52)
    x . . . .
    x x . . .
    x x x . .
    . x x x .
    x . x x x
    """
    n = check_nodes(n, "n", low=1)
    stride = check_int(stride, "stride", low=1, high=n)
    causal = check_bool(causal, "causal")
    i = torch.arange(n)
    lo = (i - stride + 1).clamp(min=0)  # (N,) window start
    left = i // stride  # (N,) strided keys j = i - k * stride before the window (k >= 1)
    hi = (i + stride - 1).clamp(max=n - 1) if not causal else i  # (N,) window end
    right = (n - 1 - i) // stride if not causal else torch.zeros_like(i)  # after the window
    counts = left + (hi - lo + 1) + right  # (N,)

    def src_of(d: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        a, w = left[d], hi[d] - lo[d] + 1  # (E,) sizes of the first two runs
        far_left = d - (a - r) * stride
        near = lo[d] + r - a
        far_right = d + (r - a - w + 1) * stride
        return torch.where(r < a, far_left, torch.where(r < a + w, near, far_right))

    name = f"strided(stride={stride}" + ("" if causal else ", causal=False") + ")"
    return make_graph(ragged_edges(counts, src_of), n, name)


def fixed(n: int, stride: int, c: int = 1, causal: bool = True) -> TokenGraph:
    """Sparse Transformer fixed pattern (Child et al. 2019), both heads merged.

    Tokens form blocks of ``stride``; the last ``c`` positions of every block
    are its summary. ``i`` attends to every ``j`` of its own block
    (``j // stride == i // stride``) and to every summary position
    (``j % stride >= stride - c``), both restricted to ``j <= i`` when causal.
    (The paper writes the summary as ``{l - c, ..., l}`` mod ``l``; we read it as
    ``l - c .. l - 1``.) Causal, every ``j <= i`` reaches ``i`` in two layers.

    Parameters
    ----------
    n : int
        Number of tokens.
    stride : int
        Block length ``l`` of the paper, in ``[1, n]``.
    c : int
        Summary positions per block, in ``[1, stride]``.
    causal : bool
        Keep only ``j <= i`` (default).

    Returns
    -------
    TokenGraph
        Named ``fixed(stride=l, c=c)``.

    Raises
    ------
    ValueError
        If ``stride`` is not in ``[1, n]`` or ``c`` not in ``[1, stride]``.

    Examples
    --------
    >>> print(fixed(6, 3).to_string())
    TokenGraph('fixed(stride=3, c=1)', N=6, E=15, density=0.417)
    x . . . . .
    x x . . . .
    x x x . . .
    . . x x . .
    . . x x x .
    . . x x x x
    """
    n = check_nodes(n, "n", low=1)
    stride = check_int(stride, "stride", low=1, high=n)
    c = check_int(c, "c", low=1, high=stride)
    causal = check_bool(causal, "causal")
    nb = -(-n // stride)
    sizes = torch.full((nb,), stride)
    sizes[-1] = n - stride * (nb - 1)
    name = f"fixed(stride={stride}, c={c}" + ("" if causal else ", causal=False") + ")"
    if causal:  # summaries of the earlier blocks, then the own block up to i
        i = torch.arange(n)
        a = i // stride * c  # (N,) summary keys before the own block
        start = i // stride * stride  # (N,) own block start

        def src_of(d: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
            summary = r // c * stride + stride - c + r % c
            return torch.where(r < a[d], summary, start[d] + r - a[d])

        return make_graph(ragged_edges(a + i - start + 1, src_of), n, name)
    summary = torch.arange(n)
    summary = summary[summary % stride >= stride - c]  # (S,) sorted
    return union_graph(n, [block_edges(sizes, causal), column_edges(n, summary, causal)], name)
