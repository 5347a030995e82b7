"""``graphattn bench``: graphattn's backends against dense SDPA, PyG's recipe and FlexAttention.

Every case (pattern, N, implementation, forward or forward+backward) runs in
its own Python process, so that its peak memory is measured alone: the
process's peak resident set (``VmHWM``, reset with ``/proc/self/clear_refs``
after the graph, its graph-only plans and the inputs exist) minus its resident
set just before the first call. Times are the median of repeated calls after
one warm-up call (which builds caches and, for FlexAttention, compiles).

Implementations:

* ``graphattn``: :func:`graphattn.graph_attention` (``--backend``, default
  ``auto``; the backend it ran is recorded);
* ``dense``: ``torch.nn.functional.scaled_dot_product_attention`` with the
  graph's boolean ``(N, N)`` mask;
* ``pyg``: PyG's edge-wise recipe, ``torch_geometric.utils.softmax`` over each
  target's edges and ``scatter`` of ``alpha * v[src]`` (needs the ``bench`` extra);
* ``flex``: ``torch.compile(flex_attention)`` with a ``BlockMask`` (from the
  pattern's predicate where it has one, else :func:`graphattn.to_block_mask`);
  forward only on CPU.

Cases that cannot fit ``--budget-gib`` are skipped with a note saying why.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from graphattn._files import atomic_write

__all__ = ["Case", "add_parser", "run"]

IMPLS = ("graphattn", "dense", "pyg", "flex")
MODES = ("fwd", "fwdbwd")
PATTERNS = ("window", "strided", "bigbird", "random", "causal")
SIZES = (1024, 4096, 16384, 65536)
LARGE_N = 1_048_576  # graphattn alone, window pattern
TARGET_N = 16384  # the size at which the issue states its speed targets
WINDOW = 128  # keys per query of the window and random patterns; stride of strided
BIGBIRD_BLOCK = 64
GIB = 2**30
COLORS = {"graphattn": "tab:blue", "dense": "tab:green", "pyg": "tab:red", "flex": "tab:purple"}


@dataclass(frozen=True)
class Case:
    """One benchmark case; ``backend`` applies to the graphattn implementation."""

    pattern: str
    n: int
    impl: str
    mode: str
    heads: int = 4
    dim: int = 64
    backend: str = "auto"
    threads: int = 0  # 0: torch's default
    reps: int = 7  # most timed calls
    seconds: float = 5.0  # timed calls stop after this much time (at least 2 calls)


# ------------------------------------------------------------------ patterns
def build_graph(pattern: str, n: int):
    """The benchmark's graph ``pattern`` on ``n`` tokens (see docs/performance.md)."""
    from graphattn import patterns

    if pattern == "window":
        return patterns.sliding_window(n, WINDOW)
    if pattern == "strided":
        return patterns.strided(n, WINDOW)
    if pattern == "bigbird":
        return patterns.bigbird(n, window=3, num_global=2, num_random=3, block=BIGBIRD_BLOCK)
    if pattern == "random":
        return patterns.random(n, WINDOW, causal=True)
    if pattern == "causal":
        return patterns.causal(n)
    raise ValueError(f"unknown pattern {pattern!r}; choose from {PATTERNS}")


def expected_edges(pattern: str, n: int) -> int:
    """Edge count of a pattern, without building it (for skip decisions)."""
    if pattern in ("window", "random"):
        return n * WINDOW
    if pattern == "strided":
        return n * WINDOW + n * n // (2 * WINDOW)
    if pattern == "bigbird":
        return n * BIGBIRD_BLOCK * (3 + 2 + 3) + 2 * n * BIGBIRD_BLOCK * 2
    return n * (n + 1) // 2


def _predicate(pattern: str):
    """FlexAttention ``mask_mod`` for patterns that have a closed form, else None."""
    if pattern == "window":
        return lambda b, h, i, j: (j <= i) & (i - j < WINDOW)
    if pattern == "causal":
        return lambda b, h, i, j: j <= i
    if pattern == "strided":
        return lambda b, h, i, j: (j <= i) & ((i - j < WINDOW) | ((i - j) % WINDOW == 0))
    return None


