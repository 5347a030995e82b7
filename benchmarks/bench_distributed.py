"""Benchmarks of graphattn.distributed: planned bytes, METIS halos, real multi-process runs.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_distributed.py plan   # bytes per rank
    PYTHONPATH=. .venv/bin/python benchmarks/bench_distributed.py metis  # halo sizes
    PYTHONPATH=. .venv/bin/python benchmarks/bench_distributed.py run    # P = 1, 2, 4 on gloo

``plan`` builds the partitions of N = 65,536-token graphs for P = 2, 4, 8,
16 (no processes needed: the plan is a pure function of the graph) and counts
the bytes each rank sends per layer (float32, B = 1, H_kv = 8, D = Dv = 64)
for the halo exchange, an all-gather of K/V and a ring pass. ``metis``
compares METIS with contiguous cuts on scattered (randomly relabelled)
graphs. ``run`` spawns P gloo processes on 127.0.0.1 and times forward plus
backward of one attention layer against one process. Each writes its table,
with the command, to ``benchmarks/results/distributed_<mode>.json`` and prints
it as Markdown.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

import graphattn.distributed as gd
from graphattn import graph_attention, patterns
from graphattn.distributed.exchange import exchange_halo

RESULTS = Path(__file__).resolve().parent / "results"
N = 65_536
GRAPHS = {
    "window 256": lambda n: patterns.sliding_window(n, 256),
    "strided 256": lambda n: patterns.strided(n, 256),
    "bigbird 64/2/3": lambda n: patterns.bigbird(n, window=64, num_global=2, num_random=3),
    "random 16": lambda n: patterns.random(n, 16, seed=0),
}
HEADS, DIM = 8, 64


def mib(x: float) -> float:
    return round(x / 2**20, 2)


def plan_rows() -> list[dict]:
    rows = []
    for name, build in GRAPHS.items():
        g = build(N)
        for p in (2, 4, 8, 16):
            part = gd.partition(g, p, method="contiguous")
            b = gd.bytes_sent(part, heads=HEADS, head_dim=DIM)
            top = {key: mib(float(value.max())) for key, value in b.items()}  # busiest rank
            ratio = float(b["allgather_forward"].max()) / max(float(b["halo_forward"].max()), 1)
            rows.append({"graph": name, "P": p, "edges": g.num_edges,
                         "halo_rows_max": max(len(h) for h in part.halo),
                         **{f"{k}_MiB": v for k, v in top.items()},
                         "allgather_over_halo": round(ratio, 1)})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def metis_rows() -> list[dict]:
    n = 8192
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    rows = []
    for name, build in GRAPHS.items():
        g = build(n).permute(perm)  # the same graph with scattered token ids
        for p in (2, 4, 8):
            halo = {m: sum(len(h) for h in gd.partition(g, p, method=m).halo)
                    for m in ("contiguous", "metis")}  # fmt: skip
            rows.append({"graph": f"{name} (N={n}, scattered)", "P": p,
                         "halo_rows_contiguous": halo["contiguous"],
                         "halo_rows_metis": halo["metis"]})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def _timed(fn, repeat: int) -> float:
    fn()  # warm-up: plans and caches
    best = float("inf")
    for _ in range(repeat):
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _inputs(n: int, rows=None):
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, n, HEADS, DIM, generator=gen) for _ in range(3))
    if rows is not None:
        q, k, v = q[:, rows], k[:, rows], v[:, rows]
    return [t.requires_grad_(True) for t in (q, k, v)]


def rank_main(rank: int, world: int, port: str, n: int, out: str) -> None:
    """One rank of ``run`` (world 0: one process, no process group)."""
    torch.set_num_threads(1)
    g = GRAPHS["window 256"](n)
    if world == 0:
        q, k, v = _inputs(n)
        seconds = _timed(lambda: graph_attention(q, k, v, g).sum().backward(), 3)
        exchange = 0.0
    else:
        torch.distributed.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
            timeout=datetime.timedelta(seconds=300),
        )  # fmt: skip
        part = gd.partition(g, world, method="contiguous")
        q, k, v = _inputs(n, part.owned[rank])
        seconds = _timed(lambda: gd.graph_attention(q, k, v, part).sum().backward(), 3)
        rows = torch.cat([k, v], -1).detach().transpose(0, 1)  # (N_r, B, H, 2D)
        exchange = _timed(lambda: exchange_halo(rows, part, rank), 3)  # forward exchange alone
        torch.distributed.destroy_process_group()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    Path(out).write_text(
        json.dumps({"seconds": seconds, "exchange": exchange, "peak_rss_MiB": mib(peak)})
    )


def run_rows(n: int) -> list[dict]:
    rows = []
    for world in (0, 2, 4):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = str(s.getsockname()[1])
        outs = [f"/tmp/bench_distributed_{world}_{r}.json" for r in range(max(world, 1))]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        args = [[sys.executable, __file__, "rank", str(r), str(world), port, str(n), outs[r]]
                for r in range(len(outs))]  # fmt: skip
        procs = [subprocess.Popen(a, env=env) for a in args]
        for proc in procs:
            proc.wait(timeout=900)
        res = [json.loads(Path(o).read_text()) for o in outs]
        rows.append({"P": max(world, 1), "processes": "one (no group)" if world == 0 else "gloo",
                     "seconds_fwd_bwd_max_rank": round(max(r["seconds"] for r in res), 3),
                     "seconds_exchange_fwd_max_rank": round(max(r["exchange"] for r in res), 4),
                     "peak_rss_MiB_per_rank": [r["peak_rss_MiB"] for r in res]})  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    if sys.argv[1:2] == ["rank"]:
        rank, world, port, n, out = sys.argv[2:7]
        return rank_main(int(rank), int(world), port, int(n), out)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["plan", "metis", "run"])
    parser.add_argument("--n", type=int, default=16_384, help="tokens for `run`")
    args = parser.parse_args()
    rows = {"plan": plan_rows, "metis": metis_rows, "run": lambda: run_rows(args.n)}[args.mode]()
    RESULTS.mkdir(exist_ok=True)
    command = "PYTHONPATH=. python benchmarks/bench_distributed.py " + shlex.join(sys.argv[1:])
    record = {"command": command, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "torch": torch.__version__, "rows": rows}  # fmt: skip
    (RESULTS / f"distributed_{args.mode}.json").write_text(json.dumps(record, indent=1) + "\n")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + " --- |" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
