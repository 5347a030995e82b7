"""Global-token patterns and the long-document patterns built on them.

:func:`global_tokens` (tokens that see and are seen by every token),
:func:`star` (one relay token and a ring), :func:`attention_sink`
(StreamingLLM's leading sinks plus a window), :func:`longformer` (window plus
globals) and :func:`bigbird` (window plus globals plus random). The module is
``global_`` because ``global`` is a Python keyword.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from graphattn._validate import check_bool, check_int
from graphattn.graph import TokenGraph
from graphattn.patterns._common import (
    check_nodes,
    column_edges,
    make_graph,
    node_indices,
    ragged_edges,
    row_edges,
    union_graph,
)
from graphattn.patterns.local import sliding_window
from graphattn.patterns.random_ import random

__all__ = ["attention_sink", "bigbird", "global_tokens", "longformer", "star"]


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
    n = check_nodes(n, "n", low=1)
    g = node_indices(globals, n, "globals")
    symmetric = check_bool(symmetric, "symmetric")
    parts = [column_edges(n, g, causal=False)]
    if symmetric:
        parts.append(row_edges(g, n))
    label = globals if isinstance(globals, int) else g.tolist()
    name = f"global_tokens(globals={label}" + ("" if symmetric else ", symmetric=False") + ")"
    return union_graph(n, parts, name)


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
    n = check_nodes(n, "n", low=2)
    sat = torch.arange(1, n)  # (n-1,) satellites
    ring = [sat, (sat - 2) % (n - 1) + 1, sat % (n - 1) + 1]  # self, left, right
    parts = [torch.stack([s, sat]) for s in ring]
    parts += [row_edges(torch.tensor([0]), n), column_edges(n, torch.tensor([0]), causal=False)]
    return union_graph(n, parts, "star")


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
    n = check_nodes(n, "n", low=1)
    sinks = check_int(sinks, "sinks", low=0, high=n)
    window = check_int(window, "window", low=1, high=n)
    i = torch.arange(n)
    lo = (i - window + 1).clamp(min=0)  # (N,) window start
    a = lo.clamp(max=sinks)  # (N,) sinks before the window
    ei = ragged_edges(a + i - lo + 1, lambda d, r: torch.where(r < a[d], r, lo[d] + r - a[d]))
    return make_graph(ei, n, f"attention_sink(sinks={sinks}, window={window})")


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
    n = check_nodes(n, "n", low=1)
    win = sliding_window(n, window, causal=False, dilation=dilation)
    glob = global_tokens(n, globals)
    label = globals if isinstance(globals, int) else node_indices(globals, n, "globals").tolist()
    name = f"longformer(window={window}, globals={label}"
    name += ")" if dilation == 1 else f", dilation={dilation})"
    return union_graph(n, [win.edge_index, glob.edge_index], name)


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

    ei = ragged_edges(blocks.in_degree()[row] * block, src_of)  # (2, E_padded)
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
    n = check_nodes(n, "n", low=1)
    units = n
    if block is not None:
        block = check_int(block, "block", low=1, high=n)
        units = -(-n // block)
    window = check_int(window, "window", low=1, high=units)
    num_global = check_int(num_global, "num_global", low=0, high=units)
    num_random = check_int(num_random, "num_random", low=0, high=units)
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
    return make_graph(ei, n, name)
