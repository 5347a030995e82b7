"""Train the same small model under every pattern of an experiment, resumably.

For every pattern and seed, :func:`run_experiment` trains a
:class:`~graphattn.nn.GraphLM` whose layers attend along the pattern's (causal)
graph, with the same data, budget and initial seed, and records the training
loss curve, validation loss and accuracy, tokens per second and peak memory.

- **Deterministic.** The model is initialised from ``torch.manual_seed(seed)``;
  the batch of step ``t`` comes from a generator seeded by ``(seed, t)`` alone,
  and validation always uses the same held-out batches, so a run gives the
  same numbers every time (same machine, same torch, same thread count) and a
  resumed run the same numbers as an uninterrupted one.
- **Resumable.** Every ``train.checkpoint_every`` steps the model, the AdamW
  state and the run's history are written to
  ``OUT/checkpoints/<label>-seed<s>.safetensors`` (to a temporary name, then
  renamed). Running again with the same config continues from there; finished
  runs are not trained again. A checkpoint made under a different config is
  refused, never silently mixed in.
- **Numbers or an error.** A training loss that becomes NaN or infinite
  stops the run with a ``FloatingPointError`` naming the step and the
  learning rate (a learning rate of ``inf`` or ``nan`` is refused when the
  config is loaded).
- **Ctrl-C** finishes the current step, saves a checkpoint and writes the
  partial results (``status: "interrupted"``); a second Ctrl-C stops at once
  (the last checkpoint is still consistent).
- **Data-parallel** inside a process group (``graphattn experiment --nproc``):
  see :mod:`graphattn.experiments.common.parallel`; rank 0 alone writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
import resource
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from graphattn import analysis
from graphattn.experiments.common import parallel
from graphattn.experiments.common.checkpoints import load_checkpoint, save_checkpoint
from graphattn.experiments.common.schedule import learning_rate, step_generator
from graphattn.experiments.common.task import IGNORE
from graphattn.experiments.lm.config import ExperimentConfig, PatternConfig
from graphattn.experiments.lm.report import write_report
from graphattn.graph import TokenGraph
from graphattn.nn import GraphLM

__all__ = ["RunResult", "run_experiment", "train_run"]

VAL_SEED = 2**31 - 1  # generator seed of the validation batches, shared by every run


@dataclass
class RunResult:
    """What one (pattern, seed) run produced.

    Examples
    --------
    >>> RunResult("window 8", 0).status
    'pending'
    """

    label: str  # pattern label
    seed: int  # initial seed of model and data
    status: str = "pending"  # "pending", "interrupted" or "complete"
    steps_done: int = 0  # optimizer steps taken so far
    curve: list[list[float]] = field(default_factory=list)  # [step, training loss] points
    evals: list[list[float]] = field(default_factory=list)  # [step, val loss, val accuracy]
    val_loss: float | None = None  # last validation loss
    val_acc: float | None = None  # last validation accuracy (scored positions only)
    train_seconds: float = 0.0  # wall time of the training steps, evaluation excluded
    tokens_per_s: float | None = None  # training tokens (batch * seq_len) per second
    peak_memory_mb: float | None = None  # see ``memory_measure``
    memory_measure: str = ""  # what peak_memory_mb measures

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


class _StopFlag:
    """Turns the first SIGINT into a request to stop after the current step."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C is immediate


@contextlib.contextmanager
def _graceful_sigint():
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signals only reach the main thread; nothing to install
        return
    previous = signal.signal(signal.SIGINT, flag)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower() or "pattern"


def _fingerprint(cfg: ExperimentConfig, pattern: PatternConfig, seed: int) -> str:
    """Hash of everything that determines a run's numbers."""
    d = cfg.to_dict()
    train = {k: v for k, v in d["train"].items() if k not in ("device", "threads")}
    parts = [d["task"], d["model"], train, dataclasses.asdict(pattern), seed]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _evaluate(model: GraphLM, cfg: ExperimentConfig, device: torch.device) -> tuple[float, float]:
    """Mean loss and accuracy over the scored positions of the validation batches."""
    task, t = cfg.task, cfg.train
    gen = torch.Generator().manual_seed(VAL_SEED)
    loss_sum, correct, count = 0.0, 0, 0
    model.eval()
    with torch.no_grad():
        for _ in range(t.eval_batches):
            x, y = (a.to(device) for a in task.val_batch(t.eval_batch_size, gen))  # (B, N) each
            logits = model(x).logits  # (B, N, V)
            scored = y != IGNORE  # (B, N)
            loss_sum += float(F.cross_entropy(logits[scored], y[scored], reduction="sum"))
            correct += int((logits.argmax(-1)[scored] == y[scored]).sum())
            count += int(scored.sum())
    model.train()
    return loss_sum / count, correct / count


