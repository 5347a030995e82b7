"""Attention drawings: weights on the token graph (head view) and the layers x heads grid.

Edges take their head's colour (:func:`~graphattn.plot.head_color`) and grow
more opaque and wider with their weight. Above ``max_edges`` drawn edges,
only the strongest incoming edges of each target are kept and the title says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D

from graphattn._validate import check_bool, check_number
from graphattn.graph import TokenGraph
from graphattn.plot import style
from graphattn.plot.graph import (
    add_lines,
    describe,
    draw_nodes,
    figsize_for,
    join_notes,
    set_title,
)
from graphattn.plot.layouts import Layout, compute_layout
from graphattn.plot.matrix import draw_matrix

__all__ = ["draw_attention", "draw_heads", "prune"]


def prune(
    graph: TokenGraph,
    values: torch.Tensor,
    *,
    top_k: int | None = None,
    threshold: float | None = None,
    max_edges: int | None = None,
) -> tuple[torch.Tensor, str | None]:
    """Which edges to draw: a bool mask ``(E,)`` and a note saying what was left out.

    ``threshold`` keeps weights ``>= threshold``; ``top_k`` the ``k`` strongest
    incoming edges of every target; ``max_edges`` (when still exceeded) first a
    per-target top-k small enough to fit, then the strongest edges overall.
    Ties are kept in edge order.

    Parameters
    ----------
    graph : TokenGraph
        The graph the values belong to.
    values : tensor (E,)
        One value per edge (a weight, a flow).
    top_k : int, optional
        Keep the ``top_k`` strongest incoming edges per target.
    threshold : float, optional
        Keep edges whose value is at least this.
    max_edges : int, optional
        Never keep more edges than this.

    Returns
    -------
    keep : BoolTensor (E,)
    note : str or None
        None when every edge is kept.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> keep, note = prune(g, torch.tensor([1.0, 0.3, 0.7]), top_k=1)
    >>> keep.tolist(), note
    ([True, False, True], 'pruned: top-1 incoming edges per target, 2 of 3 edges drawn')
    """
    _check_prune(graph, values, threshold, max_edges)
    e = graph.num_edges
    keep = torch.ones(e, dtype=torch.bool)
    rules = []
    if threshold is not None:
        keep &= values >= threshold
        rules.append(f"weights >= {threshold:g}")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive int, got {top_k!r}")
        keep &= _rank_in_target(graph, values) < top_k
        rules.append(f"top-{top_k} incoming edges per target")
    if max_edges is not None and int(keep.sum()) > max_edges:
        k = max(1, max_edges // max(graph.num_nodes, 1))
        keep &= _rank_in_target(graph, values) < k
        rules.append(f"top-{k} incoming edges per target")
        if int(keep.sum()) > max_edges:
            order = torch.argsort(torch.where(keep, values, -np.inf), descending=True, stable=True)
            keep = torch.zeros(e, dtype=torch.bool)
            keep[order[:max_edges]] = True
            rules.append(f"strongest {max_edges:,} overall")
    if bool(keep.all()):
        return keep, None
    return keep, f"pruned: {', '.join(rules)}, {int(keep.sum()):,} of {e:,} edges drawn"


def _check_prune(graph: object, values: object, threshold: object, max_edges: object) -> None:
    """The arguments of :func:`prune` (``top_k`` is checked where it is used)."""
    if not isinstance(graph, TokenGraph):
        raise TypeError(f"graph must be a TokenGraph, got {type(graph).__name__}")
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"values must be a tensor (E,), got {type(values).__name__}")
    if tuple(values.shape) != (graph.num_edges,):
        raise ValueError(
            f"values must have shape (E,) = ({graph.num_edges},), got {tuple(values.shape)}"
        )
    if threshold is not None:
        check_number(threshold, "threshold")
    if max_edges is not None:
        style.check_max_edges(max_edges)


def _rank_in_target(graph: TokenGraph, values: torch.Tensor) -> torch.Tensor:
    """Rank ``(E,)`` of every edge among its target's incoming edges, strongest 0."""
    order = torch.argsort(values, descending=True, stable=True)  # (E,)
    order = order[torch.argsort(graph.dst[order], stable=True)]  # (E,) by target, then value
    start = graph.indptr[graph.dst[order]]  # (E,) first slot of each edge's target
    rank = torch.empty_like(order)
    rank[order] = torch.arange(graph.num_edges) - start
    return rank


