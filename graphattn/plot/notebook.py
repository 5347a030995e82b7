"""``show``: the offline viewer inline in a notebook (Jupyter, JupyterLab, VS Code, Colab).

:func:`show` returns a :class:`Viewer`, whose ``_repr_html_`` is an
``<iframe srcdoc=...>`` holding the whole page that
:func:`graphattn.plot.to_html` writes (a page over 2 MiB goes in as base64
that a few lines of script load into the frame from a ``blob:`` URL, which
browsers open several times faster than a long ``srcdoc``). The frame
isolates each viewer (any number per notebook, no shared element or script
state) and keeps the page's Content-Security-Policy in force (no network
request, no CDN).
``Viewer.save(path)`` writes the same file as ``to_html``.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from graphattn._files import atomic_write
from graphattn._validate import check_int, check_str
from graphattn.graph import TokenGraph
from graphattn.plot import style
from graphattn.plot.html import page_title, render_page
from graphattn.plot.viewer_data import MAX_BYTES

__all__ = ["Viewer", "frame_height", "layers_html", "show"]

SRCDOC_CHARS = 2 * 2**20  # a longer page reaches its frame through a blob: URL (_loader)
LOADING = (
    '<p style="font: 14px sans-serif">Loading the viewer. If this stays, the notebook did not '
    "run its scripts: trust the notebook, or open the file that Viewer.save writes.</p>"
)
# the output's own script: the page from the base64 block before it into the frame before that
LOADER = (
    "(function () { var data = document.currentScript.previousElementSibling;"
    " var frame = data.previousElementSibling, text = atob(data.textContent);"
    " var bytes = new Uint8Array(text.length);"
    " for (var k = 0; k < text.length; k++) { bytes[k] = text.charCodeAt(k); }"
    " frame.removeAttribute('srcdoc');"
    " frame.src = URL.createObjectURL(new Blob([bytes], { type: 'text/html' })); })();"
)
FRAME_HEIGHTS = (320, 900)  # pixels, the least and most; the page scrolls inside beyond it
# the output's last script: its frame takes the height the page inside reports (viewer.js),
# from 100 px up to the most of FRAME_HEIGHTS; where scripts do not run, the frame keeps
# frame_height's estimate
SIZER = (
    "(function () { var frame = document.currentScript.previousElementSibling;"
    " while (frame.tagName !== 'IFRAME') { frame = frame.previousElementSibling; }"
    " window.addEventListener('message', function (e) {"
    " if (e.source !== frame.contentWindow || !e.data || e.data.graphattn !== 'height') return;"
    f" var h = Math.min({FRAME_HEIGHTS[1]}, Math.max(100, Number(e.data.height)));"
    " if (h === h) { frame.style.height = h + 'px'; } }); })();"
)
CONTROLS_HEIGHT = 200  # title, controls, notes and the info line around the drawing


class Viewer:
    """One interactive attention viewer: shown inline by notebooks, saved as a page.

    Parameters
    ----------
    page : str
        The whole HTML page (from :func:`graphattn.plot.html.render_page`).
    title : str
        Its title (the frame's accessible name).
    height : int
        Height of the inline frame in pixels (:func:`frame_height` of the layers).

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["hi", "there"])
    >>> v = show([(g, torch.tensor([[1.0], [0.3], [0.7]]))])
    >>> v._repr_html_().startswith("<iframe srcdoc=")
    True
    """

    def __init__(self, page: str, title: str, height: int = FRAME_HEIGHTS[1]) -> None:
        self.page = check_str(page, "page")
        self.title = check_str(title, "title")
        self.height = check_int(height, "height", low=1)

    def __repr__(self) -> str:
        return f"Viewer({self.title!r})"

    def _repr_html_(self) -> str:
        return (
            f'<iframe srcdoc="{html.escape(self._srcdoc(), quote=True)}" '
            f'title="{html.escape(self.title, quote=True)}" sandbox="allow-scripts" '
            f'class="graphattn-frame" loading="eager" '
            f'style="width: 100%; height: {int(self.height)}px; border: 1px solid #ddd;">'
            f"</iframe>{self._loader()}<script>{SIZER}</script>"
        )

    def _srcdoc(self) -> str:
        """The frame's page; a long page's frame first says it is loading (see :meth:`_loader`)."""
        return self.page if len(self.page) <= SRCDOC_CHARS else LOADING

    def _loader(self) -> str:
        """Above ``SRCDOC_CHARS``: the page in base64 and a script that loads it into the frame.

        Browsers parse a long ``srcdoc`` slowly (18 MB: about 6 s in Chromium);
        the same page from a ``blob:`` URL opens in about a second. The frame
        stays sandboxed and the page keeps its Content-Security-Policy.
        """
        if len(self.page) <= SRCDOC_CHARS:
            return ""
        data = base64.b64encode(self.page.encode("utf-8")).decode("ascii")
        return (
            f'<script type="application/octet-stream" class="graphattn-page">{data}</script>'
            f"<script>{LOADER}</script>"
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the page to ``path`` (``.html``), atomically; the file ``to_html`` writes.

        Raises
        ------
        ValueError
            If ``path`` does not end in ``.html`` or ``.htm``.
        """
        path = style.check_path(path, (".html", ".htm"))
        return atomic_write(path, lambda tmp: tmp.write_text(self.page, encoding="utf-8"))