def _peak_memory_mb(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "CUDA max_memory_allocated"
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
    return rss, "process max RSS so far (a high-water mark over the whole experiment)"


def train_run(
    cfg: ExperimentConfig,
    pattern: PatternConfig,
    graph: TokenGraph,
    seed: int,
    checkpoint: Path | None = None,
    *,
    progress: bool = True,
    stop: _StopFlag | None = None,
) -> RunResult:
    """Train one model on ``graph`` with ``seed``; resume from ``checkpoint`` if it exists.

    Parameters
    ----------
    cfg : ExperimentConfig
        Task, model size and budget.
    pattern : PatternConfig
        The pattern entry (label and layer count).
    graph : TokenGraph
        Its causal graph on ``task.seq_len`` nodes (the same for every layer).
    seed : int
        Initial seed of the model and of the training batches.
    checkpoint : Path, optional
        Where the run is saved and resumed from; None trains without saving.
    progress : bool
        Show a tqdm progress bar.
    stop : object with a ``requested`` bool, optional
        Checked after every step; when set, the run saves and returns with
        ``status="interrupted"``.

    Returns
    -------
    RunResult

    Examples
    --------
    >>> from graphattn.experiments.lm.config import TrainConfig, PatternConfig
    >>> from graphattn.experiments.lm.tasks import CopyTask
    >>> p = PatternConfig("causal", pattern="causal")
    >>> cfg = ExperimentConfig(task=CopyTask(seq_len=8), patterns=(p,),
    ...                        train=TrainConfig(steps=3, warmup=1, eval_every=3, log_every=1))
    >>> r = train_run(cfg, p, p.build(8, "p"), seed=0, progress=False)
    >>> r.status, r.steps_done, len(r.curve)
    ('complete', 3, 3)
    """
    previous_threads = torch.get_num_threads()
    if cfg.train.threads is not None:
        torch.set_num_threads(cfg.train.threads)
    try:
        return _train(cfg, pattern, graph, seed, checkpoint, progress, stop)
    finally:
        torch.set_num_threads(previous_threads)  # leave the caller's setting as it was


def _train(
    cfg: ExperimentConfig,
    pattern: PatternConfig,
    graph: TokenGraph,
    seed: int,
    checkpoint: Path | None,
    progress: bool,
    stop: _StopFlag | None,
) -> RunResult:
    t = cfg.train
    device = torch.device(t.device)
    model, opt = _new_model(cfg, pattern, graph, seed, device)
    fingerprint = _fingerprint(cfg, pattern, seed)
    result = _resumed(checkpoint, model, opt, fingerprint, pattern, seed, t.steps)
    if result.status == "complete":
        return result
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    bar = _progress_bar(t.steps, result.steps_done, f"{pattern.label} (seed {seed})", progress)
    step = result.steps_done
    while step < t.steps:
        loss_value, seconds = _train_step(model, opt, cfg, seed, step, device)
        result.train_seconds += seconds
        step += 1
        _record_step(result, step, loss_value, model, cfg, device, bar)
        interrupted = stop is not None and stop.requested
        if checkpoint is not None and parallel.is_main() and (
            step % t.checkpoint_every == 0 or step == t.steps or interrupted
        ):
            save_checkpoint(checkpoint, model, opt, result.to_dict(), fingerprint)
        if interrupted:
            break
    bar.close()
    return result


def _resumed(
    checkpoint: Path | None,
    model: GraphLM,
    opt: torch.optim.Optimizer,
    fingerprint: str,
    pattern: PatternConfig,
    seed: int,
    steps: int,
) -> RunResult:
    """The run's record so far: loaded with the model and optimizer from ``checkpoint``, or new."""
    if checkpoint is None or not checkpoint.exists():
        return RunResult(pattern.label, seed)
    result = RunResult(**load_checkpoint(checkpoint, model, opt, fingerprint))
    if result.status != "complete" and parallel.is_main():
        print(
            f"resuming {pattern.label} (seed {seed}) from step {result.steps_done} of {steps}",
            file=sys.stderr, flush=True,
        )  # fmt: skip
    return result


def _progress_bar(steps: int, done: int, desc: str, progress: bool) -> tqdm:
    """A tqdm bar over a run's ``steps``, ``done`` of them already taken; hidden unless asked."""
    return tqdm(total=steps, initial=done, desc=desc, disable=not progress, leave=False)


def _new_model(
    cfg: ExperimentConfig,
    pattern: PatternConfig,
    graph: TokenGraph,
    seed: int,
    device: torch.device,
) -> tuple[GraphLM, torch.optim.Optimizer]:
    """The freshly seeded model of a run, on ``graph`` in every layer, and its optimizer."""
    n_layers = cfg.layers_of(pattern)
    torch.manual_seed(seed)
    model = GraphLM(
        cfg.task.vocab_size,
        cfg.model.d_model,
        n_layers,
        cfg.model.n_heads,
        pattern=[graph] * n_layers,
        max_len=cfg.task.seq_len,
        tie_weights=cfg.model.tie_weights,
    ).to(device)
    t = cfg.train
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    return model, opt


def _train_step(
    model: GraphLM,
    opt: torch.optim.Optimizer,
    cfg: ExperimentConfig,
    seed: int,
    step: int,
    device: torch.device,
) -> tuple[float, float]:
    """One optimizer step on the batch of ``step``: the training loss and the seconds taken."""
    x, y = cfg.task.batch(cfg.train.batch_size, step_generator(seed, step))  # (B, N) each
    start = time.perf_counter()
    lr = learning_rate(step, cfg.train)
    for group in opt.param_groups:
        group["lr"] = lr
    loss = parallel.step_loss(model, x.to(device), y.to(device))  # this rank's share
    loss_value = parallel.loss_value(loss)  # the global loss, the same on every rank
    if not math.isfinite(loss_value):
        raise FloatingPointError(
            f"the training loss became {loss_value} at step {step} (lr {lr:g}); "
            "lower train.lr or check the task"
        )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    parallel.sum_gradients(model)
    opt.step()
    return loss_value, time.perf_counter() - start


def _record_step(
    result: RunResult,
    step: int,
    loss_value: float,
    model: GraphLM,
    cfg: ExperimentConfig,
    device: torch.device,
    bar: tqdm,
) -> None:
    """Update ``result`` after ``step`` steps: curve, evaluation when due, speed, memory, status."""
    t = cfg.train
    result.steps_done = step
    if step % t.log_every == 0 or step == t.steps:
        result.curve.append([step, loss_value])
    if step % t.eval_every == 0 or step == t.steps:
        result.val_loss, result.val_acc = _evaluate(model, cfg, device)
        result.evals.append([step, result.val_loss, result.val_acc])
        bar.set_postfix(loss=f"{loss_value:.3f}", val_acc=f"{result.val_acc:.3f}")
    bar.update(1)
    tokens = t.batch_size * cfg.task.seq_len
    result.tokens_per_s = tokens * step / max(result.train_seconds, 1e-9)
    result.peak_memory_mb, result.memory_measure = _peak_memory_mb(device)
    result.status = "complete" if step == t.steps else "interrupted"


def _linked(cfg: ExperimentConfig, graph: TokenGraph) -> float | None:
    """Share of scored validation targets whose source position is linked to them by an edge.

    The source is the input position holding what the target needs (the
    task's ``sources``); None for tasks without one (``char_lm``). Pass
    ``analysis.reach(graph, L)`` as ``graph`` for paths of up to L edges.
    """
    task = cfg.task
    gen = torch.Generator().manual_seed(VAL_SEED)
    mask = graph.to_dense_mask()  # (N, N), mask[i, j] iff edge j -> i
    hits, total = 0, 0
    for _ in range(cfg.train.eval_batches):
        x, y = task.val_batch(cfg.train.eval_batch_size, gen)  # (B, N) each
        src = task.sources(x, y)  # (B, N), -1 where unscored
        if src is None:
            return None
        b, i = (src >= 0).nonzero(as_tuple=True)  # (S,) scored positions
        hits += int(mask[i, src[b, i]].sum())
        total += i.numel()
    return hits / total if total else None


def _pattern_info(cfg: ExperimentConfig, pattern: PatternConfig, graph: TokenGraph) -> dict:
    n_layers = cfg.layers_of(pattern)
    n = graph.num_nodes
    reached = analysis.reach(graph, n_layers)
    spec = {k: v for k, v in dataclasses.asdict(pattern).items() if v not in (None, {})}
    return {
        "label": pattern.label,
        "spec": spec,
        "graph": graph.name or "",
        "n_layers": n_layers,
        "edges": graph.num_edges,
        "edges_per_token": graph.num_edges / n,
        "density": analysis.density(graph),
        "layers_to_reach": analysis.layers_to_reach(graph),
        "reach_fraction": reached.num_edges / (n * (n + 1) // 2),
        "direct_links": _linked(cfg, graph),
        "reachable_links": _linked(cfg, reached),
    }


def _new_results(
    cfg: ExperimentConfig, graphs: list[TokenGraph], command: str | None
) -> dict[str, Any]:
    """The results of an experiment before any run: config, environment, pending runs."""
    entries = []
    for p, g in zip(cfg.patterns, graphs, strict=True):
        info = _pattern_info(cfg, p, g)
        info["runs"] = [RunResult(p.label, s).to_dict() for s in cfg.seeds]
        entries.append(info)
    return {
        "name": cfg.name,
        "status": "running",
        "command": command,
        "config": cfg.to_dict(),
        "environment": {
            "torch": torch.__version__,
            "device": cfg.train.device,
            "threads": torch.get_num_threads() if cfg.train.threads is None else cfg.train.threads,
        },
        "chance": cfg.task.chance,
        "patterns": entries,
    }


def _checkpoint_paths(
    cfg: ExperimentConfig, ckpt_dir: Path, resume: bool
) -> dict[tuple[int, int], Path]:
    """``(pattern index, seed) -> checkpoint path``; without ``resume`` the files are deleted."""
    paths = {
        (k, s): ckpt_dir / f"{_slug(p.label)}-seed{s}.safetensors"
        for k, p in enumerate(cfg.patterns)
        for s in cfg.seeds
    }
    if not resume and parallel.is_main():
        for path in paths.values():
            path.unlink(missing_ok=True)
    parallel.barrier()  # no rank reads a checkpoint that is being deleted
    return paths


def run_experiment(
    cfg: ExperimentConfig,
    out_dir: str | os.PathLike,
    *,
    resume: bool = True,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Train every pattern with every seed; write JSON, Markdown and plots to ``out_dir``.

    Parameters
    ----------
    cfg : ExperimentConfig
        The experiment.
    out_dir : path
        Output directory: ``results.json``, ``results.md``, the plots and
        ``checkpoints/``.
    resume : bool
        Continue from the checkpoints in ``out_dir`` (default). With False,
        existing checkpoints of this experiment are deleted first.
    progress : bool
        Show tqdm progress bars.
    command : str, optional
        The command line that produced the results, recorded in them.

    Returns
    -------
    dict
        The results as written to ``results.json``; ``status`` is
        ``"complete"`` or ``"interrupted"`` (after Ctrl-C; run again to resume).

    Raises
    ------
    ValueError
        If ``out_dir`` is empty (it would mean the current folder), a
        pattern cannot be built, or a checkpoint belongs to another config.

    Examples
    --------
    >>> import tempfile
    >>> from graphattn.experiments.lm.config import TrainConfig, PatternConfig
    >>> from graphattn.experiments.lm.tasks import CopyTask
    >>> cfg = ExperimentConfig(task=CopyTask(seq_len=8),
    ...                        patterns=(PatternConfig("causal", pattern="causal"),),
    ...                        train=TrainConfig(steps=2, warmup=1, eval_every=2, log_every=1))
    >>> res = run_experiment(cfg, tempfile.mkdtemp(), progress=False)
    >>> res["status"], res["patterns"][0]["runs"][0]["steps_done"]
    ('complete', 2)
    """
    if not os.fspath(out_dir).strip():
        raise ValueError(f"out_dir must name a folder, got {os.fspath(out_dir)!r}")
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    graphs = [p.build(cfg.task.seq_len, f"patterns[{k}]") for k, p in enumerate(cfg.patterns)]
    results = _new_results(cfg, graphs, command)
    entries = results["patterns"]
    paths = _checkpoint_paths(cfg, ckpt_dir, resume)
    with _graceful_sigint() as stop:
        for (k, seed), path in paths.items():
            run = train_run(
                cfg, cfg.patterns[k], graphs[k], seed, path, progress=progress, stop=stop
            )
            entries[k]["runs"][cfg.seeds.index(seed)] = run.to_dict()
            if stop.requested:
                break
            if parallel.is_main():
                write_report(results, out, plots=False)
    results["status"] = "interrupted" if stop.requested else "complete"
    if parallel.is_main():
        write_report(results, out, plots=True)
    return results
