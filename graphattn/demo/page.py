"""The demo's page: the offline ``index.html``, the viewers it links, and the printed summary."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from graphattn.demo.figures import contribution_layers, drift_means
from graphattn.demo.model import DemoRun
from graphattn.graph import TokenGraph

__all__ = ["CAPTIONS", "summaries", "viewer_links", "write_index", "write_viewers"]

CAPTIONS = {
    "token-graph": (
        "The sentence as a token graph",
        "Each token is a node; an edge j → i lets token i attend to token j. BERT's own graph "
        "(left) joins every pair of tokens, self-loops included: that is 'full bidirectional "
        "attention'. On the right, the sparse pattern chosen with --pattern keeps only some edges; "
        "attention is then a softmax over each token's remaining incoming edges.",
    ),
    "heads": (
        "Per-head attention in chosen layers",
        "One thumbnail per head: sources on the left, targets on the right, line width and "
        "opacity = attention weight. Heads specialise: some look at the previous or next token "
        "(diagonal bundles), many park their weight on [CLS] or [SEP], a known habit of BERT "
        "models when a head has nothing useful to gather.",
    ),
    "heatmaps": (
        "Heatmaps",
        "The same weights as matrices: row i = target (query), column j = source (key), averaged "
        "over heads. Every row sums to 1; bright columns are tokens that many others read.",
    ),
    "grid": (
        "Layers × heads",
        "Every head of every layer at once (BertViz's model view as small multiples), one colour "
        "scale. Early layers mix positions (diagonals), later ones gather from a few tokens.",
    ),
    "rollout": (
        "Attention rollout",
        "Multiplying the layers' attention (with the residual connection as half an identity) "
        "gives how much of each input token reaches each output token. Rows sum to 1.",
    ),
    "flow": (
        "Information flow into the compared word",
        "The layered graph: one row of nodes per layer, edge width = mean attention (middle: "
        "ALTI contribution). The strip under the inputs shows how much each input token reaches "
        "the compared word's output, by rollout of the raw weights (left), by rollout of ALTI "
        "contributions (middle; Ferrando et al. 2022: what each token actually adds to each "
        "output, through value vectors, residual and layer norm) and by max-flow (right; Abnar & "
        "Zuidema 2020). Max-flow spreads credit far more evenly than rollout: with residual "
        "connections, many routes carry information.",
    ),
    "word": (
        "One word, two meanings",
        "Top: what the shared word attends to in the last layer of each sentence. Bottom: how far "
        "apart its two contextual vectors are after every layer (cosine distance). With the "
        "default sentences the word has the same token and position in both, so it starts at 0 "
        "and separates only as attention brings in the context (roses vs money). Grey lines: "
        "the other tokens found at the same position in both sentences. In this "
        "sentence-embedding model the last layer pulls every token toward the meaning of its "
        "whole sentence, so function words such as 'the' can move even more than 'bank': raw "
        "cosine distance is a blunt probe of word sense.",
    ),
    "patterns": (
        "Swapping the graph: full vs sparse",
        "The same pretrained weights run on sparser graphs without retraining. Top: each graph's "
        "mask with the cosine similarity of the sentence embedding and of the compared word's "
        "vector to the full-graph result (the mean over the texts, as in the table). Bottom: "
        "per-token cosine in text 1. Narrow windows lose the "
        "[CLS]/[SEP] edges most heads rely on, which moves every token.",
    ),
    "cross": (
        "Cross-attention on a bipartite graph",
        "Real cross-attention, learned: a small encoder-decoder (graphattn.nn.GraphSeq2Seq, "
        "shipped with the package) trained to translate a synthetic language pair, English-like "
        "SVO into Spanish-like words in SOV order with adjectives after nouns. Left: its last "
        "decoder layer as an encoder → decoder graph (the 2 strongest sources per target word); "
        "middle: the same weights as an alignment matrix, which follows the reordering; right: "
        "the same sentence through a model trained with a diagonal window cross graph, which "
        "can only look near the diagonal, so its encoder has to move the words.",
    ),
}


def _img_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def write_index(folder: Path, pictures: list[tuple[str, str]], header: str, table: str) -> str:
    """Write ``folder/index.html`` with every picture inlined; returns ``"index.html"``.

    ``pictures`` are ``(caption key, file name)`` pairs (keys of :data:`CAPTIONS`);
    ``header`` and ``table`` are HTML from :func:`summaries`.
    """
    parts = []
    for key, name in pictures:
        title, caption = CAPTIONS[key]
        parts.append(
            f"<section><h2>{html.escape(title)}</h2>{_img_tag(folder / name, title)}"
            f"<p>{html.escape(caption)}</p><p class=file>{html.escape(name)}</p></section>"
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>graphattn demo</title>
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
section {{ margin: 2.5em 0; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3em .6em; }}
.file {{ color: #888; font-size: .85em; }}
</style></head><body>
<h1>graphattn demo: attention as message passing on token graphs</h1>
{header}
{table}
{"".join(parts)}
</body></html>
"""
    (folder / "index.html").write_text(page, encoding="utf-8")
    return "index.html"


