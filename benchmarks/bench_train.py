"""Training speed of :class:`graphattn.nn.GraphLM`: a window graph against dense SDPA, one run.

One process builds one model per size and times whole training steps (the
next-token loss, its backward and an AdamW step) with its attention computed
three ways, on the same weights and tokens, in interleaved repetitions
(A, B, C, A, B, C, ...), so that the machine's other jobs weigh on all alike:

- ``window``: graphattn on a causal sliding window of ``--window`` keys
  (``pattern=("sliding_window", {"window": W})``; the ``auto`` backend);
- ``sdpa``: the same layers with their attention replaced by
  ``torch.nn.functional.scaled_dot_product_attention(..., is_causal=True)``
  (PyTorch's fused dense causal kernel: no graph, no mask);
- ``causal``: graphattn on the causal graph (``--impls`` only; the ``auto``
  backend on a dense causal graph).

Prints steps per second (the median step's wall time), how many times faster
than ``sdpa`` each is on wall time and on CPU time (all threads of the
process: less sensitive to other jobs on the machine), the load average, and
writes every row, with the command, to ``--out``.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_train.py --sizes 4096 8192
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from _cells import check_options, peak_rss_gib, table, write

RESULTS = Path(__file__).resolve().parent / "results" / "train.json"
IMPLS = ("window", "sdpa", "causal")


@contextmanager
def dense_sdpa():
    """Within the block, every ``GraphAttention`` attends with dense causal SDPA."""
    import torch.nn.functional as F

    from graphattn.nn import GraphAttention

    def attend(self, q, k, v, graph, bias, need_weights):
        q = q.unflatten(-1, (self.num_heads, self.head_dim))  # (B, N, H, D)
        qh, kh, vh = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, N, D)
        out = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True)  # (B, H, N, D)
        return self.out_proj(out.transpose(1, 2).flatten(-2)), None  # (B, N, C)

    saved = GraphAttention._attend
    GraphAttention._attend = attend
    try:
        yield
    finally:
        GraphAttention._attend = saved


def models(n: int) -> dict:
    """One model per implementation, all with the same initial weights."""
    import torch

    from graphattn.nn import GraphLM

    made = {}
    for impl in ARGS.impls:
        torch.manual_seed(0)
        pattern = ("sliding_window", {"window": ARGS.window}) if impl == "window" else "causal"
        lm = GraphLM(ARGS.vocab, ARGS.d_model, ARGS.layers, ARGS.heads, pattern=pattern,
                     max_len=n).train()  # fmt: skip
        made[impl] = (lm, torch.optim.AdamW(lm.parameters(), lr=1e-4))
    return made


def step(impl: str, lm, opt, idx) -> tuple[float, float]:
    """Wall and CPU seconds (all threads of this process) of one step: loss, backward, AdamW."""
    t0, c0 = time.perf_counter(), time.process_time()
    if impl == "sdpa":
        with dense_sdpa():
            loss = lm.loss(idx)
    else:
        loss = lm.loss(idx)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0, time.process_time() - c0


def run_size(n: int) -> list[dict]:
    """Interleaved training steps of every implementation at ``n`` tokens."""
    import torch

    idx = torch.randint(ARGS.vocab, (ARGS.batch, n), generator=torch.Generator().manual_seed(1))
    made = models(n)
    times = {impl: [] for impl in made}  # (wall s, CPU s) per step
    loads = []
    for rep in range(1 + ARGS.steps):  # the first round warms up (plans, allocator)
        for impl, (lm, opt) in made.items():
            seconds = step(impl, lm, opt, idx)
            if rep:
                times[impl].append(seconds)
        loads.append(os.getloadavg()[0])
    med = {i: [statistics.median(c) for c in zip(*ts, strict=True)] for i, ts in times.items()}
    rows = []
    for impl, (wall, cpu) in med.items():
        row = {"n": n, "impl": impl, "step_s": wall, "steps_per_s": 1.0 / wall, "cpu_s": cpu}
        if "sdpa" in med:  # how many times faster than sdpa, on wall and on CPU time
            row["speedup_vs_sdpa"] = med["sdpa"][0] / wall
            row["cpu_speedup_vs_sdpa"] = med["sdpa"][1] / cpu
        rows.append({**row, "load": statistics.median(loads)})
    return rows


COLUMNS = {"step_s": "step s", "steps_per_s": "steps/s", "speedup_vs_sdpa": "x sdpa",
           "cpu_s": "CPU s", "cpu_speedup_vs_sdpa": "x sdpa (CPU)", "load": "load 1m",
           "peak_rss_gib": "peak GiB"}  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192])
    p.add_argument("--impls", nargs="+", choices=IMPLS, default=["window", "sdpa"])
    p.add_argument("--window", type=int, default=256, help="keys of the window graph")
    p.add_argument("--d-model", type=int, default=256, help="model dimension C")
    p.add_argument("--heads", type=int, default=4, help="attention heads (D = C / heads)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=5, help="timed steps per implementation")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    positive = ("window", "d_model", "heads", "layers", "vocab", "batch", "steps")
    return check_options(p, p.parse_args(argv), positive)


def main(argv: list[str]) -> None:
    import torch

    if ARGS.threads:
        torch.set_num_threads(ARGS.threads)
    rows = []
    for n in ARGS.sizes:
        for row in run_size(n):
            rows.append({**row, "threads": torch.get_num_threads(), "peak_rss_gib": peak_rss_gib()})
            print(table(rows[-1:], ["n", "impl"], COLUMNS).splitlines()[-1], flush=True)
    print(table(rows, ["n", "impl"], COLUMNS))
    write(ARGS.out, "benchmarks/bench_train.py", argv, rows)


if __name__ == "__main__":
    ARGS = parse(sys.argv[1:])
    main(sys.argv[1:])
