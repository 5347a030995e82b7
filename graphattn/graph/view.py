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
import math
from typing import TYPE_CHECKING

import torch

from graphattn.graph.convert import to_dense_mask

if TYPE_CHECKING:
    from graphattn.graph.core import TokenGraph

__all__ = ["to_string", "to_svg"]

SVG_CELLS = 64  # more tokens than this per side: cells stand for bins of tokens
SVG_SIZE = 240  # pixels of the larger side of the grid
LABEL_CHARS = 12  # longer token labels are cut, with an ellipsis
LABEL_WIDTH = 6.0  # pixels per character of a label
LABEL_SPACING = 10  # pixels at least between two labelled rows (or columns)
TITLE_WORDS = 6  # tokens quoted in the title


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
    shade being the share of its token pairs that are edges. A title names
    the graph and its first tokens, a line gives the sizes and one how to
    read the grid; the rows and columns carry the token labels (every few
    when the cells are small, none when binned); the grid is at most ``size``
    pixels wide or high.

    Examples
    --------
    >>> from graphattn.graph import TokenGraph
    >>> svg = to_svg(TokenGraph([[0, 1], [1, 0]], tokens=["hi", "there"]))
    >>> svg.startswith("<svg") and svg.count("<rect") == 1 + 2, svg.count('class="label"')
    (True, 4)
    """
    n, m = graph.num_nodes, graph.num_src_nodes
    rows, cols = min(n, max_cells), min(m, max_cells)
    cell = max(1.0, min(24.0, size / max(rows, cols)))
    share = _binned_share(graph, rows, cols)  # (rows, cols) in [0, 1]
    row_labels = _ticks(graph.tokens, n, rows, cell)
    col_labels = _ticks(graph.src_tokens if graph.is_cross else graph.tokens, m, cols, cell)
    left = 6 + LABEL_WIDTH * max((len(t) for _, t in row_labels), default=0)
    top = 48 + 0.87 * LABEL_WIDTH * max((len(t) for _, t in col_labels), default=0)
    width, height = cols * cell, rows * cell
    captions, wide = _captions(graph, rows < n or cols < m, rows, cols)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{max(left + width, wide):.0f}" '
        f'height="{top + height + 2:.0f}" role="img" aria-label="{html.escape(repr(graph))}">',
        *captions,
        f'<rect x="{left:.1f}" y="{top:.1f}" width="{width:.1f}" height="{height:.1f}" '
        'fill="#f2f2f2"/>',
        *_cells(share, left, top, cell),
        *_labels(row_labels, col_labels, left, top, cell),
        "</svg>",
    ]
    return "".join(out)


def _cells(share: torch.Tensor, left: float, top: float, cell: float) -> list[str]:
    """One ``<rect>`` per non-empty cell of ``share (rows, cols)``, darker the larger its share."""
    inner = cell - 1 if cell >= 6 else cell  # a 1 px gap between cells large enough to see
    out = []
    for i, j in share.nonzero().tolist():
        shade = 0.25 + 0.75 * float(share[i, j])
        out.append(
            f'<rect x="{left + j * cell:.1f}" y="{top + i * cell:.1f}" width="{inner:.1f}" '
            f'height="{inner:.1f}" fill="#253494" fill-opacity="{shade:.2f}"/>'
        )
    return out


def _labels(
    row_labels: list[tuple[int, str]],
    col_labels: list[tuple[int, str]],
    left: float,
    top: float,
    cell: float,
) -> list[str]:
    """The row labels left of the grid and the column labels slanted above it, one ``<g>``."""
    out = ['<g font-size="10" font-family="sans-serif" fill="#333">']
    for i, text in row_labels:
        y = top + (i + 0.5) * cell
        out.append(f'<text class="label" x="{left - 3:.1f}" y="{y:.1f}" text-anchor="end" '
                   f'dominant-baseline="middle">{html.escape(text)}</text>')
    for j, text in col_labels:
        x, y = left + (j + 0.5) * cell, top - 3
        out.append(f'<text class="label" x="{x:.1f}" y="{y:.1f}" '
                   f'transform="rotate(-60 {x:.1f} {y:.1f})">{html.escape(text)}</text>')
    out.append("</g>")
    return out


def _captions(graph: TokenGraph, binned: bool, rows: int, cols: int) -> tuple[list[str], float]:
    """The title (name, first tokens), the sizes, how to read the grid; and the width they need."""
    n, m = graph.num_nodes, graph.num_src_nodes
    title = graph.name or "TokenGraph"
    title = title if len(title) <= 40 else title[:39] + "…"
    if graph.tokens:
        words = " ".join(graph.tokens[:TITLE_WORDS]) + (" …" if n > TITLE_WORDS else "")
        title += f" on “{words if len(words) <= 48 else words[:47] + '…'}”"
    sizes = f"N={n}, M={m}, cross" if graph.is_cross else f"N={n}"
    sizes += f", E={graph.num_edges:,}, density={graph.density:.3g}"
    if binned:
        sizes += f", {rows}x{cols} bins"
    how = "filled: row i attends to column j (edge j → i)"
    return [
        '<g font-family="sans-serif">',
        f'<text x="0" y="12" font-size="12" font-weight="bold">{html.escape(title)}</text>',
        f'<text x="0" y="26" font-size="11" fill="#555">{html.escape(sizes)}</text>',
        f'<text x="0" y="39" font-size="10" fill="#777">{html.escape(how)}</text></g>',
    ], max(280.0, 7.0 * len(title))


def _ticks(labels: list[str] | None, count: int, cells: int, cell: float) -> list[tuple[int, str]]:
    """``(position, label)`` of the labelled rows or columns: every few, none when binned."""
    if labels is None or cells < count:
        return []
    step = max(1, math.ceil(LABEL_SPACING / cell))
    return [(k, _short(labels[k])) for k in range(0, count, step)]


def _short(label: str) -> str:
    """``label`` cut to ``LABEL_CHARS`` characters, with an ellipsis."""
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _binned_share(graph: TokenGraph, rows: int, cols: int) -> torch.Tensor:
    """Share of the token pairs of each (row bin, column bin) that are edges ``(rows, cols)``."""
    n, m = graph.num_nodes, graph.num_src_nodes
    bi = graph.edge_index[1] * rows // n  # (E,) row bin of each target
    bj = graph.edge_index[0] * cols // m  # (E,) column bin of each source
    counts = torch.bincount(bi * cols + bj, minlength=rows * cols).view(rows, cols).double()
    per_row = torch.bincount(torch.arange(n) * rows // n, minlength=rows).double()  # (rows,)
    per_col = torch.bincount(torch.arange(m) * cols // m, minlength=cols).double()  # (cols,)
    return counts / (per_row[:, None] * per_col[None, :])
