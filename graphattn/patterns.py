"""Named attention patterns: builders that return :class:`~graphattn.graph.TokenGraph` s.

Every builder states exactly which sources ``j`` each target ``i`` attends to
(edge ``j -> i``), the off-by-one convention of its window and the paper it
comes from. Builders are vectorized: they write the canonical ``(2, E)`` edge
list directly, with no Python loop over tokens.

Window convention (all builders): a causal window of size ``w`` lets ``i``
attend to the ``w`` keys ``i - w < j <= i`` (itself included); a bidirectional
window of size ``w`` lets ``i`` attend to ``|i - j| < w`` (``2w - 1`` keys).

:func:`get` builds a pattern by name (``TokenGraph.from_tokens`` uses it);
:func:`available` lists the names.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Sequence
from functools import reduce
from typing import Any

import torch

from graphattn.graph import OwnedEdges, TokenGraph, register_pattern_resolver

__all__ = [
    "attention_sink",
    "available",
    "bigbird",
    "block_diagonal",
    "causal",
    "cross",
    "cross_window",
    "documents",
    "fixed",
    "from_predicate",
    "full",
    "get",
    "global_tokens",
    "intersection",
    "longformer",
    "prefix_lm",
    "random",
    "sliding_window",
    "star",
    "strided",
    "union",
]

PREDICATE_TILE = 1 << 22  # mask elements evaluated at once by from_predicate
EDGE_CHUNK = 1 << 22  # edges whose sources are computed at once by the builders


# --------------------------------------------------------------- validation
def _int(value: Any, name: str, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``, else TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _nodes(value: int | Sequence[int], n: int, name: str) -> torch.Tensor:
    """Sorted node indices: the first ``value`` nodes for an int, else the listed ones."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return torch.arange(_int(value, name, 0, n))
    idx = torch.as_tensor(list(value))
    if idx.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    if idx.dtype == torch.bool or idx.is_floating_point() or idx.dim() != 1:
        raise TypeError(f"{name} must be an int or a sequence of node indices")
    idx = idx.long()
    if int(idx.min()) < 0 or int(idx.max()) >= n:
        raise ValueError(f"{name} holds an index outside [0, {n}): {idx.tolist()[:8]}")
    return torch.unique(idx)  # sorted, without repeats


def _graph(ei: torch.Tensor, n: int, name: str, m: int | None = None) -> TokenGraph:
    """Wrap a freshly built ``(2, E)`` edge list (canonical or not) as a TokenGraph."""
    cross = m is not None
    return TokenGraph(OwnedEdges(ei), n, num_src_nodes=m, name=name, cross=cross)


