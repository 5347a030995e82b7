"""Attribution with ground truth: which method finds the token an answer was copied from.

In associative recall (:class:`~graphattn.experiments.lm.tasks.RecallTask`) the
answer at a query position is the value of one known pair token. Small
``GraphLM`` models are trained with the experiment runner on three graphs
(full causal, window + a global relay token, strided), fixed seeds; each
attribution method then ranks the inputs for the query position, and the
tables give how often the known pair is ranked first and its mean rank.

Run ``python -m graphattn.experiments.attribution [OUT_DIR]`` (default
``benchmarks/results/attribution``): it trains or resumes the checkpoints
there, scores every method and writes ``attribution.md`` and
``attribution.json``. ``graphattn attribution`` runs this part, the
translation and MiniLM parts and the summary in one command. Nothing is
tuned per method: the rollout of every
contribution method uses ``residual=0`` for the methods that include the
residual (ALTI, GlobEnc) and Abnar & Zuidema's ``0.5`` for the others.
``attnlrp`` scores each input by its AttnLRP relevance for the answer at
the query position, as the paper reports it (input-token relevance of one
logit, :func:`graphattn.experiments.attribution.lrp.lm_token_relevance`);
``routes`` by :func:`graphattn.flow.route_scores` of the ALTI layers: the
largest threshold at which it is on the query's information-flow route
(Ferrando & Voita 2024).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from graphattn._markdown import table_lines
from graphattn.experiments.attribution.lrp import lm_token_relevance
from graphattn.experiments.common.checkpoints import load_model
from graphattn.experiments.common.config import TrainConfig
from graphattn.experiments.common.files import write_text
from graphattn.experiments.lm.config import ExperimentConfig, ModelConfig, PatternConfig
from graphattn.experiments.lm.tasks import RecallTask
from graphattn.flow import attention_flow, attention_rollout, contributions, route_scores
from graphattn.nn import GraphLM

__all__ = [
    "CONFIG",
    "DEFAULT_OUT",
    "METHODS",
    "cost_table",
    "main",
    "rank_among",
    "rank_cells",
    "rank_of_source",
    "rank_table",
    "run",
    "score_model",
]

#: Where the benchmark's commands write their tables and checkpoints.
DEFAULT_OUT = "benchmarks/results/attribution"

#: The benchmark's task, models and budget (seeds fixed).
CONFIG = ExperimentConfig(
    name="attribution ground truth: recall of one pair from >= 16 tokens away",
    task=RecallTask(
        seq_len=32, n_pairs=1, n_queries=1, distance=16, train_distance=1, n_keys=8, n_values=8
    ),
    patterns=(
        PatternConfig("full causal", pattern="causal"),
        PatternConfig(
            "window 8 + global", pattern="longformer", params={"window": 8, "globals": [22]}
        ),
        PatternConfig("strided 6", pattern="strided", params={"stride": 6}),
    ),
    model=ModelConfig(d_model=64, n_layers=2, n_heads=4),
    train=TrainConfig(steps=2000, batch_size=16, lr=3e-3, warmup=30, eval_every=500),
    seeds=(0, 1),
)

#: Methods scored, in table order.
METHODS = (
    "attention",
    "rollout",
    "max-flow",
    "ablation",
    "alti",
    "globenc",
    "value_zeroing",
    "grad_attention",
    "attnlrp",
    "routes",
)
_RESIDUAL = {"alti": 0.0, "globenc": 0.0, "value_zeroing": 0.5, "grad_attention": 0.5}


def rank_among(scores: torch.Tensor, source: int, candidates: torch.Tensor) -> float:
    """Rank (1 = best) of ``source`` among the ``candidates`` (bool mask); ties share ranks.

    Examples
    --------
    >>> rank_among(torch.tensor([0.1, 0.5, 0.5, 0.9]), 1, torch.tensor([1, 1, 1, 0]).bool())
    1.5
    """
    s = scores[candidates]
    better = int((s > scores[source]).sum())
    ties = int((s == scores[source]).sum()) - 1
    return 1.0 + better + 0.5 * ties


def rank_of_source(scores: torch.Tensor, source: int, query: int) -> float:
    """Rank (1 = best) of ``source`` among the inputs before ``query``; ties share ranks.

    The query token itself is left out: the answer needs it by construction
    (and a causal model reads no later token).

    Examples
    --------
    >>> rank_of_source(torch.tensor([0.1, 0.5, 0.5, 0.9]), 1, 3)
    1.5
    """
    return rank_among(scores, source, torch.arange(scores.shape[0]) < query)


def rank_table(ranks: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Per method, the share of ranks equal to 1 (``"top1"``) and the mean rank.

    Examples
    --------
    >>> rank_table({"alti": [1.0, 1.0, 3.0, 1.5], "none": []})
    {'alti': {'top1': 0.5, 'mean_rank': 1.625}, 'none': {'top1': 0.0, 'mean_rank': 0.0}}
    """
    return {m: {"top1": sum(r == 1.0 for r in rs) / max(len(rs), 1),
                "mean_rank": sum(rs) / max(len(rs), 1)} for m, rs in ranks.items()}



