"""A token graph as text: the ASCII grid of :meth:`TokenGraph.to_string`, the notebook SVG.

Examples
--------
>>> from graphattn.graph import TokenGraph
>>> print(to_string(TokenGraph([[0, 1], [1, 0]])))
TokenGraph(N=2, E=2, density=0.5)
. x
x .
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import torch

from graphattn.graph.convert import to_dense_mask

if TYPE_CHECKING:
    from graphattn.graph.core import TokenGraph

__all__ = ["to_string", "to_svg"]

SVG_CELLS = 64  # more tokens than this per side: cells stand for bins of tokens
SVG_SIZE = 240  # pixels of the larger side of the grid


def to_string(graph: TokenGraph, max_nodes: int = 64) -> str:
    """``repr(graph)`` above a grid of ``x`` (edge ``j -> i``) and ``.``, one row per target.

    A graph with token labels gets them as row (target) and column (source)
    headers, each column as wide as its label.

    Examples
    --------
    >>> from graphattn.graph import TokenGraph
    >>> print(to_string(TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["The", "sky"])))
    TokenGraph(N=2, E=3, density=0.75)
        The sky
    The x   .
    sky x   x
    """
    n, m = graph.num_nodes, graph.num_src_nodes
    if max(n, m) > max_nodes:
        raise ValueError(
            f"to_string draws graphs of at most max_nodes={max_nodes} nodes; this one has "
            f"N={n}, M={m} (use graphattn.plot.draw_pattern)"
        )
    mask = to_dense_mask(graph).tolist()  # (N, M)
    src = graph.src_tokens if graph.is_cross else graph.tokens
    if graph.tokens is None and src is None:
        return "\n".join([repr(graph), *(" ".join("x" if v else "." for v in r) for r in mask)])
    dst = graph.tokens or [str(i) for i in range(n)]
    src = src or [str(j) for j in range(m)]
    left = max(len(t) for t in dst)
    lines = [repr(graph), (" " * left + " " + " ".join(src)).rstrip()]
    for label, row in zip(dst, mask, strict=True):
        cells = " ".join(("x" if v else ".").ljust(len(t)) for v, t in zip(row, src, strict=True))
        lines.append(f"{label.rjust(left)} {cells}".rstrip())
    return "\n".join(lines)


def to_svg(graph: TokenGraph, max_cells: int = SVG_CELLS, size: int = SVG_SIZE) -> str:
    """A small SVG of the mask (rows targets ``i``, columns sources ``j``): the notebook view.

    At most ``max_cells`` cells per side: a larger graph is binned, a cell's
    shade being the share of its token pairs that are edges. Two caption lines
    give the name and the sizes; the grid is at most ``size`` pixels wide or high.

    Examples
    --------
    >>> from graphattn.graph import TokenGraph
    >>> svg = to_svg(TokenGraph([[0, 1], [1, 0]]))
    >>> svg.startswith("<svg") and svg.count("<rect") == 1 + 2
    True
    """
    n, m = graph.num_nodes, graph.num_src_nodes
    rows, cols = min(n, max_cells), min(m, max_cells)
    cell = max(1.0, min(24.0, size / max(rows, cols)))
    share = _binned_share(graph, rows, cols)  # (rows, cols) in [0, 1]
    width, height = cols * cell, rows * cell
    sizes = f"N={n}, M={m}, cross" if graph.is_cross else f"N={n}"
    sizes += f", E={graph.num_edges:,}, density={graph.density:.3g}"
    if rows < n or cols < m:
        sizes += f", {rows}x{cols} bins"
    name = graph.name or "TokenGraph"
    name = name if len(name) <= 40 else name[:39] + "…"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{max(width, 280):.0f}" '
        f'height="{height + 32:.0f}" role="img" aria-label="{html.escape(repr(graph))}">',
        '<g font-size="11" font-family="sans-serif">',
        f'<text x="0" y="11">{html.escape(name)}</text>',
        f'<text x="0" y="25" fill="#555">{html.escape(sizes)}</text></g>',
        f'<rect x="0" y="30" width="{width:.1f}" height="{height:.1f}" fill="#f2f2f2"/>',
    ]
    inner = cell - 1 if cell >= 6 else cell  # a 1 px gap between cells large enough to see
    for i, j in share.nonzero().tolist():
        shade = 0.25 + 0.75 * float(share[i, j])
        out.append(
            f'<rect x="{j * cell:.1f}" y="{30 + i * cell:.1f}" width="{inner:.1f}" '
            f'height="{inner:.1f}" fill="#253494" fill-opacity="{shade:.2f}"/>'
        )
    out.append("</svg>")
    return "".join(out)


def _binned_share(graph: TokenGraph, rows: int, cols: int) -> torch.Tensor:
    """Share of the token pairs of each (row bin, column bin) that are edges ``(rows, cols)``."""
    n, m = graph.num_nodes, graph.num_src_nodes
    bi = graph.edge_index[1] * rows // n  # (E,) row bin of each target
    bj = graph.edge_index[0] * cols // m  # (E,) column bin of each source
    counts = torch.bincount(bi * cols + bj, minlength=rows * cols).view(rows, cols).double()
    per_row = torch.bincount(torch.arange(n) * rows // n, minlength=rows).double()  # (rows,)
    per_col = torch.bincount(torch.arange(m) * cols // m, minlength=cols).double()  # (cols,)
    return counts / (per_row[:, None] * per_col[None, :])
