"""Matrix drawings: attention heatmaps and pattern masks (target rows x source columns).

Pairs that are not edges of the graph are drawn light grey and hatched, a
colour no weight colormap uses, so a missing edge never looks like a small
weight. Above ``max_tokens`` tokens per side, tokens are binned and the title
says so.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, ListedColormap
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator

from graphattn._validate import check_bool, check_number
from graphattn.graph import TokenGraph
from graphattn.plot import style
from graphattn.plot.graph import describe, set_title

__all__ = ["draw_matrix", "draw_pattern", "draw_patterns"]


def draw_matrix(
    graph: TokenGraph,
    weights: torch.Tensor | None = None,
    *,
    example: int | None = None,
    head: int | str = "mean",
    ax: Axes | None = None,
    cmap: str = style.WEIGHT_CMAP,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
    title: str | None = None,
    labels: bool = True,
    legend: bool = True,
    max_tokens: int = style.MAX_MATRIX_TOKENS,
) -> Axes:
    """Attention heatmap (or the bare mask) of ``graph``: targets ``i`` down, sources ``j`` across.

    Parameters
    ----------
    graph : TokenGraph
        The graph; its non-edges are drawn hatched grey.
    weights : tensor (E,) or (E, H), or a batch (B, E) or (B, E, H), optional
        Per-edge weights in ``graph.edge_index`` order; without them the mask
        is drawn (edges in one colour).
    example : int, optional
        Which example of batched weights to draw; may be left out for one
        example or a batch of one.
    head : int or "mean"
        Which head of ``(E, H)`` weights to draw.
    ax : matplotlib Axes, optional
        Where to draw (default: a new figure).
    cmap : str
        Colormap of weights (default ``viridis``; binned masks use light to dark blue).
    vmin, vmax : float, optional
        Colour scale limits; pass the same values to several drawings to share
        one scale (default: 0 and the largest drawn value).
    colorbar : bool
        Add a colorbar (for weights or binned masks).
    title : str, optional
        Title (default: the graph's name and sizes, and the head).
    labels : bool
        Token tick labels (thinned above 80 tokens).
    legend : bool
        For a bare mask, a legend telling edges from non-edges.
    max_tokens : int
        Above this many tokens on a side, tokens are binned into groups: a
        cell shows the mean attention a target of its row group gives the
        source group (or the fraction of connected pairs for a mask).

    Returns
    -------
    matplotlib.axes.Axes
        Its image has gid ``"matrix"`` (a masked array: masked = not an edge)
        and the hatched background gid ``"nonedges"``.

    Raises
    ------
    TypeError, ValueError
        For a wrong graph, weight shape, head or size limit, or a batch of
        several examples without ``example``.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["a", "b"])
    >>> from graphattn.plot import find_artist
    >>> ax = draw_matrix(g, torch.tensor([1.0, 0.4, 0.6]))
    >>> find_artist(ax, "matrix").get_array().mask.tolist()
    [[False, True], [False, False]]
    >>> plt.close("all")
    """
    key, values = _matrix_values(graph, weights, example, head, max_tokens)
    colorbar, labels, legend = _check_look(cmap, vmin, vmax, colorbar, labels, legend)
    style.check_title(title)
    grid, size = binned_matrix(graph, values, max_tokens)  # (rows, cols), tokens per cell
    weighted = values is not None
    ax = style.new_axes(ax, _figsize(grid.shape, colorbar and (weighted or size > 1)))
    scale = _color_scale(grid, weighted, size, cmap, vmin, vmax)
    _draw_grid(ax, grid, scale, colorbar)
    if not weighted and size == 1 and legend:
        _add_mask_legend(ax)
    _ticks(ax, graph, size, labels)
    title = _default_title(graph, key) if title is None else title
    set_title(ax, title, _binned_note(graph, size, weighted))
    return ax


def _default_title(graph: TokenGraph, key: int | str | None) -> str:
    """The graph's name and sizes, and the head drawn (``key``; None for a mask)."""
    if key is None:
        return describe(graph)
    return describe(graph) + (f"\nhead {key}" if key != "mean" else "\nmean over heads")


