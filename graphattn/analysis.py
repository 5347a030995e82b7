"""Structure of an attention pattern: density, degrees, blocks, reach across layers.

Reach follows stacked attention layers with residual connections: after one
layer, target ``i`` has seen every source ``j`` with an edge ``j -> i`` and
itself (the residual path acts as a self-loop); after ``L`` layers, every ``j``
with a path of at most ``L`` edges to ``i``.

The *allowed* sources of a target, used by :func:`layers_to_reach`, are every
``j <= i`` for a causal graph (:func:`is_causal`) and every ``j`` otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from graphattn._validate import check_int
from graphattn.graph import OwnedEdges, TokenGraph

__all__ = [
    "BlockDensity",
    "Description",
    "block_density",
    "degree_stats",
    "density",
    "describe",
    "is_causal",
    "layers_to_reach",
    "reach",
    "reach_coverage",
    "sparse_transformer_valid",
]

PRODUCT_CHUNK = 1 << 23  # path pairs expanded at once by reach / layers_to_reach
MAX_VISITED = 1 << 26  # N * N cells of the visited table of layers_to_reach


def _check_graph(graph: Any, self_only: str | None = None) -> TokenGraph:
    if not isinstance(graph, TokenGraph):
        raise TypeError(f"graph must be a TokenGraph, got {type(graph).__name__}")
    if self_only and graph.is_cross:
        raise ValueError(
            f"{self_only} needs a self graph (layers stack on one token set); got a cross graph "
            f"with N={graph.num_nodes}, M={graph.num_src_nodes}"
        )
    return graph


# ------------------------------------------------------------ simple counts
def density(graph: TokenGraph) -> float:
    """Fraction of the ``N * M`` possible edges present.

    Parameters
    ----------
    graph : TokenGraph
        The pattern.

    Returns
    -------
    float
        ``num_edges / (N * M)``.

    Examples
    --------
    >>> from graphattn import patterns
    >>> density(patterns.causal(4))
    0.625
    """
    return _check_graph(graph).density


def is_causal(graph: TokenGraph) -> bool:
    """True for a self graph whose every edge ``j -> i`` has ``j <= i``.

    A cross graph attends to another sequence and is never causal in this sense.

    Parameters
    ----------
    graph : TokenGraph
        The pattern.

    Returns
    -------
    bool
        Whether every edge looks back (or at itself).

    Examples
    --------
    >>> from graphattn import patterns
    >>> is_causal(patterns.sliding_window(8, 3)), is_causal(patterns.full(8))
    (True, False)
    """
    graph = _check_graph(graph)
    return not graph.is_cross and bool((graph.src <= graph.dst).all())


def _stats(deg: torch.Tensor) -> dict[str, float]:
    d = deg.double()
    return {
        "min": int(d.min()),
        "max": int(d.max()),
        "mean": float(d.mean()),
        "std": float(d.std(unbiased=False)),
    }


def degree_stats(graph: TokenGraph) -> dict[str, Any]:
    """In-degrees of targets and out-degrees of sources: min, max, mean, std.

    Parameters
    ----------
    graph : TokenGraph
        The pattern.

    Returns
    -------
    dict
        ``{"in": {...}, "out": {...}, "isolated_targets": k, "unused_sources": k}``;
        ``std`` is the population standard deviation; an isolated target (no
        incoming edge) gets a zero attention output.

    Examples
    --------
    >>> from graphattn import patterns
    >>> s = degree_stats(patterns.causal(4))
    >>> s["in"], s["isolated_targets"]
    ({'min': 1, 'max': 4, 'mean': 2.5, 'std': 1.118...}, 0)
    """
    graph = _check_graph(graph)
    deg_in, deg_out = graph.in_degree(), graph.out_degree()
    return {
        "in": _stats(deg_in),
        "out": _stats(deg_out),
        "isolated_targets": int((deg_in == 0).sum()),
        "unused_sources": int((deg_out == 0).sum()),
    }


# --------------------------------------------------------------- blocks
@dataclass(frozen=True)
class BlockDensity:
    """How much of a block-sparse kernel's work is real: see :func:`block_density`."""

    block_size: int  # side of a square block of the (N, M) mask
    nonempty_blocks: int  # blocks holding at least one edge (the ones a kernel computes)
    total_blocks: int  # ceil(N / b) * ceil(M / b)
    computed: int  # mask entries inside the non-empty blocks
    density: float  # num_edges / computed, 0.0 for a graph without edges


