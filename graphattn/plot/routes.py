"""``draw_routes``: the information-flow route of one prediction, layer by layer.

Rows are the layers (``input`` at the bottom, then ``layer 0``, ``layer 1``,
... the output of each, as in ``draw_flow``), columns
the tokens the route passes through (or every token); attention edges go
diagonally from row ``l`` to row ``l + 1``, residual edges straight up, in
another colour, each as wide and opaque as the share it carries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from graphattn._validate import check_bool
from graphattn.flow import Routes
from graphattn.flow.batch import check_example
from graphattn.plot import style
from graphattn.plot.graph import add_lines, set_title

__all__ = ["ATTENTION_COLOR", "RESIDUAL_COLOR", "draw_routes"]

ATTENTION_COLOR = style.HEAD_COLORS[0]  # attention edges: blue
RESIDUAL_COLOR = style.HEAD_COLORS[1]  # residual edges: vermillion


def draw_routes(
    routes: Routes | Sequence[Routes],
    *,
    example: int | None = None,
    all_tokens: bool = False,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Draw a :class:`graphattn.flow.Routes`: the edges that carry a prediction.

    Parameters
    ----------
    routes : Routes or list of Routes
        What :func:`graphattn.flow.routes` returns: one Routes, or one per
        example for batched layers.
    example : int, optional
        Which Routes of a list to draw; may be left out for one Routes or a
        list of one.
    all_tokens : bool
        One column per token of the sequence; default only the tokens on
        the route (readable on long prompts), labelled with their positions.
    ax : matplotlib Axes, optional
        Where to draw.
    title : str, optional
        Title (default: the target and the threshold).

    Returns
    -------
    matplotlib.axes.Axes
        Attention edges are one collection with gid ``"attention"``, residual
        edges one with gid ``"residual"`` (layer by layer, each in its
        layer's order), the route's nodes gid ``"nodes"``, the target's ring
        ``"target"``.

    Raises
    ------
    TypeError
        If ``routes`` is not a Routes (or a list of them) or ``all_tokens`` not a bool.
    ValueError
        For a list of several Routes without ``example``, or one out of range.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from graphattn import TokenGraph
    >>> from graphattn.flow import routes
    >>> from graphattn.plot import find_artist
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["a", "b"])
    >>> r = routes([(g, torch.tensor([1.0, 0.3, 0.7]))] * 2, target=1, threshold=0.2)
    >>> ax = draw_routes(r)
    >>> len(find_artist(ax, "attention").get_paths()), len(find_artist(ax, "residual").get_paths())
    (2, 3)
    >>> plt.close("all")
    """
    routes = _one_routes(routes, example)
    all_tokens = check_bool(all_tokens, "all_tokens")
    style.check_title(title)
    graph = routes.layers[0].graph
    n = graph.num_nodes
    cols = np.arange(n) if all_tokens else torch.cat(routes.nodes).unique().numpy()
    x = np.full(n, -1.0)
    x[cols] = np.arange(len(cols))  # column of every token on the drawing
    rows = len(routes.nodes)
    ax = style.new_axes(ax, (style.clamp(0.42 * len(cols) + 2.5, 5, 16),
                             style.clamp(0.5 * rows + 1.8, 3, 10)))
    _edges(ax, routes, x)
    _nodes(ax, routes, x, len(cols))
    _axes(ax, routes, cols, rows)
    if title is None:
        title = (f"route of {style.token_name(graph, routes.target)} through {rows - 1} layers\n"
                 f"edges carrying ≥ {routes.threshold:g} of a node's input")
    set_title(ax, title, None)
    return ax


def _one_routes(routes: object, example: int | None) -> Routes:
    """The Routes drawn: ``routes`` itself, or entry ``example`` of a list of them."""
    if isinstance(routes, Sequence) and routes and all(isinstance(r, Routes) for r in routes):
        return routes[check_example(example, len(routes), "routes")]
    if not isinstance(routes, Routes):
        raise TypeError(
            f"routes must be a graphattn.flow.Routes or a list of them, got {type(routes).__name__}"
        )
    check_example(example, None, "routes")
    return routes


def _edges(ax: Axes, routes: Routes, x: np.ndarray) -> None:
    """One collection of attention edges and one of residual edges, width by share."""
    att_paths, att_w, res_paths, res_w = [], [], [], []
    for l, layer in enumerate(routes.layers):
        src, dst = layer.graph.src.numpy(), layer.graph.dst.numpy()
        att_paths += [np.array([[x[j], l], [x[i], l + 1]]) for j, i in zip(src, dst, strict=True)]
        att_w.append(layer.weights.detach().to("cpu", torch.float64).numpy())  # (E_kept,)
        res_paths += [np.array([[x[i], l], [x[i], l + 1]]) for i in layer.residual.numpy()]
        res_w.append(layer.residual_weights.detach().to("cpu", torch.float64).numpy())  # (R,)
    for paths, w, color, gid in ((att_paths, att_w, ATTENTION_COLOR, "attention"),
                                 (res_paths, res_w, RESIDUAL_COLOR, "residual")):
        s = np.clip(np.concatenate(w), 0, 1)  # (K,) shares in [0, 1]
        add_lines(ax, paths, style.rgba(color, 0.5 + 0.5 * s), 1.0 + 4.0 * s, gid)


def _nodes(ax: Axes, routes: Routes, x: np.ndarray, ncols: int) -> None:
    """Every (token, row) of the grid faint, the route's nodes dark, the target ringed."""
    grid = np.array([(c, r) for r in range(len(routes.nodes)) for c in range(ncols)])
    ax.scatter(grid[:, 0], grid[:, 1], s=8, color=style.NONEDGE_COLOR, zorder=2)
    on = np.array([(x[i], r) for r, row in enumerate(routes.nodes) for i in row.numpy()])
    dots = ax.scatter(on[:, 0], on[:, 1], s=36, color=style.MEAN_COLOR, zorder=3)
    dots.set_gid("nodes")
    top = len(routes.nodes) - 1
    ring = ax.scatter([x[routes.target]], [top], s=260, facecolor="none", zorder=4,
                      edgecolor=RESIDUAL_COLOR, linewidth=2.0)
    ring.set_gid("target")


def _axes(ax: Axes, routes: Routes, cols: np.ndarray, rows: int) -> None:
    """Token labels below, layer names on the left, a legend of the two edge kinds."""
    tokens = routes.layers[0].graph.tokens
    labels = [f"{style.short(tokens[i])} {i}" if tokens else str(i) for i in cols]
    step = style.label_step(len(cols))
    ax.set_xticks(np.arange(0, len(cols), step), labels[::step], rotation=60, ha="right",
                  fontsize=style.label_fontsize(len(cols) // step))
    names = ["input"] + [f"layer {l}" for l in range(rows - 1)]  # each layer's output
    ax.set_yticks(np.arange(rows), names, fontsize=8)
    ax.set_xlim(-0.7, len(cols) - 0.3)
    ax.set_ylim(-0.5, rows - 0.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles = [Line2D([], [], color=ATTENTION_COLOR, lw=2.5, label="attention"),
               Line2D([], [], color=RESIDUAL_COLOR, lw=2.5, label="residual")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
              frameon=False)