# ---------------------------------------------------------- edge builders
def _ragged(counts: torch.Tensor, src_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
    """Edges ``src_of(i, r) -> i`` for every target ``i`` and rank ``r < counts[i]``.

    ``src_of`` must increase with ``r`` so that the result is canonical. The
    ``(2, E)`` output is allocated once and filled in place, ``EDGE_CHUNK``
    edges at a time, so temporaries stay small next to the edge list.
    """
    e = int(counts.sum())
    out = torch.empty(2, e, dtype=torch.long)
    out[1] = torch.repeat_interleave(torch.arange(counts.numel()), counts, output_size=e)
    start = torch.cumsum(counts, 0) - counts  # (N,) first edge of every target
    for lo in range(0, e, EDGE_CHUNK):
        dst = out[1, lo : lo + EDGE_CHUNK]  # (chunk,)
        rank = torch.arange(lo, lo + dst.numel()) - start[dst]  # (chunk,) position in its row
        out[0, lo : lo + EDGE_CHUNK] = src_of(dst, rank)
    return out


def _band(centers: torch.Tensor, offsets: torch.Tensor, m: int) -> torch.Tensor:
    """Edges ``centers[i] + offsets[k] -> i`` that land in ``[0, m)``; canonical.

    ``centers (N,)`` must not decrease and ``offsets (K,)`` must increase. Rows
    whose whole band is in range (a contiguous run, as centers are sorted) are
    written straight into the output, so memory stays near the edge list.
    """
    n, k = centers.numel(), offsets.numel()
    a = int(torch.searchsorted(centers, -int(offsets[0])))  # first row with band >= 0
    b = int(torch.searchsorted(centers, m - int(offsets[-1])))  # first row reaching past m

    def partial(r0: int, r1: int) -> torch.Tensor:
        rows = torch.arange(r0, r1)  # (R,)
        src = centers[r0:r1, None] + offsets[None, :]  # (R, K)
        keep = (src >= 0) & (src < m)  # (R, K)
        return torch.stack([src[keep], rows[:, None].expand(-1, k)[keep]])  # (2, E_part)

    if a >= b:  # no row has its whole band in range
        return partial(0, n)
    head, tail = partial(0, a), partial(b, n)
    e_head, e_mid = head.shape[1], (b - a) * k
    out = torch.empty(2, e_head + e_mid + tail.shape[1], dtype=torch.long)
    out[:, :e_head] = head
    mid = out[:, e_head : e_head + e_mid].view(2, b - a, k)  # (2, R, K)
    torch.add(centers[a:b, None], offsets[None, :], out=mid[0])  # sources
    mid[1].copy_(torch.arange(a, b)[:, None].expand(-1, k))  # targets
    out[:, e_head + e_mid :] = tail
    return out


def _window_offsets(window: int, causal: bool, dilation: int) -> torch.Tensor:
    """Increasing offsets ``j - i`` of a window (see the module's convention)."""
    if causal:
        return torch.arange(-(window - 1), 1) * dilation  # (w,)
    return torch.arange(-(window - 1), window) * dilation  # (2w - 1,)


def _columns(n: int, cols: torch.Tensor, causal: bool) -> torch.Tensor:
    """Every target ``i`` attends to the sorted sources ``cols`` (``j <= i`` if causal)."""
    if causal:
        counts = torch.searchsorted(cols, torch.arange(n), right=True)  # (N,)
    else:
        counts = torch.full((n,), cols.numel(), dtype=torch.long)
    return _ragged(counts, lambda i, r: cols[r])


def _rows(rows: torch.Tensor, m: int) -> torch.Tensor:
    """Every target in ``rows`` attends to all ``m`` sources."""
    src = torch.arange(m).repeat(rows.numel())  # (R * M,)
    return torch.stack([src, rows.repeat_interleave(m)])  # (2, R * M)


def _blocks(sizes: torch.Tensor, causal: bool) -> torch.Tensor:
    """Block-diagonal edges for consecutive blocks of ``sizes``, ``j <= i`` if causal."""
    start = torch.cumsum(sizes, 0) - sizes  # (nb,)
    n = int(sizes.sum())
    block_start = torch.repeat_interleave(start, sizes, output_size=n)  # (N,)
    block_size = torch.repeat_interleave(sizes, sizes, output_size=n)  # (N,)
    counts = torch.arange(n) - block_start + 1 if causal else block_size  # (N,)
    return _ragged(counts, lambda i, r: block_start[i] + r)


def _union_edges(n: int, parts: Sequence[torch.Tensor], name: str) -> TokenGraph:
    """The graph of the union of several edge lists (TokenGraph sorts and dedups them)."""
    return _graph(torch.cat(list(parts), 1), n, name)


# ---------------------------------------------------------------- patterns
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
    n = _int(n, "n", 1)
    return _graph(_ragged(torch.full((n,), n), lambda i, r: r), n, "full")


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
    n = _int(n, "n", 1)
    return _graph(_ragged(torch.arange(1, n + 1), lambda i, r: r), n, "causal")


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
    n = _int(n, "n", 1)
    window = _int(window, "window", 1, n)
    dilation = _int(dilation, "dilation", 1)
    offsets = _window_offsets(window, causal, dilation)
    name = f"sliding_window(w={window}"
    name += "" if causal else ", causal=False"
    name += "" if dilation == 1 else f", dilation={dilation}"
    return _graph(_band(torch.arange(n), offsets, n), n, name + ")")


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
    n = _int(n, "n", 1)
    stride = _int(stride, "stride", 1, n)
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
    return _graph(_ragged(counts, src_of), n, name)


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
    n = _int(n, "n", 1)
    stride = _int(stride, "stride", 1, n)
    c = _int(c, "c", 1, stride)
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

        return _graph(_ragged(a + i - start + 1, src_of), n, name)
    summary = torch.arange(n)
    summary = summary[summary % stride >= stride - c]  # (S,) sorted
    return _union_edges(n, [_blocks(sizes, causal), _columns(n, summary, causal)], name)


def global_tokens(n: int, globals: int | Sequence[int], symmetric: bool = True) -> TokenGraph:
    """Global tokens (Longformer, Beltagy et al. 2020): every ``i`` attends to the globals.

    ``globals`` is a count (the first tokens) or a list of indices. Every
    ``i`` attends to every global ``j``; with ``symmetric=True`` (default) a
    global ``i`` also attends to every ``j``. Nothing else; combine with a
    window by ``|`` (see :func:`longformer`).

    Parameters
    ----------
    n : int
        Number of tokens.
    globals : int or sequence of int
        How many leading tokens are global, or their indices.
    symmetric : bool
        Globals also attend to every token (default).

    Returns
    -------
    TokenGraph
        Named ``global_tokens(globals=...)``.

    Raises
    ------
    ValueError
        If a global index is outside ``[0, n)`` or the count exceeds ``n``.

    Examples
    --------
    >>> print(global_tokens(4, [1]).to_string())
    TokenGraph('global_tokens(globals=[1])', N=4, E=7, density=0.438)
    . x . .
    x x x x
    . x . .
    . x . .
    """
    n = _int(n, "n", 1)
    g = _nodes(globals, n, "globals")
    parts = [_columns(n, g, causal=False)]
    if symmetric:
        parts.append(_rows(g, n))
    label = globals if isinstance(globals, int) else g.tolist()
    name = f"global_tokens(globals={label}" + ("" if symmetric else ", symmetric=False") + ")"
    return _union_edges(n, parts, name)


def _sample_k(allowed: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """``min(k, allowed[i])`` distinct sources from ``0 .. allowed[i]-1`` for each row.

    Robert Floyd's algorithm, vectorized over rows: a uniform ``k``-subset in
    ``k`` steps. Returns ``(2, E)`` (canonical after TokenGraph sorts it).
    """
    n = allowed.numel()
    chosen = torch.full((n, k), -1, dtype=torch.long)  # (N, k), -1 = none
    for s in range(k):
        t = allowed - k + s  # (N,) the candidate upper end of step s
        r = (torch.rand(n, generator=gen, dtype=torch.float64) * (t + 1).clamp(min=1)).long()
        r = torch.minimum(r, t.clamp(min=0))  # uniform in [0, t]; guards float rounding
        seen = (chosen[:, :s] == r[:, None]).any(1)  # (N,)
        chosen[:, s] = torch.where(t >= 0, torch.where(seen, t, r), -1)
    small = allowed <= k  # rows that get all their sources
    ranks = torch.arange(k)[None, :].expand(n, -1)  # (N, k)
    chosen = torch.where(small[:, None], torch.where(ranks < allowed[:, None], ranks, -1), chosen)
    rows = torch.arange(n)[:, None].expand(-1, k)  # (N, k)
    keep = chosen >= 0
    return torch.stack([chosen[keep], rows[keep]])


def random(
    n: int,
    k: int | None = None,
    *,
    p: float | None = None,
    seed: int = 0,
    causal: bool = False,
) -> TokenGraph:
    """Seeded random attention: ``k`` random sources per target, or each edge with chance ``p``.

    With ``k``, every ``i`` attends to ``k`` distinct sources drawn uniformly
    from ``0 .. n-1`` (``0 .. i`` if causal; all of them where fewer than
    ``k`` are allowed). With ``p``, every allowed edge is present
    independently with probability ``p``. The same ``seed`` gives the same
    graph. Random attention as in BigBird (Zaheer et al. 2020).

    Parameters
    ----------
    n : int
        Number of tokens.
    k : int, optional
        Sources per target, in ``[0, n]``.
    p : float, optional
        Probability of every allowed edge, in ``[0, 1]``.
    seed : int
        Seed of the private ``torch.Generator``.
    causal : bool
        Draw only ``j <= i``.

    Returns
    -------
    TokenGraph
        Named ``random(k=..., seed=...)`` or ``random(p=..., seed=...)``.

    Raises
    ------
    ValueError
        If not exactly one of ``k`` and ``p`` is given, ``k`` is not in
        ``[0, n]`` or ``p`` not in ``[0, 1]``.

    Examples
    --------
    >>> g = random(6, 2, seed=1)
    >>> g.in_degree().tolist(), g == random(6, 2, seed=1)
    ([2, 2, 2, 2, 2, 2], True)
    """
    n = _int(n, "n", 1)
    seed = _int(seed, "seed", 0)
    if (k is None) == (p is None):
        raise ValueError(f"give exactly one of k and p, got k={k}, p={p}")
    gen = torch.Generator().manual_seed(seed)
    allowed = torch.arange(1, n + 1) if causal else torch.full((n,), n)  # (N,)
    tail = f", seed={seed}" + (", causal=True" if causal else "") + ")"
    if k is not None:
        k = _int(k, "k", 0, n)
        return _graph(_sample_k(allowed, k, gen), n, f"random(k={k}" + tail)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    rows = max(1, PREDICATE_TILE // n)
    parts = []
    for r0 in range(0, n, rows):
        i = torch.arange(r0, min(n, r0 + rows))[:, None]  # (R, 1)
        keep = torch.rand(i.shape[0], n, generator=gen, dtype=torch.float64) < p  # (R, N)
        if causal:
            keep &= torch.arange(n)[None, :] <= i
        dst, src = keep.nonzero(as_tuple=True)
        parts.append(torch.stack([src, dst + r0]))
    return _union_edges(n, parts, f"random(p={p}" + tail)


def _expand_blocks(blocks: TokenGraph, block: int, n: int) -> torch.Tensor:
    """Token edges of block edges ``bj -> bi``: every token pair of the two blocks, inside n.

    Row ``i`` of block ``bi`` lists the blocks of ``bi`` in order, ``block``
    columns each, so the result is canonical; columns past ``n`` are dropped.
    """
    i = torch.arange(n)
    row = i // block  # (N,) block row of every token
    ptr, cols = blocks.indptr, blocks.src  # CSR of the block graph

    def src_of(d: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return cols[ptr[row[d]] + r // block] * block + r % block

    ei = _ragged(blocks.in_degree()[row] * block, src_of)  # (2, E_padded)
    return ei if n % block == 0 else ei[:, ei[0] < n]  # a short last block: drop padding


def bigbird(
    n: int,
    window: int = 3,
    num_global: int = 2,
    num_random: int = 3,
    seed: int = 0,
    block: int | None = None,
) -> TokenGraph:
    """BigBird (Zaheer et al. 2020): window + global + random attention.

    Token level (``block=None``): the union of ``sliding_window(n, window,
    causal=False)`` (``|i - j| < window``), ``global_tokens(n, num_global)``
    (the first ``num_global`` tokens, symmetric) and ``random(n, num_random,
    seed=seed)``. Blocked (``block=b``, the paper's ITC layout): the same
    pattern on ``ceil(n / b)`` blocks, every block edge expanded to all token
    pairs of the two blocks (the last block may be shorter).

    Parameters
    ----------
    n : int
        Number of tokens.
    window : int
        Bidirectional window (``|i - j| < window``), in tokens or blocks.
    num_global : int
        Leading global tokens (or blocks).
    num_random : int
        Random sources (or blocks) per target (or block row).
    seed : int
        Seed of the random part.
    block : int, optional
        Block size of the blocked layout.

    Returns
    -------
    TokenGraph
        Named with all its parameters.

    Raises
    ------
    ValueError
        If a count is out of range for the number of tokens (or blocks).

    Examples
    --------
    >>> g = bigbird(16, window=2, num_global=1, num_random=1, block=4)
    >>> g.name, g.num_edges
    ('bigbird(window=2, num_global=1, num_random=1, seed=0, block=4)', 224)
    """
    n = _int(n, "n", 1)
    units = n
    if block is not None:
        block = _int(block, "block", 1, n)
        units = -(-n // block)
    window = _int(window, "window", 1, units)
    num_global = _int(num_global, "num_global", 0, units)
    num_random = _int(num_random, "num_random", 0, units)
    parts = [
        sliding_window(units, window, causal=False).edge_index,
        global_tokens(units, num_global).edge_index,
        random(units, num_random, seed=seed).edge_index,
    ]
    ei = torch.cat(parts, 1)  # (2, E_units)
    if block is not None:
        ei = _expand_blocks(TokenGraph(ei, units), block, n)
    name = f"bigbird(window={window}, num_global={num_global}, num_random={num_random}, seed={seed}"
    name += ")" if block is None else f", block={block})"
    return _graph(ei, n, name)


def longformer(
    n: int, window: int, globals: int | Sequence[int] = 1, dilation: int = 1
) -> TokenGraph:
    """Longformer (Beltagy et al. 2020): a bidirectional (dilated) window plus global tokens.

    The union of ``sliding_window(n, window, causal=False, dilation)`` (for
    ``dilation=1``: ``|i - j| < window``) and ``global_tokens(n, globals)``
    (symmetric). The paper's window ``w`` counts ``w / 2`` keys per side: it is
    ``window = w // 2 + 1`` here.

    Parameters
    ----------
    n : int
        Number of tokens.
    window : int
        Bidirectional window, ``|i - j| < window``.
    globals : int or sequence of int
        Leading global tokens, or their indices.
    dilation : int
        Step between the window's keys.

    Returns
    -------
    TokenGraph
        Named ``longformer(window=..., globals=...)``.

    Examples
    --------
    >>> print(longformer(5, 2, globals=[0]).to_string())
    TokenGraph('longformer(window=2, globals=[0])', N=5, E=19, density=0.76)
    x x x x x
    x x x . .
    x x x x .
    x . x x x
    x . . x x
    """
    n = _int(n, "n", 1)
    win = sliding_window(n, window, causal=False, dilation=dilation)
    glob = global_tokens(n, globals)
    label = globals if isinstance(globals, int) else _nodes(globals, n, "globals").tolist()
    name = f"longformer(window={window}, globals={label}"
    name += ")" if dilation == 1 else f", dilation={dilation})"
    return _union_edges(n, [win.edge_index, glob.edge_index], name)


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
    n = _int(n, "n", 1)
    prefix = _int(prefix, "prefix", 0, n)
    counts = torch.arange(1, n + 1).clamp(min=prefix)  # (N,) sources 0 .. count-1
    return _graph(_ragged(counts, lambda i, r: r), n, f"prefix_lm(prefix={prefix})")


def _sizes(n: int, sizes: int | Sequence[int], name: str) -> torch.Tensor:
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
        size = _int(sizes, name, 1, n)
        nb = -(-n // size)
        out = torch.full((nb,), size)
        out[-1] = n - size * (nb - 1)
        return out
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
    n = _int(n, "n", 1)
    sz = _sizes(n, sizes, "sizes")
    label = sizes if isinstance(sizes, int) else sz.tolist()
    name = f"block_diagonal(sizes={label}" + (", causal=True" if causal else "") + ")"
    return _graph(_blocks(sz, causal), n, name)


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
    if isinstance(lengths, int) or not isinstance(lengths, Sequence):
        raise TypeError(f"lengths must be a sequence of ints, got {type(lengths).__name__}")
    sz = _sizes(sum(int(x) for x in lengths), lengths, "lengths")
    name = f"documents(lengths={sz.tolist()}" + ("" if causal else ", causal=False") + ")"
    return _graph(_blocks(sz, causal), int(sz.sum()), name)


def _documents_n(n: int, lengths: Sequence[int], causal: bool = True) -> TokenGraph:
    g = documents(lengths, causal=causal)
    if g.num_nodes != n:
        raise ValueError(f"lengths must sum to n={n}, got {g.num_nodes}")
    return g


def attention_sink(n: int, sinks: int = 4, window: int = 64) -> TokenGraph:
    """StreamingLLM (Xiao et al. 2023): attention sinks plus a causal window.

    ``i`` attends to ``j`` iff ``j <= i`` and (``j < sinks`` or
    ``i - window < j``): the first ``sinks`` tokens and the ``window`` most
    recent ones, itself included.

    Parameters
    ----------
    n : int
        Number of tokens.
    sinks : int
        Leading sink tokens every token keeps, in ``[0, n]``.
    window : int
        Recent tokens kept, itself included, in ``[1, n]``.

    Returns
    -------
    TokenGraph
        Named ``attention_sink(sinks=..., window=...)``.

    Raises
    ------
    ValueError
        If ``sinks`` is not in ``[0, n]`` or ``window`` not in ``[1, n]``.

    Examples
    --------
    >>> print(attention_sink(5, sinks=1, window=2).to_string())
    TokenGraph('attention_sink(sinks=1, window=2)', N=5, E=12, density=0.48)
    x . . . .
    x x . . .
    x x x . .
    x . x x .
    x . . x x
    """
    n = _int(n, "n", 1)
    sinks = _int(sinks, "sinks", 0, n)
    window = _int(window, "window", 1, n)
    i = torch.arange(n)
    lo = (i - window + 1).clamp(min=0)  # (N,) window start
    a = lo.clamp(max=sinks)  # (N,) sinks before the window
    ei = _ragged(a + i - lo + 1, lambda d, r: torch.where(r < a[d], r, lo[d] + r - a[d]))
    return _graph(ei, n, f"attention_sink(sinks={sinks}, window={window})")


def star(n: int) -> TokenGraph:
    """Star-Transformer (Guo et al. 2019): token 0 is a relay, the others a ring.

    The relay ``0`` attends to every ``j`` and every token attends to the
    relay. A satellite ``i >= 1`` also attends to itself and to its ring
    neighbours ``i - 1`` and ``i + 1`` among ``1 .. n-1`` (wrapping around).

    Parameters
    ----------
    n : int
        Number of tokens, relay included, ``>= 2``.

    Returns
    -------
    TokenGraph
        Named ``star``.

    Raises
    ------
    ValueError
        If ``n < 2``.

    Examples
    --------
    >>> print(star(5).to_string())
    TokenGraph('star', N=5, E=21, density=0.84)
    x x x x x
    x x x . x
    x x x x .
    x . x x x
    x x . x x
    """
    n = _int(n, "n", 2)
    sat = torch.arange(1, n)  # (n-1,) satellites
    ring = [sat, (sat - 2) % (n - 1) + 1, sat % (n - 1) + 1]  # self, left, right
    parts = [torch.stack([s, sat]) for s in ring]
    parts += [_rows(torch.tensor([0]), n), _columns(n, torch.tensor([0]), causal=False)]
    return _union_edges(n, parts, "star")


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
    n_dst = _int(n_dst, "n_dst", 1)
    n_src = _int(n_src, "n_src", 1)
    return _graph(_ragged(torch.full((n_dst,), n_src), lambda i, r: r), n_dst, "cross", n_src)


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
    n_dst = _int(n_dst, "n_dst", 1)
    n_src = _int(n_src, "n_src", 1)
    window = _int(window, "window", 1, n_src)
    centers = torch.arange(n_dst) * n_src // n_dst  # (N,) non-decreasing
    ei = _band(centers, _window_offsets(window, causal, 1), n_src)
    name = f"cross_window(window={window}" + (", causal=True" if causal else "") + ")"
    return _graph(ei, n_dst, name, n_src)


def from_predicate(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    n_dst: int,
    n_src: int | None = None,
    *,
    name: str | None = None,
) -> TokenGraph:
    """A graph from a predicate: edge ``j -> i`` iff ``fn(i, j)`` is True.

    ``fn`` receives broadcast index tensors, ``i`` of shape ``(R, 1)`` and ``j``
    of shape ``(1, M)``, like FlexAttention's ``mask_mod``, and returns a bool
    tensor broadcastable to ``(R, M)``. It is evaluated on tiles of rows, so
    no ``N x M`` table is built at once. ``n_src`` given makes a cross graph
    with ``M = n_src`` sources; otherwise ``M = n_dst``.

    Parameters
    ----------
    fn : callable
        ``fn(i, j) -> bool tensor``, as FlexAttention's ``mask_mod``.
    n_dst : int
        Number of targets ``N``.
    n_src : int, optional
        Number of sources ``M`` of a cross graph.
    name : str, optional
        Name of the result (default ``predicate``).

    Returns
    -------
    TokenGraph
        Edges ``j -> i`` where ``fn(i, j)`` holds.

    Raises
    ------
    TypeError
        If ``fn`` is not callable or does not return a bool tensor.
    ValueError
        If ``fn``'s result does not broadcast to ``(R, M)``.

    Examples
    --------
    >>> g = from_predicate(lambda i, j: (j <= i) & (i - j < 2), 4)
    >>> g == sliding_window(4, 2)
    True
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable as fn(i, j), got {type(fn).__name__}")
    n = _int(n_dst, "n_dst", 1)
    m = n if n_src is None else _int(n_src, "n_src", 1)
    j = torch.arange(m)[None, :]  # (1, M)
    rows = max(1, PREDICATE_TILE // m)
    parts = []
    for r0 in range(0, n, rows):
        i = torch.arange(r0, min(n, r0 + rows))[:, None]  # (R, 1)
        keep = fn(i, j)
        if not isinstance(keep, torch.Tensor) or keep.dtype != torch.bool:
            got = keep.dtype if isinstance(keep, torch.Tensor) else type(keep).__name__
            raise TypeError(f"fn must return a bool tensor, got {got}")
        try:
            keep = keep.expand(i.shape[0], m)  # (R, M)
        except RuntimeError as err:
            raise ValueError(
                f"fn's result of shape {tuple(keep.shape)} does not broadcast to "
                f"{(i.shape[0], m)}"
            ) from err
        dst, src = keep.nonzero(as_tuple=True)
        parts.append(torch.stack([src, dst + r0]))
    return _graph(torch.cat(parts, 1), n, name or "predicate", None if n_src is None else m)


# ------------------------------------------------------------ composition
def union(*graphs: TokenGraph) -> TokenGraph:
    """Edges in any of ``graphs`` (same sizes), named ``a | b | ...``.

    Parameters
    ----------
    *graphs : TokenGraph
        Graphs of the same sizes.

    Returns
    -------
    TokenGraph
        Their union.

    Examples
    --------
    >>> union(sliding_window(8, 2), global_tokens(8, 1)).name
    'sliding_window(w=2) | global_tokens(globals=1)'
    """
    return _combine(graphs, TokenGraph.__or__, " | ")


def intersection(*graphs: TokenGraph) -> TokenGraph:
    """Edges in every one of ``graphs`` (same sizes), named ``a & b & ...``.

    Parameters
    ----------
    *graphs : TokenGraph
        Graphs of the same sizes.

    Returns
    -------
    TokenGraph
        Their intersection.

    Examples
    --------
    >>> intersection(full(4), causal(4)) == causal(4)
    True
    """
    return _combine(graphs, TokenGraph.__and__, " & ")


def _combine(graphs: Sequence[TokenGraph], op: Callable, sep: str) -> TokenGraph:
    if not graphs:
        raise ValueError("graphs is empty; give at least one TokenGraph")
    if not all(isinstance(g, TokenGraph) for g in graphs):
        raise TypeError("every argument must be a TokenGraph")
    out = reduce(op, graphs)
    names = [g.name or "?" for g in graphs]
    other = " & " if sep == " | " else " | "
    out.name = sep.join(f"({x})" if other in x else x for x in names)
    return out


# ----------------------------------------------------------------- registry
_REGISTRY: dict[str, Callable[..., TokenGraph]] = {
    "attention_sink": attention_sink,
    "bigbird": bigbird,
    "block_diagonal": block_diagonal,
    "causal": causal,
    "cross": cross,
    "cross_window": cross_window,
    "documents": _documents_n,
    "fixed": fixed,
    "full": full,
    "global_tokens": global_tokens,
    "longformer": longformer,
    "prefix_lm": prefix_lm,
    "random": random,
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
    ValueError
        If ``name`` is unknown (the message lists :func:`available`), a
        parameter is not one of the builder's, a required one is missing, or
        a value is out of range.

    Examples
    --------
    >>> get("sliding_window", 6, window=3).name
    'sliding_window(w=3)'
    """
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