# ------------------------------------------------------------------ skipping
def skip_reason(case: Case, budget: float) -> str | None:
    """Why ``case`` is not run, or None."""
    n, h, d = case.n, case.heads, case.dim
    e = expected_edges(case.pattern, n)
    grad = 2 if case.mode == "fwdbwd" else 1
    if e > 2**28:
        return f"the graph alone has {e:,} edges ({e * 16 / GIB:.0f} GiB of edge list)"
    if case.n > max(SIZES) and case.impl != "graphattn":
        return "N = 1,048,576 is run for graphattn alone"
    if case.impl == "dense":
        # bool mask, its float form, and for the backward the same again (measured on CPU:
        # SDPA with a mask runs a fused kernel that never holds all (H, N, N) scores)
        need = n * n * 5 * grad
        if need > budget * GIB:
            return f"dense scores would need {need / GIB:.0f} GiB"
    if case.impl == "pyg":
        need = e * h * d * 4 * 4 * grad  # q[dst], k[src], v[src] and messages (E, H, D)
        if need > budget * GIB:
            return f"the (E, H, D) gathers would need {need / GIB:.0f} GiB"
    if case.impl == "flex" and case.mode == "fwdbwd":
        return "compiled FlexAttention has no backward on CPU"
    return None


# -------------------------------------------------------------------- worker
def _status(field: str) -> int:
    """A ``/proc/self/status`` memory field in bytes (0 where unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _make_call(case: Case, graph, q, k, v):
    """A zero-argument function running one forward (and backward) of ``case``."""
    import torch.nn.functional as F

    scale = 1.0 / math.sqrt(case.dim)
    if case.impl == "graphattn":
        from graphattn import graph_attention

        fwd = lambda: graph_attention(q, k, v, graph, scale=scale, backend=case.backend)  # noqa: E731
    elif case.impl == "dense":
        mask = graph.to_dense_mask()  # (N, M)
        qh, kh, vh = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, L, D)
        fwd = lambda: F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, scale=scale)  # noqa: E731
    elif case.impl == "pyg":
        from torch_geometric.utils import scatter, softmax

        src, dst = graph.src, graph.dst
        n = graph.num_nodes

        def fwd():
            score = (q[0, dst] * k[0, src]).sum(-1) * scale  # (E, H)
            alpha = softmax(score, dst, num_nodes=n)  # (E, H)
            return scatter(alpha.unsqueeze(-1) * v[0, src], dst, dim=0, dim_size=n)  # (N, H, D)
    else:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        from graphattn.backends.flex import to_block_mask

        pred = _predicate(case.pattern)
        if pred is None:
            block_mask = to_block_mask(graph)
        else:
            block_mask = create_block_mask(pred, None, None, case.n, case.n, device="cpu")
        compiled = torch.compile(flex_attention, dynamic=False)
        qh, kh, vh = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, L, D)
        fwd = lambda: compiled(qh, kh, vh, block_mask=block_mask, scale=scale)  # noqa: E731
    if case.mode == "fwd":
        return fwd

    def fwd_bwd():
        out = fwd()
        out.backward(torch.ones_like(out))
        for t in (q, k, v):
            t.grad = None

    return fwd_bwd


def run_case(case: Case) -> dict:
    """Run ``case`` in this process and return its measurements."""
    if case.threads:
        torch.set_num_threads(case.threads)
    result = {"case": asdict(case), "threads": torch.get_num_threads()}
    t0 = time.perf_counter()
    graph = build_graph(case.pattern, case.n)
    result["graph_build_s"] = time.perf_counter() - t0
    result["edges"] = graph.num_edges
    if case.impl == "graphattn":
        from graphattn import explain_backend
        from graphattn.backends.edge import CHUNK_ELEMENTS, chunks_on
        from graphattn.backends.tiles import block_plan

        grad = case.mode == "fwdbwd"
        choice = explain_backend(graph, num_heads=case.heads, head_dim=case.dim, needs_grad=grad)
        name = choice.backend if case.backend == "auto" else case.backend
        result["backend"], result["why"] = name, choice.reason
        t0 = time.perf_counter()
        if name == "block":  # graph-only plans are part of the graph, like its edge list
            result["block_fill"] = block_plan(graph).fill
        elif name == "edge":  # B = 1: chunks of CHUNK_ELEMENTS // H edges
            chunks_on(graph, torch.device("cpu"), max(1, CHUNK_ELEMENTS // case.heads))
        result["plan_s"] = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(0)
    grad = case.mode == "fwdbwd"
    q, k, v = (
        torch.randn(1, case.n, case.heads, case.dim, generator=gen).requires_grad_(grad)
        for _ in range(3)
    )
    call = _make_call(case, graph, q, k, v)
    gc.collect()
    result["peak_measured"] = _reset_peak()
    rss0 = _status("VmRSS")
    t0 = time.perf_counter()
    call()
    result["first_call_s"] = time.perf_counter() - t0
    times: list[float] = []
    # at least two timed calls, one where the warm-up alone took longer than the time budget
    least = 1 if result["first_call_s"] > case.seconds else 2
    while len(times) < case.reps and (len(times) < least or sum(times) < case.seconds):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    hwm = _status("VmHWM")
    result.update(
        times_s=times,
        median_s=statistics.median(times),
        edges_per_s=graph.num_edges / statistics.median(times),
        rss_before_bytes=rss0,
        peak_rss_bytes=hwm,
        peak_extra_bytes=max(0, hwm - rss0),
        input_bytes=sum(t.numel() * t.element_size() for t in (q, k, v)),
    )
    return result


# ------------------------------------------------------------------- driver
def plan_cases(args: argparse.Namespace) -> list[Case]:
    """The cases of a run, in order (small N first)."""
    cases = []
    # the size the targets are stated at first, then N = 1,048,576, so that a run cut
    # short still has what the targets need
    sizes = sorted(args.sizes, key=lambda n: (n != TARGET_N, n))
    for n in sizes:
        if args.large and n != TARGET_N and not any(c.n == LARGE_N for c in cases):
            for mode in args.modes:
                cases.append(
                    Case("window", LARGE_N, "graphattn", mode, args.heads, args.dim, args.backend,
                         args.threads, 1, 0.0)
                )  # fmt: skip
        for pattern in args.patterns:
            for impl in args.impls:
                for mode in args.modes:
                    cases.append(
                        Case(pattern, n, impl, mode, args.heads, args.dim, args.backend,
                             args.threads, args.reps, args.seconds)
                    )  # fmt: skip
    if args.large and not any(c.n == LARGE_N for c in cases):
        for mode in args.modes:
            cases.append(
                Case("window", LARGE_N, "graphattn", mode, args.heads, args.dim, args.backend,
                     args.threads, 1, 0.0)
            )  # fmt: skip
    return cases


def _launch(case: Case, timeout: float) -> dict:
    """Run ``case`` in a fresh Python process."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "graphattn.commands.bench", json.dumps(asdict(case))]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"case": asdict(case), "error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"case": asdict(case), "error": f"exit {proc.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1])


