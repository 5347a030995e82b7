"""The demo's pictures: one function per figure, each saving a PNG and returning its file name.

Each ``fig_*`` function draws from a :class:`~graphattn.demo.model.DemoRun`,
writes ``path`` and returns its file name (with what it measured on the way,
where the page needs it). matplotlib, :mod:`graphattn.plot` and
:mod:`graphattn.flow` are imported inside the functions, so importing the demo
stays cheap.
"""

from __future__ import annotations

from pathlib import Path

import torch

from graphattn.demo.model import DemoRun
from graphattn.graph import TokenGraph

__all__ = [
    "contribution_layers",
    "drift_means",
    "fig_cross",
    "fig_flow",
    "fig_grid",
    "fig_heads",
    "fig_heatmaps",
    "fig_patterns",
    "fig_rollout",
    "fig_token_graph",
    "fig_word",
]


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


def fig_token_graph(run: DemoRun, sparse: TokenGraph, path: Path) -> str:
    """The first text's full graph beside the ``sparse`` pattern graph on its tokens."""
    import matplotlib.pyplot as plt

    from graphattn.plot import draw_graph

    full = run.layers[0][0][0]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.2), layout="constrained")
    draw_graph(full, ax=axes[0], title=f"BERT's own graph: full, {full.num_edges} edges")
    draw_graph(sparse, ax=axes[1], title=f"{sparse.name}: {sparse.num_edges} edges")
    return _save(fig, path)


def fig_heads(run: DemoRun, chosen: list[int], path: Path) -> str:
    """Per-head bipartite drawings of the ``chosen`` layers, one row per layer."""
    from graphattn.plot import draw_heads

    axes = draw_heads([run.layers[0][i] for i in chosen], view="bipartite")
    for row, i in zip(axes[:, 0], chosen, strict=True):
        row.set_ylabel(f"layer {i}")
    return _save(axes.flat[0].figure, path, dpi=90)


def fig_heatmaps(run: DemoRun, chosen: list[int], path: Path) -> str:
    """Head-mean attention matrices of the ``chosen`` layers."""
    import matplotlib.pyplot as plt

    from graphattn.plot import draw_matrix

    fig, axes = plt.subplots(
        1, len(chosen), figsize=(5.2 * len(chosen), 4.8), layout="constrained", squeeze=False
    )
    for ax, i in zip(axes[0], chosen, strict=True):
        g, w = run.layers[0][i]
        draw_matrix(g, w, ax=ax, title=f"layer {i}, mean over heads", colorbar=i == chosen[-1])
    return _save(fig, path)


def fig_grid(run: DemoRun, path: Path) -> str:
    """Every head of every layer as a matrix, layers by heads."""
    from graphattn.plot import draw_heads

    axes = draw_heads(run.layers[0], view="matrix")
    for i, ax in enumerate(axes[:, 0]):
        ax.set_ylabel(f"layer {i}")  # numbered as run.layers[0][i], as everywhere
    return _save(axes.flat[0].figure, path, dpi=80)


def fig_rollout(run: DemoRun, path: Path) -> tuple[str, torch.Tensor]:
    """Attention rollout over all layers; returns the file name and the ``(n, n)`` rollout."""
    import matplotlib.pyplot as plt

    from graphattn.flow import attention_rollout
    from graphattn.plot import draw_rollout

    rollout = attention_rollout(run.layers[0])  # (n, n): share of input j in output i
    fig, ax = plt.subplots(figsize=(6.4, 5.2), layout="constrained")
    draw_rollout(
        rollout, run.tokens[0], ax=ax,
        title="attention rollout over all layers (residual 0.5): relevance of input j for output i",
    )
    return _save(fig, path), rollout


def contribution_layers(run: DemoRun, b: int = 0) -> list[tuple[TokenGraph, torch.Tensor]]:
    """ALTI contributions (Ferrando et al. 2022) of text ``b``: ``(graph, c (E,))`` per layer."""
    from graphattn.flow import contributions

    ids, _ = run.model.tokenize(run.texts[b])  # (1, n)
    return [(g, c[0]) for g, c in contributions(run.model, ids, "alti")]


def fig_flow(run: DemoRun, rollout: torch.Tensor, path: Path) -> tuple[str, torch.Tensor]:
    """Rollout of raw weights, of ALTI contributions, and max-flow into the compared word.

    Returns the file name and the ``(n,)`` max flow.
    """
    import matplotlib.pyplot as plt

    from graphattn.flow import attention_flow, attention_rollout
    from graphattn.plot import draw_flow

    t = run.focus[0]
    word = run.tokens[0][t]
    flow = attention_flow(run.layers[0], [t])[0].float()  # (n,) max flow into the word
    alti = contribution_layers(run)
    alti_rollout = attention_rollout(alti, residual=0.0)[t].float()  # residual is inside ALTI
    fig, axes = plt.subplots(1, 3, figsize=(24, 7.5), layout="constrained")
    panels = (
        (run.layers[0], rollout[t].float(), "rollout of raw weights"),
        (alti, alti_rollout, "rollout of ALTI contributions"),
        (run.layers[0], flow, "max-flow"),
    )
    for ax, (layers, relevance, name) in zip(axes, panels, strict=True):
        draw_flow(
            layers,
            relevance=relevance,
            target=t,
            ax=ax,
            title=f"{name}: inputs reaching the output '{word}' (strip)",
        )
    return _save(fig, path), flow


