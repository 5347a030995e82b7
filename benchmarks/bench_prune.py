"""Time of ``prune_top_k`` on one layer's recorded weights, against another revision's.

What ``record(top_k=k)`` does to every layer: keep the ``k`` strongest
incoming edges of every target of a causal graph or a causal sliding window
(``--window`` keys), with the weights that ``record(heads="mean")`` keeps
(``(1, E)``, random) or every head (``(1, E, 12)``). ``--against REV`` loads
``graphattn/flow/prune.py`` as it was at git revision ``REV`` and calls the
two in turn in this process (medians of ``--reps``, after one warm-up
each), checking that they return the same result; ratios are read within
one run. Writes every row, with the command, to ``--out``.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_prune.py --sizes 4096 8192 --against HEAD~1
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _cells import check_options, table, write

from graphattn import patterns
from graphattn.flow.prune import prune_top_k

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "prune.json"
CASES = {"causal_mean": ("causal", 1), "window_heads": ("window", 12)}


def revision(rev: str):
    """``prune_top_k`` of ``graphattn/flow/prune.py`` at git revision ``rev``."""
    text = subprocess.run(["git", "show", f"{rev}:graphattn/flow/prune.py"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prune_then.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location("prune_then", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module.prune_top_k


def row(case: str, n: int, then) -> dict:
    graph_kind, heads = CASES[case]
    g = patterns.causal(n) if graph_kind == "causal" else patterns.sliding_window(n, ARGS.window)
    w = torch.rand(1, g.num_edges, heads, generator=torch.Generator().manual_seed(0))
    w = w[..., 0] if heads == 1 else w  # (1, E) head-mean weights, or (1, E, H)
    calls = {"now": prune_top_k, **({"then": then} if then else {})}
    results = {name: f(g, w, ARGS.k) for name, f in calls.items()}  # warm-up
    if then and not all(torch.equal(a, b) for a, b in zip(*results.values(), strict=True)
                        if isinstance(a, torch.Tensor)):  # fmt: skip
        raise SystemExit(f"{case} N={n}: the two revisions disagree")
    seen = {name: [] for name in calls}
    for _ in range(ARGS.reps):
        for name, f in calls.items():
            t0 = time.perf_counter()
            f(g, w, ARGS.k)
            seen[name].append(time.perf_counter() - t0)
    out = {"case": case, "n": n, "edges": g.num_edges, "now_s": statistics.median(seen["now"])}
    if then:
        out["then_s"] = statistics.median(seen["then"])
    return out


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192])
    p.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    p.add_argument("--k", type=int, default=32, help="edges kept per target")
    p.add_argument("--window", type=int, default=256)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--against", help="a git revision whose prune_top_k runs in turn")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    return check_options(p, p.parse_args(argv), ("k", "window", "reps"))


def main(argv: list[str]) -> None:
    then = revision(ARGS.against) if ARGS.against else None
    rows = [row(case, n, then) for case in ARGS.cases for n in ARGS.sizes]
    print(table(rows, ["case", "n", "edges"], {"now_s": "now s", "then_s": "then s"}))
    write(ARGS.out, "benchmarks/bench_prune.py", argv, rows)


if __name__ == "__main__":
    ARGS = parse(sys.argv[1:])
    main(sys.argv[1:])
