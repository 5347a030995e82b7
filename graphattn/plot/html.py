"""``to_html``: one self-contained, offline, interactive page of attention for every layer and head.

The page embeds its data as JSON and its script and style inline; a
Content-Security-Policy forbids every network request, so it works from a
file, offline, forever, and allows only the viewer's own script, by its
SHA-256 hash (no ``'unsafe-inline'`` scripts). Choose the layer and the head (the head mean by
default) and how many edges per target to draw (the 3 strongest by default,
the page says how many of how many), click a token to select it and light
its incoming and outgoing edges (hovering previews another), switch between
arc, bipartite and matrix views. Cross and sparse graphs are drawn as they
are. Everything lives in one ``<div class="graphattn-viewer">`` and the
script finds its elements from there, so pages can be embedded side by side
(:func:`graphattn.plot.show` frames each one).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import torch

from graphattn._files import atomic_write
from graphattn.graph import TokenGraph
from graphattn.plot import style
from graphattn.plot.attention import prune

__all__ = ["page_title", "render_page", "script_hash", "to_html"]

MAX_HTML_EDGES = 20_000  # per layer; above, the strongest incoming edges per target are kept
# script-src names the SHA-256 of the page's one script: a label that escaped its escaping
# could not run (style-src stays inline: the viewer sets styles from its script)
CSP = "default-src 'none'; script-src {script_hash}; style-src 'unsafe-inline'; img-src data:"
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>
{css}
</style>
</head>
<body>
<div class="graphattn-viewer">
<h1 class="ga-title">{title}</h1>
<div class="ga-controls">
  <label>Layer <select class="ga-layer"></select></label>
  <label>Head <select class="ga-head"></select></label>
  <label>Edges <select class="ga-top"></select></label>
  <span class="ga-views">View
    <button type="button" data-view="arc">arc</button>
    <button type="button" data-view="bipartite">bipartite</button>
    <button type="button" data-view="matrix">matrix</button>
  </span>
</div>
<div class="ga-note"></div>
<div class="ga-legend"></div>
<div class="ga-canvas"></div>
<div class="ga-info" aria-live="polite"></div>
<script type="application/json" class="graphattn-data">{data}</script>
<script>
{js}
</script>
</div>
</body>
</html>
"""

def to_html(
    layers: Sequence[tuple[TokenGraph, torch.Tensor | None]],
    path: str | os.PathLike,
    *,
    tokens: Sequence[str] | None = None,
    src_tokens: Sequence[str] | None = None,
    title: str | None = None,
    max_edges: int = MAX_HTML_EDGES,
) -> Path:
    """Write one self-contained interactive HTML page of attention (no CDN, no network).

    Parameters
    ----------
    layers : sequence of (TokenGraph, tensor (E, H) or None)
        One ``(graph, weights)`` pair per layer, as models return them
        (a batch of one ``(1, E, H)`` is accepted); ``None`` weights show the
        bare graph.
    path : str or path-like
        The ``.html`` file to write (atomically: a temporary file moved into place).
    tokens : sequence of str, optional
        Labels of the target tokens of every layer (and the sources of self
        graphs); default: the graphs' own labels, else indices.
    src_tokens : sequence of str, optional
        Labels of the source tokens of cross graphs.
    title : str, optional
        The page title; default: the first words of the text and the graph
        (pattern name, N, E), see :func:`page_title`.
    max_edges : int
        Per layer, above this many edges keep only the strongest incoming
        edges per target (by the largest weight over heads); the page says so.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError, ValueError
        For malformed layers, labels of the wrong length or holding a lone
        surrogate, ``src_tokens`` without a cross graph, or a path that does
        not end in ``.html``; nothing is written then.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["hi", "there"])
    >>> w = torch.tensor([[1.0], [0.3], [0.7]])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     page = to_html([(g, w)], pathlib.Path(d) / "attention.html").read_text()
    >>> "graphattn-data" in page and "http://" not in page.replace("http://www.w3.org", "")
    True
    """
    path = style.check_path(path, (".html", ".htm"))
    page = render_page(
        layers, tokens=tokens, src_tokens=src_tokens, title=title, max_edges=max_edges
    )
    return atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))