def write_viewers(run: DemoRun, folder: Path) -> list[str]:
    """Per text an offline interactive viewer (:func:`graphattn.plot.to_html`) of its
    attention and one of its ALTI contributions."""
    from graphattn.plot import to_html
    from graphattn.plot.html import page_title

    names = []
    for b in range(len(run.texts)):
        name = f"viewer-{b + 1}.html"
        title = f"graphattn demo · {page_title(run.layers[b], run.tokens[b], words=12)}"
        to_html(run.layers[b], folder / name, title=title)
        alti = f"viewer-{b + 1}-alti.html"
        alti_title = f"ALTI contributions · {page_title(run.layers[b], run.tokens[b], words=12)}"
        to_html(contribution_layers(run, b), folder / alti, title=alti_title)
        names.append(name)
    return names


def viewer_links(run: DemoRun, viewers: list[str]) -> str:
    """HTML links to the viewers written by :func:`write_viewers`."""
    links = "".join(
        f'<li><a href="{name}">{html.escape(text)}</a> '
        f'(<a href="{name[:-5]}-alti.html">ALTI contributions</a>)</li>'
        for name, text in zip(viewers, run.texts, strict=True)
    )
    return (
        "<p><b>Interactive viewers</b> (same folder, offline): every layer and head, "
        f"click a token to select it and light its edges.</p><ul>{links}</ul>"
    )


# ----------------------------------------------------------------- summary
def summaries(
    run: DemoRun,
    model_name: str,
    note: str | None,
    drift: dict[str, dict],
    distances: list[float] | None,
    out: Path,
) -> tuple[str, str, str]:
    """The printed summary, and the page's header and drift table (HTML).

    ``drift`` is as for :func:`graphattn.demo.figures.fig_patterns`;
    ``distances`` the compared word's cosine distances per layer (None for one text).
    """
    rows, which = _drift_rows(drift)
    return (
        _summary_text(run, model_name, note, (rows, which), distances, out),
        _header(run, model_name, note, distances),
        _drift_table(run.word, rows, which),
    )


def _drift_rows(drift: dict[str, dict]) -> tuple[list[tuple[TokenGraph, float, float]], str]:
    """Per pattern: its graph and the sentence and word cosines; and which statistic they are."""
    rows, which = [], ""
    for d in drift.values():
        s, w, which = drift_means(d)
        rows.append((d["graph"], s, w))
    return rows, which


def _summary_text(run, model_name, note, drift_rows, distances, out) -> str:
    word = run.word
    rows, which = drift_rows
    lines = [f"model: {model_name}"]
    if note:
        lines.append(f"NOTE: {note}")
    for b, text in enumerate(run.texts):
        lines.append(f"text {b + 1}: {text!r} -> {len(run.tokens[b])} tokens")
    if distances is not None:
        lines.append(
            f"'{word}' in the two texts: cosine distance {distances[-1]:.3f} after the last layer "
            f"({distances[0]:.3f} at the embeddings)"
        )
    lines.append(f"drift from the full graph, {which} (sentence cosine, '{word}' cosine):")
    for graph, s, w in rows:
        lines.append(f"  {graph.name:<45} density {graph.density:.2f}  {s:.3f}  {w:.3f}")
    lines.append(f"open {out / 'index.html'}")
    return "\n".join(lines)


def _header(run, model_name, note, distances) -> str:
    header = f"<p><b>Model:</b> {html.escape(model_name)}</p>"
    if note:
        header += f"<p><b>Note:</b> {html.escape(note)}</p>"
    header += (
        "<ul>"
        + "".join(
            f"<li>text {b + 1}: {html.escape(t)} → {html.escape(' '.join(run.tokens[b]))}</li>"
            for b, t in enumerate(run.texts)
        )
        + "</ul>"
    )
    if distances is not None:
        header += (
            f"<p>The two <b>{html.escape(run.word)}</b> vectors end at cosine distance "
            f"<b>{distances[-1]:.3f}</b> (from {distances[0]:.3f} at the embeddings).</p>"
        )
    return header


def _drift_table(word: str, rows: list[tuple[TokenGraph, float, float]], which: str) -> str:
    cells = "".join(
        f"<tr><td>{html.escape(graph.name)}</td><td>{graph.density:.2f}</td>"
        f"<td>{s:.3f}</td><td>{w:.3f}</td></tr>"
        for graph, s, w in rows
    )
    return (
        f"<table><caption>cosines to the full graph's output, {which}</caption>"
        "<tr><th>graph</th><th>density</th><th>sentence cosine to full</th>"
        f"<th>'{html.escape(word)}' cosine to full</th></tr>" + cells + "</table>"
    )
