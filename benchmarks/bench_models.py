"""The model path: a GPT-2-small-shaped model on graphattn, against ``sdpa`` and ``eager``.

Each cell runs in a fresh process (so the first forward of a new process and
the peak resident memory are the cell's own): a ``GPT2LMHeadModel`` built from
``GPT2Config(n_embd=768, n_layer=12, n_head=12)`` with random weights, one
sequence of ``N`` random tokens, float32, CPU. Implementations:

- ``sdpa``, ``eager``: transformers' own attention;
- ``graphattn``: the model's own causal graph (``attn_implementation="graphattn"``);
- ``window``: graphattn on a causal sliding window of ``--window`` keys
  (``token_graph=patterns.sliding_window(N, window)``).

Modes: ``forward`` (no grad: the first forward, then the median of
``--reps`` more, and the time spent inside the attention calls),
``train`` (forward + backward of the LM loss, median of ``--reps``) and
``generate`` (the context of ``N`` tokens as one cached prefill, then
``--new`` single-token steps; seconds per new token). A cell whose dense
attention maps (``eager``'s) would need more than ``--memory-share`` of the
machine's memory is not run and says so. Prints a table and writes every
cell, with the command, to ``--out``.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_models.py --sizes 1024 2048 --modes forward
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from _cells import check_options, machine_gib, peak_rss_gib, spawn, table, write

RESULTS = Path(__file__).resolve().parent / "results" / "models.json"
IMPLS = ("sdpa", "eager", "graphattn", "window")
MODES = ("forward", "train", "generate")


class AttentionClock:
    """Seconds spent inside the attention function of one implementation."""

    def __init__(self, impl: str) -> None:
        import transformers.models.gpt2.modeling_gpt2 as gpt2
        from transformers import AttentionInterface

        self.seconds = 0.0
        name = "graphattn" if impl == "window" else impl
        if name == "eager":  # GPT-2 calls its eager function directly
            gpt2.eager_attention_forward = self._timed(gpt2.eager_attention_forward)
        else:
            AttentionInterface.register(name, self._timed(AttentionInterface()[name]))

    def _timed(self, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            self.seconds += time.perf_counter() - t0
            return out

        return wrapper


def build(impl: str, n: int, extra: int):
    """The model, the token ids ``(1, N)`` and the keyword arguments of a call."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    import graphattn.hf  # noqa: F401  (registers "graphattn")
    from graphattn import patterns

    torch.manual_seed(0)
    config = GPT2Config(n_embd=768, n_layer=12, n_head=12, n_positions=n + extra)
    attn = "graphattn" if impl == "window" else impl
    model = GPT2LMHeadModel._from_config(config, attn_implementation=attn).eval()
    ids = torch.randint(0, config.vocab_size, (1, n), generator=torch.Generator().manual_seed(1))
    kwargs = {}
    if impl == "window":
        kwargs["token_graph"] = patterns.sliding_window(n + extra, ARGS.window)
    return model, ids, kwargs


def run_forward(impl: str, n: int) -> dict:
    import torch

    model, ids, kwargs = build(impl, n, 0)
    clock = AttentionClock(impl)
    times, attention = [], []
    with torch.no_grad():
        for _ in range(1 + ARGS.reps):
            clock.seconds, t0 = 0.0, time.perf_counter()
            model(ids, **kwargs)
            times.append(time.perf_counter() - t0)
            attention.append(clock.seconds)
    return {
        "first_s": times[0],
        "warm_s": statistics.median(times[1:]),
        "attention_s": statistics.median(attention[1:]),
    }


def run_train(impl: str, n: int) -> dict:
    model, ids, kwargs = build(impl, n, 0)
    model.train()
    model.config.attn_pdrop = model.config.resid_pdrop = model.config.embd_pdrop = 0.0
    times = []
    for _ in range(1 + ARGS.reps):
        t0 = time.perf_counter()
        model(ids, labels=ids, **kwargs).loss.backward()
        times.append(time.perf_counter() - t0)
        model.zero_grad(set_to_none=True)
    return {"first_s": times[0], "warm_s": statistics.median(times[1:])}