def _ablation(model: GraphLM, x: torch.Tensor, query: int, answer: int, blank: int):
    """Drop in the answer's log-probability when each input is replaced by ``blank``."""
    n = x.shape[0]
    copies = x.repeat(n, 1)  # (N, N): copy j blanks token j
    copies[torch.arange(n), torch.arange(n)] = blank
    with torch.no_grad():
        base = model(x[None]).logits[0, query].log_softmax(-1)[answer]
        logp = model(copies).logits[:, query].log_softmax(-1)[:, answer]  # (N,)
    return base - logp


def _method_scores(model, x, y, b, query, blank, layers_of) -> dict[str, torch.Tensor]:
    """Every method's attribution over the inputs of sequence ``b`` for its query position."""
    raw = [(g, c[b]) for g, c in layers_of("attention")]
    out = {
        "attention": raw[-1][0].to_dense(raw[-1][1])[query],
        "rollout": attention_rollout(raw, residual=0.5)[query],
        "max-flow": attention_flow(raw, [query], residual=0.5)[0],
        "ablation": _ablation(model, x[b], query, int(y[b, query]), blank),
    }
    for method, residual in _RESIDUAL.items():
        layers = [(g, c[b]) for g, c in layers_of(method)]
        out[method] = attention_rollout(layers, residual=residual)[query]
    out["routes"] = route_scores([(g, c[b]) for g, c in layers_of("alti")], query)
    return out


def score_model(
    model: GraphLM,
    task: RecallTask,
    n_seqs: int = 200,
    seed: int = 1234,
    *,
    only_correct: bool = True,
) -> dict:
    """Top-1 rate and mean rank of the known source per method.

    Over the validation queries the model answers correctly (the ground
    truth holds only where it retrieves the value), or all with
    ``only_correct=False``.
    """
    x, y = task.val_batch(n_seqs, torch.Generator().manual_seed(seed))  # (S, N) each
    src = task.sources(x, y)  # (S, N): pair position of each scored query, else -1
    with torch.no_grad():
        pred = model(x).logits.argmax(-1)  # (S, N)
    queries = (y != -100).long().argmax(1)  # (S,): the first scored position of each row
    lrp = lm_token_relevance(model, x, queries)  # (S, N)
    cache: dict[str, list] = {}

    def layers_of(method: str) -> list:
        if method not in cache:
            cache[method] = contributions(model, x, method)
        return cache[method]

    ranks: dict[str, list[float]] = {m: [] for m in METHODS}
    correct = 0
    blank = task.vocab_size - 1  # the filler token
    for b in range(n_seqs):
        query = int(queries[b])
        if only_correct and int(pred[b, query]) != int(y[b, query]):
            continue  # no ground truth where the model does not retrieve the value
        correct += int(int(pred[b, query]) == int(y[b, query]))
        scores = _method_scores(model, x, y, b, query, blank, layers_of)
        scores["attnlrp"] = lrp[b]
        for m in METHODS:
            ranks[m].append(rank_of_source(scores[m].float(), int(src[b, query]), query))
    return {"sequences": n_seqs, "correct": correct, "methods": rank_table(ranks)}


