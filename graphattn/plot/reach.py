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
    share: str = "all",
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
    share : {"all", "allowed"}
        What the fraction is of: every token (``"all"``), or the sources each
        target may see (``"allowed"``: ``j <= i`` for a causal graph, see
        :func:`graphattn.analysis.reach_coverage`), so that causal and
        bidirectional patterns compare.
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
    style.check_title(title)
    _check_reach(graph, layers, share)
    counts, allowed, causal = _reach_counts(graph, layers, share)
    frac = counts / allowed  # (L, N)
    n = graph.num_nodes
    width = style.clamp(0.32 * n + 2.5, 5, 14)
    ax = style.new_axes(ax, (width, style.clamp(0.35 * layers + 1.8, 2.5, 8)))
    _draw_image(ax, frac, causal)
    if n <= MAX_ANNOTATED and layers <= 16:
        _write_counts(ax, counts, frac)
    _label_axes(ax, graph, layers)
    title = f"receptive field of {describe(graph)}" if title is None else title
    set_title(ax, title, _full_note(counts, allowed, causal))
    return ax


def _check_reach(graph: TokenGraph, layers: object, share: object) -> None:
    """``ValueError`` unless ``layers >= 1``, ``graph`` is a self graph and ``share`` is known."""
    if isinstance(layers, bool) or not isinstance(layers, (int, np.integer)) or layers < 1:
        raise ValueError(f"layers must be an int >= 1, got {layers!r}")
    if graph.is_cross:
        raise ValueError("draw_reach needs a self graph; a cross graph does not stack")
    if share not in ("all", "allowed"):
        raise ValueError(f"share must be 'all' or 'allowed', got {share!r}")


def _draw_image(ax: Axes, frac: np.ndarray, causal: bool) -> None:
    """The fractions ``frac (L, N)`` as an image (first layer at the bottom), with a colorbar."""
    im = ax.imshow(
        frac, cmap=style.FIELD_CMAP, vmin=0.0, vmax=1.0, origin="lower", aspect="auto",
        interpolation="nearest",
    )
    im.set_gid("reach")
    label = "share reaching i\n(of the j <= i it may see)" if causal else "share reaching i"
    ax.figure.colorbar(im, ax=ax, label=label, shrink=0.9, pad=0.02)


def _full_note(counts: np.ndarray, allowed: np.ndarray, causal: bool) -> str | None:
    """The title's note: after how many layers every token reaches all it may (None: never)."""
    full = np.nonzero((counts == allowed).all(1))[0]  # layers (0-based) where all are reached
    if not full.size:
        return None
    return (
        f"every token reaches every token {'it may see ' if causal else ''}after "
        f"{full[0] + 1} layers"
    )


def _reach_counts(graph: TokenGraph, layers: int, share: str) -> tuple:
    """Tokens reaching each target ``(L, N)``, the allowed count ``(N,)``, and if causal."""
    counts = np.stack(
        [analysis.reach(graph, l).in_degree().numpy() for l in range(1, layers + 1)]
    )  # (L, N)
    n = graph.num_nodes
    causal = share == "allowed" and analysis.is_causal(graph)
    allowed = np.arange(1, n + 1) if causal else np.full(n, graph.num_src_nodes)  # (N,)
    return counts, allowed, causal


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