def draw_attention(
    graph: TokenGraph,
    weights: torch.Tensor,
    *,
    example: int | None = None,
    head: int | str | Sequence[int] = "mean",
    layout: str | Callable | dict = "auto",
    ax: Axes | None = None,
    title: str | None = None,
    top_k: int | None = None,
    threshold: float | None = None,
    max_edges: int = style.MAX_GRAPH_EDGES,
) -> Axes:
    """Attention weights on the token graph: BertViz's head view as a static figure.

    Every edge takes its head's colour, with opacity and width growing with
    its weight (scaled by the largest drawn weight, shared by the heads drawn).

    Parameters
    ----------
    graph : TokenGraph
        The graph the weights belong to.
    weights : tensor (E,) or (E, H), or a batch (B, E) or (B, E, H)
        Per-edge weights in ``graph.edge_index`` order (as returned by
        ``graph_attention(..., return_weights=True)``).
    example : int, optional
        Which example of batched weights (``(B, E)`` or ``(B, E, H)``, as
        ``graphattn.hf.record`` and ``graphattn.flow.contributions`` hold
        them) to draw; may be left out for one example or a batch of one.
    head : int, list of int or "mean"
        One head, several heads overlaid (one colour each) or the mean over heads.
    layout : str, callable or dict
        As in :func:`~graphattn.plot.draw_graph`.
    ax : matplotlib Axes, optional
        Where to draw.
    title : str, optional
        Title (default: graph name, sizes and heads).
    top_k, threshold : optional
        Draw only the ``top_k`` strongest incoming edges per target / edges of
        weight at least ``threshold`` (see :func:`prune`).
    max_edges : int
        Above this many drawn edges per head, prune to the strongest incoming
        edges per target; the title says so.

    Returns
    -------
    matplotlib.axes.Axes
        Each head's edges are a collection with gid ``"edges-<head>"`` (``"edges-mean"``).

    Raises
    ------
    TypeError, ValueError
        For a wrong graph, weight shape, head index or layout, or a batch of
        several examples without ``example``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from graphattn.plot import find_artist
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["hi", "there"])
    >>> ax = draw_attention(g, torch.tensor([[1.0, 1.0], [0.2, 0.5], [0.8, 0.5]]), head=[0, 1])
    >>> len(find_artist(ax, "edges-1").get_paths())
    3
    >>> plt.close("all")
    """
    style.check_graph(graph)
    style.check_title(title)
    picked = style.select_heads(style.check_weights(weights, graph, example=example), head)
    style.check_max_edges(max_edges)
    lay = compute_layout(graph, layout)
    kept = [
        prune(graph, v, top_k=top_k, threshold=threshold, max_edges=max_edges) for _, v in picked
    ]  # (keep (E,), note) per head
    keeps = [keep for keep, _ in kept]
    ax = style.new_axes(ax, figsize_for(lay, [_drawn(graph, keeps)]))
    _draw_head_edges(ax, lay, graph, picked, keeps)
    draw_nodes(ax, lay, [graph])
    keys = [k for k, _ in picked]
    if len(keys) > 1:
        _head_legend(ax, keys)
    if title is None:
        title = f"{describe(graph)}\n{_heads_name(keys)}"
    set_title(ax, title, join_notes(note for _, note in kept))
    return ax


