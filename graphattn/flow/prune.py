"""Keeping the strongest ``k`` incoming edges of every target, with the dropped mass.

A pruned layer is the subgraph of the kept edges, their weights and, per
target, the weight of the edges left out (``dropped``). Passed to
:func:`~graphattn.flow.attention_rollout`, :func:`~graphattn.flow.top_paths`,
:func:`~graphattn.flow.attention_flow` or :func:`~graphattn.flow.flow_graph`
as ``dropped=``, that mass stays in every row's normalization, so a rollout
over pruned layers is the exact rollout minus what flowed through a pruned
edge: its rows sum to ``1 - lost``, and with ``k`` at least the in-degree
nothing is lost and every result is the unpruned one.

Everything here is linear in the number of edges: the edges are sorted by
target, so the top ``k`` of every target is a segment top-k over chunks of
targets (:func:`segment_top_k`), never an ``N x N`` matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
from torch.nn.utils.rnn import pad_sequence

from graphattn._validate import check_positive_int
from graphattn.flow.batch import edge_batch
from graphattn.graph import TokenGraph
from graphattn.graph.algebra import with_edges

__all__ = ["PrunedLayer", "prune_top_k", "segment_top_k"]


class PrunedLayer(NamedTuple):
    """A layer pruned to the strongest incoming edges of every target."""

    graph: TokenGraph  # the kept edges (the input graph itself when none was dropped)
    weights: torch.Tensor  # the kept edges' weights, laid out as the input's
    dropped: torch.Tensor  # (N,), (N, H), (B, N) or (B, N, H): weight of the dropped edges


def segment_top_k(
    indptr: torch.Tensor, score: torch.Tensor, k: int, *, budget: int = 1 << 22
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` highest scores of every segment of a CSR-ordered list, strongest first.

    Segments (e.g. the incoming edges of each target) are taken in chunks of
    consecutive segments, each padded to its widest member and reduced with
    ``torch.topk``: at most ``budget`` padded cells per example at a time (a
    single wider segment alone), so memory is linear in the entries, never
    ``N x max_degree``.

    Parameters
    ----------
    indptr : LongTensor, shape (N + 1,)
        Segment ``i`` is entries ``indptr[i]:indptr[i + 1]`` (``graph.indptr``).
    score : Tensor, shape (E,) or (B, E)
        The entries' scores (one row per example); ``-inf`` counts as absent.
    k : int
        Entries kept per segment.
    budget : int
        Padded cells per chunk and example.

    Returns
    -------
    values : Tensor, shape (N, k) or (B, N, k)
        The best scores of every segment, descending; ``-inf`` where a segment
        has fewer than ``k`` entries.
    index : LongTensor, the same shape
        Their entry indices; ``-1`` where absent. Ties are broken by
        ``torch.topk``.

    Examples
    --------
    >>> indptr = torch.tensor([0, 3, 5])
    >>> values, index = segment_top_k(indptr, torch.tensor([0.2, 0.5, 0.1, 1.0, 3.0]), 2)
    >>> values.tolist(), index.tolist()
    ([[0.5, 0.2], [3.0, 1.0]], [[1, 0], [4, 3]])
    """
    flat = score.dim() == 1
    s = score.unsqueeze(0) if flat else score  # (B, E)
    b, n, dev = s.shape[0], indptr.numel() - 1, s.device
    indptr = indptr.to(dev)
    values = s.new_full((b, n, k), -torch.inf)  # (B, N, k)
    index = torch.full((b, n, k), -1, dtype=torch.long, device=dev)  # (B, N, k)
    deg = indptr[1:] - indptr[:-1]  # (N,)
    for lo, hi in _chunks(deg.cpu(), max(1, budget)):
        width = int(deg[lo:hi].max())
        if width == 0:
            continue
        e0, e1 = int(indptr[lo]), int(indptr[hi])
        pad = _padded(s[:, e0:e1], deg[lo:hi], width)  # (B, rows, width)
        v, i = pad.topk(min(k, width), dim=2)  # (B, rows, k')
        values[:, lo:hi, : v.shape[2]] = v
        at = i + indptr[lo:hi].unsqueeze(1)  # (B, rows, k') entry indices
        index[:, lo:hi, : v.shape[2]] = torch.where(v > -torch.inf, at, -1)
    return (values[0], index[0]) if flat else (values, index)


def _padded(s: torch.Tensor, deg: torch.Tensor, width: int) -> torch.Tensor:
    """Consecutive segments of ``s (B, e)``, ``deg`` long, as rows ``(B, rows, width)``.

    Each row is ``-inf`` after its segment ends (``pad_sequence``: one copy
    per segment, no per-entry index). Segments all ``width`` long are
    already that layout (a view).
    """
    b, rows = s.shape[0], deg.numel()
    if bool((deg == width).all()):
        return s.view(b, rows, width)
    parts = s.t().split(deg.tolist())  # rows x (deg_r, B)
    pad = pad_sequence(parts, batch_first=True, padding_value=-torch.inf)  # (rows, width, B)
    return pad.permute(2, 0, 1)  # (B, rows, width)


def _chunks(deg: torch.Tensor, budget: int) -> Iterator[tuple[int, int]]:
    """Runs ``[lo, hi)`` of segments whose padded size ``rows * max(deg)`` fits ``budget``."""
    n, lo = deg.numel(), 0
    while lo < n:
        window = deg[lo : lo + budget]  # every row costs at least one cell
        rows = torch.arange(1, window.numel() + 1)
        fits = rows * window.cummax(0).values.clamp_min(1) <= budget  # (window,) a prefix
        hi = lo + max(1, int(fits.sum()))
        yield lo, hi
        lo = hi


