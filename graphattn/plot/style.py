"""The shared look of every drawing: head colours, colormaps, sizes, labels, saving.

One colour per head everywhere (``head_color(h)``), colour-blind-safe
colormaps, figure sizes that grow with the number of tokens, and the size
limits above which drawings prune edges or bin tokens.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap, to_rgb
from matplotlib.figure import Figure

from graphattn._files import atomic_write
from graphattn._validate import check_number, check_str
from graphattn.flow.batch import check_example, edge_batch, select_example
from graphattn.graph import TokenGraph

__all__ = [
    "MAX_DPI",
    "check_dpi",
    "HEAD_COLORS",
    "MAX_GRAPH_EDGES",
    "MAX_MATRIX_TOKENS",
    "MEAN_COLOR",
    "NONEDGE_COLOR",
    "WEIGHT_CMAP",
    "head_color",
    "save_figure",
]

# Head colours: Okabe & Ito's colour-blind-safe palette (first six), then six of
# Paul Tol's "muted" scheme; they repeat after twelve heads.
HEAD_COLORS = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#882255",  # wine
    "#117733",  # green
    "#332288",  # indigo
    "#999933",  # olive
    "#AA4499",  # purple
    "#44AA99",  # teal
)
MEAN_COLOR = "#222222"  # the mean over heads
EDGE_COLOR = "#253494"  # edges of a graph drawn without weights
NODE_EDGE_COLOR = "#444444"
WEIGHT_CMAP = "viridis"  # attention weights (perceptually uniform, colour-blind safe)
FIELD_CMAP = "cividis"  # receptive fields and relevance
MASK_CMAP = LinearSegmentedColormap.from_list("graphattn_mask", ["#9ecae1", EDGE_COLOR])
NONEDGE_COLOR = "#e6e6e6"  # pairs that are not edges: light grey ...
NONEDGE_HATCH_COLOR = "#b0b0b0"  # ... with grey hatching, a colour no colormap above uses
NONEDGE_HATCH = "////"

MAX_GRAPH_EDGES = 2000  # graph drawings above this prune weak edges or bin tokens
MAX_MATRIX_TOKENS = 512  # matrix images above this many tokens per side bin tokens
MAX_LABELS = 80  # more tokens than this: label every k-th token only
MAX_DPI = 2400  # resolutions above this make images of gigapixels (a 6-inch figure: 14400 px)
SAVE_FORMATS = (".png", ".svg", ".pdf")
# characters no XML (SVG) file may hold: C0 controls other than tab, newline and carriage
# return, and lone surrogates (no UTF-8 file can hold them); written as U+FFFD in SVG
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def head_color(head: int | str) -> str:
    """The colour of attention head ``head`` (``"mean"``: the mean over heads).

    Parameters
    ----------
    head : int or "mean"
        Head index (colours repeat every ``len(HEAD_COLORS)`` heads).

    Returns
    -------
    str
        A hex colour.

    Raises
    ------
    ValueError
        If ``head`` is negative or a string other than ``"mean"``.

    Examples
    --------
    >>> head_color(0), head_color(12), head_color("mean")
    ('#0072B2', '#0072B2', '#222222')
    """
    if isinstance(head, str):
        if head != "mean":
            raise ValueError(f"head must be an int or 'mean', got {head!r}")
        return MEAN_COLOR
    if isinstance(head, bool) or not isinstance(head, (int, np.integer)) or head < 0:
        raise ValueError(f"head must be a non-negative int or 'mean', got {head!r}")
    return HEAD_COLORS[int(head) % len(HEAD_COLORS)]


def rgba(color: str, alpha: np.ndarray) -> np.ndarray:
    """``(K, 4)`` RGBA rows of one colour with per-row ``alpha (K,)``."""
    out = np.empty((len(alpha), 4))
    out[:, :3] = to_rgb(color)
    out[:, 3] = alpha
    return out


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax`` itself, or the axes of a new figure of ``figsize`` inches."""
    if ax is not None:
        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
        return ax
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def clamp(value: float, lo: float, hi: float) -> float:
    """``value`` limited to ``[lo, hi]``."""
    return float(min(max(value, lo), hi))