def run_generate(impl: str, n: int) -> dict:
    import torch
    from transformers import DynamicCache

    model, ids, kwargs = build(impl, n, ARGS.new)
    with torch.no_grad():
        cache = DynamicCache()
        t0 = time.perf_counter()
        out = model(ids, past_key_values=cache, use_cache=True, **kwargs)
        prefill = time.perf_counter() - t0
        token = out.logits[:, -1:].argmax(-1)  # (1, 1)
        t0 = time.perf_counter()
        for _ in range(ARGS.new):
            out = model(token, past_key_values=cache, use_cache=True, **kwargs)
            token = out.logits[:, -1:].argmax(-1)
        per_token = (time.perf_counter() - t0) / ARGS.new
    return {"prefill_s": prefill, "per_token_s": per_token}


def maps_gib(impl: str, n: int, mode: str) -> float:
    """GiB of dense ``(H, N, N)`` attention maps a cell holds at once (``eager`` only).

    Three per call without grad (scores, softmax, dropout's result), two per
    layer kept for the backward in ``train``; the other implementations keep
    nothing of size ``N^2``.
    """
    if impl != "eager":
        return 0.0
    one = 12 * n * n * 4 / 2**30  # GPT-2-small: 12 heads, float32
    return one * (2 * 12 if mode == "train" else 3)


RUNNERS = {"forward": run_forward, "train": run_train, "generate": run_generate}


def cell(impl: str, n: int, mode: str) -> dict:
    """Run one cell in this process and add its peak resident memory."""
    return {**RUNNERS[mode](impl, n), "peak_rss_gib": peak_rss_gib()}


COLUMNS = {
    "first_s": "first s",
    "warm_s": "warm s",
    "attention_s": "attention s",
    "prefill_s": "prefill s",
    "per_token_s": "s/token",
    "peak_rss_gib": "peak GiB",
}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    p.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--window", type=int, default=256, help="keys of the window graph")
    p.add_argument("--reps", type=int, default=2, help="warm repetitions per cell")
    p.add_argument("--new", type=int, default=16, help="tokens generated per generate cell")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per cell")
    p.add_argument(
        "--memory-share", type=float, default=0.6,
        help="skip a cell whose attention maps need more than this share of the machine's memory",
    )  # fmt: skip
    p.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    p.add_argument("--cell", nargs=3, metavar=("IMPL", "N", "MODE"), help=argparse.SUPPRESS)
    return check_options(p, p.parse_args(argv), ("window", "reps", "new"))


def main(argv: list[str]) -> None:
    options = ["--reps", str(ARGS.reps), "--window", str(ARGS.window), "--new", str(ARGS.new)]
    rows, keys = [], ["mode", "n", "impl"]
    for mode in ARGS.modes:
        for n in ARGS.sizes:
            for impl in ARGS.impls:
                need = maps_gib(impl, n, mode)
                if need > ARGS.memory_share * machine_gib():
                    result = {"error": f"not run: holds {need:.1f} GiB of attention maps"}
                else:
                    result = spawn(__file__, [impl, str(n), mode], options, ARGS.timeout)
                rows.append({"mode": mode, "n": n, "impl": impl, **result})
                print(table(rows[-1:], keys, COLUMNS).splitlines()[-1], flush=True)
    print(table(rows, keys, COLUMNS))
    write(ARGS.out, "benchmarks/bench_models.py", argv, rows)


if __name__ == "__main__":
    ARGS = parse(sys.argv[1:])
    if ARGS.cell:
        impl, n, mode = ARGS.cell
        print(json.dumps(cell(impl, int(n), mode)))
    else:
        main(sys.argv[1:])
