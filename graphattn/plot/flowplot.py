"""``draw_flow``: information flowing through a stack of attention layers.

Rows of tokens from the input (bottom) to the last layer (top); the edges of
layer ``l`` go from row ``l`` to row ``l + 1`` with width and opacity growing
with their weight (or a given flow value), and an optional strip of token
relevance (e.g. a row of ``graphattn.flow.attention_rollout``) colours a row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.axes import Axes

from graphattn._validate import check_int
from graphattn.graph import TokenGraph
from graphattn.plot import style
from graphattn.plot.attention import prune
from graphattn.plot.graph import add_lines, draw_nodes, figsize_for, join_notes, set_title
from graphattn.plot.layouts import Layout, compute_layout

__all__ = ["draw_flow"]


def draw_flow(
    layers: Sequence[tuple[TokenGraph, torch.Tensor | None]],
    *,
    example: int | None = None,
    flow: Sequence[torch.Tensor] | None = None,
    relevance: torch.Tensor | None = None,
    relevance_row: int = 0,
    target: int | None = None,
    head: int | str = "mean",
    ax: Axes | None = None,
    title: str | None = None,
    max_edges: int = style.MAX_GRAPH_EDGES,
) -> Axes:
    """The layered information-flow drawing, with an optional relevance strip.

    Parameters
    ----------
    layers : sequence of (TokenGraph, tensor (E, H) or None)
        One ``(graph, weights)`` pair per layer, as models return them; the
        sources of layer ``l + 1`` must be the targets of layer ``l``. Weights
        may be None where ``flow`` is given, or batched (see ``example``).
    example : int, optional
        Which example of batched layers (weights ``(B, E)`` or ``(B, E, H)``,
        as ``graphattn.hf.record`` and ``graphattn.flow.contributions`` hold
        them) to draw; may be left out for one example or a batch of one.
        ``flow`` and ``relevance`` are that example's.
    flow : sequence of tensor (E_l,), optional
        A value per edge and layer to draw instead of the weights (e.g. a
        max-flow or rollout contribution).
    relevance : tensor (n,), optional
        A value per token of row ``relevance_row`` (0: the input tokens, -1:
        the last layer's), drawn as a strip of coloured squares over that row.
    relevance_row : int
        Which row ``relevance`` colours.
    target : int, optional
        The last layer's token whose relevance is shown (the row ``i`` of a
        rollout, the sink of a flow): marked with a ring, named in the title.
    head : int or "mean"
        Which head of the weights to draw (default: the mean over heads).
    ax : matplotlib Axes, optional
        Where to draw.
    title : str, optional
        Title (default: number of layers and what the widths show).
    max_edges : int
        Above this many edges in all, each layer keeps only the strongest
        incoming edges per target; the title says so.

    Returns
    -------
    matplotlib.axes.Axes
        Edges are one collection with gid ``"edges"`` (layer by layer, each in
        edge order); the strip is gid ``"relevance"``, the target's ring
        ``"target"``.

    Raises
    ------
    TypeError, ValueError
        For malformed layers, flows, relevance or head, layers that do not
        chain, or a batch of several examples without ``example``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from graphattn.plot import find_artist
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["a", "b"])
    >>> w = torch.tensor([1.0, 0.3, 0.7])
    >>> ax = draw_flow([(g, w), (g, w)], relevance=torch.tensor([0.8, 0.2]), target=1)
    >>> len(find_artist(ax, "edges").get_paths()), ax.get_title().splitlines()[0]
    (6, 'relevance of each input token for target “b” (1), through 2 layers')
    >>> plt.close("all")
    """
    pairs = style.check_layers(layers, weights=flow is None, example=example)
    style.check_one_head(head, "a flow")
    check_int(relevance_row, "relevance_row")
    style.check_title(title)
    graphs = [g for g, _ in pairs]
    values = _layer_values(pairs, flow, head)  # (E_l,) per layer
    style.check_max_edges(max_edges)
    target = _check_target(target, graphs[-1].num_nodes)
    lay = compute_layout(graphs, "layered")
    rel = _check_relevance(relevance, relevance_row, lay.rows)
    ax = style.new_axes(ax, figsize_for(lay, graphs))
    color = style.MEAN_COLOR if flow is not None else style.head_color(head)
    notes = _draw_edges(ax, lay, graphs, values, max_edges, color)
    draw_nodes(ax, lay, graphs)
    _mark_relevance(ax, lay, rel, target)
    if title is None:
        title = _default_title(graphs, flow is not None, head, target)
    set_title(ax, title, join_notes(notes))
    return ax


def _mark_relevance(
    ax: Axes, lay: Layout, rel: tuple[int, np.ndarray] | None, target: int | None
) -> None:
    """The relevance strip over its row and the ring around the target, where given."""
    if rel is not None:
        _relevance_strip(ax, lay.rows[rel[0]], rel[1])
    if target is not None:
        _mark_target(ax, lay.rows[-1], target)


def _default_title(
    graphs: list[TokenGraph], is_flow: bool, head: int | str, target: int | None
) -> str:
    """What the drawing shows: the target's relevance, or the flow through the layers."""
    what = "flow values" if is_flow else (
        "mean attention over heads" if head == "mean" else f"attention of head {head}"
    )
    if target is None:
        return f"information flow through {len(graphs)} layers (width = {what})"
    return (
        f"relevance of each input token for target {style.token_name(graphs[-1], target)}, through "
        f"{len(graphs)} layers\n(width = {what})"
    )