def label_fontsize(n: int) -> float:
    """Font size (points) for ``n`` token labels side by side."""
    return clamp(220.0 / max(n, 1), 6.0, 10.0)


def short(label: str, width: int = 12) -> str:
    """A label cut to ``width`` characters (with an ellipsis)."""
    return label if len(label) <= width else label[: width - 1] + "\u2026"


def token_labels(graph: TokenGraph) -> tuple[list[str], list[str]]:
    """Target and source labels of ``graph`` (token strings, else indices)."""
    dst = graph.tokens or [str(i) for i in range(graph.num_nodes)]
    src = graph.src_tokens or [str(j) for j in range(graph.num_src_nodes)]
    return [short(t) for t in dst], [short(t) for t in src]


def token_name(graph: TokenGraph, i: int) -> str:
    """Target token ``i`` of ``graph`` in a title: its label and position, or ``token i``.

    Examples
    --------
    >>> g = TokenGraph([[0], [1]])
    >>> token_name(g.with_tokens(["a", "cat"]), 1), token_name(g, 1)
    ('“cat” (1)', 'token 1')
    """
    if graph.tokens is None:
        return f"token {i}"
    return f"“{short(graph.tokens[i])}” ({i})"


def label_step(n: int) -> int:
    """Label every ``label_step(n)``-th token so that at most ``MAX_LABELS`` show."""
    return max(1, -(-n // MAX_LABELS))


def check_graph(graph: object, arg: str = "graph") -> TokenGraph:
    """``graph`` if it is a :class:`TokenGraph` whose labels can be drawn and written.

    Raises ``TypeError`` for anything else, ``ValueError`` (from
    :func:`check_labels`) for a name or token holding a lone surrogate.
    """
    if not isinstance(graph, TokenGraph):
        raise TypeError(f"{arg} must be a TokenGraph, got {type(graph).__name__}")
    check_labels([graph.name or ""], f"{arg}.name")
    check_labels(graph.tokens or [], f"{arg}.tokens")
    check_labels(graph.src_tokens or [], f"{arg}.src_tokens")
    return graph


def graph_list(graphs: object, arg: str) -> list:
    """``graphs`` as a list: ``[graphs]`` for one TokenGraph, else the items of an iterable.

    The items are not checked here; anything that is not iterable (None, a
    number) is a ``TypeError`` naming ``arg``.
    """
    if isinstance(graphs, TokenGraph):
        return [graphs]
    if not hasattr(graphs, "__iter__"):
        raise TypeError(
            f"{arg} must be a TokenGraph or a sequence of TokenGraphs, got {type(graphs).__name__}"
        )
    return list(graphs)


def check_title(title: object) -> None:
    """``TypeError`` unless ``title`` is a str or None: the ``title`` of every drawing."""
    check_str(title, "title", optional=True)


def check_one_head(head: object, drawing: str) -> None:
    """``head`` is one head, an index or a str (``"mean"``), for ``drawing`` (``"a matrix"``).

    A list of heads is a ``ValueError``, any other kind a ``TypeError``; the
    value itself is checked against the weights by :func:`select_heads`.
    """
    if isinstance(head, (list, tuple)):
        raise ValueError(f"head must be one head index or 'mean' for {drawing}, got {head!r}")
    if isinstance(head, bool) or not isinstance(head, (str, int, np.integer)):
        raise TypeError(f"head must be an int or 'mean', got {type(head).__name__} {head!r}")


def check_labels(labels: Sequence[str], arg: str) -> None:
    """``ValueError`` naming ``arg[i]`` for a label holding a lone surrogate.

    A lone surrogate (``"\\ud800"``, what a bad decode can leave in a string)
    cannot be written to any UTF-8 file nor drawn by matplotlib, so a page or
    figure holding it could never be saved.

    Examples
    --------
    >>> check_labels(["ok", "bad\\ud800"], "tokens")
    Traceback (most recent call last):
    ...
    ValueError: tokens[1] holds a lone surrogate '\\ud800' (at 3), which no UTF-8 file can hold; \
got 'bad\\ud800'
    """
    for i, label in enumerate(labels):
        bad = LONE_SURROGATE.search(label)
        if bad:
            raise ValueError(
                f"{arg}[{i}] holds a lone surrogate {bad.group()!r} (at {bad.start()}), which no "
                f"UTF-8 file can hold; got {label!r}"
            )


def check_weights(
    weights: object, graph: TokenGraph, arg: str = "weights", example: int | None = None
) -> torch.Tensor:
    """One example's per-edge weights as a float64 CPU tensor ``(E, H)`` (1-d input: ``H = 1``).

    Batched weights ``(B, E)`` or ``(B, E, H)`` (what ``graphattn.hf.record``
    and ``graphattn.flow.contributions`` hold) give example ``example``; a
    batch of one needs none (the rule of :mod:`graphattn.flow.batch`).

    Raises ``TypeError``/``ValueError`` naming ``arg`` for a wrong type, shape,
    ``example`` or non-finite values.
    """
    if isinstance(weights, np.ndarray):
        weights = torch.from_numpy(weights)
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"{arg} must be a tensor (E,) or (E, H), got {type(weights).__name__}")
    if weights.is_complex():
        raise TypeError(f"{arg} must hold real numbers, got dtype {weights.dtype}")
    b = check_example(example, edge_batch(weights, graph), arg)
    w = (weights if b is None else weights[b]).detach().to("cpu", torch.float64)
    if w.dim() == 1:
        w = w.unsqueeze(1)  # (E, 1)
    if w.dim() != 2 or w.shape[0] != graph.num_edges or w.shape[1] == 0:
        raise ValueError(
            f"{arg} must have shape (E,), (E, H), (B, E) or (B, E, H) with E = "
            f"graph.num_edges = {graph.num_edges}, got {tuple(weights.shape)}"
        )
    if not torch.isfinite(w).all():
        raise ValueError(f"{arg} holds NaN or infinite values")
    return w


def select_heads(w: torch.Tensor, head: int | str | Sequence[int], arg: str = "head"):
    """Pick heads from weights ``w (E, H)``.

    Returns a list of ``(key, values (E,))`` with ``key`` the head index or
    ``"mean"``.
    """
    num_heads = w.shape[1]
    if isinstance(head, str):
        if head != "mean":
            raise ValueError(f"{arg} must be an int, a list of ints or 'mean', got {head!r}")
        return [("mean", w.mean(1))]
    if isinstance(head, (int, np.integer)):
        heads = [head]
    elif isinstance(head, (Sequence, np.ndarray)):
        heads = list(head)
    else:
        raise TypeError(
            f"{arg} must be an int, a list of ints or 'mean', got {type(head).__name__} {head!r}"
        )
    if not heads:
        raise ValueError(f"{arg} selects no head")
    for h in heads:
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or not 0 <= h < num_heads:
            raise ValueError(f"{arg} must hold head indices in [0, {num_heads}), got {h!r}")
    return [(int(h), w[:, int(h)]) for h in heads]


def check_path(path: str | os.PathLike, allowed: Sequence[str] = SAVE_FORMATS) -> Path:
    """``path`` as a ``Path`` whose suffix is one of ``allowed``, else ``ValueError``."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path, got {type(path).__name__}")
    path = Path(path)
    if path.suffix.lower() not in allowed:
        raise ValueError(
            f"path must end in one of {', '.join(allowed)}, got {path.name!r}"
        )
    if not path.parent.is_dir():
        raise ValueError(f"the folder of path does not exist: {str(path.parent)!r}")
    return path


def check_dpi(dpi: object, name: str = "dpi") -> float:
    """``dpi`` as a float in ``(0, MAX_DPI]``; checked before anything is drawn.

    Examples
    --------
    >>> check_dpi(150)
    150.0
    >>> check_dpi(float("nan"), "--dpi")
    Traceback (most recent call last):
    ...
    ValueError: --dpi must be a finite number in (0, 2400], got nan
    """
    return check_number(dpi, name, low=0, low_open=True, high=MAX_DPI)


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: float = 150) -> Path:
    """Save ``fig`` as PNG, SVG or PDF (format from the extension), written atomically.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (``ax.figure`` of any drawing).
    path : str or path-like
        Target file ending in ``.png``, ``.svg`` or ``.pdf``.
    dpi : float
        Resolution of PNG output.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        If the extension is not one of the three, the folder does not exist or
        ``dpi`` is not in ``(0, MAX_DPI]``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from graphattn.plot import draw_matrix
    >>> ax = draw_matrix(TokenGraph([[0, 0, 1], [0, 1, 1]]))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save_figure(ax.figure, pathlib.Path(d) / "mask.svg").stat().st_size > 0
    True
    >>> plt.close("all")
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    path = check_path(path)
    dpi = check_dpi(dpi)
    fmt = path.suffix.lower().lstrip(".")
    settle_layout(fig)
    if fmt == "svg":  # text: made well-formed XML before it is written
        buf = io.StringIO()
        fig.savefig(buf, format="svg", dpi=dpi)
        svg = LONE_SURROGATE.sub("\ufffd", XML_INVALID.sub("\ufffd", buf.getvalue()))
        return atomic_write(path, lambda tmp: tmp.write_text(svg, encoding="utf-8"))
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi))