def render_page(
    layers: Sequence[tuple[TokenGraph, torch.Tensor | None]],
    *,
    tokens: Sequence[str] | None = None,
    src_tokens: Sequence[str] | None = None,
    title: str | None = None,
    max_edges: int = MAX_HTML_EDGES,
) -> str:
    """The text of the page that :func:`to_html` writes (arguments as there).

    Every element of the viewer lives inside one ``<div class="graphattn-viewer">``
    and its script finds its elements from there, so the page holds no
    document-wide id.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["hi", "there"])
    >>> page = render_page([(g, None)])
    >>> page.count('class="graphattn-viewer"'), ' id="' in page
    (1, False)
    """
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None, got {type(title).__name__}")
    pairs = style.check_layers(layers, weights=False)
    style.check_max_edges(max_edges)
    tokens = _labels(tokens, "tokens")
    src_tokens = _labels(src_tokens, "src_tokens")
    if src_tokens is not None and not any(g.is_cross for g, _ in pairs):
        raise ValueError("src_tokens label the sources of cross graphs; these layers have none")
    if title is not None:
        style.check_labels([title], "title")
    title = page_title(pairs, tokens) if title is None else title
    payload = {
        "title": title,
        "headColors": list(style.HEAD_COLORS),
        "meanColor": style.MEAN_COLOR,
        "edgeColor": style.EDGE_COLOR,
        "nonedgeColor": style.NONEDGE_COLOR,
        "nonedgeHatchColor": style.NONEDGE_HATCH_COLOR,
        "layers": [
            _layer(k, g, w, tokens, src_tokens, max_edges) for k, (g, w) in enumerate(pairs)
        ],
    }
    assets = resources.files("graphattn.plot").joinpath("assets")
    js = assets.joinpath("viewer.js").read_text(encoding="utf-8")
    return PAGE.format(
        csp=CSP.format(script_hash=script_hash(f"\n{js}\n")),  # the <script> block's text
        title=html.escape(title),
        css=assets.joinpath("viewer.css").read_text(encoding="utf-8"),
        js=js,
        # "<" escaped so that no "</script>" in a label can end the data block
        data=json.dumps(payload, separators=(",", ":")).replace("<", "\\u003c"),
    )


def page_title(
    layers: Sequence[tuple[TokenGraph, torch.Tensor | None]],
    tokens: Sequence[str] | None = None,
    *,
    words: int = 8,
) -> str:
    """A title naming the text (its first ``words`` tokens) and the graph (name, N, E).

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["hi", "there"], name="causal")
    >>> page_title([(g, None), (g, None)])
    '“hi there” · causal, N=2, E=3 · 2 layers'
    """
    g = layers[0][0]
    labels = list(tokens) if tokens is not None else g.tokens
    parts = []
    if labels:
        text = " ".join(str(t) for t in labels[:words]) + (" …" if len(labels) > words else "")
        parts.append(f"“{text}”")
    sizes = f"N={g.num_nodes}, M={g.num_src_nodes}" if g.is_cross else f"N={g.num_nodes}"
    parts.append(f"{g.name or 'graph'}, {sizes}, E={g.num_edges:,}")
    if any(other is not g and other != g for other, _ in layers[1:]):
        parts[-1] += " (layer 0; the layers differ)"
    parts.append(f"{len(layers)} layer{'s' if len(layers) > 1 else ''}")
    return " · ".join(parts)


def script_hash(script: str) -> str:
    """The CSP source ``'sha256-...'`` that allows exactly this inline script.

    Examples
    --------
    >>> script_hash("")
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
    """
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def _labels(labels: Sequence[str] | None, arg: str) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(f"{arg} must be a sequence of strings, got {type(labels).__name__}")
    labels = [str(t) for t in labels]
    style.check_labels(labels, arg)
    return labels


def _layer(
    k: int,
    g: TokenGraph,
    w: torch.Tensor | None,
    tokens: list[str] | None,
    src_tokens: list[str] | None,
    max_edges: int,
) -> dict:
    """The JSON record of one layer: labels, kept edges and weights per head."""
    n, m = g.num_nodes, g.num_src_nodes
    dst_labels = tokens if tokens is not None else g.tokens or [str(i) for i in range(n)]
    if g.is_cross:
        src_labels = src_tokens if src_tokens is not None else (
            g.src_tokens or [str(j) for j in range(m)]
        )
    else:
        src_labels = dst_labels
    for labels, size, arg in ((dst_labels, n, "tokens"), (src_labels, m, "src_tokens")):
        if len(labels) != size:
            raise ValueError(
                f"{arg} has {len(labels)} labels but layer {k} has {size} "
                f"{'target' if arg == 'tokens' else 'source'} tokens"
            )
    weights = torch.ones(g.num_edges, 1, dtype=torch.float64) if w is None else w  # (E, H)
    keep, note = prune(g, weights.max(1).values, max_edges=max_edges)
    kept = weights[keep]  # (E_kept, H)
    return {
        "name": g.name or "",
        "n": n,
        "m": m,
        "cross": g.is_cross,
        "tokens": dst_labels,
        "srcTokens": src_labels,
        "src": g.src[keep].tolist(),
        "dst": g.dst[keep].tolist(),
        "weighted": w is not None,
        "w": [[round(x, 5) for x in col] for col in kept.t().tolist()],  # H lists of E_kept
        "note": note or "",
    }
