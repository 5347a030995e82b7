"""The model path: a GPT-2-small-shaped model on graphattn, against ``sdpa`` and ``eager``.

A ``GPT2LMHeadModel`` built from ``GPT2Config(n_embd=768, n_layer=12,
n_head=12)`` with random weights, one sequence of ``N`` random tokens,
float32, CPU. Implementations:

- ``sdpa``, ``eager``: transformers' own attention;
- ``graphattn``: the model's own causal graph (``attn_implementation="graphattn"``);
- ``window``: graphattn on a causal sliding window of ``--window`` keys
  (``token_graph=patterns.sliding_window(N, window)``).

Modes: ``forward`` (no grad; also the seconds spent inside the attention
calls, and in the rounds each call's seconds and the first call run again
alone on its own inputs, ``--replays`` times: ``replay s``), ``train``
(forward + backward of the LM loss) and ``generate`` (the context of ``N``
tokens as one cached prefill, then ``--new`` single-token steps; seconds per
new token).

Each size and mode is measured twice over:

- one fresh process per implementation runs one call: the first call of a
  new process (``first s``, and ``prefill s`` when generating) and the
  process's peak resident memory are that implementation's own;
- one process holds the model of every implementation whose own process
  succeeded and calls them in turn, ``--rounds`` times after one warm-up
  call each (``warm s``, ``attention s``, ``s/token``: medians; every
  round's values in ``each_round``, for ratios within one round). The
  machine's speed moves with its other tenants; interleaved, every
  implementation sees the same moments, so the ratios between them, which
  the targets are, hold within a round. A call's replay, right after the
  forward, tells what the model path adds to it from what the machine's
  moment does to it: a ratio of replays is the kernels' ratio in that round.

A cell whose dense attention maps (``eager``'s) would need more than
``--memory-share`` of the machine's memory is not run and says so. Prints a
table and writes every row, with the command, to ``--out``.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_models.py --sizes 1024 2048 --modes forward
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from functools import partial
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

RESULTS = Path(__file__).resolve().parent / "results" / "models.json"
IMPLS = ("sdpa", "eager", "graphattn", "window")
MODES = ("forward", "train", "generate")
MAPS = "holds {:.1f} GiB of attention maps"  # why a cell too big for the machine is not run


class AttentionClock:
    """Seconds spent inside the attention functions since the last :meth:`reset`.

    ``calls`` are each call's seconds; :meth:`replay` runs the first call again.
    """

    def __init__(self) -> None:
        import transformers.models.gpt2.modeling_gpt2 as gpt2
        from transformers import AttentionInterface

        self.reset()
        gpt2.eager_attention_forward = self._timed(gpt2.eager_attention_forward)  # called directly
        for name in ("sdpa", "graphattn"):
            AttentionInterface.register(name, self._timed(AttentionInterface()[name]))

    def reset(self) -> None:
        self.seconds, self.calls, self.first = 0.0, [], None

    def replay(self) -> float:
        """Seconds of the first call since :meth:`reset`, run again alone on its inputs."""
        t0 = time.perf_counter()
        self.first()
        return time.perf_counter() - t0

    def _timed(self, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            self.calls.append(time.perf_counter() - t0)
            self.seconds += self.calls[-1]
            if self.first is None:
                self.first = partial(fn, *args, **kwargs)  # holds its inputs until reset
            return out

        return wrapper


def build(impl: str, n: int, extra: int):
    """The model, the token ids ``(1, N)`` and the keyword arguments of a call."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    import graphattn.hf  # noqa: F401  (registers "graphattn")
    from graphattn import patterns

    torch.manual_seed(0)
    config = GPT2Config(
        n_embd=768, n_layer=12, n_head=12, n_positions=n + extra,
        attn_pdrop=0.0, resid_pdrop=0.0, embd_pdrop=0.0,  # train: no dropout (nor SDPA's math path)
    )  # fmt: skip
    attn = "graphattn" if impl == "window" else impl
    model = GPT2LMHeadModel._from_config(config, attn_implementation=attn).eval()
    ids = torch.randint(0, config.vocab_size, (1, n), generator=torch.Generator().manual_seed(1))
    kwargs = {}
    if impl == "window":
        kwargs["token_graph"] = patterns.sliding_window(n + extra, ARGS.window)
    return model, ids, kwargs


