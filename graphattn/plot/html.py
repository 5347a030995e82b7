"""``to_html``: one self-contained, offline, interactive page of attention for every layer and head.

The page embeds its data (JSON, and every layer's arrays as base64 typed
arrays, :mod:`graphattn.plot.viewer_data`) and its script and style inline; a
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
from graphattn._validate import check_int
from graphattn.graph import TokenGraph
from graphattn.plot import style
from graphattn.plot.viewer_data import MAX_BYTES, LayerShape, Reduction, encode_layer, plan

__all__ = ["page_title", "render_page", "script_hash", "to_html"]

META_BYTES = 1024  # at most, one layer's description (sizes, note) and the markup of its block
COLORS = {
    "headColors": list(style.HEAD_COLORS),
    "meanColor": style.MEAN_COLOR,
    "edgeColor": style.EDGE_COLOR,
    "nonedgeColor": style.NONEDGE_COLOR,
    "nonedgeHatchColor": style.NONEDGE_HATCH_COLOR,
}
LAYER_BLOCK = '<script type="application/json" class="graphattn-layer">{data}</script>\n'
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
{blocks}<script>
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
    example: int | None = None,
    tokens: Sequence[str] | None = None,
    src_tokens: Sequence[str] | None = None,
    title: str | None = None,
    max_edges_per_target: int | None = None,
    max_bytes: int = MAX_BYTES,
) -> Path:
    """Write one self-contained interactive HTML page of attention (no CDN, no network).

    Small inputs go into the page whole. A page that would exceed
    ``max_bytes`` keeps the mean over heads instead of every head and, if
    still too large, the strongest ``k`` incoming edges of every target, ``k``
    the largest that fits; each layer's note says what was left out (edges
    omitted, the share of the weight kept) and a selected token says its own
    kept share. The page draws only the tokens and edges near the visible
    part of the drawing, so tens of thousands of tokens stay responsive.

    Parameters
    ----------
    layers : sequence of (TokenGraph, tensor (E,) or (E, H) or None)
        One ``(graph, weights)`` pair per layer, as models return them;
        ``None`` weights show the bare graph. Batched weights ``(B, E)`` or
        ``(B, E, H)`` (as ``graphattn.hf.record`` and
        ``graphattn.flow.contributions`` hold them) show one example.
    path : str or path-like
        The ``.html`` file to write (atomically: a temporary file moved into place).
    example : int, optional
        Which example of batched layers to show; may be left out for one
        example or a batch of one.
    tokens : sequence of str, optional
        Labels of the target tokens of every layer (and the sources of self
        graphs); default: the graphs' own labels, else indices.
    src_tokens : sequence of str, optional
        Labels of the source tokens of cross graphs.
    title : str, optional
        The page title; default: the first words of the text and the graph
        (pattern name, N, E), see :func:`page_title`.
    max_edges_per_target : int, optional
        Keep at most this many incoming edges per target (the strongest, by
        the largest weight over the heads kept); default: as many as fit.
    max_bytes : int
        The most bytes the page may take (20 MiB by default).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError, ValueError
        For malformed layers, labels of the wrong length or holding a lone
        surrogate, ``src_tokens`` without a cross graph, a path that does not
        end in ``.html``, a ``max_bytes`` too small for one edge per
        target, or a batch of several examples without ``example``; nothing
        is written then.

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
        layers, example=example, tokens=tokens, src_tokens=src_tokens, title=title,
        max_edges_per_target=max_edges_per_target, max_bytes=max_bytes,
    )
    return atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))


def render_page(
    layers: Sequence[tuple[TokenGraph, torch.Tensor | None]],
    *,
    example: int | None = None,
    tokens: Sequence[str] | None = None,
    src_tokens: Sequence[str] | None = None,
    title: str | None = None,
    max_edges_per_target: int | None = None,
    max_bytes: int = MAX_BYTES,
) -> str:
    """The text of the page that :func:`to_html` writes (arguments as there).

    Every element of the viewer lives inside one ``<div class="graphattn-viewer">``
    and its script finds its elements from there, so the page holds no
    document-wide id. The page holds one JSON block of the whole (titles,
    colours, labels, every layer's sizes and notes) and one block per layer
    of its arrays (:mod:`graphattn.plot.viewer_data`), decoded when first shown.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["hi", "there"])
    >>> page = render_page([(g, None)])
    >>> page.count('class="graphattn-viewer"'), ' id="' in page
    (1, False)
    """
    style.check_title(title)
    layers = _checked_layers(layers, example)
    if max_edges_per_target is not None:
        check_int(max_edges_per_target, "max_edges_per_target", low=1)
    check_int(max_bytes, "max_bytes", low=1)
    tokens, src_tokens = _page_labels(layers, tokens, src_tokens, title)
    title = page_title(layers, tokens) if title is None else title
    labels, refs = _label_lists(layers, tokens, src_tokens)
    js, css = _assets()
    head = {"title": title, **COLORS, "labels": labels}
    parts = (PAGE, css, js, _json(head), html.escape(title), html.escape(title))
    reduction = plan(
        [LayerShape(g.in_degree(), g.num_src_nodes, heads) for g, _, heads in layers],
        max_edges_per_target=max_edges_per_target, budget=max_bytes - _fixed_bytes(layers, parts),
    )
    metas, blocks = _encoded(layers, refs, reduction)
    return PAGE.format(
        csp=CSP.format(script_hash=script_hash(f"\n{js}\n")),  # the <script> block's text
        title=html.escape(title),
        css=css,
        js=js,
        data=_json({**head, "layers": metas}),
        blocks="".join(LAYER_BLOCK.format(data=b) for b in blocks),
    )