def _matrix_values(
    graph: TokenGraph,
    weights: torch.Tensor | None,
    example: int | None,
    head: int | str,
    max_tokens: int,
) -> tuple[int | str | None, torch.Tensor | None]:
    """The arguments of :func:`draw_matrix` checked: the head drawn and its values ``(E,)``."""
    style.check_graph(graph)
    style.check_one_head(head, "a matrix")
    key, values = None, None
    if weights is not None:
        checked = style.check_weights(weights, graph, example=example)  # (E, H)
        ((key, values),) = style.select_heads(checked, head)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive int, got {max_tokens!r}")
    return key, values


def _check_look(
    cmap: object, vmin: object, vmax: object, colorbar: object, labels: object, legend: object
) -> tuple[bool, bool, bool]:
    """The look options of :func:`draw_matrix` checked; its three flags as bools."""
    if not isinstance(cmap, (str, Colormap)):
        raise TypeError(f"cmap must be a colormap name, got {type(cmap).__name__} {cmap!r}")
    for name, value in (("vmin", vmin), ("vmax", vmax)):
        if value is not None:
            check_number(value, name)
    return check_bool(colorbar, "colorbar"), check_bool(labels, "labels"), check_bool(
        legend, "legend"
    )


def _binned_note(graph: TokenGraph, size: int, weighted: bool) -> str | None:
    """The note under the title of a binned matrix (None unless binned)."""
    if size == 1:
        return None
    note = f"binned: {max(graph.num_nodes, graph.num_src_nodes):,} tokens in groups of {size}"
    return note + ("; cell = mean attention per target" if weighted else "")


def _draw_grid(
    ax: Axes,
    grid: np.ma.MaskedArray,
    scale: tuple[Colormap, float, float, str | None],
    colorbar: bool,
) -> None:
    """The image of ``grid (rows, cols)`` over the hatched non-edges, and its colorbar.

    ``scale`` is what :func:`_color_scale` returns; a colorbar is drawn when
    ``colorbar`` and the scale has a label.
    """
    rows, cols = grid.shape
    _add_nonedge_background(ax, rows, cols)
    cm, lo, hi, bar_label = scale
    im = ax.imshow(
        grid, cmap=cm, vmin=lo, vmax=hi, interpolation="nearest", aspect="equal", zorder=1,
        extent=(-0.5, cols - 0.5, rows - 0.5, -0.5),
    )
    im.set_gid("matrix")
    if bar_label and colorbar:
        ax.figure.colorbar(im, ax=ax, label=bar_label, shrink=0.85, pad=0.02)


def _add_mask_legend(ax: Axes) -> None:
    """The legend of a bare mask (edge, no edge), outside the Axes on the right."""
    ax.legend(
        handles=mask_legend(), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
        frameon=False,
    )


def _add_nonedge_background(ax: Axes, rows: int, cols: int) -> None:
    """The hatched grey rectangle behind the image that shows through non-edges."""
    background = Rectangle(
        (-0.5, -0.5), cols, rows, facecolor=style.NONEDGE_COLOR, hatch=style.NONEDGE_HATCH,
        edgecolor=style.NONEDGE_HATCH_COLOR, linewidth=0, zorder=0,
    )
    background.set_gid("nonedges")
    ax.add_patch(background)