def _trained(
    cfg: ExperimentConfig, pattern: PatternConfig, seed: int, out: Path
) -> tuple[GraphLM, float | None]:
    """Train (or resume) one run with the experiment runner and load its checkpoint."""
    from graphattn.experiments.lm.runner import train_run  # the runner imports tqdm

    graph = pattern.build(cfg.task.seq_len, pattern.label)
    slug = "".join(ch if ch.isalnum() else "-" for ch in pattern.label.lower())
    ckpt = out / f"{slug}-seed{seed}.safetensors"
    out.mkdir(parents=True, exist_ok=True)
    result = train_run(cfg, pattern, graph, seed, ckpt, progress=False)
    n_layers = cfg.layers_of(pattern)
    model = GraphLM(
        cfg.task.vocab_size, cfg.model.d_model, n_layers, cfg.model.n_heads,
        pattern=[graph] * n_layers, max_len=cfg.task.seq_len, tie_weights=cfg.model.tie_weights,
    )
    return load_model(ckpt, model).eval(), result.val_acc


def cost_table(lengths=(128, 1024), window: int = 16, repeats: int = 3) -> dict:
    """Seconds per sequence of every contribution method on a window graph (untrained GraphLM).

    The best of ``repeats`` timed calls, after one untimed warm-up call.
    """
    torch.manual_seed(0)
    out: dict[str, dict[str, float]] = {}
    for n in lengths:
        lm = GraphLM(100, 64, 2, 4, pattern=("sliding_window", {"window": window}), max_len=n)
        ids = torch.randint(100, (1, n))
        row = {}
        for method in ("attention", "alti", "globenc", "value_zeroing", "grad_attention",
                       "attnlrp"):
            contributions(lm.eval(), ids, method)  # warm-up
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                contributions(lm, ids, method)
                times.append(time.perf_counter() - start)
            row[method] = min(times)
        out[str(n)] = row
    return out


def rank_cells(result: dict, methods: Sequence[str]) -> list[str]:
    """``top-1 rate / mean rank`` of each of ``methods`` in a scored ``result``."""
    return [f"{result['methods'][m]['top1']:.2f} / {result['methods'][m]['mean_rank']:.2f}"
            for m in methods]


def _markdown(results: dict, cost: dict) -> str:
    rows = [[label, f"{r['val_acc']:.2f}", f"{r['correct']}/{r['sequences']}",
             *rank_cells(r, METHODS)] for label, r in results.items()]
    lines = table_lines(["model", "val acc", "scored", *METHODS], rows)
    lines += ["", "Cells: top-1 rate / mean rank of the known source (1 = best).", ""]
    methods = list(next(iter(cost.values())))
    times = [[str(n), *(f"{row[m]:.3f} s" for m in methods)] for n, row in cost.items()]
    lines += table_lines(["N", *methods], times)
    return "\n".join(lines) + "\n"


def run(
    out: str | os.PathLike = DEFAULT_OUT,
    config: ExperimentConfig = CONFIG,
    n_seqs: int = 200,
    lengths: tuple[int, ...] = (128, 1024),
    log: Callable[[str], None] = print,
) -> dict:
    """Train or resume the models in ``out``, score every method, write the tables; return them.

    ``attribution.json`` (the results, ``"chance"``: one over the number of
    values) and ``attribution.md`` are each written whole or not at all.
    """
    out = Path(out)
    results = {}
    for pattern in config.patterns:
        for seed in config.seeds:
            model, val_acc = _trained(config, pattern, seed, out)
            r = score_model(model, config.task, n_seqs)
            r["val_acc"] = val_acc
            results[f"{pattern.label} (seed {seed})"] = r
            log(f"{pattern.label}: {json.dumps(r['methods'])}")
    cost = cost_table(lengths)
    saved = {"ground_truth": results, "cost": cost, "chance": 1 / config.task.n_values}
    write_text(out / "attribution.json", json.dumps(saved, indent=2) + "\n")
    table = _markdown(results, cost)
    write_text(out / "attribution.md", table)
    log(table)
    return saved


def main(
    argv: list[str] | None = None,
    log: Callable[[str], None] = print,
    config: ExperimentConfig = CONFIG,
    n_seqs: int = 200,
    lengths: tuple[int, ...] = (128, 1024),
) -> dict:
    """``python -m graphattn.experiments.attribution [OUT_DIR]``: :func:`run`, 4 threads at most."""
    args = sys.argv[1:] if argv is None else argv
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    return run(args[0] if args else DEFAULT_OUT, config, n_seqs, lengths, log)


if __name__ == "__main__":
    main()