def _key(r: dict) -> tuple:
    c = r["case"]
    return c["pattern"], c["n"], c["mode"]


def ratio_table(results: list[dict]) -> str:
    """Text table: graphattn's time and each peer's time as a multiple of it."""
    ok = [r for r in results if "median_s" in r]
    by = {(*_key(r), r["case"]["impl"]): r for r in ok}
    rows = sorted({_key(r) for r in results}, key=lambda k: (PATTERNS.index(k[0]), k[1], k[2]))
    head = f"{'pattern':8} {'N':>9} {'mode':6} {'backend':8} {'graphattn':>11} {'peak':>9}"
    head += "".join(f" {p + ' x':>9}" for p in IMPLS[1:])
    lines = [head, "-" * len(head)]
    for pattern, n, mode in rows:
        mine = by.get((pattern, n, mode, "graphattn"))
        t = f"{mine['median_s'] * 1e3:9.1f}ms" if mine else f"{'-':>11}"
        peak = f"{mine['peak_extra_bytes'] / 2**20:7.0f}MB" if mine else f"{'-':>9}"
        line = f"{pattern:8} {n:>9,} {mode:6} {(mine or {}).get('backend', '-'):8} {t} {peak}"
        for impl in IMPLS[1:]:
            peer = by.get((pattern, n, mode, impl))
            cell = f"{peer['median_s'] / mine['median_s']:8.1f}x" if peer and mine else "-"
            line += f" {cell:>9}"
        lines.append(line)
    return "\n".join(lines)


