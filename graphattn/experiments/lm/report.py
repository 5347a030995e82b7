"""Experiment reports: ``results.json``, a Markdown table and plots.

The report reads the results dict that :func:`~graphattn.experiments.run_experiment`
builds; it trains nothing. Files are written to a temporary name and renamed,
so an interrupted write never leaves a half-written report.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from graphattn._markdown import table_lines
from graphattn.experiments.common.files import strict_json, write_text

__all__ = [
    "markdown_table",
    "plot_accuracy",
    "plot_loss_curves",
    "summarize",
    "write_report",
]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _std(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def summarize(entry: dict[str, Any]) -> dict[str, Any]:
    """Mean (and spread) over the seeds of one pattern's runs that have a validation result.

    Examples
    --------
    >>> entry = {"runs": [{"val_acc": 0.5, "val_loss": 1.0, "tokens_per_s": 10.0,
    ...                    "peak_memory_mb": 100.0, "status": "complete"},
    ...                   {"val_acc": 1.0, "val_loss": 0.0, "tokens_per_s": 30.0,
    ...                    "peak_memory_mb": 120.0, "status": "complete"}]}
    >>> s = summarize(entry)
    >>> s["val_acc"], s["tokens_per_s"], s["peak_memory_mb"], s["complete"]
    (0.75, 20.0, 120.0, '2/2')
    """
    runs = [r for r in entry["runs"] if r.get("val_acc") is not None]
    done = sum(r["status"] == "complete" for r in entry["runs"])
    acc = [r["val_acc"] for r in runs]
    mem = [r["peak_memory_mb"] for r in runs if r.get("peak_memory_mb") is not None]
    return {
        "val_acc": _mean(acc),
        "val_acc_std": _std(acc),
        "val_acc_runs": acc,
        "val_loss": _mean([r["val_loss"] for r in runs]),
        "tokens_per_s": _mean([r["tokens_per_s"] for r in runs if r.get("tokens_per_s")]),
        "peak_memory_mb": max(mem) if mem else None,
        "complete": f"{done}/{len(entry['runs'])}",
        # (seed, steps done) of every run not complete: its numbers are from that step
        "unfinished": [
            (r["seed"], r.get("steps_done", 0)) for r in entry["runs"] if r["status"] != "complete"
        ],
    }


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown_table(results: dict[str, Any]) -> str:
    """One row per pattern: structure (edges, reach) and outcome (accuracy, loss, speed).

    With several seeds the accuracy cell is ``mean ± std (seed 1 / seed 2 / ...)``.
    The last cell counts the complete runs and names the step every other run
    reached (an interrupted run's numbers are from that step).

    Examples
    --------
    >>> res = {"name": "demo", "status": "complete", "patterns": [{
    ...     "label": "causal", "n_layers": 2, "edges_per_token": 2.5, "density": 0.625,
    ...     "layers_to_reach": 1, "reach_fraction": 1.0, "direct_links": 1.0, "runs": []}]}
    >>> print(markdown_table(res).splitlines()[2])
    | causal | 2 | 2.5 | 0.625 | 1 | 100% | 100% | – | – | – | – | – | 0/0 |
    """
    header = (
        "pattern", "layers", "edges/token", "density", "layers to reach",
        "reach after L layers", "direct links", "reachable links", "val accuracy", "val loss",
        "tokens/s", "peak memory (MB)", "runs complete",
    )  # fmt: skip
    steps = results.get("config", {}).get("train", {}).get("steps")
    rows = [_pattern_row(e, steps) for e in results["patterns"]]
    return "\n".join(table_lines(header, rows, compact=True))


def _pattern_row(e: dict[str, Any], steps: int | None) -> list[str]:
    """The cells of one pattern's row of :func:`markdown_table`."""
    s = summarize(e)
    acc = _fmt(s["val_acc"], ".3f")
    if s["val_acc_std"] is not None:  # more than one seed: spread, then each seed
        seeds = " / ".join(f"{a:.3f}" for a in s["val_acc_runs"])
        acc += f" ± {s['val_acc_std']:.3f} ({seeds})"
    ltr = "never" if e["layers_to_reach"] is None else str(e["layers_to_reach"])
    return [
        e["label"], str(e["n_layers"]), f"{e['edges_per_token']:.1f}", f"{e['density']:.3f}",
        ltr, f"{e['reach_fraction']:.0%}", _fmt(e.get("direct_links"), ".0%"),
        _fmt(e.get("reachable_links"), ".0%"), acc, _fmt(s["val_loss"], ".3f"),
        _fmt(s["tokens_per_s"], ",.0f"), _fmt(s["peak_memory_mb"], ",.0f"), _runs_cell(s, steps),
    ]  # fmt: skip


def _runs_cell(summary: dict[str, Any], steps: int | None) -> str:
    """``done/total``, then the step each unfinished run reached (of ``steps``, when known).

    Examples
    --------
    >>> _runs_cell({"complete": "1/2", "unfinished": [(1, 300)]}, 2000)
    '1/2; seed 1 at step 300/2000'
    """
    of = f"/{steps}" if steps is not None else ""
    where = [f"seed {seed} at step {k}{of}" for seed, k in summary.get("unfinished", [])]
    return "; ".join([summary["complete"], *where])


def _markdown(results: dict[str, Any]) -> str:
    cfg = results.get("config", {})
    parts = [f"# {results['name']}", "", f"Status: **{results['status']}**."]
    if results.get("command"):
        parts += ["", f"Produced by: `{results['command']}`"]
    if cfg:
        t, m = cfg["train"], cfg["model"]
        task = ", ".join(f"{k}={v}" for k, v in cfg["task"].items() if k != "name")
        parts += [
            "",
            f"Task: `{cfg['task']['name']}` ({task}). Model: GraphLM d_model={m['d_model']}, "
            f"n_heads={m['n_heads']}, n_layers={m['n_layers']} unless the pattern says otherwise. "
            f"Budget: {t['steps']} steps of {t['batch_size']} sequences, AdamW lr={t['lr']}. "
            f"Seeds: {cfg['seeds']}. Every pattern is intersected with causal attention.",
        ]
    if results.get("chance") is not None:
        parts += ["", f"Chance accuracy: {results['chance']:.3f}."]
    parts += ["", markdown_table(results), ""]
    runs = [r for e in results["patterns"] for r in e["runs"] if r.get("memory_measure")]
    if runs:
        parts += [f"Peak memory: {runs[0]['memory_measure']}.", ""]
    return "\n".join(parts)


def _title(results: dict[str, Any]) -> str:
    """The experiment's name and, when the results carry the config, its task with parameters."""
    task = results.get("config", {}).get("task")
    if not task:
        return results["name"]
    params = ", ".join(f"{k}={v}" for k, v in task.items() if k != "name")
    return f"{results['name']}\ntask {task['name']}: {params}"


def plot_loss_curves(results: dict[str, Any], ax=None):
    """Training loss against step, one line per pattern (mean over its seeds).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> res = {"name": "demo", "patterns": [{"label": "causal", "runs": [
    ...     {"curve": [[1, 2.0], [2, 1.0]]}, {"curve": [[1, 3.0], [2, 1.0]]}]}]}
    >>> ax = plot_loss_curves(res)
    >>> ax.lines[0].get_ydata().tolist()
    [2.5, 1.0]
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.4, 4.0))
    for e in results["patterns"]:
        curves = [r["curve"] for r in e["runs"] if r["curve"]]
        if not curves:
            continue
        length = min(len(c) for c in curves)  # runs of one pattern log the same steps
        steps = [c[0] for c in curves[0][:length]]
        mean = [sum(c[i][1] for c in curves) / len(curves) for i in range(length)]
        ax.plot(steps, mean, label=e["label"], linewidth=1.5)
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss")
    ax.set_title(_title(results), fontsize=8)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    return ax


def plot_accuracy(results: dict[str, Any], axes=None):
    """Validation accuracy against density (left) and against layers-to-reach (right).

    Patterns that never reach every earlier token are drawn at the right end
    of the second panel, labelled "never". A dashed line marks chance where
    the results give it.

    Returns
    -------
    tuple of two matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> res = {"name": "demo", "chance": 0.125, "patterns": [
    ...     {"label": "causal", "density": 0.5, "layers_to_reach": 1, "n_layers": 2,
    ...      "runs": [{"val_acc": 1.0, "val_loss": 0.0, "status": "complete"}]},
    ...     {"label": "window", "density": 0.2, "layers_to_reach": None, "n_layers": 2,
    ...      "runs": [{"val_acc": 0.1, "val_loss": 2.0, "status": "complete"}]}]}
    >>> left, right = plot_accuracy(res)
    >>> [t.get_text() for t in left.texts]
    ['causal', 'window']
    """
    import matplotlib

    from graphattn.plot.labels import place_labels

    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(10.0, 4.0), sharey=True, layout="constrained")
    left, right = axes
    points = [(e, summarize(e)["val_acc"]) for e in results["patterns"]]
    points = [(e, acc) for e, acc in points if acc is not None]
    known = [e["layers_to_reach"] for e, _ in points if e["layers_to_reach"] is not None]
    never = max(known + [e["n_layers"] for e, _ in points] + [1]) + 1
    cmap = matplotlib.colormaps["tab10"]
    for k, (e, acc) in enumerate(points):
        ltr = never if e["layers_to_reach"] is None else e["layers_to_reach"]
        color = cmap(k % 10)
        left.scatter([e["density"]], [acc], color=color, s=40, zorder=3)
        filled = e["layers_to_reach"] is not None and e["layers_to_reach"] <= e["n_layers"]
        right.scatter([ltr], [acc], s=40, zorder=3, color=color if filled else "none",
                      edgecolors=color, label=f"{e['label']} ({e['n_layers']} layers)")
    _chance_lines(results, axes)
    left.set_xlabel("density (edges / N²)")
    left.set_ylabel("validation accuracy")
    right.set_xlabel("layers to reach every earlier token")
    ticks = sorted(set(known))
    right.set_xticks(ticks + [never], [str(t) for t in ticks] + ["never"])
    if points or results.get("chance") is not None:
        right.legend(fontsize=7, title="filled: reach within its layers", title_fontsize=7)
    if results.get("chance") is not None:
        left.legend(fontsize=7, loc="center right")
    left.figure.suptitle(_title(results), fontsize=9)
    # labels last, where the layout has put the points: none overprints another or a point
    texts = place_labels(left, [(e["density"], acc) for e, acc in points],
                         [e["label"] for e, _ in points], fontsize=8)
    for k, t in enumerate(texts):
        t.set_color(cmap(k % 10))  # the colour of its point: which label is whose
    return left, right


def _chance_lines(results: dict[str, Any], axes) -> None:
    """A labelled dashed line at chance accuracy (where known), the y range and a grid."""
    for ax in axes:
        if results.get("chance") is not None:
            ax.axhline(results["chance"], color="gray", linestyle="--", linewidth=1,
                       label=f"chance ({results['chance']:.3f})")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)


def write_report(results: dict[str, Any], out_dir: str | os.PathLike, *, plots: bool = True):
    """Write ``results.json``, ``results.md`` and (with ``plots``) the two PNG plots.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Examples
    --------
    >>> import tempfile
    >>> res = {"name": "demo", "status": "complete", "patterns": []}
    >>> [p.name for p in write_report(res, tempfile.mkdtemp(), plots=False)]
    ['results.json', 'results.md']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json", out / "results.md"]
    write_text(written[0], json.dumps(strict_json(results), indent=1, allow_nan=False) + "\n")
    write_text(written[1], _markdown(results))
    if plots:
        from matplotlib.figure import Figure  # no pyplot: the caller's backend is untouched

        from graphattn.plot import save_figure

        loss_fig = Figure(figsize=(6.4, 4.0), layout="constrained")
        plot_loss_curves(results, loss_fig.subplots())
        acc_fig = Figure(figsize=(10.0, 4.0), layout="constrained")
        plot_accuracy(results, acc_fig.subplots(1, 2, sharey=True))
        for name, fig in (("loss_curves.png", loss_fig), ("accuracy.png", acc_fig)):
            written.append(save_figure(fig, out / name, dpi=120))
    return written
