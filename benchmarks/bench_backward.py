"""Training cost of the block kernel: forward against forward + backward, by phase, and in bf16.

The kernel benchmark's shapes (B = 1, H = 4, D = 64, N = 16,384; the window
128 and blocked BigBird graphs of ``graphattn bench``), measured in one
process with interleaved repetitions (A, B, A, B, ...) on the CPU time of the
calling thread (``time.thread_time``, torch on ``--threads`` threads, one by
default), so that other jobs on the machine weigh little on the ratios:

- ``ratio``: the forward (no grad) and forward + backward of
  ``graph_attention(..., backend="block")``, and of PyTorch's own fused CPU
  kernel on a dense causal graph (``scaled_dot_product_attention(is_causal=True)``
  at ``--sdpa-n`` tokens), which recomputes its tiles the same way;
- ``phases``: torch.profiler's self CPU time of one forward and one backward,
  summed by phase (fused tile kernel, zero-fills, gathers, key-gradient sums);
- ``bf16``: the block forward on bf16 inputs against float32.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_backward.py --cases ratio phases bf16
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from functools import partial

import torch
import torch.nn.functional as F

from graphattn import graph_attention
from graphattn.bench.cases import TARGET_N, build_graph

PHASES = {
    "_scaled_dot_product_flash_attention_for_cpu": "fused tile kernel",
    "_scaled_dot_product_flash_attention_for_cpu_backward": "fused tile kernel",
    "fill_": "zero-fills",
    "zero_": "zero-fills",
    "index_select": "gathers of key/value tiles",
    "index_add_": "key-gradient sums",
    "scatter_add_": "key-gradient sums",
    "index_copy_": "write-back (out, lse, dq)",
}


def inputs(n: int, dtype=torch.float32, grad=False) -> list[torch.Tensor]:
    """``q, k, v (1, N, H, D)``, seeded."""
    gen = torch.Generator().manual_seed(0)
    shape = (1, n, ARGS.heads, ARGS.dim)
    return [torch.randn(*shape, generator=gen).to(dtype).requires_grad_(grad) for _ in range(3)]


def interleaved(fns: dict) -> dict:
    """Median thread CPU ms of each zero-argument function, run in turns; and the load."""
    for f in fns.values():
        f()
    times, loads = {k: [] for k in fns}, []
    for _ in range(ARGS.reps):
        for key, f in fns.items():
            t0 = time.thread_time()
            f()
            times[key].append(time.thread_time() - t0)
        loads.append(os.getloadavg()[0])
    return {**{k: statistics.median(v) * 1e3 for k, v in times.items()},
            "load": statistics.median(loads)}  # fmt: skip


def forward_backward(attend, tensors):
    """``(forward, forward + backward)`` functions of ``attend(q, k, v)``."""

    def fwd():
        with torch.no_grad():
            attend(*tensors)

    def fwd_bwd():
        out = attend(*tensors)
        out.backward(torch.ones_like(out))
        for t in tensors:
            t.grad = None

    return fwd, fwd_bwd


def block(graph):
    return lambda q, k, v: graph_attention(q, k, v, graph, scale=0.125, backend="block")


def sdpa(q, k, v):
    qh, kh, vh = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, N, D)
    return F.scaled_dot_product_attention(qh, kh, vh, is_causal=True).transpose(1, 2)


def case_ratio() -> None:
    attends = {p: (block(build_graph(p, TARGET_N)), TARGET_N) for p in ARGS.patterns}
    attends[f"sdpa causal N={ARGS.sdpa_n}"] = (sdpa, ARGS.sdpa_n)
    fns = {}
    for name, (attend, n) in attends.items():
        fwd, fwd_bwd = forward_backward(attend, inputs(n, grad=True))
        fns[(name, "fwd")], fns[(name, "fwd+bwd")] = fwd, fwd_bwd
    m = interleaved(fns)
    print(f"ratio: thread CPU ms, median of {ARGS.reps}, load {m['load']:.2f}")
    for name in attends:
        f, fb = m[(name, "fwd")], m[(name, "fwd+bwd")]
        print(f"  {name:28s} fwd {f:8.1f}  fwd+bwd {fb:8.1f}  ratio {fb / f:.2f}")


def profile_ms(fn) -> dict:
    """Self CPU ms of one call of ``fn`` by phase."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    out = defaultdict(float)
    for e in prof.key_averages():
        if e.key.startswith("aten::"):
            out[PHASES.get(e.key[6:], "other ops")] += e.self_cpu_time_total / 1e3
    return out


def case_phases() -> None:
    for pattern in ARGS.patterns:
        graph, tensors = build_graph(pattern, TARGET_N), inputs(TARGET_N, grad=True)
        fwd, fwd_bwd = forward_backward(block(graph), tensors)
        fwd_bwd()
        out = block(graph)(*tensors)
        parts = {"forward": profile_ms(fwd),
                 "backward": profile_ms(partial(out.backward, torch.ones_like(out)))}  # fmt: skip
        load = os.getloadavg()[0]
        print(f"phases: {pattern} N={TARGET_N}, self CPU ms (profiler), load {load:.2f}")
        for part, ms in parts.items():
            total = sum(ms.values())
            shares = ", ".join(f"{k} {v:.1f} ({v / total:.0%})" for k, v in
                               sorted(ms.items(), key=lambda kv: -kv[1]) if v >= 0.05)  # fmt: skip
            print(f"  {part} {total:.1f}: {shares}")


def case_bf16() -> None:
    fns = {}
    for pattern in ARGS.patterns:
        graph = build_graph(pattern, TARGET_N)
        for dtype in (torch.float32, torch.bfloat16):
            fwd, _ = forward_backward(block(graph), inputs(TARGET_N, dtype))
            fns[(pattern, str(dtype)[6:])] = fwd
    m = interleaved(fns)
    print(f"bf16: forward, thread CPU ms, median of {ARGS.reps}, load {m['load']:.2f}")
    for p in ARGS.patterns:
        f32, b16 = m[(p, "float32")], m[(p, "bfloat16")]
        print(f"  {p:10s} float32 {f32:8.1f}  bfloat16 {b16:8.1f}  bf16 / fp32 {b16 / f32:.2f}")


CASES = {"ratio": case_ratio, "phases": case_phases, "bf16": case_bf16}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    p.add_argument("--patterns", nargs="+", default=["window", "bigbird"])
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--sdpa-n", type=int, default=4096, help="tokens of the SDPA causal reference")
    p.add_argument("--reps", type=int, default=7, help="interleaved repetitions")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    return p.parse_args(argv)


if __name__ == "__main__":
    ARGS = parse(sys.argv[1:])
    torch.set_num_threads(ARGS.threads)
    bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    cpu = torch.backends.cpu.get_cpu_capability()
    print(f"cpu bf16 matmuls: {bf16}; capability {cpu}; threads {ARGS.threads}")
    for name in ARGS.cases:
        CASES[name]()
