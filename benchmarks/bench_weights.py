"""What returned weights cost: ``graph_attention`` with and without ``return_weights``.

One call, ``B = 1``, ``H = 12``, ``D = 64``, float32, no grad (as recording
runs), on a causal graph and a causal sliding window of 256 keys. The two
variants alternate, ``--reps`` times each, and the median process CPU time of
each is kept (less sensitive than wall time to other jobs on the machine;
still, compare only the ratios of one run). Writes ``--out``.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_weights.py --sizes 2048
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from _cells import table, write

from graphattn import graph_attention, patterns

RESULTS = Path(__file__).resolve().parent / "results" / "weights.json"


def measure(n: int, reps: int) -> list[dict]:
    """Median CPU seconds of the plain and the weights call, per graph."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, n, 12, 64, generator=gen) for _ in range(3))
    graphs = {"causal": patterns.causal(n), "window 256": patterns.sliding_window(n, 256)}
    seconds: dict[tuple[str, bool], list[float]] = {}
    with torch.no_grad():
        for g in graphs.values():  # plans and first calls out of the way
            graph_attention(q, k, v, g, return_weights=True)
        for _ in range(reps):
            for name, g in graphs.items():
                for weights in (False, True):
                    t0 = time.process_time()
                    graph_attention(q, k, v, g, return_weights=weights)
                    seconds.setdefault((name, weights), []).append(time.process_time() - t0)
    rows = []
    for name in graphs:
        plain = statistics.median(seconds[(name, False)])
        weighted = statistics.median(seconds[(name, True)])
        rows.append({"n": n, "graph": name, "plain_s": plain, "weights_s": weighted,
                     "ratio": weighted / plain})  # fmt: skip
    return rows


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2048])
    p.add_argument("--reps", type=int, default=4)
    p.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = p.parse_args(argv)
    if args.reps < 1 or min(args.sizes) < 256:
        p.error("--reps must be >= 1 and every size >= 256 (the window)")
    rows = [row for n in args.sizes for row in measure(n, args.reps)]
    columns = {"plain_s": "plain CPU s", "weights_s": "weights CPU s", "ratio": "ratio"}
    print(table(rows, ["n", "graph"], columns))
    write(args.out, "benchmarks/bench_weights.py", argv, rows)


if __name__ == "__main__":
    main(sys.argv[1:])