def check_targets(results: list[dict], n_target: int = TARGET_N) -> list[dict]:
    """The issue's targets, each with the measured value and whether it is met."""
    by = {(*_key(r), r["case"]["impl"]): r for r in results if "median_s" in r}
    out = []

    def add(name, value, limit, met):
        out.append({"target": name, "value": value, "limit": limit, "met": bool(met)})

    for pattern in ("window", "strided", "bigbird", "random"):
        mine = by.get((pattern, n_target, "fwd", "graphattn"))
        if mine is None:
            continue
        t = mine["median_s"]
        for impl, need in (("pyg", 30.0), ("dense", 10.0)):
            peer = by.get((pattern, n_target, "fwd", impl))
            if peer:
                x = peer["median_s"] / t
                add(f"{pattern} N={n_target} fwd: {impl} / graphattn", x, f">= {need}", x >= need)
        flex = by.get((pattern, n_target, "fwd", "flex"))
        if flex:
            x = flex["median_s"] / t
            if pattern == "random":
                add(f"random N={n_target} fwd: flex / graphattn", x, ">= 5", x >= 5)
            else:
                r = t / flex["median_s"]
                add(f"{pattern} N={n_target} fwd: graphattn / flex", r, "<= 1.25", r <= 1.25)
    for pattern in PATTERNS:
        for n in sorted({k[1] for k in by if k[0] == pattern}):
            f, fb = (
                by.get((pattern, n, "fwd", "graphattn")),
                by.get((pattern, n, "fwdbwd", "graphattn")),
            )
            if not (f and fb) or n > max(SIZES):
                continue
            x = fb["median_s"] / f["median_s"]
            add(f"{pattern} N={n}: fwd+bwd / fwd time", x, "<= 3", x <= 3)
            heads, dim = fb["case"]["heads"], fb["case"]["dim"]
            io = fb["input_bytes"] * 2 + n * heads * dim * 4 * 2  # q,k,v,dq,dk,dv + out, dout
            budget = io + fb["edges"] * heads * 4
            used = fb["peak_extra_bytes"] + fb["input_bytes"]
            add(
                f"{pattern} N={n}: fwd+bwd peak / budget", used / budget, "<= 3", used <= 3 * budget
            )
    for mode, limit in (("fwd", 8), ("fwdbwd", 16)):
        big = by.get(("window", LARGE_N, mode, "graphattn"))
        if big:
            gib = big["peak_rss_bytes"] / GIB
            add(f"window N={LARGE_N} {mode}: peak RSS GiB", gib, f"< {limit}", gib < limit)
    return out


def _plots(results: list[dict], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if "median_s" in r]
    patterns = [p for p in PATTERNS if any(r["case"]["pattern"] == p for r in ok)]
    paths = []
    for what, key, scale, label in (
        ("time", "median_s", 1e3, "median time (ms)"),
        ("memory", "peak_extra_bytes", 1 / 2**20, "peak extra memory (MiB)"),
    ):
        fig, axes = plt.subplots(1, len(patterns), figsize=(4 * len(patterns), 3.6), squeeze=False)
        for ax, pattern in zip(axes[0], patterns, strict=True):
            for impl in IMPLS:
                for mode, style in (("fwd", "-o"), ("fwdbwd", "--s")):
                    pts = sorted(
                        (r["case"]["n"], r[key] * scale)
                        for r in ok
                        if r["case"]["pattern"] == pattern
                        and r["case"]["impl"] == impl
                        and r["case"]["mode"] == mode
                    )
                    if pts:
                        xs, ys = zip(*pts, strict=True)
                        ys = [max(y, 1e-3) for y in ys]
                        ax.loglog(xs, ys, style, color=COLORS[impl], label=f"{impl} {mode}")
            ax.set_title(pattern)
            ax.set_xlabel("N (tokens)")
            ax.grid(True, which="both", alpha=0.3)
        axes[0][0].set_ylabel(label)
        handles = {}
        for ax in axes[0]:
            for line in ax.get_lines():
                handles.setdefault(line.get_label(), line)
        fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles),
                   fontsize=8, frameon=False)  # fmt: skip
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        path = folder / f"bench_{what}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _write_json(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` via a temporary file (never half-written)."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1)))