def _page_labels(
    layers: list[tuple[TokenGraph, object, int]],
    tokens: Sequence[str] | None,
    src_tokens: Sequence[str] | None,
    title: str | None,
) -> tuple[list[str] | None, list[str] | None]:
    """The page's token labels as lists of str, checked with its title (sizes come later)."""
    tokens = _labels(tokens, "tokens")
    src_tokens = _labels(src_tokens, "src_tokens")
    if src_tokens is not None and not any(g.is_cross for g, _, _ in layers):
        raise ValueError("src_tokens label the sources of cross graphs; these layers have none")
    if title is not None:
        style.check_labels([title], "title")
    return tokens, src_tokens


def _assets() -> tuple[str, str]:
    """The viewer's script and style sheet, from the package's ``assets`` folder."""
    assets = resources.files("graphattn.plot").joinpath("assets")
    js = assets.joinpath("viewer.js").read_text(encoding="utf-8")
    css = assets.joinpath("viewer.css").read_text(encoding="utf-8")
    return js, css


def _fixed_bytes(layers: list[tuple[TokenGraph, object, int]], parts: Sequence[str]) -> int:
    """A bound on the page's bytes besides the layers' arrays: ``parts`` and every description."""
    fixed = sum(len(part.encode("utf-8")) for part in parts)
    return fixed + sum(_meta_bytes(g) for g, _, _ in layers)


def _checked_layers(
    layers: object, example: int | None
) -> list[tuple[TokenGraph, object, int]]:
    """``(graph, example's weights, heads)`` per layer, every layer checked (heads 0: no weights).

    The checked float64 copies are not kept: :func:`render_page` makes one
    layer's at a time, so a long recording is never copied whole.
    """
    out = []
    for k, (g, w) in enumerate(style.layer_pairs(layers, example)):
        heads = 0 if w is None else style.check_weights(w, g, f"layers[{k}][1]").shape[1]
        out.append((g, w, heads))
    return out


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
    if any(pair[0] is not g and pair[0] != g for pair in layers[1:]):
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
    """``labels`` as a list of str with no lone surrogate (None stays None)."""
    if labels is None:
        return None
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(f"{arg} must be a sequence of strings, got {type(labels).__name__}")
    labels = [str(t) for t in labels]
    style.check_labels(labels, arg)
    return labels


def _label_lists(
    layers: list[tuple[TokenGraph, object, int]],
    tokens: list[str] | None,
    src_tokens: list[str] | None,
) -> tuple[list[list[str]], list[tuple[int, int]]]:
    """The distinct label lists and, per layer, the indices of its target and source labels."""
    lists: list[list[str]] = []

    def ref(labels: list[str]) -> int:
        for k, known in enumerate(lists):
            if known is labels or known == labels:
                return k
        lists.append(labels)
        return len(lists) - 1

    refs = []
    for k, (g, _, _) in enumerate(layers):
        n, m = g.num_nodes, g.num_src_nodes
        dst = tokens if tokens is not None else g.tokens or [str(i) for i in range(n)]
        src = dst
        if g.is_cross:
            src = src_tokens if src_tokens is not None else g.src_tokens
            src = src or [str(j) for j in range(m)]
        for labels, size, arg in ((dst, n, "tokens"), (src, m, "src_tokens")):
            if len(labels) != size:
                raise ValueError(
                    f"{arg} has {len(labels)} labels but layer {k} has {size} "
                    f"{'target' if arg == 'tokens' else 'source'} tokens"
                )
        refs.append((ref(list(dst)), ref(list(src))))
    return lists, refs


def _encoded(
    layers: list[tuple[TokenGraph, object, int]],
    refs: list[tuple[int, int]],
    reduction: Reduction,
) -> tuple[list[dict], list[str]]:
    """Every layer's description and the JSON of its arrays, one layer's weights at a time."""
    metas, blocks = [], []
    for k, (g, w, _) in enumerate(layers):
        weights = None if w is None else style.check_weights(w, g, f"layers[{k}][1]")
        meta, arrays = encode_layer(g, weights, reduction)
        meta.update(
            name=g.name or "", n=g.num_nodes, m=g.num_src_nodes, cross=g.is_cross,
            tokens=refs[k][0], srcTokens=refs[k][1], weighted=w is not None,
        )
        metas.append(meta)
        blocks.append(_json(arrays))
    return metas, blocks


def _meta_bytes(graph: TokenGraph) -> int:
    """A bound on the bytes of one layer's description and the markup of its block."""
    return META_BYTES + len(_json(graph.name or ""))


def _json(value: object) -> str:
    """Compact JSON, ``<`` escaped so that no ``</script>`` in a label ends its block."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")
