"""Labels that do not overprint each other, and that read alike across panels.

:func:`place_labels` puts each label at the first of a list of offsets (in
points, away from its anchor) where its box overlaps no label placed before
it and no anchor, measured with the figure's renderer after its layout.
:func:`same_angle` turns the token labels of panels drawn side by side to
one angle, the steepest any of them needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.text import Text
from matplotlib.transforms import Bbox

__all__ = ["BESIDE", "NEXT_TO", "place_labels", "same_angle"]

#: Offsets for a scatter plot: up-right first, then the other corners, then further out.
NEXT_TO = tuple(
    (dx, dy, "left" if dx > 0 else "right")
    for dy in (4, -12, 14, -22, 24, -32, 34, -42)
    for dx in (6, -6, 20, -20)
)
#: Offsets for labels at the ends of lines: to the right, shifted up or down as needed.
BESIDE = tuple((4, dy, "left") for dy in (0, 6, -6, 12, -12, 18, -18, 24, -24))


def place_labels(
    ax: Axes,
    anchors: Sequence[tuple[float, float]],
    labels: Sequence[str],
    offsets: Sequence[tuple[float, float, str]] = NEXT_TO,
    *,
    marker_pt: float = 3.5,
    **text_kw,
) -> list[Text]:
    """Annotate each anchor (data coordinates) with its label where it collides least.

    Each label takes the first offset ``(dx, dy, ha)`` (points) whose box
    lies inside the Axes and overlaps no earlier label and no anchor (a
    square of ``marker_pt`` points around it); where every offset collides,
    the one with the fewest collisions. ``text_kw`` goes to ``ax.annotate``.

    Returns
    -------
    list of matplotlib.text.Text
        The labels, in the order given.
    """
    fig = ax.figure
    fig.draw_without_rendering()  # the layout first: boxes are measured where they end up
    points = ax.transData.transform(np.asarray(anchors, dtype=float).reshape(-1, 2))  # (K, 2) px
    scale = fig.dpi / 72.0  # pixels per point
    r = marker_pt * scale  # pixels
    markers = [Bbox.from_extents(*(p - r), *(p + r)) for p in points]
    frame = ax.get_window_extent()
    placed: list[Bbox] = []
    texts = []
    for xy, label in zip(anchors, labels, strict=True):
        text, box = _place_one(ax, xy, label, offsets, placed + markers, frame, scale, text_kw)
        placed.append(box)
        texts.append(text)
    return texts


def _place_one(
    ax: Axes,
    xy: tuple[float, float],
    label: str,
    offsets: Sequence[tuple[float, float, str]],
    taken: list[Bbox],
    frame: Bbox,
    scale: float,
    text_kw: dict,
) -> tuple[Text, Bbox]:
    """One label at the first offset that collides with nothing, else with the fewest; its box.

    A collision is an overlap with a box of ``taken`` or a box outside
    ``frame``; the texts tried at the other offsets are removed again.
    """
    best = None
    for rank, (dx, dy, ha) in enumerate(offsets):
        text = ax.annotate(label, xy, xytext=(dx, dy), textcoords="offset points",
                           ha=ha, va="center", **text_kw)
        box = text.get_window_extent().padded(scale)
        hits = sum(box.overlaps(b) for b in taken) + _outside(box, frame)
        if best is None or (hits, rank) < best[0]:
            if best is not None:
                best[1].remove()
            best = ((hits, rank), text, box)
        else:
            text.remove()
        if hits == 0:
            break
    return best[1], best[2]


def _outside(box: Bbox, frame: Bbox) -> bool:
    """Whether ``box`` reaches past ``frame`` on any side."""
    return box.x0 < frame.x0 or box.y0 < frame.y0 or box.x1 > frame.x1 or box.y1 > frame.y1


def same_angle(axes: Sequence[Axes], gid: str = "labels-dst") -> float:
    """Give the ``gid`` labels of every Axes the largest rotation any of them has; return it.

    Two texts drawn as arcs in one figure rotate their token labels only
    where long words need it; side by side they should read alike.
    """
    texts = [t for ax in axes for t in ax.texts if t.get_gid() == gid]
    angle = max((t.get_rotation() for t in texts), default=0.0)
    for t in texts:
        t.set_rotation(angle)
        t.set_rotation_mode("anchor")
        t.set_horizontalalignment("right" if angle else "center")
    return angle