def fig_word(run: DemoRun, path: Path) -> tuple[str, list[float]]:
    """The compared word in two texts: what it attends to, and how far apart its vectors drift.

    Returns the file name and the word's cosine distance after the embeddings
    and after each layer (``L + 1`` values).
    """
    import matplotlib.pyplot as plt

    last = len(run.layers[0]) - 1
    fig = plt.figure(figsize=(13, 11), layout="constrained")
    grid = fig.add_gridspec(3, 1, height_ratios=[1, 1, 0.9])
    from graphattn.plot.labels import same_angle

    panels = [fig.add_subplot(grid[b]) for b in range(2)]
    for b, ax in enumerate(panels):
        _word_attention(run, b, last, ax)
    same_angle(panels)  # the two texts' token labels read alike
    distances = _word_distances(run, fig.add_subplot(grid[2]))
    return _save(fig, path), distances


def _word_attention(run: DemoRun, b: int, layer: int, ax) -> None:
    """The incoming edges of the compared word of text ``b`` in ``layer``, mean over heads."""
    from graphattn.plot import draw_attention

    g, w = run.layers[b][layer]
    sub, sw = _edges_into(g, w, run.focus[b])
    draw_attention(
        sub,
        sw,
        ax=ax,
        title=f"text {b + 1}: what '{run.tokens[b][run.focus[b]]}' attends to in the last "
        "layer (mean over heads)",
    )


def _word_distances(run: DemoRun, ax) -> list[float]:
    """Plot the word's cosine distance across the two texts per layer, with grey baselines."""
    from graphattn.plot.labels import BESIDE, place_labels

    word = run.word
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
    ends = []
    for i in same_place:  # the same token at the same position: a baseline
        d = [
            _cosine_distance(ha[i], hb[i])
            for ha, hb in zip(run.hidden[0], run.hidden[1], strict=True)
        ]
        ax.plot(x, d, color="0.7", lw=1)
        ends.append((x[-1], d[-1]))
    ax.plot(x, distances, color="#d62728", lw=2.5, marker="o", label=f"'{word}'")
    ax.set_xticks(x, ["embeddings"] + [f"layer {i - 1}" for i in x[1:]])
    ax.set_ylabel("cosine distance")
    ax.set_title(
        f"how different the two '{word}' vectors are after each layer "
        "(grey: other tokens shared at the same position)"
    )
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    ax.set_xlim(right=x[-1] + 0.35)  # room for the end labels inside the Axes
    place_labels(ax, ends, [run.tokens[0][i] for i in same_place], BESIDE, marker_pt=0.0,
                 fontsize=8, color="0.4")
    return distances


def drift_means(d: dict) -> tuple[float, float, str]:
    """One pattern's sentence and word cosines, averaged over the texts, and what they are.

    The statistic the picture's titles and the printed and HTML tables all show.
    """
    k = len(d["sentence"])
    which = "text 1" if k == 1 else f"mean over the {k} texts"
    return sum(d["sentence"]) / k, sum(d["word"]) / len(d["word"]), which


def fig_patterns(run: DemoRun, drift: dict[str, dict], path: Path) -> str:
    """Each compared pattern's mask with its drift, and the per-token drift as bars.

    ``drift`` maps a pattern name to its ``graph``, ``sentence`` and ``word``
    cosines per text and the first text's per-token cosines ``tokens`` (n,).
    """
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
        s, w, which = drift_means(d)
        title = f"{g.name}\n{which}:\nsentence cos {s:.3f}, '{word}' cos {w:.3f}"
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


#: The demo's source sentence for the translation models (a held-out subject-object pair).
CROSS_SENTENCE = ("small", "bird", "sees", "red", "man")


def fig_cross(path: Path, sentence: tuple[str, ...] = CROSS_SENTENCE) -> str:
    """Real cross-attention: the shipped translation models on one sentence of the synthetic pair.

    Left: the full-cross model's last decoder layer as a bipartite graph
    (target words read source words); middle: the same weights as an
    alignment matrix; right: the model trained with a diagonal window cross
    graph on the same sentence.
    """
    import matplotlib.pyplot as plt

    from graphattn.plot import draw_attention, draw_matrix
    from graphattn.pretrained.translation import load_translation_model, translate_with_weights

    fig, axes = plt.subplots(1, 3, figsize=(19, 6.5), layout="constrained")
    accuracy = []
    for k, name in enumerate(("reorder-full", "reorder-window2")):
        model, meta = load_translation_model(name)
        g, w = translate_with_weights(model, list(sentence))["cross"]
        label = "full cross graph" if k == 0 else "diagonal window cross graph, |i - j| < 2"
        accuracy.append(f"{label}: {meta['exact_match']:.2f}")
        if k == 0:
            draw_attention(g, w, ax=axes[0], top_k=2, title=f"{label}: words read words")
        draw_matrix(g, w, ax=axes[1 + k], title=label)
    fig.suptitle(
        "trained translation models, last decoder layer, mean over heads; exact match on "
        "held-out sentences: " + ", ".join(accuracy), fontsize=11,
    )
    return _save(fig, path)