def settle_layout(fig: Figure, passes: int = 3) -> None:
    """Run ``fig``'s layout engine until every artist lies on the canvas (at most ``passes``).

    Constrained layout measures each Axes where it stood before the draw, so a
    fixed-aspect Axes (a matrix) that the draw then shrinks or grows can push
    its labels off the canvas on the first pass; the next pass starts from
    the adjusted boxes and fits them.
    """
    if fig.get_layout_engine() is None:
        return
    for _ in range(passes):
        fig.draw_without_rendering()
        box = fig.get_tightbbox()  # inches
        if box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.get_figwidth() and (
            box.y1 <= fig.get_figheight()
        ):
            return


def check_layers(
    layers: object, *, weights: bool = True, example: int | None = None
) -> list[tuple[TokenGraph, torch.Tensor]]:
    """One example's ``(graph, weights)`` pairs, checked; weights as float64 ``(E, H)``."""
    out = []
    for k, (g, w) in enumerate(layer_pairs(layers, example)):
        if w is None and not weights:
            out.append((g, None))
            continue
        out.append((g, check_weights(w, g, f"layers[{k}][1]")))
    return out


def layer_pairs(layers: object, example: int | None = None) -> list[tuple[TokenGraph, object]]:
    """One example's ``(graph, weights)`` pairs of ``layers``, graphs checked, weights as given.

    Batched layers (weights ``(B, E)`` or ``(B, E, H)``) give example
    ``example``'s weights, by the rule of :mod:`graphattn.flow.batch`.
    """
    if isinstance(layers, (TokenGraph, torch.Tensor)) or not isinstance(layers, Sequence):
        raise TypeError(
            f"layers must be a sequence of (graph, weights) pairs, got {type(layers).__name__}"
        )
    if not layers:
        raise ValueError("layers is empty; give at least one (graph, weights) pair")
    out = []
    for k, pair in enumerate(layers):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(
                f"layers[{k}] must be a (graph, weights) pair, got {type(pair).__name__}"
            )
        out.append((check_graph(pair[0], f"layers[{k}][0]"), pair[1]))
    return select_example(out, example)


def check_max_edges(max_edges: int) -> None:
    """``ValueError`` unless ``max_edges`` is a positive int."""
    if isinstance(max_edges, bool) or not isinstance(max_edges, (int, np.integer)) or max_edges < 1:
        raise ValueError(f"max_edges must be a positive int, got {max_edges!r}")