class Runner:
    """One implementation's model in one mode; each call returns its measured seconds."""

    def __init__(self, impl: str, n: int, mode: str, replays: int = 0) -> None:
        self.mode, self.replays = mode, replays
        extra = 2 * ARGS.new * (1 + ARGS.rounds) if mode == "generate" else 0  # room for steps
        self.model, self.ids, self.kwargs = build(impl, n, extra)
        if mode == "train":
            self.model.train()
        self.cache = None

    def __call__(self, clock: AttentionClock) -> dict:
        return getattr(self, self.mode)(clock)

    def forward(self, clock: AttentionClock) -> dict:
        import torch

        with torch.no_grad():
            clock.reset()
            t0 = time.perf_counter()
            self.model(self.ids, **self.kwargs)
            result = {"s": time.perf_counter() - t0, "attention_s": clock.seconds}
            if self.replays:
                result["calls_s"] = clock.calls
                result["replay_s"] = statistics.median(clock.replay() for _ in range(self.replays))
            clock.reset()  # lets go of the kept call's inputs
            return result

    def train(self, clock: AttentionClock) -> dict:
        t0 = time.perf_counter()
        self.model(self.ids, labels=self.ids, **self.kwargs).loss.backward()
        seconds = time.perf_counter() - t0
        self.model.zero_grad(set_to_none=True)
        return {"s": seconds}

    def generate(self, clock: AttentionClock) -> dict:
        """The prefill on the first call; ``--new`` steps on the same cache on every call."""
        import torch
        from transformers import DynamicCache

        result = {}
        with torch.no_grad():
            if self.cache is None:
                self.cache = DynamicCache()
                t0 = time.perf_counter()
                out = self.step(self.ids)
                result["prefill_s"] = time.perf_counter() - t0
                self.token = out.logits[:, -1:].argmax(-1)  # (1, 1)
            t0 = time.perf_counter()
            for _ in range(ARGS.new):
                self.token = self.step(self.token).logits[:, -1:].argmax(-1)
            result["per_token_s"] = (time.perf_counter() - t0) / ARGS.new
        return result

    def step(self, ids):
        """The model on ``ids`` after the cache."""
        return self.model(ids, past_key_values=self.cache, use_cache=True, **self.kwargs)


def cell(impl: str, n: int, mode: str) -> dict:
    """One call in this fresh process: its seconds and the process's peak memory."""
    call = Runner(impl, n, mode)(AttentionClock())
    first = {"first_s": call["s"]} if "s" in call else {"prefill_s": call["prefill_s"]}
    return {**first, "peak_rss_gib": peak_rss_gib()}  # generation is compared in the rounds


def rounds(impls: list[str], n: int, mode: str) -> dict:
    """Every implementation in this process, called in turn: medians over ``--rounds``."""
    runners = {impl: Runner(impl, n, mode, ARGS.replays) for impl in impls}
    clock = AttentionClock()  # after the models: building one may register its functions anew
    runs = {impl: partial(run, clock) for impl, run in runners.items()}
    seen = interleave(runs, ARGS.rounds)  # warm-ups: the prefill, when generating
    keys = {"s": "warm_s", "attention_s": "attention_s", "per_token_s": "per_token_s",
            "replay_s": "replay_s", "calls_s": "calls_s"}  # fmt: skip
    warm = {}
    for impl, calls in seen.items():
        each = {keys[k]: [c[k] for c in calls] for k in calls[0]}  # round by round
        medians = {k: statistics.median(v) for k, v in each.items() if k != "calls_s"}
        warm[impl] = {**medians, "each_round": each}
    return warm


COLUMNS = {
    "first_s": "first s",
    "warm_s": "warm s",
    "attention_s": "attention s",
    "replay_s": "replay s",
    "prefill_s": "prefill s",
    "per_token_s": "s/token",
    "peak_rss_gib": "peak GiB",
}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    p.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--rounds", type=int, default=2, help="interleaved warm rounds per mode and N")
    p.add_argument("--new", type=int, default=8, help="tokens generated per call when generating")
    p.add_argument("--replays", type=int, default=3,
                   help="runs of a forward's first attention call alone, each round")  # fmt: skip
    add_cell_options(p, RESULTS, "attention maps")
    p.add_argument("--cell", nargs=3, metavar=("IMPL", "N", "MODE"), help=argparse.SUPPRESS)
    p.add_argument("--rounds-of", nargs="+", metavar="MODE N IMPL", help=argparse.SUPPRESS)
    return check_options(p, p.parse_args(argv), ("window", "rounds", "new", "replays"))


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


def main(argv: list[str]) -> None:
    options = ["--rounds", str(ARGS.rounds), "--window", str(ARGS.window), "--new", str(ARGS.new),
               "--replays", str(ARGS.replays)]  # fmt: skip
    rows, keys = [], ["mode", "n", "impl"]
    for mode in ARGS.modes:
        for n in ARGS.sizes:
            done = []
            for impl in ARGS.impls:
                result = too_big(maps_gib(impl, n, mode), ARGS.memory_share, MAPS)
                if result is None:
                    result = spawn(__file__, [impl, str(n), mode], options, ARGS.timeout)
                done.append({"mode": mode, "n": n, "impl": impl, **result})
            runs = [row["impl"] for row in done if "error" not in row]  # those that ran alone
            warm = {}
            if runs:
                args = [mode, str(n), *runs]
                warm = spawn(__file__, args, options, ARGS.timeout, flag="--rounds-of")
            for row in done:
                if "error" not in row:
                    row.update(warm.get(row["impl"], warm))  # warm's own error, if it failed
                rows.append(row)
                print(table([row], keys, COLUMNS).splitlines()[-1], flush=True)
    print(table(rows, keys, COLUMNS))
    write(ARGS.out, "benchmarks/bench_models.py", argv, rows)


if __name__ == "__main__":
    ARGS = parse(sys.argv[1:])
    if ARGS.cell:
        impl, n, mode = ARGS.cell
        print(json.dumps(cell(impl, int(n), mode)))
    elif ARGS.rounds_of:
        mode, n, *impls = ARGS.rounds_of
        print(json.dumps(rounds(impls, int(n), mode)))
    else:
        main(sys.argv[1:])