# ---------------------------------------------------------------------- CLI
def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(x.replace("_", "")) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _choices(allowed: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        values = [x for x in text.split(",") if x]
        bad = [x for x in values if x not in allowed]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}, got {text!r}")
        return values

    return parse


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``graphattn bench``."""
    p = subparsers.add_parser(
        "bench",
        help="time graphattn's backends against dense SDPA, PyG and FlexAttention",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--patterns", type=_choices(PATTERNS), default=list(PATTERNS))
    p.add_argument("--sizes", type=_positive_ints, default=list(SIZES), help="values of N")
    p.add_argument("--impls", type=_choices(IMPLS), default=list(IMPLS))
    p.add_argument("--modes", type=_choices(MODES), default=list(MODES))
    p.add_argument("--backend", default="auto", help="graphattn backend (default auto)")
    p.add_argument("--large", action="store_true", help=f"also window N={LARGE_N:,} (graphattn)")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--reps", type=int, default=7, help="most timed calls per case")
    p.add_argument("--seconds", type=float, default=5.0, help="timed calls stop after this")
    p.add_argument("--budget-gib", type=float, default=16.0, help="skip cases needing more")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per case")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="output folder")
    p.add_argument(
        "--quick", action="store_true", help="smoke test: N=256,512, window/random, no flex"
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; write ``bench.json`` and plots to ``args.out``."""
    if args.quick:
        args.sizes, args.patterns, args.large = [256, 512], ["window", "random"], False
        args.impls = [i for i in args.impls if i != "flex"]
        args.reps, args.seconds = 2, 0.0
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    cases = plan_cases(args)
    for case in cases:
        if case.impl == "pyg" and not _has_pyg():
            results.append({"case": asdict(case), "skipped": "torch_geometric is not installed"})
            continue
        reason = skip_reason(case, args.budget_gib)
        if reason:
            results.append({"case": asdict(case), "skipped": reason})
            continue
        r = _launch(case, args.timeout)
        results.append(r)
        what = f"{r['median_s'] * 1e3:.1f} ms" if "median_s" in r else r.get("error")
        print(f"{case.pattern:8} N={case.n:<8} {case.impl:9} {case.mode:6} {what}", flush=True)
        _write_json(args.out / "bench.json", _report(args, results, len(cases)))
    data = _report(args, results, len(cases))
    table, targets = data["table"], data["targets"]
    print("\n" + table + "\n")
    for t in targets:
        print(f"{'met ' if t['met'] else 'MISS'} {t['target']}: {t['value']:.2f} ({t['limit']})")
    _write_json(args.out / "bench.json", data)
    for path in [args.out / "bench.json", *_plots(results, args.out)]:
        print(f"wrote {path}")
    return 0


def _report(args: argparse.Namespace, results: list[dict], total: int) -> dict:
    """The JSON report of a (possibly unfinished) run."""
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "settings": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in vars(args).items()
            if k not in ("run", "command")
        },  # fmt: skip
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "notes": [
            "times: median of timed calls after one warm-up call (first_call_s)",
            "peak_extra_bytes: VmHWM - VmRSS before the first call (warm-up included), "
            "graph and graph-only plans built before",
            "peer ratios in the table: peer median time / graphattn median time, same run",
        ],
        "complete": len(results) == total,
        "table": ratio_table(results),
        "targets": check_targets(results),
        "results": results,
    }


def _has_pyg() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch_geometric") is not None


if __name__ == "__main__":  # a worker: run one case given as JSON, print its result
    print(json.dumps(run_case(Case(**json.loads(sys.argv[1])))), flush=True)