def prune_top_k(graph: TokenGraph, weights: torch.Tensor, k: int) -> PrunedLayer:
    """Keep the ``k`` strongest incoming edges of every target; account for the rest.

    Edges are ranked per target by their weight summed over heads (the head
    mean's order; ties broken by ``torch.topk``). With a batch, every example
    keeps its own top ``k``: the returned graph is the union over the batch,
    and an edge kept for another example only has weight 0 in example ``b``
    (its weight counted in ``dropped[b]``).

    Parameters
    ----------
    graph : TokenGraph
        The layer's graph.
    weights : Tensor, shape (E,), (E, H), (B, E) or (B, E, H)
        Non-negative weights in ``graph.edge_index`` order (2-D shapes are
        read by the batch rule of :mod:`graphattn.flow.batch`).
    k : int
        Edges kept per target (and example), >= 1.

    Returns
    -------
    PrunedLayer
        ``(graph, weights, dropped)``: the kept subgraph with at most
        ``N * min(B * k, max in-degree)`` edges, their weights in the input's
        layout, and the summed weight of every target's dropped edges,
        ``(N,)``/``(N, H)`` (with a leading ``B`` for a batch). With ``k`` at
        least the largest in-degree, ``graph`` and ``weights`` are the inputs
        themselves and ``dropped`` is zero.

    Raises
    ------
    TypeError, ValueError
        If ``graph`` is not a TokenGraph, ``weights`` is not a floating
        tensor with ``graph.num_edges`` edges, or ``k`` is not a positive int.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1, 0, 1, 2], [0, 1, 1, 2, 2, 2]])   # causal, 3 tokens
    >>> w = torch.tensor([1.0, 0.3, 0.7, 0.5, 0.2, 0.3])
    >>> p = prune_top_k(g, w, 1)
    >>> p.graph.edge_index.tolist(), p.weights.tolist()
    ([[0, 1, 0], [0, 1, 2]], [1.0, 0.699999988079071, 0.5])
    >>> p.dropped.tolist()
    [0.0, 0.30000001192092896, 0.5]
    """
    w, batched, heads = _as_beh(graph, weights)  # (B, E, H)
    k = check_positive_int(k, "k")
    wide = torch.float64 if w.dtype == torch.float64 else torch.float32
    b, e, h = w.shape
    score = w[..., 0] if h == 1 and w.dtype == wide else w.sum(2, dtype=wide)  # (B, E)
    _, best = segment_top_k(graph.indptr, score, k)  # (B, N, k)
    example = torch.arange(b, device=w.device).view(-1, 1, 1).expand_as(best)
    found = best >= 0  # (B, N, k)
    keep = torch.zeros(w.shape[:2], dtype=torch.bool, device=w.device)  # (B, E)
    keep[example[found], best[found]] = True
    cut = w.masked_fill(keep.unsqueeze(2), 0.0)  # (B, E, H) the dropped edges' weights
    by_edge = cut.to(wide).transpose(0, 1).reshape(e, b * h)  # (E, B * H), target-sorted
    degree = graph.indptr.diff().to(w.device)  # (N,)
    dropped = torch.segment_reduce(by_edge, "sum", lengths=degree, axis=0)  # (N, B * H)
    dropped = dropped.view(-1, b, h).transpose(0, 1).to(w.dtype)  # (B, N, H)
    dropped = _layout(dropped, batched, heads)
    union = keep.any(0)  # (E,)
    if bool(union.all()):
        return PrunedLayer(graph, weights, dropped)
    sub = with_edges(graph, graph.edge_index[:, union.cpu()])  # canonical: a sorted subset
    kept = w[:, union].masked_fill(~keep[:, union].unsqueeze(2), 0.0)  # (B, E', H)
    return PrunedLayer(sub, _layout(kept, batched, heads), dropped)


def _as_beh(graph: Any, weights: Any) -> tuple[torch.Tensor, bool, bool]:
    """``weights`` as ``(B, E, H)``, with whether it had a batch and a head dimension."""
    if not isinstance(graph, TokenGraph):
        raise TypeError(f"graph must be a TokenGraph, got {type(graph).__name__}")
    if not isinstance(weights, torch.Tensor) or not weights.is_floating_point():
        got = weights.dtype if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise TypeError(f"weights must be a floating tensor, got {got}")
    batched = edge_batch(weights, graph) is not None
    heads = weights.dim() == 3 or (weights.dim() == 2 and not batched)
    e = weights.shape[1] if batched else weights.shape[0]
    if weights.dim() not in (1, 2, 3) or e != graph.num_edges:
        raise ValueError(
            f"weights must have shape (E,), (E, H), (B, E) or (B, E, H) with E = "
            f"graph.num_edges = {graph.num_edges}, got {tuple(weights.shape)}"
        )
    w = weights if batched else weights.unsqueeze(0)  # (B, E[, H])
    return (w if heads else w.unsqueeze(2)), batched, heads  # (B, E, H)


def _layout(t: torch.Tensor, batched: bool, heads: bool) -> torch.Tensor:
    """``t (B, X, H)`` back in the input's layout: drop the batch and head dims it lacked."""
    t = t if heads else t[:, :, 0]
    return t if batched else t[0]
