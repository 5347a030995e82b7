"""Load: how much a process competing for the cores slows one attention layer's kernels.

The model-path table measures the window graph's attention calls against
the causal graph's on a shared machine. This script asks how that ratio
moves when the machine is busy. One GPT-2-small layer's inputs (``q``,
``k``, ``v`` as views of one ``(1, N, 3 * 768)`` projection, 12 heads of
64), float32, CPU; cases:

- ``causal``, ``window``: graphattn on the causal graph and on a causal
  sliding window of ``--window`` keys (its tiles: 64 queries by
  ``window + 64`` keys);
- ``sdpa causal``: PyTorch's fused SDPA on the whole causal layer, one call;
- ``sdpa tiles x1``, ``sdpa tiles xT``: PyTorch's fused SDPA on the window's
  ``T = N / 64`` tiles (64 queries by ``window + 64`` keys, unmasked; the
  window's work, without graphattn), in one call or in ``T`` calls.

Each phase calls every case in turn, ``--reps`` times (medians), first on the
machine as it is (``quiet``), then with ``--competitors`` processes spinning
on the cores (``loaded``); the phases alternate ``--phases`` times. Prints
each case's milliseconds and its slowdown (``loaded`` over ``quiet`` of the
same pair of phases). Then, on the machine as it is, ``--turns`` calls of
every case in turn (a trace): each case's 10th, 50th and 90th percentile,
its correlation with the window's calls over the turns, and the window's
time over the unmasked tiles' in each turn (``window / tiles``, median):
whether graphattn's window call and PyTorch's kernel on the same tiles move
together with the machine, and what graphattn adds to that kernel. Writes
every phase and the trace, with the command, to ``--out``.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_load.py --size 4096 --phases 2
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _cells import interleave, table, write

from graphattn import graph_attention, patterns

RESULTS = Path(__file__).resolve().parent / "results" / "load.json"
SPIN = "while True: pass"  # a competitor: one core's worth of work, no memory traffic
COLUMNS = {"quiet_ms": "quiet ms", "loaded_ms": "loaded ms", "slowdown": "slowdown"}
TRACE_COLUMNS = {"p10_ms": "p10 ms", "p50_ms": "p50 ms", "p90_ms": "p90 ms", "corr_window": "corr"}


def cases(n: int, window: int) -> dict:
    """Every case's function on one layer's inputs of ``n`` tokens."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, n, 3 * 768, generator=gen)
    q, k, v = (t.view(1, n, 12, 64) for t in x.split(768, -1))  # (1, N, 12, 64) views
    causal, band = patterns.causal(n), patterns.sliding_window(n, window)
    heads = [t.transpose(1, 2) for t in (q, k, v)]  # (1, 12, N, 64)
    t = n // 64
    qt = torch.randn(t, 12, 64, 64, generator=gen)  # the window's tiles
    kt, vt = (torch.randn(t, 12, window + 64, 64, generator=gen) for _ in range(2))

    def tiles(per: int):
        def run():
            for i in range(0, t, per):
                F.scaled_dot_product_attention(qt[i : i + per], kt[i : i + per], vt[i : i + per])

        return run

    return {
        "causal": lambda: graph_attention(q, k, v, causal),
        "window": lambda: graph_attention(q, k, v, band),
        "sdpa causal": lambda: F.scaled_dot_product_attention(*heads, is_causal=True),
        "sdpa tiles x1": tiles(t),
        f"sdpa tiles x{t}": tiles(1),
    }


def timed(runs: dict) -> dict:
    """``runs`` (name: function) as functions that return their seconds."""

    def clocked(fn):
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    return {name: partial(clocked, fn) for name, fn in runs.items()}


def phase(runs: dict, reps: int, competitors: int) -> dict[str, float]:
    """Median seconds of every case, called in turn, with ``competitors`` spinning."""
    spinning = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(competitors)]
    try:
        time.sleep(0.5 if spinning else 0.0)  # let them start
        seen = interleave(timed(runs), reps)
    finally:
        for p in spinning:
            p.kill()
            p.wait()
    return {name: statistics.median(s) for name, s in seen.items()}


def trace(runs: dict, turns: int) -> list[dict]:
    """Every case's percentiles over ``turns`` calls in turn, and how it moves with the window."""
    ms = {name: 1e3 * np.array(s) for name, s in interleave(timed(runs), turns).items()}
    window, tiles = ms["window"], ms["sdpa tiles x1"]
    rows = []
    for name, m in ms.items():
        p10, p50, p90 = np.percentile(m, [10, 50, 90])
        moves = m.std() > 0 and window.std() > 0
        corr = float(np.corrcoef(m, window)[0, 1]) if moves else None
        rows.append({"kind": "trace", "case": name, "p10_ms": p10, "p50_ms": p50, "p90_ms": p90,
                     "corr_window": corr, "each_ms": m.tolist()})  # fmt: skip
    ratio = float(np.median(window / tiles))  # graphattn over PyTorch's kernel, turn by turn
    return [*rows, {"kind": "trace", "case": "window / tiles", "p50_ms": ratio}]


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=4096, help="tokens N (a multiple of 64)")
    p.add_argument("--window", type=int, default=256, help="keys of the window graph")
    p.add_argument("--reps", type=int, default=7, help="calls of each case per phase")
    p.add_argument("--phases", type=int, default=2, help="pairs of quiet and loaded phases")
    p.add_argument("--competitors", type=int, default=1, help="spinning processes when loaded")
    p.add_argument("--turns", type=int, default=40, help="calls of each case in the trace")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = p.parse_args(argv)
    for name in ("size", "window", "reps", "phases", "competitors", "turns"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.size % 64 or args.size < args.window:
        p.error(f"--size must be a multiple of 64 and >= --window, got {args.size}")
    return args


def main(argv: list[str]) -> None:
    args = parse(argv)
    runs = cases(args.size, args.window)
    rows = []
    with torch.no_grad():
        for i in range(args.phases):
            quiet = phase(runs, args.reps, 0)
            loaded = phase(runs, args.reps, args.competitors)
            for name in runs:
                rows.append({"kind": "phase", "phase": i, "case": name,
                             "quiet_ms": 1e3 * quiet[name],
                             "loaded_ms": 1e3 * loaded[name],
                             "slowdown": loaded[name] / quiet[name]})  # fmt: skip
            print(table(rows[-len(runs) :], ["phase", "case"], COLUMNS), flush=True)
        traced = trace(runs, args.turns)
    print(table(traced, ["case"], TRACE_COLUMNS))
    write(args.out, "benchmarks/bench_load.py", argv, rows + traced)


if __name__ == "__main__":
    main(sys.argv[1:])
