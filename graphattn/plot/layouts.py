"""Where tokens go: node positions and edge shapes of every drawing layout.

A layout places rows of nodes and says how an edge from a node of row ``l``
to a node of row ``l + 1`` is drawn:

- ``"arc"``: tokens on a line, edges as arcs, above the line from an earlier
  to a later token and below the other way; self loops as small circles.
- ``"bipartite"``: sources in a left column, targets in a right column,
  straight edges left to right (the natural layout of cross graphs).
- ``"layered"``: rows of tokens from bottom to top, one row per layer, edges
  going up (a stack of layers; one graph is two rows).
- ``"circle"``: tokens clockwise on a circle from the top, curved edges.
- ``"spring"`` or any networkx layout name (``"kamada_kawai"``, ``"spectral"``,
  ``"shell"``, ``"planar"``, ``"random"``, ...), a callable ``G -> {node: (x, y)}``
  or such a dict itself: positions of ``graph.to_networkx()`` nodes, curved edges.

Curved edges bend to the left of their direction, so ``j -> i`` and
``i -> j`` are two distinct curves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

from graphattn.graph import TokenGraph
from graphattn.plot import style

__all__ = ["LAYOUTS", "Layout", "compute_layout"]

LAYOUTS = ("auto", "arc", "bipartite", "layered", "circle", "spring")
ARC_POINTS = 24  # polyline points of one arc or curve
SEEDED = ("spring", "random")  # networkx layouts that take seed= (drawn reproducibly)


@dataclass(frozen=True)
class Layout:
    """Node positions and edge shape of one drawing.

    Attributes
    ----------
    kind : str
        ``"arc"``, ``"bipartite"``, ``"layered"``, ``"circle"`` or ``"network"``.
    rows : tuple of ndarray
        Positions ``(n_r, 2)`` of each row of nodes; the edges of graph ``l``
        go from row ``l`` (sources) to row ``l + 1`` (targets).
    shared : bool
        True when rows 0 and 1 are the same nodes (a self graph drawn once).
    edge_style : str
        ``"arc"``, ``"line"`` or ``"bend"``.
    unit : float
        Typical distance between neighbouring nodes (sizes self loops).
    """

    kind: str
    rows: tuple[np.ndarray, ...]
    shared: bool
    edge_style: str
    unit: float = 1.0

    def edge_paths(self, src: np.ndarray, dst: np.ndarray, layer: int = 0) -> list[np.ndarray]:
        """Polylines ``(K, 2)`` of edges ``src[e] -> dst[e]`` of graph ``layer``."""
        p0 = self.rows[layer][src]  # (E, 2)
        p1 = self.rows[layer + 1][dst]  # (E, 2)
        if self.edge_style == "line":
            return list(np.stack([p0, p1], 1))  # E x (2, 2)
        loop = np.all(p0 == p1, axis=1) if self.shared else np.zeros(len(src), bool)  # (E,)
        t = np.linspace(0.0, 1.0, ARC_POINTS)[None, :, None]  # (1, K, 1)
        if self.edge_style == "arc":
            paths = _arcs(p0, p1, t)
        else:
            paths = _bends(p0, p1, t)
        if loop.any():
            paths[loop] = self._loops(p0[loop], t)
        return list(paths)

    def _loops(self, p: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Small circles ``(k, K, 2)`` through the nodes ``p (k, 2)``, pointing away."""
        if self.kind == "arc":
            out = np.tile([0.0, 1.0], (len(p), 1))  # (k, 2) upwards
        else:
            center = self.rows[0].mean(0)
            out = p - center
            norm = np.linalg.norm(out, axis=1, keepdims=True)
            out = np.where(norm > 0, out / np.maximum(norm, 1e-12), [0.0, 1.0])  # (k, 2)
        r = (0.2 if self.kind == "arc" else 0.12) * self.unit
        c = p + r * out  # (k, 2) circle centres
        ang = np.arctan2(-out[:, 1], -out[:, 0])[:, None] + 2 * np.pi * t[..., 0]  # (k, K)
        return c[:, None, :] + r * np.stack([np.cos(ang), np.sin(ang)], -1)  # (k, K, 2)


def _arcs(p0: np.ndarray, p1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Half ellipses ``(E, K, 2)`` over the line: above when going right, else below."""
    theta = np.pi * t[..., 0]  # (1, K)
    cx = (p0[:, :1] + p1[:, :1]) / 2  # (E, 1)
    half = (p1[:, :1] - p0[:, :1]) / 2  # (E, 1), signed: > 0 going right
    x = cx - half * np.cos(theta)  # (E, K)
    y = p0[:, 1:] + half * 0.6 * np.sin(theta)  # (E, K): above for half > 0
    return np.stack([x, y], -1)


def _bends(p0: np.ndarray, p1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Quadratic Bezier curves ``(E, K, 2)`` bending to the left of ``p0 -> p1``."""
    d = p1 - p0  # (E, 2)
    left = np.stack([-d[:, 1], d[:, 0]], 1)  # (E, 2), d turned by +90 degrees
    ctrl = (p0 + p1) / 2 + 0.15 * left  # (E, 2)
    p0, ctrl, p1 = p0[:, None], ctrl[:, None], p1[:, None]  # (E, 1, 2)
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * ctrl + t**2 * p1  # (E, K, 2)


def _centered(n: int) -> np.ndarray:
    return np.arange(n, dtype=float) - (n - 1) / 2


def _min_spacing(xy: np.ndarray) -> float:
    """Median distance from each node to its nearest neighbour (1 for one node)."""
    if len(xy) < 2:
        return 1.0
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)  # (n, n)
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(1))) or 1.0


