"""``draw_reach``: how the receptive field of every token grows layer by layer."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from graphattn import analysis
from graphattn.graph import TokenGraph
from graphattn.plot import style
from graphattn.plot.graph import describe, set_title

__all__ = ["draw_reach"]

MAX_ANNOTATED = 24  # write the counts into the cells up to this many tokens


def draw_reach(
    graph: TokenGraph,
    layers: int,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Receptive field per token after 1, 2, ..., ``layers`` stacked layers.

    Row ``l`` (bottom to top) and column ``i`` show the fraction of tokens
    that can influence token ``i`` after ``l`` layers (residual connections
    included), from :func:`graphattn.analysis.reach`. Small drawings write the
    token counts into the cells.

    Parameters
    ----------
    graph : TokenGraph
        A self graph (one attention layer's pattern).
    layers : int
        The number of stacked layers (at least 1).
    ax : matplotlib Axes, optional
        Where to draw.
    title : str, optional
        Title (default: the graph's name and sizes).

    Returns
    -------
    matplotlib.axes.Axes
        Its image (gid ``"reach"``) holds the fractions ``(layers, N)``.

    Raises
    ------
    TypeError, ValueError
        For a graph that is not a self TokenGraph or ``layers < 1``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from graphattn import patterns
    >>> ax = draw_reach(patterns.sliding_window(8, 3), 3)
    >>> ax.images[0].get_array().shape
    (3, 8)
    >>> plt.close("all")
    """
    style.check_graph(graph)
    if isinstance(layers, bool) or not isinstance(layers, (int, np.integer)) or layers < 1:
        raise ValueError(f"layers must be an int >= 1, got {layers!r}")
    if graph.is_cross:
        raise ValueError("draw_reach needs a self graph; a cross graph does not stack")
    counts = np.stack(
        [analysis.reach(graph, l).in_degree().numpy() for l in range(1, layers + 1)]
    )  # (L, N) tokens reaching each target
    n = graph.num_nodes
    frac = counts / graph.num_src_nodes  # (L, N)
    width = style.clamp(0.32 * n + 2.5, 5, 14)
    ax = style.new_axes(ax, (width, style.clamp(0.35 * layers + 1.8, 2.5, 8)))
    im = ax.imshow(
        frac, cmap=style.FIELD_CMAP, vmin=0.0, vmax=1.0, origin="lower", aspect="auto",
        interpolation="nearest",
    )
    im.set_gid("reach")
    ax.figure.colorbar(im, ax=ax, label="fraction of tokens reaching i", shrink=0.9, pad=0.02)
    if n <= MAX_ANNOTATED and layers <= 16:
        _write_counts(ax, counts, frac)
    _label_axes(ax, graph, layers)
    full = np.nonzero((counts == graph.num_src_nodes).all(1))[0]
    note = (
        f"every token reaches every token after {full[0] + 1} layers" if full.size else None
    )
    set_title(ax, f"receptive field of {describe(graph)}" if title is None else title, note)
    return ax


def _write_counts(ax: Axes, counts: np.ndarray, frac: np.ndarray) -> None:
    """The token count ``counts (L, N)`` in every cell, light on dark cells."""
    for (l, i), c in np.ndenumerate(counts):
        ax.text(
            i, l, str(c), ha="center", va="center", fontsize=7,
            color="white" if frac[l, i] < 0.55 else "black",
        )


def _label_axes(ax: Axes, graph: TokenGraph, layers: int) -> None:
    """Token labels across (thinned, slanted when long), layer numbers up."""
    n = graph.num_nodes
    labels, _ = style.token_labels(graph)
    step = style.label_step(n)
    ticks = list(range(0, n, step))
    ax.set_xticks(ticks, [labels[k] for k in ticks], fontsize=style.label_fontsize(len(ticks)))
    if n <= style.MAX_LABELS and max(len(t) for t in labels) > 2:
        for t in ax.get_xticklabels():
            t.set(rotation=60, ha="right", rotation_mode="anchor")
    lstep = max(1, layers // 12)
    ax.set_yticks(range(0, layers, lstep), [str(l + 1) for l in range(0, layers, lstep)])
    ax.set_xlabel("target token i", fontsize=9)
    ax.set_ylabel("layers", fontsize=9)