def _color_scale(
    grid: np.ma.MaskedArray,
    weighted: bool,
    size: int,
    cmap: str,
    vmin: float | None,
    vmax: float | None,
) -> tuple[Colormap, float, float, str | None]:
    """Colormap, limits and colorbar label (None: no colorbar) of a matrix image."""
    if not weighted and size == 1:  # a bare mask: edges in one colour
        return ListedColormap([style.EDGE_COLOR], bad=(0, 0, 0, 0)), 0.0, 1.0, None
    base = plt.get_cmap(cmap) if weighted else style.MASK_CMAP
    cm = base.with_extremes(bad=(0, 0, 0, 0))  # masked cells show the hatched background
    data = grid.compressed()
    lo = 0.0 if vmin is None else vmin
    top = 1.0 if not weighted or not data.size else float(data.max())
    hi = top if vmax is None else vmax
    hi = hi if hi > lo else lo + 1.0
    return cm, lo, hi, "attention weight" if weighted else "fraction of pairs connected"


def binned_matrix(
    graph: TokenGraph, values: torch.Tensor | None, max_tokens: int
) -> tuple[np.ma.MaskedArray, int]:
    """The (binned) matrix of ``graph`` and the bin size; masked where no edge falls.

    With ``values (E,)`` a cell is the summed weight of its edges divided by
    the number of targets in its row group (bin size 1: the weight itself);
    without, the fraction of its pairs that are edges.
    """
    n, m = graph.num_nodes, graph.num_src_nodes
    size = -(-max(n, m) // max_tokens)
    bn, bm = -(-n // size), -(-m // size)
    key = (graph.dst // size) * bm + graph.src // size  # (E,) cell of each edge
    count = torch.bincount(key, minlength=bn * bm).view(bn, bm).double()  # (bn, bm)
    rows = torch.minimum(torch.full((bn,), size), n - torch.arange(bn) * size).double()  # (bn,)
    cols = torch.minimum(torch.full((bm,), size), m - torch.arange(bm) * size).double()  # (bm,)
    if values is None:
        grid = count / (rows[:, None] * cols[None, :])  # (bn, bm)
    else:
        total = torch.bincount(key, weights=values.double(), minlength=bn * bm).view(bn, bm)
        grid = total / rows[:, None]  # (bn, bm)
    return np.ma.masked_array(grid.numpy(), mask=(count == 0).numpy()), size


def mask_legend() -> list[Patch]:
    """Legend handles telling edges from non-edges in a mask."""
    return [
        Patch(facecolor=style.EDGE_COLOR, label="edge j \u2192 i"),
        Patch(
            facecolor=style.NONEDGE_COLOR, edgecolor=style.NONEDGE_HATCH_COLOR,
            hatch=style.NONEDGE_HATCH, label="no edge",
        ),
    ]


def _figsize(shape: tuple[int, int], bar: bool) -> tuple[float, float]:
    rows, cols = shape
    side = style.clamp(0.22 * max(rows, cols) + 1.8, 3.5, 9)
    width = side * style.clamp(cols / rows, 0.5, 2.0) + (1.6 if bar else 1.2)
    return width, side


def _ticks(ax: Axes, graph: TokenGraph, size: int, labels: bool) -> None:
    ax.set_xlabel("source j (key)", fontsize=9)
    ax.set_ylabel("target i (query)", fontsize=9)
    if not labels:
        ax.set_xticks([])
        ax.set_yticks([])
        return
    dst, src = style.token_labels(graph)
    named = graph.tokens is not None and size == 1
    for axis, names in ((ax.yaxis, dst), (ax.xaxis, src)):
        if named:
            step = style.label_step(len(names))
            ticks = list(range(0, len(names), step))
            axis.set_ticks(ticks, [names[k] for k in ticks])
            axis.set_tick_params(labelsize=style.label_fontsize(len(ticks)))
        else:  # token indices: a few round numbers (cells of binned images hold `size` tokens)
            axis.set_major_locator(MaxNLocator(8, integer=True))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{int(round(v)) * size:,}"))
            axis.set_tick_params(labelsize=8)
    if named and len(src) <= style.MAX_LABELS and max(len(t) for t in src) > 2:
        plt.setp(ax.get_xticklabels(), rotation=60, ha="right", rotation_mode="anchor")
    ax.tick_params(length=2)


def draw_pattern(
    graph: TokenGraph,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    legend: bool = True,
    max_tokens: int = style.MAX_MATRIX_TOKENS,
) -> Axes:
    """The mask of a pattern as an image, titled with its name, N, E and density.

    Large patterns are binned (cells show the fraction of connected pairs, with
    a colorbar).

    Parameters
    ----------
    graph : TokenGraph
        The pattern.
    ax : matplotlib Axes, optional
        Where to draw.
    title : str, optional
        Title (default: name, N, E, density).
    legend : bool
        A legend telling edges from non-edges.
    max_tokens : int
        Bin tokens above this many per side.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> mask = torch.ones(6, 6, dtype=torch.bool).tril()
    >>> causal = TokenGraph.from_dense_mask(mask, name="causal")
    >>> draw_pattern(causal).get_title().splitlines()[0]
    'causal'
    >>> plt.close("all")
    """
    style.check_graph(graph)
    if title is None:
        name = textwrap.fill(graph.name or "pattern", 34, break_on_hyphens=False)
        title = (
            f"{name}\nN={graph.num_nodes:,}, E={graph.num_edges:,}, density={graph.density:.3g}"
        )
    labels = max(graph.num_nodes, graph.num_src_nodes) <= 32
    ax = draw_matrix(
        graph, ax=ax, title=title, colorbar=True, labels=labels, legend=legend,
        max_tokens=max_tokens,
    )
    if not labels:
        ax.set_xlabel("")
        ax.set_ylabel("")
    return ax


def draw_patterns(
    graphs: Sequence[TokenGraph],
    *,
    ncols: int = 4,
    ax: np.ndarray | Sequence[Axes] | None = None,
    max_tokens: int = style.MAX_MATRIX_TOKENS,
) -> np.ndarray:
    """A gallery of pattern masks side by side (see :func:`draw_pattern`).

    Parameters
    ----------
    graphs : sequence of TokenGraph
        The patterns, drawn in order, row by row.
    ncols : int
        Columns of the grid.
    ax : array of Axes, optional
        At least ``len(graphs)`` axes to draw into (default: a new figure).
    max_tokens : int
        Bin tokens above this many per side.

    Returns
    -------
    numpy.ndarray of Axes
        The axes used, in order (unused ones of a new grid are hidden).

    Raises
    ------
    ValueError
        If ``graphs`` is empty or ``ax`` holds fewer axes than graphs.

    Examples
    --------
    >>> full = TokenGraph.from_dense_mask(torch.ones(4, 4, dtype=torch.bool), name="full")
    >>> axes = draw_patterns([full, full.reverse()], ncols=2)
    >>> axes.shape
    (2,)
    >>> plt.close("all")
    """
    graphs = style.graph_list(graphs, "graphs")
    if not graphs:
        raise ValueError("graphs is empty; draw_patterns needs at least one graph")
    for k, g in enumerate(graphs):
        style.check_graph(g, f"graphs[{k}]")
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    if ax is None:
        ncols = min(ncols, len(graphs))
        nrows = -(-len(graphs) // ncols)
        fig, grid = plt.subplots(
            nrows, ncols, figsize=(3.8 * ncols, 3.7 * nrows), layout="constrained", squeeze=False
        )
        axes = grid.ravel()
        for extra in axes[len(graphs):]:
            extra.set_visible(False)
        fig.legend(
            handles=mask_legend(), loc="outside lower center", ncols=2, fontsize=9, frameon=False
        )
    else:
        axes = np.asarray(ax, dtype=object).ravel()
        if len(axes) < len(graphs):
            raise ValueError(f"ax holds {len(axes)} axes for {len(graphs)} graphs")
    for a, g in zip(axes[: len(graphs)], graphs, strict=True):
        draw_pattern(g, ax=a, legend=False, max_tokens=max_tokens)
    return axes[: len(graphs)]