def show(
    layers: Sequence[tuple[TokenGraph, torch.Tensor | None]],
    tokens: Sequence[str] | None = None,
    *,
    example: int | None = None,
    src_tokens: Sequence[str] | None = None,
    title: str | None = None,
    max_edges_per_target: int | None = None,
    max_bytes: int = MAX_BYTES,
) -> Viewer:
    """The offline attention viewer of ``layers``, shown inline when a notebook displays it.

    Parameters
    ----------
    layers : sequence of (TokenGraph, tensor (E,) or (E, H) or None)
        One ``(graph, weights)`` pair per layer, as for :func:`graphattn.plot.to_html`
        (``model(x, need_weights=True).layers``, ``output.sequence_layers(b)``),
        or batched weights ``(B, E)`` or ``(B, E, H)`` (``rec.self_attention``
        of a ``graphattn.hf.record``, ``graphattn.flow.contributions``).
    tokens : sequence of str, optional
        Labels of the target tokens (default: the graphs' own labels, else indices).
    example : int, optional
        Which example of batched layers to show; may be left out for one
        example or a batch of one.
    src_tokens : sequence of str, optional
        Labels of the source tokens of cross graphs.
    title : str, optional
        The title; default: the first words of the text and the graph (name, N, E).
    max_edges_per_target : int, optional
        At most this many incoming edges per target in the page, as for ``to_html``.
    max_bytes : int
        The most bytes the page may take (20 MiB by default); above, heads
        are averaged and then edges pruned, as for ``to_html``.

    Returns
    -------
    Viewer
        Displayed inline by Jupyter, JupyterLab, VS Code and Colab;
        ``.save("attention.html")`` writes the page.

    Raises
    ------
    TypeError, ValueError
        As :func:`graphattn.plot.to_html`, before any work.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["hi", "there"])
    >>> show([(g, None)])
    Viewer('“hi there” · graph, N=2, E=3 · 1 layer')
    """
    pairs = style.layer_pairs(layers, example)
    style.check_title(title)
    title = page_title(pairs, tokens) if title is None else title
    page = render_page(
        pairs, tokens=tokens, src_tokens=src_tokens, title=title,
        max_edges_per_target=max_edges_per_target, max_bytes=max_bytes,
    )
    return Viewer(page, title, frame_height(pairs[0][0]))


def frame_height(graph: TokenGraph) -> int:
    """Pixels a frame needs to show the first view of ``graph`` without inner scrolling.

    The arc view's height grows with the longest edge (arcs above for
    ``j < i``, below for ``j > i``), the bipartite view's with the number of
    tokens; the result lies within ``FRAME_HEIGHTS``.

    Examples
    --------
    >>> frame_height(TokenGraph([[0, 0, 1], [0, 1, 1]]))
    376
    >>> frame_height(TokenGraph([[0], [599]], num_nodes=600))
    900
    """
    n, m = graph.num_nodes, graph.num_src_nodes
    if graph.is_cross:
        drawing = 56 + 22 * max(n, m)
    else:
        dx = max(22.0, min(64.0, 1100 / n))  # as the viewer's script spaces tokens
        span = graph.dst - graph.src  # (E,) positive: the arc is drawn above the nodes
        up = float(span.clamp(min=0).max()) if graph.num_edges else 0.0
        down = float((-span).clamp(min=0).max()) if graph.num_edges else 0.0
        drawing = 60 + 100 + 0.25 * dx * (up + down)  # 100: rotated labels at most
    low, high = FRAME_HEIGHTS
    return int(min(high, max(low, CONTROLS_HEIGHT + drawing)))


def layers_html(layers: Sequence[tuple[TokenGraph, torch.Tensor | None]]) -> str:
    """The inline viewer of ``layers`` as HTML: what model outputs show in a notebook.

    :mod:`graphattn` registers it with :func:`graphattn.nn.display.register_layers_html`,
    so that ``ModelOutput`` and ``LMOutput`` display as viewers.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> layers_html([(g, None)]).startswith("<iframe")
    True
    """
    return show(layers)._repr_html_()