def block_density(graph: TokenGraph, block_size: int) -> BlockDensity:
    """Cut the ``(N, M)`` mask into ``block_size`` squares and count the useful work.

    A block-sparse kernel computes every entry of every block that holds at
    least one edge; ``density`` is the fraction of those entries that are
    real edges (1.0: no waste). Entries outside the mask (padding of partial
    blocks at the edges) are not counted.

    Parameters
    ----------
    graph : TokenGraph
        The pattern.
    block_size : int
        Side ``b`` of the square blocks, ``>= 1``.

    Returns
    -------
    BlockDensity
        Non-empty blocks, the entries they hold and the useful fraction.

    Raises
    ------
    ValueError
        If ``block_size < 1``.

    Examples
    --------
    >>> from graphattn import patterns
    >>> block_density(patterns.causal(8), 4)
    BlockDensity(block_size=4, nonempty_blocks=3, total_blocks=4, computed=48, density=0.75)
    """
    graph = _check_graph(graph)
    b = check_int(block_size, "block_size", low=1)
    n, m = graph.num_nodes, graph.num_src_nodes
    rows, cols = -(-n // b), -(-m // b)
    blocks = torch.unique((graph.dst // b) * cols + graph.src // b)  # (nonempty,)
    r, c = blocks // cols, blocks % cols
    height = (n - r * b).clamp(max=b)  # (nonempty,) rows of each block inside the mask
    width = (m - c * b).clamp(max=b)
    computed = int((height * width).sum())
    return BlockDensity(
        block_size=b,
        nonempty_blocks=blocks.numel(),
        total_blocks=rows * cols,
        computed=computed,
        density=graph.num_edges / computed if computed else 0.0,
    )


# ---------------------------------------------------------------- reach
def _compose(first: TokenGraph, then: TokenGraph) -> TokenGraph:
    """Paths ``j -> k`` in ``first`` followed by ``k -> i`` in ``then``; canonical.

    Targets are processed in chunks of at most about :data:`PRODUCT_CHUNK`
    expanded pairs; each chunk is deduplicated on its own, and chunks follow
    target order, so their concatenation is already canonical.
    """
    n = first.num_nodes
    indptr, fsrc = first.indptr, first.src
    cnt = first.in_degree()[then.src]  # (E_then,) paths through each edge of `then`
    row_cost = torch.zeros(n, dtype=torch.long).index_add_(0, then.dst, cnt)  # (N,)
    t_ptr = then.indptr
    parts = []
    for r0, r1 in _chunks(row_cost, PRODUCT_CHUNK):
        e0, e1 = int(t_ptr[r0]), int(t_ptr[r1])
        k, i, c = then.src[e0:e1], then.dst[e0:e1], cnt[e0:e1]  # (e,) each
        total = int(c.sum())
        which = torch.repeat_interleave(torch.arange(e1 - e0), c, output_size=total)  # (P,)
        offset = torch.arange(total) - (torch.cumsum(c, 0) - c)[which]  # (P,) rank in k's row
        j = fsrc[indptr[k][which] + offset]  # (P,) sources j of paths j -> k -> i
        parts.append(torch.unique(i[which] * n + j))  # (P',) sorted keys
    keys = torch.cat(parts)  # (E,) canonical
    return TokenGraph(OwnedEdges(torch.stack([keys % n, keys // n])), n)


def reach(graph: TokenGraph, layers: int) -> TokenGraph:
    """Which sources can influence each target after ``layers`` stacked layers.

    Edge ``j -> i`` of the result iff there is a path of at most ``layers``
    edges from ``j`` to ``i`` in ``graph`` (residual connections count like
    self-loops, so ``j = i`` always reaches). ``layers=0`` gives the
    self-loops only; the result keeps the graph's token labels. Computed
    sparsely, layer by layer, extending only the pairs reached in the
    previous layer (a breadth-first search from every source at once), so it
    works for long sequences as long as the result fits in memory: the work
    is about ``num_edges(result) * max in-degree``.

    Parameters
    ----------
    graph : TokenGraph
        The pattern. A self graph.
    layers : int
        Number of stacked layers, ``>= 0``.

    Returns
    -------
    TokenGraph
        Edge ``j -> i`` iff ``j`` can influence ``i``; named ``reach(name, layers=L)``.

    Raises
    ------
    ValueError
        If ``graph`` is a cross graph or ``layers < 0``.

    Examples
    --------
    >>> from graphattn import patterns
    >>> reach(patterns.sliding_window(4096, 3), 5) == patterns.sliding_window(4096, 11)
    True
    """
    graph = _check_graph(graph, "reach")
    layers = check_int(layers, "layers", low=0)
    out = TokenGraph(torch.arange(graph.num_nodes).expand(2, -1), graph.num_nodes)
    if layers:
        step = graph.remove_self_loops()
        out = graph.add_self_loops()
        frontier = step  # pairs j -> i at distance exactly 1
        for _ in range(layers - 1):
            # only pairs first reached in the last layer can reach anything new
            frontier = _compose(frontier, step) - out
            if frontier.num_edges == 0:
                break
            out = out | frontier
    if graph.tokens is not None:
        out = out.with_tokens(graph.tokens)
    out.name = f"reach({graph.name or 'graph'}, layers={layers})"
    return out


def reach_coverage(graph: TokenGraph, layers: int) -> torch.Tensor:
    """Share of each target's *allowed* sources that reach it after ``layers`` layers.

    Allowed sources of ``i``: ``j <= i`` for a causal graph (:func:`is_causal`),
    every ``j`` otherwise (see the module docstring), so that a causal target
    is not counted as "unreached" by the future it may never see, and patterns
    of different causality compare. 1.0 everywhere once :func:`layers_to_reach`
    layers are stacked.

    Returns
    -------
    Tensor (N,)
        float64 in (0, 1]: reached allowed sources / allowed sources, per target.

    Raises
    ------
    ValueError
        If ``graph`` is a cross graph or ``layers < 0``.

    Examples
    --------
    >>> from graphattn import patterns
    >>> reach_coverage(patterns.causal(4), 1).tolist()
    [1.0, 1.0, 1.0, 1.0]
    >>> reach_coverage(patterns.sliding_window(4, 2), 1).tolist()  # causal: i sees j <= i
    [1.0, 1.0, 0.666..., 0.5]
    >>> reach_coverage(patterns.sliding_window(4, 2, causal=False), 1).tolist()
    [0.5, 0.75, 0.75, 0.5]
    """
    reached = reach(graph, layers).in_degree().double()  # (N,) sources reaching each target
    n = graph.num_nodes
    allowed = torch.arange(1, n + 1, dtype=torch.float64) if is_causal(graph) else torch.full(
        (n,), float(n), dtype=torch.float64
    )  # (N,)
    return reached / allowed


def _covers_causal(graph: TokenGraph) -> bool:
    """True if every pair ``j <= i`` is an edge of ``graph``."""
    n = graph.num_nodes
    return int((graph.src <= graph.dst).sum()) == n * (n + 1) // 2


def layers_to_reach(graph: TokenGraph, max_layers: int | None = None) -> int | None:
    """Fewest stacked layers after which every allowed source reaches every target.

    Allowed sources of ``i``: every ``j <= i`` for a causal graph
    (:func:`is_causal`), every ``j`` otherwise. Residual paths count (see
    :func:`reach`). 1 for :func:`~graphattn.patterns.full` and
    :func:`~graphattn.patterns.causal`, ``N - 1`` for a causal window of 2,
    2 for the Sparse Transformer patterns. A breadth-first search from all
    sources at once, with an ``N x N`` visited table.

    Parameters
    ----------
    graph : TokenGraph
        The pattern. A self graph.
    max_layers : int, optional
        Give up (return None) after this many layers; default ``N``.

    Returns
    -------
    int or None
        None if some allowed source never reaches its target (or not within
        ``max_layers``).

    Raises
    ------
    ValueError
        If ``graph`` is a cross graph or ``N * N`` exceeds :data:`MAX_VISITED`.

    Examples
    --------
    >>> from graphattn import patterns
    >>> layers_to_reach(patterns.sliding_window(10, 2)), layers_to_reach(patterns.strided(64, 8))
    (9, 2)
    >>> layers_to_reach(patterns.block_diagonal(8, 4)) is None
    True
    """
    graph = _check_graph(graph, "layers_to_reach")
    n = graph.num_nodes
    if n * n > MAX_VISITED:
        raise ValueError(
            f"layers_to_reach keeps an N x N table; N={n} exceeds {math.isqrt(MAX_VISITED)}"
        )
    limit = n if max_layers is None else check_int(max_layers, "max_layers", low=1)
    causal = is_causal(graph)
    total = n * (n + 1) // 2 if causal else n * n  # allowed pairs
    step = graph.remove_self_loops()
    visited = step.to_dense(torch.ones(step.num_edges, dtype=torch.bool))  # [i, j]: j reaches i
    visited.diagonal().fill_(True)
    fj, fi = step.src, step.dst  # (F,) frontier: pairs at distance exactly t
    covered = n + int((fj <= fi).sum()) if causal else n + step.num_edges
    out_edges = _out_edges(step)
    layers = 1
    while covered < total:
        if fj.numel() == 0 or layers >= limit:
            return None
        keys = _advance(fi, fj, out_edges, visited)  # (F',) i * n + j of the new pairs
        fi, fj = keys // n, keys % n
        layers += 1
        covered += int((fj <= fi).sum()) if causal else keys.numel()
    return layers


def _out_edges(graph: TokenGraph) -> tuple[torch.Tensor, torch.Tensor]:
    """Out-edges grouped by source: ``out_ptr (N+1,)`` and ``out_dst (E,)`` (CSR by source)."""
    order = torch.argsort(graph.src, stable=True)
    out_ptr = torch.zeros(graph.num_nodes + 1, dtype=torch.long)
    torch.cumsum(graph.out_degree(), 0, out=out_ptr[1:])
    return out_ptr, graph.dst[order]


def _advance(
    fi: torch.Tensor,
    fj: torch.Tensor,
    out_edges: tuple[torch.Tensor, torch.Tensor],
    visited: torch.Tensor,
) -> torch.Tensor:
    """One layer of the search: the pairs first reached by extending the frontier.

    Extends each frontier pair ``j -> .. -> i`` by every out-edge ``i -> i'``,
    marks the unvisited pairs ``(i', j)`` in ``visited`` and returns each of
    them once as a key ``i' * N + j``. Works in chunks of about
    :data:`PRODUCT_CHUNK` extended pairs.
    """
    out_ptr, out_dst = out_edges
    n = visited.shape[0]
    new = []
    deg = out_ptr[fi + 1] - out_ptr[fi]  # (F,) ways to extend each frontier pair
    for lo, hi in _chunks(deg, PRODUCT_CHUNK):
        c = deg[lo:hi]
        total_p = int(c.sum())
        which = torch.repeat_interleave(torch.arange(hi - lo), c, output_size=total_p)  # (P,)
        offset = torch.arange(total_p) - (torch.cumsum(c, 0) - c)[which]  # (P,)
        ci = out_dst[out_ptr[fi[lo:hi]][which] + offset]  # (P,) new targets
        cj = fj[lo:hi][which]  # (P,) their sources
        fresh = ~visited[ci, cj]
        keys = torch.unique(ci[fresh] * n + cj[fresh])  # (P',)
        visited[keys // n, keys % n] = True
        new.append(keys)
    return torch.cat(new)


def _chunks(cost: torch.Tensor, budget: int) -> list[tuple[int, int]]:
    """Split ``range(len(cost))`` into consecutive pieces of total cost about ``budget``."""
    if cost.numel() == 0:
        return []
    cum = torch.cumsum(cost, 0)
    cuts = torch.searchsorted(cum, torch.arange(1, int(cum[-1]) // budget + 1) * budget)
    edges = sorted({0, cost.numel(), *(min(int(x) + 1, cost.numel()) for x in cuts)})
    return list(zip(edges[:-1], edges[1:], strict=True))


def sparse_transformer_valid(graph: TokenGraph | Sequence[TokenGraph]) -> bool:
    """Child et al. (2019)'s validity check: every ``j <= i`` reaches ``i`` in two steps.

    ``graph`` is either one (merged-head) pattern, applied in two stacked
    layers, or the sequence of factorized patterns ``[A1, A2, ...]`` applied
    one per layer in that order. Residual paths count. The Sparse
    Transformer's strided and fixed patterns pass; a plain window does not.

    Parameters
    ----------
    graph : TokenGraph or sequence of TokenGraph
        One merged pattern, or the factorized patterns in layer order.

    Returns
    -------
    bool
        Whether every ``j <= i`` reaches ``i``.

    Examples
    --------
    >>> from graphattn import patterns
    >>> sparse_transformer_valid(patterns.strided(64, 8)), sparse_transformer_valid(
    ...     patterns.sliding_window(64, 8))
    (True, False)
    """
    if not isinstance(graph, TokenGraph) and not hasattr(graph, "__iter__"):
        raise TypeError(
            f"graph must be a TokenGraph or a sequence of them, got {type(graph).__name__}"
        )
    heads = [graph, graph] if isinstance(graph, TokenGraph) else list(graph)
    if not heads:
        raise ValueError("graph is an empty sequence; give a TokenGraph or a list of them")
    for g in heads:
        _check_graph(g, "sparse_transformer_valid")
    if len({g.num_nodes for g in heads}) != 1:
        raise ValueError(f"the graphs have different sizes: {[g.num_nodes for g in heads]}")
    out = heads[0].add_self_loops()
    for g in heads[1:]:
        out = _compose(out, g.add_self_loops())
    return _covers_causal(out)


# --------------------------------------------------------------- summary
class Description(dict):
    """The dict of :func:`describe`; ``str()`` gives a readable summary."""

    def to_string(self) -> str:
        """One ``key: value`` line per entry.

        Examples
        --------
        >>> print(Description(name="causal", num_edges=10).to_string())
        name       causal
        num_edges  10
        """
        width = max(len(k) for k in self)
        lines = []
        for key, value in self.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
            lines.append(f"{key:<{width}}  {_fmt(value)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_string()


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def describe(graph: TokenGraph, block_size: int = 64, reach_limit: int = 1024) -> Description:
    """A summary of a pattern: sizes, density, causality, degrees, blocks, reach.

    ``layers_to_reach`` is computed for self graphs of at most
    ``reach_limit`` tokens and left out otherwise.

    Parameters
    ----------
    graph : TokenGraph
        The pattern.
    block_size : int
        Block size of the ``block_density`` entry.
    reach_limit : int
        Largest ``N`` for which ``layers_to_reach`` is computed.

    Returns
    -------
    Description
        A ``dict`` (name, sizes, density, causal, self_loops, symmetric,
        degrees, block density, layers_to_reach); ``print`` shows it as a table.

    Examples
    --------
    >>> from graphattn import patterns
    >>> d = describe(patterns.causal(4), block_size=2)
    >>> d["num_edges"], d["causal"], d["layers_to_reach"]
    (10, True, 1)
    >>> print(d)
    name              causal
    num_nodes         4
    num_src_nodes     4
    cross             False
    num_edges         10
    density           0.625
    causal            True
    self_loops        4
    symmetric         False
    in_degree         min=1, max=4, mean=2.5, std=1.118
    out_degree        min=1, max=4, mean=2.5, std=1.118
    isolated_targets  0
    block_size        2
    block_density     0.8333
    nonempty_blocks   3
    layers_to_reach   1
    """
    graph = _check_graph(graph)
    reach_limit = check_int(reach_limit, "reach_limit", low=0)
    stats = degree_stats(graph)
    blocks = block_density(graph, block_size)
    d = Description(
        name=graph.name,
        num_nodes=graph.num_nodes,
        num_src_nodes=graph.num_src_nodes,
        cross=graph.is_cross,
        num_edges=graph.num_edges,
        density=graph.density,
        causal=is_causal(graph),
    )
    if not graph.is_cross:
        d["self_loops"] = int((graph.src == graph.dst).sum())
        d["symmetric"] = graph == graph.reverse()
    d.update(
        in_degree=stats["in"],
        out_degree=stats["out"],
        isolated_targets=stats["isolated_targets"],
        block_size=blocks.block_size,
        block_density=blocks.density,
        nonempty_blocks=blocks.nonempty_blocks,
    )
    if not graph.is_cross and graph.num_nodes <= reach_limit:
        d["layers_to_reach"] = layers_to_reach(graph)
    return d
