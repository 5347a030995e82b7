"""``draw_graph``: a token graph itself, with token labels, under any layout.

The edge and node drawing shared by :func:`~graphattn.plot.draw_attention`
and :func:`~graphattn.plot.draw_flow` lives here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection

from graphattn.graph import TokenGraph
from graphattn.plot import style
from graphattn.plot.layouts import Layout, compute_layout

__all__ = ["draw_graph"]

MAX_MARKERS = 200  # above this many tokens in a row, nodes are drawn without markers


def draw_graph(
    graph: TokenGraph | Sequence[TokenGraph],
    layout: str | Callable | dict = "auto",
    *,
    ax: Axes | None = None,
    title: str | None = None,
    max_edges: int = style.MAX_GRAPH_EDGES,
) -> Axes:
    """Draw a token graph: tokens as labelled nodes, every edge ``j -> i`` as a line.

    Parameters
    ----------
    graph : TokenGraph or sequence of TokenGraph
        The graph; with ``layout="layered"`` also a stack of graphs (layer
        ``l + 1`` reads the outputs of layer ``l``).
    layout : str, callable or dict
        ``"auto"`` (``"bipartite"`` for cross graphs, else ``"arc"``),
        ``"arc"``, ``"bipartite"``, ``"layered"``, ``"circle"``, ``"spring"`` or
        any networkx layout (see :mod:`graphattn.plot.layouts`).
    ax : matplotlib Axes, optional
        Where to draw (default: a new figure sized to the graph).
    title : str, optional
        Title; default: the graph's name, N and E.
    max_edges : int
        Above this many edges tokens are binned into groups (edge opacity =
        fraction of connected pairs between two groups) and the title says so.

    Returns
    -------
    matplotlib.axes.Axes
        The axes; its edge collection has gid ``"edges"`` (one path per drawn edge).

    Raises
    ------
    TypeError, ValueError
        For a graph that is not a TokenGraph or an unknown/unsuitable layout.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> g = TokenGraph([[0, 0, 1], [1, 2, 2]], tokens=["The", "sky", "is"])
    >>> ax = draw_graph(g, "arc")
    >>> len(find_artist(ax, "edges").get_paths())
    3
    >>> plt.close("all")
    """
    stack = style.graph_list(graph, "graph")
    style.check_title(title)
    for k, g in enumerate(stack):
        style.check_graph(g, f"graph[{k}]" if len(stack) > 1 else "graph")
    style.check_max_edges(max_edges)
    first = stack[0]
    stack, counts, note = _fit_edges(stack, max_edges)
    lay = compute_layout(stack if len(stack) > 1 else stack[0], layout)
    ax = style.new_axes(ax, figsize_for(lay, stack))
    _draw_edges(ax, lay, stack, counts)
    draw_nodes(ax, lay, stack)
    set_title(ax, describe(first, len(stack)) if title is None else title, note)
    return ax


def _fit_edges(
    stack: list[TokenGraph], max_edges: int
) -> tuple[list[TokenGraph], list[np.ndarray] | None, str | None]:
    """The graphs to draw: ``stack`` itself, or binned when over ``max_edges`` edges in all.

    Returns the graphs, the fraction of connected pairs per binned edge
    (None when not binned) and the note saying so.
    """
    total = sum(g.num_edges for g in stack)
    if total <= max_edges:
        return stack, None, None
    stack, counts, size = _bin_stack(stack, max_edges)
    note = (
        f"{total:,} edges: tokens binned in groups of {size}; "
        f"opacity = fraction of connected pairs"
    )
    return stack, counts, note


def _draw_edges(
    ax: Axes, lay: Layout, stack: list[TokenGraph], counts: list[np.ndarray] | None
) -> None:
    """Every edge of ``stack`` in one colour; binned edges more opaque the more pairs they join."""
    drawn = sum(g.num_edges for g in stack)
    base = style.clamp(8 / np.sqrt(drawn), 0.15, 0.8)
    width = style.clamp(30 / np.sqrt(drawn), 0.4, 1.4)
    paths, alpha = [], []
    for layer, g in enumerate(stack):
        paths += lay.edge_paths(g.src.numpy(), g.dst.numpy(), layer)
        if counts is None:
            alpha.append(np.full(g.num_edges, base))
        else:
            alpha.append(base * (0.2 + 0.8 * counts[layer]))  # monotone in the fraction of pairs
    add_lines(ax, paths, style.rgba(style.EDGE_COLOR, np.concatenate(alpha)), width, "edges")


def find_artist(ax: Axes, gid: str):
    """The first collection or image of ``ax`` whose gid is ``gid`` (None if absent).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> ax = draw_graph(TokenGraph([[0], [1]]))
    >>> find_artist(ax, "edges").get_gid()
    'edges'
    >>> plt.close("all")
    """
    for artist in [*ax.collections, *ax.images, *ax.patches]:
        if artist.get_gid() == gid:
            return artist
    return None


def describe(graph: TokenGraph, layers: int = 1) -> str:
    """A one-line title: name, sizes, edges and density."""
    name = graph.name or ("cross graph" if graph.is_cross else "token graph")
    sizes = f"N={graph.num_nodes}" + (f", M={graph.num_src_nodes}" if graph.is_cross else "")
    stack = f", {layers} layers" if layers > 1 else ""
    return f"{name}: {sizes}, E={graph.num_edges:,}, density={graph.density:.3g}{stack}"


def set_title(ax: Axes, title: str | None, note: str | None) -> None:
    """Set ``title`` with an optional second line ``note`` (pruning/binning notices)."""
    lines = [t for t in (title, f"({note})" if note else None) if t]
    if lines:
        ax.set_title("\n".join(lines), fontsize=10)


def join_notes(notes: Iterable[str | None]) -> str | None:
    """The distinct ``notes`` but None, sorted and joined by ``"; "`` (None if there are none).

    Examples
    --------
    >>> join_notes([None, "pruned: b", "pruned: a", "pruned: b"])
    'pruned: a; pruned: b'
    """
    return "; ".join(sorted({note for note in notes if note is not None})) or None


def figsize_for(lay: Layout, stack: Sequence[TokenGraph]) -> tuple[float, float]:
    """A figure size (inches) that fits ``lay`` with readable labels."""
    n = max(len(r) for r in lay.rows)
    if lay.kind == "arc":
        width = style.clamp(0.5 * n + 1.5, 4, 16)
        d = stack[0].dst - stack[0].src  # (E,) signed span of each edge
        up = 0.3 * float(d.max().clamp_min(1)) if d.numel() else 0.3
        down = 0.3 * float((-d).max().clamp_min(0)) if d.numel() else 0.0
        height = up + down + (2.0 if n > 12 else 1.0)  # data units, labels included
        return width, style.clamp(width * height / (n + 1) + 0.9, 2.2, 8)
    if lay.kind == "bipartite":
        return 5.5, style.clamp(0.32 * n + 1.2, 3, 14)
    if lay.kind == "layered":
        return style.clamp(0.65 * n + 2.0, 4, 16), style.clamp(1.0 * len(lay.rows) + 1.2, 3, 12)
    return 6.5, 6.5


def add_lines(
    ax: Axes, paths: list[np.ndarray], colors: np.ndarray, widths: float | np.ndarray, gid: str
) -> LineCollection:
    """Add one polyline per drawn edge to ``ax`` as a single collection with gid ``gid``."""
    lc = LineCollection(paths, colors=colors, linewidths=widths, capstyle="round", zorder=1)
    lc.set_gid(gid)
    ax.add_collection(lc)
    return lc


def draw_nodes(ax: Axes, lay: Layout, stack: Sequence[TokenGraph]) -> None:
    """Node markers and token labels for ``lay`` (labels thinned above ``MAX_LABELS``)."""
    graph = stack[0]
    dst_labels, src_labels = style.token_labels(graph)
    rows = [lay.rows[0]] if lay.shared else list(lay.rows)
    all_xy = np.concatenate(rows)
    n = max(len(r) for r in rows)
    size = style.clamp(2500 / max(n, 1), 6, 90)
    for r, xy in enumerate(rows if n <= MAX_MARKERS else []):
        marker = "s" if graph.is_cross and r == 0 and not lay.shared else "o"
        ax.scatter(
            xy[:, 0], xy[:, 1], s=size, marker=marker, facecolor="white",
            edgecolor=style.NODE_EDGE_COLOR, linewidth=0.8, zorder=2,
        ).set_gid(f"nodes-{r}")
    fs = style.label_fontsize(n)
    if lay.kind == "arc":
        _arc_labels(ax, lay, dst_labels, fs)
    elif lay.kind == "bipartite":
        _column_labels(ax, lay, src_labels, dst_labels, fs)
    elif lay.kind == "layered":
        _row_labels(ax, lay, stack, fs)
    else:
        _point_labels(ax, lay, src_labels, dst_labels, fs)
    pad = 0.6 * lay.unit
    lo, hi = all_xy.min(0) - pad, all_xy.max(0) + pad
    ax.update_datalim(np.array([lo, hi]))
    ax.autoscale_view()
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    if lay.kind in ("circle", "network"):
        ax.set_aspect("equal", adjustable="datalim")


def _thin(labels: Sequence[str]) -> list[tuple[int, str]]:
    step = style.label_step(len(labels))
    return [(k, t) for k, t in enumerate(labels) if k % step == 0]


def _arc_labels(ax: Axes, lay: Layout, labels: list[str], fs: float) -> None:
    x = lay.rows[0][:, 0]
    low = min(
        (
            float(p.vertices[:, 1].min())
            for c in ax.collections
            if str(c.get_gid()).startswith("edges")
            for p in c.get_paths()
        ),
        default=0.0,
    )
    y = min(low, -0.2) - 0.25
    shown = _thin(labels)
    rotate = len(shown) > 12 or max(len(t) for _, t in shown) > 6
    for k, t in shown:
        ax.text(
            x[k], y, t, fontsize=fs, va="top", rotation=60 if rotate else 0,
            ha="right" if rotate else "center", rotation_mode="anchor", gid="labels-dst",
        )
    ax.text(  # the direction of every arc: its side (documented in docs/plotting.md)
        x[0] - 0.5, y + 0.05,
        "arcs above: earlier \u2192 later token; below: later \u2192 earlier" if low < -0.2
        else "every arc: earlier \u2192 later token (j left of i)",
        fontsize=7, color="#666666", style="italic", va="bottom", gid="direction",
    )
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.update_datalim([(x[0], y - (1.0 if rotate else 0.3))])


def _column_labels(ax: Axes, lay: Layout, src: list[str], dst: list[str], fs: float) -> None:
    sides = (
        (lay.rows[0], src, -0.06, "right", "labels-src"),
        (lay.rows[1], dst, 0.06, "left", "labels-dst"),
    )
    for xy, labels, dx, ha, gid in sides:
        for k, t in _thin(labels):
            ax.text(xy[k, 0] + dx, xy[k, 1], t, ha=ha, va="center", fontsize=fs, gid=gid)
    top = max(lay.rows[0][:, 1].max(), lay.rows[1][:, 1].max()) + 0.6
    for x, name in ((0, "sources j"), (1, "targets i")):
        ax.text(x, top, name, ha="center", va="bottom", fontsize=9, style="italic", gid="side")
    ax.set_xlim(-0.8, 1.8)
    ax.set_xticks([])
    ax.set_yticks([])


def _row_labels(ax: Axes, lay: Layout, stack: Sequence[TokenGraph], fs: float) -> None:
    first_dst, first_src = style.token_labels(stack[0])
    last_dst, _ = style.token_labels(stack[-1])
    rotate = max(len(lay.rows[0]), len(lay.rows[-1])) > 12
    for xy, labels, dy, va in (
        (lay.rows[0], first_src, -0.18, "top"),
        (lay.rows[-1], last_dst, 0.18, "bottom"),
    ):
        for k, t in _thin(labels):
            ax.text(
                xy[k, 0], xy[k, 1] + dy, t, ha="center", va=va, fontsize=fs,
                rotation=90 if rotate else 0,
            )
    names = ["input"] + [f"layer {k}" for k in range(len(stack))]  # numbered as layers[k]
    ax.set_yticks(range(len(lay.rows)), names, fontsize=9)
    ax.tick_params(axis="y", length=0)
    ax.set_xticks([])
    ax.set_ylim(-0.9, len(lay.rows) - 0.1)


def _point_labels(ax: Axes, lay: Layout, src: list[str], dst: list[str], fs: float) -> None:
    center = np.concatenate(lay.rows).mean(0)
    groups = [(lay.rows[0], dst)] if lay.shared else [(lay.rows[0], src), (lay.rows[1], dst)]
    for xy, labels in groups:
        for k, t in _thin(labels):
            out = xy[k] - center
            norm = np.linalg.norm(out)
            out = out / norm if norm > 0 else np.array([0.0, 1.0])
            x, y = xy[k] + 0.3 * lay.unit * out
            ha = "left" if out[0] > 0.3 else "right" if out[0] < -0.3 else "center"
            va = "bottom" if out[1] > 0.3 else "top" if out[1] < -0.3 else "center"
            ax.text(x, y, t, ha=ha, va=va, fontsize=fs, zorder=3)
    ax.set_xticks([])
    ax.set_yticks([])


def _bin_stack(
    stack: list[TokenGraph], max_edges: int
) -> tuple[list[TokenGraph], list[np.ndarray], int]:
    """Group tokens into bins of one size so that every binned graph fits ``max_edges``.

    Returns the binned graphs (edge ``a -> b`` iff some pair of the two bins is
    connected), the fraction of connected pairs per binned edge, and the bin size.
    """
    n = max(max(g.num_nodes, g.num_src_nodes) for g in stack)
    per_graph = max(1, max_edges // len(stack))
    size = -(-n // max(1, int(np.sqrt(per_graph))))  # bins per side <= sqrt(budget)
    out, fractions = [], []
    for g in stack:
        bn, bm = -(-g.num_nodes // size), -(-g.num_src_nodes // size)
        key = (g.dst // size) * bm + g.src // size  # (E,) binned pair id
        uniq, count = torch.unique(key, return_counts=True)  # (E_b,)
        bdst, bsrc = uniq // bm, uniq % bm
        rows = torch.minimum(torch.full_like(bdst, size), g.num_nodes - bdst * size)
        cols = torch.minimum(torch.full_like(bsrc, size), g.num_src_nodes - bsrc * size)
        frac = count.double() / (rows * cols).double()  # (E_b,)

        def ranges(total: int, k: int) -> list[str]:
            return [f"{a * size}\u2013{min(total, (a + 1) * size) - 1}" for a in range(k)]

        binned = TokenGraph(
            torch.stack([bsrc, bdst]), bn,
            num_src_nodes=bm if g.is_cross else None,
            tokens=ranges(g.num_nodes, bn),
            src_tokens=ranges(g.num_src_nodes, bm) if g.is_cross else None,
            name=g.name, cross=g.is_cross,
        )
        out.append(binned)
        fractions.append(frac.numpy())  # binned graph keeps the sorted (dst, src) key order
    return out, fractions, size
