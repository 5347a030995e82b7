"""Information flow at the scale of real prompts: recording, rollout and ALTI on GPT-2 small.

Each cell runs in a fresh process (its first call and peak resident memory
are its own): a ``GPT2LMHeadModel`` from ``GPT2Config(n_embd=768, n_layer=12,
n_head=12)`` with random weights on ``attn_implementation="graphattn"``, one
sequence of ``N`` random tokens, float32, CPU, no grad. Graphs: the model's
own ``causal`` graph, or a causal sliding ``window`` of ``--window`` keys.
Cases:

- ``forward``: the forward alone;
- ``record``: the forward inside ``graphattn.hf.record()`` (every head, exact);
- ``record_mean``: inside ``record(heads="mean")``;
- ``record_top``: inside ``record(heads="mean", top_k=--top-k)``;
- ``rollout``: ``attention_rollout(..., targets=the last 8 tokens)`` of a
  ``record_top`` recording (the rollout's own time, with ``dropped=``);
- ``alti``, ``globenc``, ``value_zeroing``: ``graphattn.flow.contributions(model,
  ids, method)``;
- ``eager``: transformers' own eager attention with ``output_attentions=True``;
- ``touch``: no model call, only the memory ``record`` keeps: 12 new
  tensors of ``E * H`` float32 ones (kept together, then freed), what
  writing that many bytes to new memory costs here;
- ``held``: the forward while the process holds that memory (written before
  the clock starts), what holding it costs the rest of the forward.

Times are the first call and the median of ``--reps`` more in the same
process; the contributions, minutes long at these sizes, run once
(their first call is their time) and only at ``--contrib-sizes``. Then,
for each ``N`` and graph, one more process builds the model once and calls
``forward``, ``record``, ``record_mean``, ``record_top``, ``touch`` and
``held`` (those whose own cell ran) in turn: a warm-up and ``--rounds``
rounds, whose medians (``round_s``) are what a recording's cost over the
forward is read from, measured seconds apart instead of minutes (this
machine's speed moves with its other tenants). A cell whose kept weights
alone would exceed ``--memory-share`` of the machine's memory (``record``,
``touch`` and ``held`` keep ``12 E H`` float32 values, ``eager``
``12 H N^2``: 18 and 36 GiB at 8,192 causal tokens) is not started; its row
says how much it would need. Prints a table and writes every cell, with the
command, to ``--out``.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_flow_scale.py --sizes 1024 2048
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from _cells import (
    add_cell_options,
    check_options,
    interleave,
    peak_rss_gib,
    spawn,
    table,
    too_big,
    write,
)

RESULTS = Path(__file__).resolve().parent / "results" / "flow_scale.json"
CASES = (
    "forward", "record", "record_mean", "record_top", "rollout",
    "alti", "globenc", "value_zeroing", "eager", "touch", "held",
)  # fmt: skip
GRAPHS = ("causal", "window")
ROUNDED = ("forward", "record", "record_mean", "record_top", "touch", "held")  # in rounds
EXACT = ("record", "touch", "held")  # cases keeping every head's weights (or as many bytes)
KEYS = ["n", "graph", "case"]  # a row's identity in the table
KEPT = "keeps {:.1f} GiB of weights"  # why a cell too big for the machine is not run
CONTRIBUTIONS = ("alti", "globenc", "value_zeroing")


def build(case: str, n: int, graph: str):
    """The model, the ids ``(1, N)`` and the keyword arguments of its forward."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    import graphattn.hf  # noqa: F401  (registers "graphattn")
    from graphattn import patterns

    torch.manual_seed(0)
    config = GPT2Config(n_embd=768, n_layer=12, n_head=12, n_positions=n)
    attn = "eager" if case == "eager" else "graphattn"
    model = GPT2LMHeadModel._from_config(config, attn_implementation=attn).eval()
    ids = torch.randint(0, config.vocab_size, (1, n), generator=torch.Generator().manual_seed(1))
    kwargs = {"token_graph": patterns.sliding_window(n, ARGS.window)} if graph == "window" else {}
    return model, ids, kwargs


def action(case: str, model, ids, kwargs):
    """A function running the case once and returning the seconds it counts."""
    import torch

    import graphattn.hf
    from graphattn.flow import attention_rollout, contributions

    options = {"record": {}, "record_mean": {"heads": "mean"}}
    options["record_top"] = options["rollout"] = {"heads": "mean", "top_k": ARGS.top_k}

    graph = "window" if "token_graph" in kwargs else "causal"

    def kept() -> list:
        """New memory for as many float32 values as ``record`` keeps, written."""
        return [torch.ones(record_values(ids.shape[1], graph)) for _ in range(12)]

    def run() -> float:
        held = kept() if case == "held" else []  # written before the clock
        t0 = time.perf_counter()
        if case in ("forward", "held"):
            model(ids, **kwargs)
        elif case == "eager":
            model(ids, output_attentions=True)
        elif case == "touch":
            held = kept()  # kept together, as a recording keeps them
        elif case in CONTRIBUTIONS:
            contributions(model, ids, case, graph=kwargs.get("token_graph"))
        else:
            with graphattn.hf.record(**options[case]) as rec:
                model(ids, **kwargs)
            if case == "rollout":
                layers, dropped = rec.layers(0), rec.dropped(0)
                t0 = time.perf_counter()
                attention_rollout(layers, targets=list(range(ids.shape[1] - 8, ids.shape[1])),
                                  dropped=dropped)  # fmt: skip
        seconds = time.perf_counter() - t0
        held.clear()  # freed off the clock, as a recording is freed after its forward
        return seconds

    return run