def _check_target(target: int | None, n: int) -> int | None:
    """``target`` as a position in ``[0, n)`` of the last layer's tokens (None stays None)."""
    if target is None:
        return None
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise TypeError(f"target must be an int token position, got {type(target).__name__}")
    if not -n <= target < n:
        raise ValueError(f"target must be in [-{n}, {n}) for the last layer's tokens, got {target}")
    return int(target) % n


def _mark_target(ax: Axes, xy: np.ndarray, target: int) -> None:
    """A ring around the target token of the last row, labelled "target"."""
    ring = ax.scatter(
        xy[target : target + 1, 0], xy[target : target + 1, 1], s=420, marker="o",
        facecolor="none", edgecolor=style.HEAD_COLORS[1], linewidth=2.2, zorder=4,
    )
    ring.set_gid("target")
    ax.annotate(
        "target", xy[target], xytext=(13, -13), textcoords="offset points", ha="left", va="top",
        fontsize=9, color=style.HEAD_COLORS[1], fontweight="bold",
    )


def _draw_edges(
    ax: Axes,
    lay: Layout,
    graphs: list[TokenGraph],
    values: list[torch.Tensor],
    max_edges: int,
    color: str,
) -> set[str | None]:
    """The edges, layer by layer, in ``color``, wider and more opaque with their value.

    Above ``max_edges`` edges in all, every layer is pruned to an equal share;
    returns the pruning notes.
    """
    top = max((float(v.max()) for v in values if v.numel()), default=0.0)
    top = top if top > 0 else 1.0
    total = sum(g.num_edges for g in graphs)
    budget = max_edges // len(graphs) if total > max_edges else None
    paths, strength, notes = [], [], set()
    for layer, (g, v) in enumerate(zip(graphs, values, strict=True)):
        keep, note = prune(g, v, max_edges=budget)
        notes.add(note)
        paths += lay.edge_paths(g.src[keep].numpy(), g.dst[keep].numpy(), layer)
        strength.append((v[keep] / top).clamp(0, 1).numpy())  # (E_kept,) in [0, 1]
    s = np.concatenate(strength)  # (E_drawn,)
    add_lines(ax, paths, style.rgba(color, 0.06 + 0.94 * s), 0.3 + 3.2 * s, "edges")
    return notes


def _relevance_strip(ax: Axes, xy: np.ndarray, r: np.ndarray) -> None:
    """Coloured squares ``r (n,)`` over the nodes at ``xy (n, 2)``, with a colorbar."""
    size = style.clamp(5000 / max(len(xy), 1), 20, 260)
    strip = ax.scatter(
        xy[:, 0], xy[:, 1], c=r, s=size, marker="s", cmap=style.FIELD_CMAP,
        vmin=min(0.0, float(r.min())), vmax=float(r.max()) if float(r.max()) > 0 else 1.0,
        edgecolor=style.NODE_EDGE_COLOR, linewidth=0.6, zorder=3,
    )
    strip.set_gid("relevance")
    ax.figure.colorbar(strip, ax=ax, label="relevance", shrink=0.7, pad=0.01)


def _layer_values(
    pairs: list[tuple[TokenGraph, torch.Tensor | None]],
    flow: Sequence[torch.Tensor] | None,
    head: int | str,
) -> list[torch.Tensor]:
    """The value ``(E_l,)`` drawn for every edge of every layer."""
    if flow is None:
        return [style.select_heads(w, head)[0][1] for _, w in pairs]
    if isinstance(flow, torch.Tensor) or not isinstance(flow, Sequence):
        raise TypeError(f"flow must be a sequence of (E,) tensors, got {type(flow).__name__}")
    if len(flow) != len(pairs):
        raise ValueError(f"flow must hold one tensor per layer ({len(pairs)}), got {len(flow)}")
    out = []
    for k, ((g, _), f) in enumerate(zip(pairs, flow, strict=True)):
        v = style.check_weights(f, g, f"flow[{k}]")
        if v.shape[1] != 1:
            raise ValueError(f"flow[{k}] must have shape (E,), got {tuple(f.shape)}")
        out.append(v[:, 0])
    return out


def _check_relevance(
    relevance: torch.Tensor | None, row: int, rows: Sequence[np.ndarray]
) -> tuple[int, np.ndarray] | None:
    """``(row, relevance (n,))``, ``row`` in ``[0, len(rows))``, checked; None without relevance."""
    if relevance is None:
        return None
    if isinstance(row, bool) or not isinstance(row, int) or not -len(rows) <= row < len(rows):
        raise ValueError(
            f"relevance_row must be an int in [-{len(rows)}, {len(rows)}), got {row!r}"
        )
    row = row % len(rows)
    if isinstance(relevance, np.ndarray):
        relevance = torch.from_numpy(relevance)
    if not isinstance(relevance, torch.Tensor):
        raise TypeError(f"relevance must be a tensor (n,), got {type(relevance).__name__}")
    n = len(rows[row])
    if tuple(relevance.shape) != (n,):
        raise ValueError(
            f"relevance must have shape ({n},) for row {row}, got {tuple(relevance.shape)}"
        )
    r = relevance.detach().to("cpu", torch.float64)
    if not torch.isfinite(r).all():
        raise ValueError("relevance holds NaN or infinite values")
    return row, r.numpy()