def _draw_head_edges(
    ax: Axes,
    lay: Layout,
    graph: TokenGraph,
    picked: list[tuple[int | str, torch.Tensor]],
    keeps: list[torch.Tensor],
) -> None:
    """Each picked head's kept edges in its colour, opacity and width growing with the weight.

    Weights are scaled by the largest weight of the heads drawn, so that heads compare.
    """
    top = max(float(v.max()) if v.numel() else 0.0 for _, v in picked)
    top = top if top > 0 else 1.0
    for (key, v), keep in zip(picked, keeps, strict=True):
        strength = (v[keep] / top).clamp(0, 1).numpy()  # (E_kept,) in [0, 1]
        paths = lay.edge_paths(graph.src[keep].numpy(), graph.dst[keep].numpy())
        colors = style.rgba(style.head_color(key), 0.05 + 0.95 * strength)
        add_lines(ax, paths, colors, 0.4 + 2.6 * strength, f"edges-{key}")


def _drawn(graph: TokenGraph, keeps: list[torch.Tensor]) -> TokenGraph:
    """The edges drawn for any head: the figure is sized for them, not for the pruned ones."""
    union = torch.stack(keeps).any(0)  # (E,)
    return TokenGraph(
        graph.edge_index[:, union], graph.num_nodes, num_src_nodes=graph.num_src_nodes,
        cross=graph.is_cross,
    )


def _head_legend(ax: Axes, keys: list[int | str]) -> None:
    """A legend of the heads' colours, outside the Axes on the right."""
    ax.legend(
        handles=[Line2D([], [], color=style.head_color(k), lw=2, label=f"head {k}") for k in keys],
        loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False,
    )


def _heads_name(keys: list[int | str]) -> str:
    """``"mean over heads"``, ``"head 2"`` or ``"heads 0, 3"`` for the title."""
    if keys == ["mean"]:
        return "mean over heads"
    if len(keys) == 1:
        return f"head {keys[0]}"
    return "heads " + ", ".join(map(str, keys))


def draw_heads(
    layers: Sequence[tuple[TokenGraph, torch.Tensor]],
    *,
    example: int | None = None,
    view: str = "matrix",
    ax: np.ndarray | None = None,
    share_scale: bool = True,
    max_tokens: int = 128,
    max_edges: int = 400,
) -> np.ndarray:
    """The layers x heads grid of small multiples (BertViz's model view).

    Parameters
    ----------
    layers : sequence of (TokenGraph, tensor (E, H))
        One ``(graph, weights)`` pair per layer, as models return them, or
        batched: weights ``(B, E, H)``, as ``graphattn.hf.record`` holds them.
    example : int, optional
        Which example of batched layers to draw; may be left out for one
        example or a batch of one.
    view : "matrix", "bipartite" or "arc"
        Heatmaps, or head-view thumbnails in that layout.
    ax : array of Axes (L, H), optional
        Where to draw (default: a new figure).
    share_scale : bool
        One colour scale for all matrices (one colorbar); else each its own.
    max_tokens : int
        Matrices bin tokens above this many per side.
    max_edges : int
        Thumbnails prune to the strongest edges above this many per head.

    Returns
    -------
    numpy.ndarray of Axes, shape (L, H)
        ``H`` is the most heads of any layer; cells of layers with fewer heads
        are hidden. Each cell's frame has its head's colour.

    Raises
    ------
    TypeError, ValueError
        For an empty or malformed ``layers``, an unknown view, a wrong ``ax``
        or a batch of several examples without ``example``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> w = torch.tensor([[1.0, 1.0], [0.2, 0.5], [0.8, 0.5]])
    >>> draw_heads([(g, w), (g, w), (g, w)]).shape
    (3, 2)
    >>> plt.close("all")
    """
    pairs = style.check_layers(layers, example=example)
    if view not in ("matrix", "bipartite", "arc"):
        raise ValueError(f"view must be 'matrix', 'bipartite' or 'arc', got {view!r}")
    share_scale = check_bool(share_scale, "share_scale")
    style.check_max_edges(max_edges)
    num_layers, num_heads = len(pairs), max(w.shape[1] for _, w in pairs)
    fig, axes = _grid_axes(ax, num_layers, num_heads)
    vmax = max(float(w.max()) for _, w in pairs) if share_scale else None
    image = _fill_grid(axes, pairs, view, vmax, max_tokens, max_edges)
    if view == "matrix" and share_scale and image is not None:
        fig.colorbar(image, ax=axes, label="attention weight", shrink=0.8)
    return axes


