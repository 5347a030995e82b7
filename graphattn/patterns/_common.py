"""Edge builders shared by the pattern families (private to :mod:`graphattn.patterns`).

Every helper writes an edge list ``(2, E)`` (row 0 sources ``j``, row 1
targets ``i``) in canonical order, or one that :class:`TokenGraph` sorts once,
with vectorized torch code and no Python loop over tokens.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import torch

from graphattn._validate import check_allocation, check_int
from graphattn.graph import OwnedEdges, TokenGraph

__all__ = [
    "EDGE_CHUNK",
    "band_edges",
    "block_edges",
    "check_edges",
    "check_nodes",
    "column_edges",
    "make_graph",
    "node_indices",
    "ragged_edges",
    "row_edges",
    "union_graph",
    "window_offsets",
]

EDGE_CHUNK = 1 << 22  # edges whose sources are computed at once by the builders


def check_nodes(n: int, name: str = "n", *, low: int = 1) -> int:
    """``n`` as an int ``>= low`` whose node-index arrays (8 bytes a node) fit in memory."""
    n = check_int(n, name, low=low)
    check_allocation(8 * n, f"a pattern on {name}={n} nodes (one int64 index per node)")
    return n


def check_edges(e: int) -> int:
    """``e``, after checking that an edge list ``(2, e)`` of int64 fits in memory."""
    check_allocation(16 * e, f"an edge list of {e} edges")
    return e


def node_indices(value: int | Sequence[int], n: int, name: str) -> torch.Tensor:
    """Sorted node indices: the first ``value`` nodes for an int, else the listed ones."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return torch.arange(check_int(value, name, low=0, high=n))
    listing = isinstance(value, Sequence) or hasattr(value, "__array__")  # tensors, numpy arrays
    if isinstance(value, (str, bytes, bool)) or not listing:
        raise TypeError(
            f"{name} must be an int or a sequence of node indices, got {type(value).__name__}"
        )
    idx = torch.as_tensor(list(value))
    if idx.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    if idx.dtype == torch.bool or idx.is_floating_point() or idx.dim() != 1:
        raise TypeError(f"{name} must be an int or a sequence of node indices")
    idx = idx.long()
    if int(idx.min()) < 0 or int(idx.max()) >= n:
        raise ValueError(f"{name} holds an index outside [0, {n}): {idx.tolist()[:8]}")
    return torch.unique(idx)  # sorted, without repeats


def make_graph(ei: torch.Tensor, n: int, name: str, m: int | None = None) -> TokenGraph:
    """Wrap a freshly built ``(2, E)`` edge list (canonical or not) as a TokenGraph."""
    cross = m is not None
    return TokenGraph(OwnedEdges(ei), n, num_src_nodes=m, name=name, cross=cross)


def ragged_edges(
    counts: torch.Tensor, src_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """Edges ``src_of(i, r) -> i`` for every target ``i`` and rank ``r < counts[i]``.

    ``src_of`` must increase with ``r`` so that the result is canonical. The
    ``(2, E)`` output is allocated once and filled in place, ``EDGE_CHUNK``
    edges at a time, so temporaries stay small next to the edge list.
    """
    e = check_edges(int(counts.sum()))
    out = torch.empty(2, e, dtype=torch.long)
    out[1] = torch.repeat_interleave(torch.arange(counts.numel()), counts, output_size=e)
    start = torch.cumsum(counts, 0) - counts  # (N,) first edge of every target
    for lo in range(0, e, EDGE_CHUNK):
        dst = out[1, lo : lo + EDGE_CHUNK]  # (chunk,)
        rank = torch.arange(lo, lo + dst.numel()) - start[dst]  # (chunk,) position in its row
        out[0, lo : lo + EDGE_CHUNK] = src_of(dst, rank)
    return out


def band_edges(centers: torch.Tensor, offsets: torch.Tensor, m: int) -> torch.Tensor:
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
    out = torch.empty(2, check_edges(e_head + e_mid + tail.shape[1]), dtype=torch.long)
    out[:, :e_head] = head
    mid = out[:, e_head : e_head + e_mid].view(2, b - a, k)  # (2, R, K)
    torch.add(centers[a:b, None], offsets[None, :], out=mid[0])  # sources
    mid[1].copy_(torch.arange(a, b)[:, None].expand(-1, k))  # targets
    out[:, e_head + e_mid :] = tail
    return out


def window_offsets(window: int, causal: bool, dilation: int) -> torch.Tensor:
    """Increasing offsets ``j - i`` of a window (see :mod:`graphattn.patterns`)."""
    if causal:
        return torch.arange(-(window - 1), 1) * dilation  # (w,)
    return torch.arange(-(window - 1), window) * dilation  # (2w - 1,)


def column_edges(n: int, cols: torch.Tensor, causal: bool) -> torch.Tensor:
    """Every target ``i`` attends to the sorted sources ``cols`` (``j <= i`` if causal)."""
    if causal:
        counts = torch.searchsorted(cols, torch.arange(n), right=True)  # (N,)
    else:
        counts = torch.full((n,), cols.numel(), dtype=torch.long)
    return ragged_edges(counts, lambda i, r: cols[r])


def row_edges(rows: torch.Tensor, m: int) -> torch.Tensor:
    """Every target in ``rows`` attends to all ``m`` sources."""
    check_edges(rows.numel() * m)
    src = torch.arange(m).repeat(rows.numel())  # (R * M,)
    return torch.stack([src, rows.repeat_interleave(m)])  # (2, R * M)


def block_edges(sizes: torch.Tensor, causal: bool) -> torch.Tensor:
    """Block-diagonal edges for consecutive blocks of ``sizes``, ``j <= i`` if causal."""
    start = torch.cumsum(sizes, 0) - sizes  # (nb,)
    n = int(sizes.sum())
    block_start = torch.repeat_interleave(start, sizes, output_size=n)  # (N,)
    block_size = torch.repeat_interleave(sizes, sizes, output_size=n)  # (N,)
    counts = torch.arange(n) - block_start + 1 if causal else block_size  # (N,)
    return ragged_edges(counts, lambda i, r: block_start[i] + r)


def union_graph(n: int, parts: Sequence[torch.Tensor], name: str) -> TokenGraph:
    """The graph of the union of several edge lists (TokenGraph sorts and dedups them)."""
    return make_graph(torch.cat(list(parts), 1), n, name)
