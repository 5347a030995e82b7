"""Encoder-decoder experiments: run every variant and seed, write JSON, Markdown and plots.

:func:`run_seq2seq_experiment` trains each variant of a
:class:`~graphattn.experiments.seq2seq.Seq2SeqExperiment` with each seed and
writes ``results.json`` (strict JSON: a missing number is ``null``, never
``NaN``), ``results.md`` (the task's parameters, the chance level and the
table) and ``alignments.png`` (each variant's learned cross-attention on the
first validation sentence, seed of the first run).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from graphattn._files import atomic_write
from graphattn._markdown import table_lines
from graphattn.experiments.common.files import strict_json
from graphattn.experiments.seq2seq.config import Seq2SeqExperiment
from graphattn.experiments.seq2seq.training import train_variant

__all__ = [
    "plot_alignments", "run_seq2seq_experiment", "seq2seq_table", "write_seq2seq_report"
]

METRICS = ("exact_match", "token_acc", "align_raw", "align_rollout")


def _cell(values: list[float | None]) -> str:
    """``mean (seed values)`` of a metric over seeds, ``–`` where not measured."""
    vals = [v for v in values if v is not None]
    if not vals:
        return "–"
    mean = sum(vals) / len(vals)
    return f"{mean:.3f}" + (f" ({' / '.join(f'{v:.3f}' for v in vals)})" if len(vals) > 1 else "")


def seq2seq_table(results: dict[str, Any]) -> str:
    """One row per variant: its graphs, then each metric as ``mean (seed / seed ...)``.

    Examples
    --------
    >>> res = {"variants": [{"label": "full", "encoder": "full", "cross": "full",
    ...     "decoder": "causal",
    ...     "cross_edges_per_token": 6.0, "runs": [{"exact_match": 1.0, "token_acc": 1.0,
    ...     "align_raw": 0.5, "align_rollout": None, "train_seconds": 2.0}]}]}
    >>> print(seq2seq_table(res).splitlines()[2])
    | full | full | full | 6.0 | causal | 1.000 | 1.000 | 0.500 | – | 2 |
    """
    header = (
        "variant", "encoder graph", "cross graph", "cross edges per target", "decoder graph",
        "exact match", "token accuracy", "alignment (raw)", "alignment (rollout)", "train s",
    )  # fmt: skip
    rows = []
    for v in results["variants"]:
        cells = [_cell([r.get(k) for r in v["runs"]]) for k in METRICS]
        secs = sum(r["train_seconds"] for r in v["runs"]) / max(1, len(v["runs"]))
        graphs = [v["label"], v["encoder"], v["cross"], f"{v['cross_edges_per_token']:.1f}"]
        rows.append([*graphs, v["decoder"], *cells, f"{secs:.0f}"])
    return "\n".join(table_lines(header, rows, compact=True))


def _markdown(results: dict[str, Any]) -> str:
    cfg = results["config"]
    task = ", ".join(f"{k}={v}" for k, v in cfg["task"].items() if k != "name")
    m, t = cfg["model"], cfg["train"]
    parts = [
        f"# {results['name']}",
        "",
        f"Task: `{cfg['task']['name']}` ({task}). Model: GraphSeq2Seq d_model={m['d_model']}, "
        f"{m['num_heads']} heads, {m['num_encoder_layers']} encoder and "
        f"{m['num_decoder_layers']} decoder layers, feed-forward {m['dim_feedforward']}. "
        f"Budget: {t['steps']} steps of {t['batch_size']} sentences, AdamW lr={t['lr']}. "
        f"Seeds: {cfg['seeds']}. Validation: {t['eval_batches']} x {t['eval_batch_size']} "
        "held-out sentences.",
        "",
        f"Chance: token accuracy {results['chance']['token_acc']:.3f} (one of the target "
        f"words uniformly), alignment {results['chance']['align']:.3f} (one source word of "
        "the sentence uniformly), exact match about 0.",
    ]
    if results.get("command"):
        parts += ["", f"Produced by: `{results['command']}`"]
    parts += ["", seq2seq_table(results), ""]
    return "\n".join(parts)


def plot_alignments(results: dict[str, Any], *, key: str = "raw", fig=None):
    """Each variant's learned cross-attention map on the same validation sentence.

    Rows: decoder positions, labelled with the word each one predicts;
    columns: source words; a red frame marks the source word each target
    word translates. ``key`` is ``"raw"`` (attention averaged over heads and
    layers) or ``"rollout"``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    shown = [v for v in results["variants"] if v["runs"] and v["runs"][0].get("example")]
    cols = min(4, max(1, len(shown)))
    rows = -(-max(1, len(shown)) // cols)
    fig = fig or Figure(figsize=(3.3 * cols, 3.3 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).flatten()
    for ax in axes[len(shown):]:
        ax.set_axis_off()
    for ax, v in zip(axes, shown, strict=False):
        ex = v["runs"][0]["example"]
        ax.imshow(torch.tensor(ex[key]).numpy(), cmap="viridis", vmin=0.0, aspect="auto")
        ax.set_xticks(range(len(ex["src"])), ex["src"], rotation=60, fontsize=7)
        ax.set_yticks(range(len(ex["tgt"])), ex["tgt"], fontsize=7)
        for i, j in enumerate(ex["align"]):
            if j >= 0:
                frame = Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=1.2)
                ax.add_patch(frame)
        ax.set_title(v["label"], fontsize=9)
    fig.suptitle(f"{results['name']}: cross-attention ({key}); red = true source", fontsize=9)
    return fig


def _chance(exp: Seq2SeqExperiment) -> dict[str, float]:
    """Uniform guessing: a target word among the vocabulary's words; a source word per sentence."""
    batch = exp.task.val_batch(256, torch.Generator().manual_seed(0))
    words = (batch.src > 2).sum(1).float()  # (B,) source words per sentence
    return {"token_acc": 1 / (exp.task.tgt_vocab_size - 3), "align": float((1 / words).mean())}


def run_seq2seq_experiment(
    exp: Seq2SeqExperiment, out_dir: str | os.PathLike, *, command: str | None = None
) -> dict[str, Any]:
    """Train every variant with every seed; write the report to ``out_dir``; return the results.

    Examples
    --------
    >>> import tempfile
    >>> from graphattn.experiments.common.config import TrainConfig
    >>> from graphattn.experiments.seq2seq import Seq2SeqVariant
    >>> exp = Seq2SeqExperiment(variants=(Seq2SeqVariant("none", cross="none"),),
    ...     train=TrainConfig(steps=1, warmup=0, eval_every=1, log_every=1, eval_batches=1,
    ...                       eval_batch_size=2, batch_size=2))
    >>> res = run_seq2seq_experiment(exp, tempfile.mkdtemp())
    >>> res["variants"][0]["runs"][0]["align_raw"] is None
    True
    """
    results = {"name": exp.name, "command": command, "config": exp.to_dict(),
               "chance": _chance(exp), "variants": []}
    for v in exp.variants:
        graph = v.cross_spec()
        graph = graph(8, 8) if callable(graph) else None
        entry = {
            "label": v.label,
            "cross": v.cross + (f" {v.window}" if v.window else "")
            + (f" {v.num_random}" if v.num_random else ""),
            "encoder": "full" if v.encoder_window is None else f"window {v.encoder_window}",
            "decoder": "causal" if v.decoder_window is None else f"window {v.decoder_window}",
            "cross_edges_per_token": 8.0 if graph is None else graph.num_edges / 8,
            "runs": [train_variant(exp, v, seed)[1].to_dict() for seed in exp.seeds],
        }
        results["variants"].append(entry)
    write_seq2seq_report(results, out_dir)
    return results


def write_seq2seq_report(results: dict[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """Write ``results.json``, ``results.md`` and ``alignments.png``; the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(strict_json(results), indent=1, allow_nan=False) + "\n"
    atomic_write(out / "results.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    md = _markdown(results)
    atomic_write(out / "results.md", lambda tmp: tmp.write_text(md, encoding="utf-8"))
    fig = plot_alignments(results)
    fig.tight_layout()
    atomic_write(out / "alignments.png", lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    return [out / "results.json", out / "results.md", out / "alignments.png"]
