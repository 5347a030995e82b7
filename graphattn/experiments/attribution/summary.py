"""Which attribution method finds the ground truth best, computed from the benchmark's tables.

Reads the tables that :mod:`graphattn.experiments.attribution.ground_truth`,
:mod:`~graphattn.experiments.attribution.cross` and
:mod:`~graphattn.experiments.attribution.minilm` write and names, per table
and metric, the method or methods with the best value; nothing is written
by hand. Two rankings are kept apart: the best of all methods, and the best
*single-pass* method, one that reads one forward pass of the model (and one
backward pass for gradient x attention and AttnLRP; AttnLRP's pair of passes
is per explained prediction, and the translation part explains each decoder
position in a row of its own). The :data:`BASELINES` are not:
ablation, blank-out and leave-one-out re-run the model once per input, and
the random ranking reads no model. The issue's question is whether
contribution methods beat raw-weight rollout, which only the single-pass
ranking answers.

Ground truth holds only for a model that retrieves the pair: a model that
guesses answers some queries right by luck, and those answers were not
copied from the pair. Models with validation accuracy below
:data:`LEARNED_ACCURACY` are left out. If a model retrieves on a share ``p``
of the queries and otherwise guesses one of ``v`` values uniformly, its
accuracy is ``a = p + (1 - p) / v`` and ``(1 - a) / ((v - 1) a)`` of its
correct answers are guesses: at ``a >= 0.9`` with the task's 8 values, under
1.6%; at chance, all of them. Every other model counts.

``graphattn attribution`` writes the result as ``summary.md``
and ``summary.json`` with :func:`write_summary`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from graphattn._markdown import table_lines
from graphattn.experiments.common.files import write_text

__all__ = [
    "BASELINES",
    "LEARNED_ACCURACY",
    "TIE",
    "best",
    "ground_truth_summary",
    "guess_share",
    "minilm_summary",
    "summary_markdown",
    "translation_summary",
    "write_summary",
]

#: Validation accuracy from which a model counts as having learned the task.
LEARNED_ACCURACY = 0.9
#: Methods that are not one pass over the model, and why: ranked only among all methods.
BASELINES = {
    "ablation": "re-run the model once per input",
    "blank_out": "re-run the model once per input",
    "leave_one_out": "re-run the model once per input",
    "random": "is a seeded random ranking and reads no model",
}
#: Values closer than this are a tie (float rounding of equal means, nothing more).
TIE = 1e-9
_GROUND_TRUTH = {"top1": True, "mean_rank": False}  # metric: higher is better
_AOPC = {"aopc_comprehensiveness": True, "aopc_sufficiency": False}


def best(values: dict[str, float], *, higher: bool, single_pass: bool = False) -> dict:
    """The method(s) with the best value, all of them on a tie, in table order.

    Parameters
    ----------
    values : dict
        Method name to value.
    higher : bool
        Whether a higher value is better.
    single_pass : bool
        Leave out the :data:`BASELINES`.

    Returns
    -------
    dict
        ``{"methods": [...], "value": v}``; no methods and ``None`` if none remain.

    Examples
    --------
    >>> best({"rollout": 0.5, "alti": 0.9, "globenc": 0.9}, higher=True)
    {'methods': ['alti', 'globenc'], 'value': 0.9}
    >>> best({"ablation": 1.0, "alti": 1.2}, higher=False, single_pass=True)
    {'methods': ['alti'], 'value': 1.2}
    """
    pool = {m: v for m, v in values.items() if not (single_pass and m in BASELINES)}
    if not pool:
        return {"methods": [], "value": None}
    top = max(pool.values()) if higher else min(pool.values())
    return {"methods": [m for m, v in pool.items() if abs(v - top) <= TIE], "value": top}


def _winners(values: dict[str, float], higher: bool) -> dict:
    return {"all": best(values, higher=higher),
            "single_pass": best(values, higher=higher, single_pass=True)}


def _per_metric(table: dict[str, dict[str, float]], metrics: dict[str, bool]) -> dict:
    """Best of all and best single-pass method per metric of ``table`` (method -> metric)."""
    return {metric: _winners({m: r[metric] for m, r in table.items()}, higher)
            for metric, higher in metrics.items()}


def _mean(results: dict) -> dict[str, dict[str, float]]:
    """Method -> top-1 rate and mean rank averaged over the models of ``results``."""
    methods = list(next(iter(results.values()))["methods"]) if results else []
    return {m: {metric: sum(r["methods"][m][metric] for r in results.values()) / len(results)
                for metric in _GROUND_TRUTH} for m in methods}


def guess_share(accuracy: float, chance: float) -> float:
    """Share of correct answers that are guesses, for a model that retrieves or else guesses.

    Examples
    --------
    >>> round(guess_share(0.9, 1 / 8), 4), guess_share(1 / 8, 1 / 8)
    (0.0159, 1.0)
    """
    return (1 - accuracy) / ((1 / chance - 1) * accuracy)


def ground_truth_summary(
    results: dict, threshold: float = LEARNED_ACCURACY, chance: float | None = None
) -> dict:
    """Best methods per learned model and over the mean of the learned models.

    Parameters
    ----------
    results : dict
        ``attribution.json``'s ``"ground_truth"``: per model ``"val_acc"`` and
        ``"methods"`` (method -> ``{"top1", "mean_rank"}``).
    threshold : float
        Models with a validation accuracy below it (or none) are left out.
    chance : float, optional
        Chance accuracy of the task, kept for the text of the summary.

    Returns
    -------
    dict
        ``"threshold"``, ``"chance"``, ``"learned"`` (labels), ``"left_out"`` (label -> accuracy),
        ``"per_model"`` and ``"overall"`` (metric -> ``{"all", "single_pass"}``
        of :func:`best`; ``"overall"`` is None without a learned model) and
        ``"mean"`` (method -> the metrics averaged over the learned models).
    """
    learned = {k: r for k, r in results.items()
               if r.get("val_acc") is not None and r["val_acc"] >= threshold}
    mean = _mean(learned)
    return {
        "threshold": threshold,
        "chance": chance,
        "learned": list(learned),
        "left_out": {k: r.get("val_acc") for k, r in results.items() if k not in learned},
        "per_model": {k: _per_metric(r["methods"], _GROUND_TRUTH) for k, r in learned.items()},
        "mean": mean,
        "overall": _per_metric(mean, _GROUND_TRUTH) if mean else None,
    }


def translation_summary(results: dict) -> dict:
    """Best methods per translation model and over their mean.

    ``results``: ``translation.json``'s ``"translation"`` (label ->
    ``"methods"``: method -> ``{"top1", "mean_rank"}``). Every model counts:
    only the words it predicts correctly are scored there.
    """
    mean = _mean(results)
    return {
        "models": list(results),
        "per_model": {k: _per_metric(r["methods"], _GROUND_TRUTH) for k, r in results.items()},
        "mean": mean,
        "overall": _per_metric(mean, _GROUND_TRUTH) if mean else None,
    }


def minilm_summary(spearman: dict[str, float], aopc: dict[str, dict]) -> dict:
    """Best methods by Spearman with blank-out and by both AOPCs.

    ``spearman``: method -> mean correlation; ``aopc``: ``minilm_aopc.json``'s
    ``"methods"``. Returns metric -> ``{"all", "single_pass"}`` of :func:`best`.
    """
    return {"spearman": _winners(spearman, True), **_per_metric(aopc, _AOPC)}


def _cell(b: dict) -> str:
    if not b["methods"]:
        return "–"
    tie = " (tie)" if len(b["methods"]) > 1 else ""
    return f"{', '.join(b['methods'])}{tie}: {b['value']:.3f}"


def _row(label: str, metrics: dict) -> list[str]:
    return [label, *(_cell(metrics[m][k]) for m in metrics for k in ("all", "single_pass"))]


def _answer(overall: dict, n: int) -> str:
    """The sentence that names the winners over the mean of ``n`` learned models."""
    def pair(kind: str) -> str:
        return (f"top-1 rate {_cell(overall['top1'][kind])}, "
                f"mean rank {_cell(overall['mean_rank'][kind])}")

    return (f"**Over the mean of the {n} learned models, the best at finding the known source: "
            f"{pair('all')}; of the single-pass methods: {pair('single_pass')}.**")


def _ranking_lines(part: dict, n: int, who: str, answer: str | None = None) -> list[str]:
    """The winners per model and over the mean of ``n`` ``who``, then every method's mean.

    ``part``: a summary with ``"per_model"``, ``"overall"`` and ``"mean"``;
    ``answer``, if given, is the sentence stated between the two tables.
    """
    header = ["model", "best top-1 rate", "best single-pass top-1 rate", "best mean rank",
              "best single-pass mean rank"]
    rows = [_row(k, w) for k, w in part["per_model"].items()]
    lines = table_lines(header, [*rows, _row(f"**mean of the {n} {who}**", part["overall"])])
    lines += [""] + ([answer, ""] if answer else [])
    lines += [f"Mean over the {who}, every method:", ""]
    means = [[m, f"{r['top1']:.3f}", f"{r['mean_rank']:.3f}"] for m, r in part["mean"].items()]
    lines += table_lines(["method", "top-1 rate", "mean rank"], means)
    return [*lines, ""]


def _ground_truth_lines(gt: dict) -> list[str]:
    t, chance = gt["threshold"], gt["chance"]
    lines = ["## Ground truth: associative recall (`attribution.json`)", "",
             f"Models with validation accuracy below {t:.2f} are left out: the pair is the known "
             "source only where the model retrieves it, and a model that guesses gets some "
             "answers right by luck."]
    if chance is not None:
        lines[-1] += (f" Chance is {chance:.3f}; a model that retrieves or else guesses has at "
                      f"most {100 * guess_share(t, chance):.1f}% guesses among its correct "
                      f"answers at {t:.2f}.")
    left = ", ".join(f"{k} ({'none' if a is None else f'{a:.2f}'})"
                     for k, a in gt["left_out"].items())
    lines += ["", f"Left out (validation accuracy): {left or 'none'}.", ""]
    if gt["overall"] is None:
        return [*lines, "No model learned the task: no method can be ranked.", ""]
    answer = _answer(gt["overall"], len(gt["learned"]))
    return [*lines, *_ranking_lines(gt, len(gt["learned"]), "learned models", answer)]


def _translation_lines(tr: dict) -> list[str]:
    lines = ["## Ground truth through cross-attention: the translated source word "
             "(`translation.json`)", ""]
    if tr["overall"] is None:
        return [*lines, "No translation model was scored.", ""]
    return [*lines, *_ranking_lines(tr, len(tr["models"]), "models")]


def _minilm_lines(mini: dict) -> list[str]:
    lines = [f"## all-MiniLM-L6-v2, {mini['sentences']} sentences "
             "(`minilm_spearman.json`, `minilm_aopc.json`)", ""]
    names = {"spearman": "Spearman with `[MASK]` blank-out importance (higher is better)",
             "aopc_comprehensiveness": "AOPC comprehensiveness (higher is better)",
             "aopc_sufficiency": "AOPC sufficiency (lower is better)"}
    rows = [_row(names[k], {k: mini[k]}) for k in names]
    lines += table_lines(["criterion", "best", "best single-pass"], rows)
    return [*lines, ""]


def summary_markdown(summary: dict) -> str:
    """``summary.md`` from :func:`write_summary`'s dict (either part may be missing)."""
    reasons: dict[str, list[str]] = {}
    for m, why in BASELINES.items():
        reasons.setdefault(why, []).append(f"`{m}`")
    baselines = "; ".join(f"{', '.join(ms)} {why}" for why, ms in reasons.items())
    lines = ["# Attribution benchmark: which method finds the ground truth best", "",
             "Computed by `graphattn attribution` from the tables in this folder; "
             "nothing here is written by hand. Cells: the best method (all of them on a tie: "
             f"values within {TIE:g}) and its value. Single-pass methods read one forward pass "
             "(and one backward pass for `grad_attention` and `attnlrp`, per explained "
             f"prediction for `attnlrp`); the baselines do not ({baselines}).",
             ""]
    if "ground_truth" in summary:
        lines += _ground_truth_lines(summary["ground_truth"])
    if "translation" in summary:
        lines += _translation_lines(summary["translation"])
    if "minilm" in summary:
        lines += _minilm_lines(summary["minilm"])
    if not summary:
        lines.append("No tables found.")
    return "\n".join(lines).rstrip("\n") + "\n"


def write_summary(out: str | os.PathLike) -> dict:
    """Summarize the benchmark's tables in ``out``; write ``summary.md`` and ``summary.json``.

    Each part is summarized if its JSON tables are in ``out``
    (``attribution.json``; ``translation.json``; ``minilm_spearman.json`` and
    ``minilm_aopc.json``).
    Returns the dict written to ``summary.json``.
    """
    out = Path(out)
    summary: dict = {}
    if (out / "attribution.json").exists():
        saved = json.loads((out / "attribution.json").read_text())
        summary["ground_truth"] = ground_truth_summary(
            saved["ground_truth"], chance=saved.get("chance"))
    if (out / "translation.json").exists():
        saved = json.loads((out / "translation.json").read_text())
        summary["translation"] = translation_summary(saved["translation"])
    if (out / "minilm_spearman.json").exists() and (out / "minilm_aopc.json").exists():
        spear = json.loads((out / "minilm_spearman.json").read_text())
        count = spear.pop("sentences")
        aopc = json.loads((out / "minilm_aopc.json").read_text())["methods"]
        summary["minilm"] = {"sentences": count, **minilm_summary(spear, aopc)}
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_text(out / "summary.md", summary_markdown(summary))
    return summary