def _fill_grid(
    axes: np.ndarray,
    pairs: list[tuple[TokenGraph, torch.Tensor]],
    view: str,
    vmax: float | None,
    max_tokens: int,
    max_edges: int,
) -> AxesImage | None:
    """Draw head ``h`` of layer ``l`` in ``axes[l, h]`` (L, H); return the last heatmap drawn.

    Cells past a layer's last head are hidden; heatmaps share ``vmax`` when
    it is given, thumbnails keep only the grid's outer token labels.
    """
    num_heads = axes.shape[1]
    image = None
    for layer, (g, w) in enumerate(pairs):
        for h, a in enumerate(axes[layer]):
            if h >= w.shape[1]:  # a layer with fewer heads
                a.set_visible(False)
                continue
            if view == "matrix":
                draw_matrix(
                    g, w, head=h, ax=a, vmin=0.0, vmax=vmax, colorbar=False, labels=False,
                    title="", max_tokens=max_tokens,
                )
                image = a.images[-1]
            else:
                draw_attention(g, w, head=h, layout=view, ax=a, title="", max_edges=max_edges)
                _as_thumbnail(a, _outer_labels(view, h, num_heads))
            _frame_cell(a, layer, h)
    return image


def _grid_axes(ax: object, num_layers: int, num_heads: int) -> tuple[Figure, np.ndarray]:
    """The figure and the ``(L, H)`` Axes of the grid: new ones, or ``ax`` checked."""
    if ax is None:
        fig, axes = plt.subplots(
            num_layers, num_heads, figsize=(1.7 * num_heads + 1.2, 1.7 * num_layers + 0.6),
            layout="constrained", squeeze=False,
        )
        return fig, axes
    axes = np.asarray(ax, dtype=object).reshape(-1)
    if not all(isinstance(a, Axes) for a in axes):
        raise TypeError(f"ax must be an array of matplotlib Axes, got {ax!r:.80}")
    if len(axes) != num_layers * num_heads:
        raise ValueError(
            f"ax must hold layers x heads = {num_layers} x {num_heads} axes, got {len(axes)}"
        )
    axes = axes.reshape(num_layers, num_heads)
    return axes[0, 0].figure, axes


def _outer_labels(view: str, h: int, num_heads: int) -> set[str]:
    """The token labels a bipartite cell keeps: sources left of the grid, targets right of it."""
    keep = set()
    if view == "bipartite" and h == 0:
        keep.add("labels-src")
    if view == "bipartite" and h == num_heads - 1:
        keep.add("labels-dst")
    return keep


def _as_thumbnail(a: Axes, keep: set[str]) -> None:
    """Shrink a head view to a grid cell: small nodes, thin edges, token labels only in ``keep``.

    ``keep`` holds the gids of the label groups drawn (at the grid's outer
    edges); the rest do not fit between the cells.
    """
    for t in a.texts:
        t.set_visible(t.get_gid() in keep)
        t.set_fontsize(min(t.get_fontsize(), 7))
    for c in a.collections:
        if str(c.get_gid()).startswith("nodes"):
            c.set_sizes([6])
        else:
            c.set_linewidths(0.5 * np.asarray(c.get_linewidths()))
    a.set_xticks([])


def _frame_cell(a: Axes, layer: int, h: int) -> None:
    """Label a grid cell (layer on the left, head on top) and frame it in the head's colour."""
    a.set_xlabel("")
    a.set_ylabel(f"layer {layer}" if h == 0 else "", fontsize=9)
    if layer == 0:
        a.set_title(f"head {h}", fontsize=9, color=style.head_color(h))
    for spine in a.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(style.head_color(h))
        spine.set_linewidth(1.5)