def compute_layout(
    graphs: TokenGraph | Sequence[TokenGraph],
    layout: str | Callable | dict = "auto",
) -> Layout:
    """Positions of the nodes of ``graphs`` under ``layout``.

    Parameters
    ----------
    graphs : TokenGraph or sequence of TokenGraph
        One graph, or (``"layered"`` only) a stack of graphs where the sources
        of graph ``l + 1`` are the targets of graph ``l``.
    layout : str, callable or dict
        ``"auto"`` (``"bipartite"`` for cross graphs, else ``"arc"``),
        ``"arc"``, ``"bipartite"``, ``"layered"``, ``"circle"``, a networkx
        layout name (``"spring"``, ``"kamada_kawai"``, ...), a callable taking
        ``graph.to_networkx()`` and returning ``{node: (x, y)}``, or that dict.

    Returns
    -------
    Layout

    Raises
    ------
    ValueError
        For an unknown layout name, ``"arc"`` on a cross graph, several graphs
        with another layout than ``"layered"``, or stacked graphs whose sizes
        do not chain.

    Examples
    --------
    >>> lay = compute_layout(TokenGraph([[0, 1], [1, 2]]), "arc")
    >>> lay.kind, lay.rows[0][:, 0].tolist()
    ('arc', [0.0, 1.0, 2.0])
    >>> [p.shape for p in lay.edge_paths(np.array([0]), np.array([2]))]
    [(24, 2)]
    """
    many = not isinstance(graphs, TokenGraph)
    stack = style.graph_list(graphs, "graphs")
    if not stack or not all(isinstance(g, TokenGraph) for g in stack):
        raise TypeError("graphs must be a TokenGraph or a non-empty sequence of TokenGraphs")
    graph = stack[0]
    if isinstance(layout, str) and layout == "auto":
        layout = "bipartite" if graph.is_cross else "arc"
    if many and layout != "layered":
        raise ValueError(f"several graphs are drawn with layout='layered' only, got {layout!r}")
    if layout == "layered":
        return _layered(stack)
    if layout == "arc":
        if graph.is_cross:
            raise ValueError("layout='arc' needs a self graph; use 'bipartite' for cross graphs")
        xy = np.stack([np.arange(graph.num_nodes, dtype=float), np.zeros(graph.num_nodes)], 1)
        return Layout("arc", (xy, xy), True, "arc")
    if layout == "bipartite":
        src = np.stack([np.zeros(graph.num_src_nodes), -_centered(graph.num_src_nodes)], 1)
        dst = np.stack([np.full(graph.num_nodes, 1.0), -_centered(graph.num_nodes)], 1)
        return Layout("bipartite", (src, dst), False, "line")
    if layout == "circle":
        return _circle(graph)
    return _network(graph, layout)


def _layered(stack: list[TokenGraph]) -> Layout:
    sizes = [stack[0].num_src_nodes]
    for k, g in enumerate(stack):
        if g.num_src_nodes != sizes[-1]:
            raise ValueError(
                f"graph {k} has {g.num_src_nodes} source nodes but the row below it has "
                f"{sizes[-1]} tokens; stacked graphs must chain (M of each = N of the previous)"
            )
        sizes.append(g.num_nodes)
    rows = tuple(np.stack([_centered(n), np.full(n, float(r))], 1) for r, n in enumerate(sizes))
    return Layout("layered", rows, False, "line")


def _circle(graph: TokenGraph) -> Layout:
    n = graph.num_src_nodes + graph.num_nodes if graph.is_cross else graph.num_nodes
    ang = np.pi / 2 - 2 * np.pi * np.arange(n) / n  # clockwise from the top
    xy = np.stack([np.cos(ang), np.sin(ang)], 1)  # (n, 2)
    unit = 2 * np.sin(np.pi / max(n, 2))
    if graph.is_cross:
        m = graph.num_src_nodes
        return Layout("circle", (xy[:m], xy[m:]), False, "bend", unit)
    return Layout("circle", (xy, xy), True, "bend", unit)


def _network(graph: TokenGraph, layout: str | Callable | dict) -> Layout:
    G = graph.to_networkx()
    if isinstance(layout, dict):
        pos = layout
    elif callable(layout):
        pos = layout(G)
    elif isinstance(layout, str):
        fn = getattr(nx, f"{layout}_layout", None)
        if fn is None or layout in ("bipartite", "multipartite", "rescale"):
            raise ValueError(
                f"layout must be one of {', '.join(LAYOUTS)}, a networkx layout name, "
                f"a callable or a dict of positions; got {layout!r}"
            )
        pos = fn(G, seed=0) if layout in SEEDED else fn(G)
    else:
        raise TypeError(f"layout must be a str, callable or dict, got {type(layout).__name__}")
    if not isinstance(pos, dict):
        raise TypeError(f"a layout callable must return a dict of positions, got {type(pos)}")
    missing = [v for v in G.nodes if v not in pos]
    if missing:
        raise ValueError(f"the layout gives no position to nodes {missing[:5]}")
    if graph.is_cross:
        src = np.array([pos[("src", j)] for j in range(graph.num_src_nodes)], float)
        dst = np.array([pos[("dst", i)] for i in range(graph.num_nodes)], float)
        unit = _min_spacing(np.concatenate([src, dst]))
        return Layout("network", (src, dst), False, "bend", unit)
    xy = np.array([pos[i] for i in range(graph.num_nodes)], float).reshape(-1, 2)
    return Layout("network", (xy, xy), True, "bend", _min_spacing(xy))
