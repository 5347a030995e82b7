"""Drawings of token graphs, attention and information flow (matplotlib), and an offline viewer.

Every drawing function takes ``ax=None`` (a new figure when omitted), returns
its Axes (or an array of Axes for grids) and never calls ``plt.show()``. The
artists carry gids (``"edges"``, ``"matrix"``, ...) that :func:`find_artist`
finds. Plot reads results; it never computes attention.
"""

from graphattn.plot.attention import draw_attention, draw_heads, prune
from graphattn.plot.flowplot import draw_flow
from graphattn.plot.graph import draw_graph, find_artist
from graphattn.plot.html import to_html
from graphattn.plot.layouts import LAYOUTS, Layout, compute_layout
from graphattn.plot.matrix import draw_matrix, draw_pattern, draw_patterns
from graphattn.plot.notebook import Viewer, show
from graphattn.plot.reach import draw_reach
from graphattn.plot.rollout import draw_rollout
from graphattn.plot.routes import draw_routes
from graphattn.plot.style import (
    HEAD_COLORS,
    MAX_GRAPH_EDGES,
    MAX_MATRIX_TOKENS,
    head_color,
    save_figure,
)

__all__ = [
    "HEAD_COLORS",
    "LAYOUTS",
    "MAX_GRAPH_EDGES",
    "MAX_MATRIX_TOKENS",
    "Layout",
    "Viewer",
    "compute_layout",
    "draw_attention",
    "draw_flow",
    "draw_graph",
    "draw_heads",
    "draw_matrix",
    "draw_pattern",
    "draw_patterns",
    "draw_reach",
    "draw_rollout",
    "draw_routes",
    "find_artist",
    "head_color",
    "prune",
    "save_figure",
    "show",
    "to_html",
]
