"""Benchmark of graphattn.flow: rollout on a long sliding-window model, attention flow.

Records attention rollout for N = 4,096 tokens, 12 layers of a causal sliding
window of 128 keys (one target, 64 targets, and the full N x N map), and
attention flow (networkx max flow) for N = 64 tokens over 6 layers. Weights
are random, positive and normalized over the incoming edges of every target,
with 4 heads. Prints the timings and writes them, with the command that
produced them, to ``benchmarks/results/flow.json``.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_flow.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from graphattn import patterns
from graphattn.flow import attention_flow, attention_rollout
from graphattn.graph import TokenGraph

RESULTS = Path(__file__).resolve().parent / "results" / "flow.json"


def random_layers(graph: TokenGraph, num_layers: int, heads: int, seed: int):
    """``num_layers`` pairs ``(graph, weights (E, H))``, weights normalized per target."""
    gen = torch.Generator().manual_seed(seed)
    layers = []
    for _ in range(num_layers):
        s = torch.rand(graph.num_edges, heads, generator=gen) + 0.01  # (E, H)
        total = torch.zeros(graph.num_nodes, heads).index_add_(0, graph.dst, s)  # (N, H)
        layers.append((graph, s / total[graph.dst]))
    return layers


def timed(fn, repeat: int) -> tuple[float, object]:
    """Best wall time of ``repeat`` runs and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_rollout(n: int, layers: int, window: int, repeat: int, full: bool) -> list[dict]:
    graph = patterns.sliding_window(n, window)
    data = random_layers(graph, layers, heads=4, seed=0)
    rows = []
    cases = [("1 target", [n - 1]), ("64 targets", list(range(n - 64, n)))]
    if full:
        cases.append(("all targets (N x N)", None))
    for label, targets in cases:
        seconds, out = timed(lambda t=targets: attention_rollout(data, targets=t), repeat)
        rows.append(
            {
                "method": "attention_rollout",
                "case": label,
                "graph": f"sliding_window(n={n}, window={window}, causal)",
                "N": n,
                "layers": layers,
                "edges_per_layer": graph.num_edges,
                "targets": n if targets is None else len(targets),
                "seconds": round(seconds, 4),
                "repeat": repeat,
                "max_row_sum_error": float((out.sum(1) - 1).abs().max()),
            }
        )
    return rows


def bench_flow(n: int, layers: int, repeat: int) -> list[dict]:
    rows = []
    cases = [
        (patterns.sliding_window(n, 8), "sliding_window(n=64, window=8, causal)", [n - 1, n // 2]),
        (patterns.causal(n), "causal(n=64)", [n - 1]),
    ]
    for graph, name, targets in cases:
        data = random_layers(graph, layers, heads=4, seed=1)
        seconds, _ = timed(lambda d=data, t=targets: attention_flow(d, t), repeat)
        rows.append(
            {
                "method": "attention_flow",
                "case": f"{len(targets)} targets x {n} inputs",
                "graph": name,
                "N": n,
                "layers": layers,
                "edges_per_layer": graph.num_edges,
                "targets": len(targets),
                "seconds": round(seconds, 4),
                "seconds_per_target": round(seconds / len(targets), 4),
                "repeat": repeat,
            }
        )
    return rows


def write_json(payload: dict, path: Path) -> None:
    """Write to a temporary name, then move into place (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (best is kept)")
    parser.add_argument("--no-full", action="store_true", help="skip the full N x N rollout")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON file to write")
    args = parser.parse_args(argv)
    rows = bench_rollout(4096, 12, 128, args.repeat, full=not args.no_full)
    rows += bench_flow(64, 6, 1)
    for r in rows:
        print(f"{r['method']:18s} {r['graph']:42s} {r['case']:22s} {r['seconds']:9.3f} s")
    payload = {
        "benchmark": "graphattn.flow",
        "command": "PYTHONPATH=. " + shlex.join([os.path.relpath(sys.executable), *sys.argv]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "processor": platform.machine(),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()],
        },
        "results": rows,
    }
    write_json(payload, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