def record_values(n: int, graph: str) -> int:
    """Weights ``E * H`` that ``record`` keeps of one layer (GPT-2 small: 12 heads)."""
    w = n if graph == "causal" else ARGS.window  # keys per target, at most
    return 12 * sum(min(i + 1, w) for i in range(n))


def weights_gib(case: str, n: int, graph: str) -> float:
    """GiB of attention weights a cell keeps: every head (``EXACT``) or dense maps (eager)."""
    per_layer = 0
    if case in EXACT:
        per_layer = record_values(n, graph)
    elif case == "eager":
        per_layer = n * n * 12
    return 12 * per_layer * 4 / 2**30


def cell(case: str, n: int, graph: str) -> dict:
    """Run one cell in this process: first and warm seconds, peak memory."""
    import torch

    model, ids, kwargs = build(case, n, graph)
    with torch.no_grad():
        run = action(case, model, ids, kwargs)
        times = [run() for _ in range(1 + (0 if case in CONTRIBUTIONS else ARGS.reps))]
    warm = statistics.median(times[1:]) if len(times) > 1 else None
    return {"first_s": times[0], "warm_s": warm, "peak_rss_gib": peak_rss_gib()}


def rounds(cases: list[str], n: int, graph: str) -> dict:
    """The ``ROUNDED`` cases on one model in this process, in turn: medians over ``--rounds``."""
    import torch

    model, ids, kwargs = build("forward", n, graph)
    with torch.no_grad():
        runs = {case: action(case, model, ids, kwargs) for case in cases}
        seen = interleave(runs, ARGS.rounds)
    return {case: {"round_s": statistics.median(times)} for case, times in seen.items()}


COLUMNS = {
    "first_s": "first s",
    "warm_s": "warm s",
    "round_s": "round s",
    "peak_rss_gib": "peak GiB",
}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    p.add_argument("--graphs", nargs="+", choices=GRAPHS, default=list(GRAPHS))
    p.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    p.add_argument(
        "--contrib-sizes", type=int, nargs="+", default=[2048, 4096],
        help="the sizes at which alti, globenc and value_zeroing run",
    )  # fmt: skip
    p.add_argument("--top-k", type=int, default=32, help="edges kept per target by record_top")
    p.add_argument("--reps", type=int, default=1, help="warm repetitions per cell")
    p.add_argument(
        "--rounds", type=int, default=2,
        help="interleaved rounds of forward and the record cases per N and graph",
    )  # fmt: skip
    add_cell_options(p, RESULTS, "weights")
    p.add_argument("--cell", nargs=3, metavar=("CASE", "N", "GRAPH"), help=argparse.SUPPRESS)
    p.add_argument("--rounds-of", nargs="+", metavar="N GRAPH CASE", help=argparse.SUPPRESS)
    return check_options(p, p.parse_args(argv), ("window", "top_k", "reps", "rounds"))


def main(argv: list[str]) -> None:
    options = ["--window", str(ARGS.window), "--top-k", str(ARGS.top_k), "--reps", str(ARGS.reps),
               "--rounds", str(ARGS.rounds)]  # fmt: skip
    rows = []
    for n in ARGS.sizes:
        for graph in ARGS.graphs:
            done = []
            for case in ARGS.cases:
                if case == "eager" and graph != "causal":
                    continue  # transformers' eager attention has no window graph
                if case in CONTRIBUTIONS and n not in ARGS.contrib_sizes:
                    continue
                result = too_big(weights_gib(case, n, graph), ARGS.memory_share, KEPT)
                if result is None:
                    result = spawn(__file__, [case, str(n), graph], options, ARGS.timeout)
                done.append({"n": n, "graph": graph, "case": case, **result})
                print(table(done[-1:], KEYS, COLUMNS).splitlines()[-1], flush=True)
            rows += _rounded(done, n, graph, options)
    print(table(rows, KEYS, COLUMNS))
    write(ARGS.out, "benchmarks/bench_flow_scale.py", argv, rows)


def _rounded(done: list[dict], n: int, graph: str, options: list[str]) -> list[dict]:
    """``done`` with ``round_s`` for the ``ROUNDED`` cases that ran alone (or the rounds' error)."""
    cases = [r["case"] for r in done if r["case"] in ROUNDED and "error" not in r]
    if not cases:
        return done
    got = spawn(__file__, [str(n), graph, *cases], options, ARGS.timeout, flag="--rounds-of")
    for row in done:
        if row["case"] in cases:
            row.update(got.get(row["case"], got))  # the rounds' own error, if they failed
            print(table([row], KEYS, COLUMNS).splitlines()[-1], flush=True)
    return done


if __name__ == "__main__":
    ARGS = parse(sys.argv[1:])
    if ARGS.cell:
        case, n, graph = ARGS.cell
        print(__import__("json").dumps(cell(case, int(n), graph)))
    elif ARGS.rounds_of:
        n, graph, *cases = ARGS.rounds_of
        print(__import__("json").dumps(rounds(cases, int(n), graph)))
    else:
        main(sys.argv[1:])
