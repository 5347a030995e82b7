"""How near the machine's matmul peak the kernels run, and where their time goes.

For one pattern and size of the kernel benchmark (default: the sliding window
of 128 keys at N = 16,384, ``B = 1``, ``H = 4``, ``D = 64``, float32), in one
process and one run:

- the matmul peak: a 2048 x 2048 float32 matmul, median of ``--reps`` calls
  (and the range of their rates);
- graphattn's forward (and, with ``--mode fwdbwd``, forward + backward) on
  ``backend="auto"``: the median of ``--reps`` calls after one warm-up,
  each call right after one of the matmuls (interleaved: the machine's
  speed may change during a run, and both see the same);
- useful flops: ``4 E H D`` per forward (``QK^T`` and ``PV`` on the edges
  only; ``8 E H D`` more for the backward's four products), so the share of
  the peak counts what the graph needs, not what the tiles compute;
- a profile by phase (``torch.profiler``, one more call): the time of the
  ATen operators grouped into matmuls, the fused attention kernel, ``exp`` and
  softmax, gathers and scatters, copies and fills, reductions, the rest.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_peak.py
    PYTHONPATH=. .venv/bin/python benchmarks/bench_peak.py --mode fwdbwd

Writes the numbers with the command to ``--out``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from graphattn import graph_attention
from graphattn.bench.cases import PATTERNS, build_graph

RESULTS = Path(__file__).resolve().parent / "results" / "peak.json"

# ATen operator name fragments -> phase, first match wins
PHASES = (
    ("fused attention", ("flash_attention", "scaled_dot_product")),
    ("matmul", ("bmm", "mm", "matmul", "baddbmm", "addmm", "linear")),
    ("exp / softmax", ("exp", "softmax", "logsumexp")),
    ("gather / scatter", ("index", "gather", "scatter", "take", "masked", "where", "select")),
    ("copy / fill", ("copy", "fill", "zero", "clone", "contiguous", "cat", "stack", "empty")),
    ("reduction", ("sum", "max", "amax", "mean", "min")),
)


def interleaved_seconds(fns, reps: int) -> list[list[float]]:
    """Wall times of ``reps`` rounds that call each of ``fns`` in turn, after one warm-up each.

    Interleaved, so a change of the machine's speed during the run (another
    tenant, the clock) reaches every function alike: the matmul peak and the
    attention it is compared with are measured in the same rounds.
    """
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(reps):
        for fn, kept in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            kept.append(time.perf_counter() - t0)
    return times


def phase_of(name: str) -> str:
    """The phase of an ATen operator name (``aten::bmm`` -> ``matmul``)."""
    op = name.split("::")[-1]
    for phase, parts in PHASES:
        if any(part in op for part in parts):
            return phase
    return "other"


def profile(fn) -> dict[str, float]:
    """Seconds per phase of one call, from the self CPU time of its ATen operators."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    phases: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if event.key.startswith("aten::"):
            phases[phase_of(event.key)] += event.self_cpu_time_total / 1e6
    return dict(sorted(phases.items(), key=lambda kv: -kv[1]))


def call(args, q, k, v, graph):
    """One forward, or forward + backward, as ``--mode`` says."""
    if args.mode == "fwd":
        return lambda: graph_attention(q, k, v, graph)

    def fwd_bwd():
        out = graph_attention(q, k, v, graph)
        out.backward(torch.ones_like(out))
        for t in (q, k, v):
            t.grad = None

    return fwd_bwd


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    graph = build_graph(args.pattern, args.n)
    g = torch.Generator().manual_seed(0)
    grad = args.mode == "fwdbwd"
    q, k, v = (torch.randn(1, args.n, args.heads, args.dim, generator=g).requires_grad_(grad)
               for _ in range(3))  # fmt: skip
    fn = call(args, q, k, v, graph)
    with torch.set_grad_enabled(grad):
        matmuls, calls = interleaved_seconds([lambda: a @ b, fn], args.reps)
        phases = profile(fn)
    peak = 2 * 2048**3 / statistics.median(matmuls)  # flop/s
    seconds = statistics.median(calls)
    per_edge = 4 if args.mode == "fwd" else 12  # QK^T, PV (+ dS, dQ, dK, dV... recomputed)
    useful = per_edge * graph.num_edges * args.heads * args.dim
    return {"pattern": args.pattern, "n": args.n, "mode": args.mode, "edges": graph.num_edges,
            "threads": torch.get_num_threads(), "peak_gflops": peak / 1e9,
            "peak_gflops_range": [2 * 2048**3 / max(matmuls) / 1e9,
                                  2 * 2048**3 / min(matmuls) / 1e9],
            "seconds": seconds, "useful_gflop": useful / 1e9,
            "useful_gflops": useful / seconds / 1e9, "share_of_peak": useful / seconds / peak,
            "phases_s": phases}  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pattern", choices=PATTERNS, default="window")
    p.add_argument("--n", type=int, default=16384)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--mode", choices=("fwd", "fwdbwd"), default="fwd")
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    for name in ("n", "heads", "dim", "reps"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    return args


def main(argv: list[str]) -> None:
    import json

    from _cells import write

    args = parse(argv)
    result = run(args)
    print(json.dumps(result, indent=1))
    write(args.out, "benchmarks/bench_peak.py", argv, [result])


if __name__ == "__main__":
    main(sys.argv[1:])
