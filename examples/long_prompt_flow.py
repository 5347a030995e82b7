"""Information flow on a long prompt: record, roll out, ALTI on a window graph, the viewer.

A GPT-2-small-shaped model (12 layers, 768 wide, 12 heads) is built from its
config with random weights (nothing is downloaded) and reads a prompt of
``--tokens`` random tokens (8,192 by default) on graphattn:

1. one forward inside ``graphattn.hf.record(heads="mean", top_k=K)``: every
   layer keeps the strongest ``K`` incoming edges of each target (head mean),
   and the weight it dropped;
2. ``attention_rollout(..., targets=, dropped=)`` to the last tokens, top
   down, in memory linear in the kept edges, with the share it lost;
3. ALTI on a causal sliding window of ``--window`` keys, chunk by chunk of
   targets (no ``(B, E, C)`` tensor is whole);
4. the offline viewer of the recording (``--out``), reduced to fit its size
   budget and saying what it left out.

    PYTHONPATH=. .venv/bin/python examples/long_prompt_flow.py --tokens 8192
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

import graphattn.hf
from graphattn import patterns
from graphattn.flow import attention_rollout, contributions
from graphattn.plot import to_html


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", type=int, default=8192, help="prompt length")
    p.add_argument("--layers", type=int, default=12, help="layers of the model")
    p.add_argument("--window", type=int, default=256, help="keys of the window graph for ALTI")
    p.add_argument("--top-k", type=int, default=32, help="edges kept per target when recording")
    p.add_argument("--targets", type=int, default=4, help="last tokens to roll out to")
    p.add_argument("--out", type=Path, default=Path("long_prompt_flow.html"), help="viewer file")
    args = p.parse_args(argv)
    if min(args.layers, args.top_k, args.targets) < 1 or args.tokens < args.window:
        p.error("--layers, --top-k, --targets must be >= 1 and --tokens >= --window")
    return args


def step(name: str, t0: float) -> float:
    """Print how long a step took and the process's peak memory so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{name}: {time.perf_counter() - t0:.1f} s, peak memory {peak:.2f} GiB", flush=True)
    return time.perf_counter()


def main(argv: list[str]) -> None:
    args = parse(argv)
    n = args.tokens
    torch.manual_seed(0)
    config = GPT2Config(n_embd=768, n_layer=args.layers, n_head=12, n_positions=n)
    model = GPT2LMHeadModel._from_config(config, attn_implementation="graphattn").eval()
    ids = torch.randint(0, config.vocab_size, (1, n), generator=torch.Generator().manual_seed(1))
    t0 = time.perf_counter()
    with torch.no_grad(), graphattn.hf.record(heads="mean", top_k=args.top_k) as rec:
        model(ids)
    t0 = step(f"forward + record(heads='mean', top_k={args.top_k}), {n} tokens", t0)
    layers, dropped = rec.layers(0), rec.dropped(0)
    kept = sum(g.num_edges for g, _ in layers)
    print(f"kept {kept:,} edges of {args.layers * n * (n + 1) // 2:,} in {args.layers} layers")

    targets = list(range(n - args.targets, n))
    roll = attention_rollout(layers, targets=targets, dropped=dropped)  # (T, N)
    t0 = step(f"rollout to the last {args.targets} tokens", t0)
    for i, row in zip(targets, roll, strict=True):
        top = torch.topk(row, 3)
        pairs = ", ".join(f"{int(j)} ({float(s):.3g})" for s, j in zip(*top, strict=True))
        print(f"  token {i}: lost share {1 - float(row.sum()):.6f} (kept {float(row.sum()):.3g}); "
              f"strongest sources {pairs}")

    window = patterns.sliding_window(n, args.window)
    with torch.no_grad():
        alti = contributions(model, ids, "alti", graph=window)
    t0 = step(f"ALTI on a sliding window of {args.window}", t0)
    rollout = attention_rollout(alti, residual=0.0, targets=[n - 1])[0]  # (N,)
    print(f"  ALTI rollout of token {n - 1}: {int((rollout > 0).sum()):,} inputs reached")

    to_html(layers, args.out)
    step(f"viewer written to {args.out} ({args.out.stat().st_size / 2**20:.1f} MiB)", t0)


if __name__ == "__main__":
    main(sys.argv[1:])
