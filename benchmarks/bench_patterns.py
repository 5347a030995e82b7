"""Benchmark of graphattn.patterns builders and graphattn.analysis on long sequences.

Every case runs in a fresh Python process, which reports the wall time of the
build and its peak resident memory above the peak after importing graphattn,
next to the size of the resulting edge list (``2 * E * 8`` bytes). Prints a
table and writes it, with the command that produced it, to
``benchmarks/results/patterns.json``.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_patterns.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "patterns.json"

CASES = {
    "sliding_window(262_144, 128)": "patterns.sliding_window(262_144, 128)",
    "sliding_window(262_144, 64, causal=False)": (
        "patterns.sliding_window(262_144, 64, causal=False)"
    ),
    "strided(65_536, 256)": "patterns.strided(65_536, 256)",
    "bigbird(65_536, 3, 2, 3, block=64)": "patterns.bigbird(65_536, 3, 2, 3, block=64)",
    "attention_sink(262_144, 4, 128)": "patterns.attention_sink(262_144, 4, 128)",
    "reach(sliding_window(4096, 3), 5)": "analysis.reach(patterns.sliding_window(4096, 3), 5)",
    "layers_to_reach(strided(2048, 45))": "analysis.layers_to_reach(patterns.strided(2048, 45))",
}

CHILD = """
import json, resource, sys, time
from graphattn import analysis, patterns
from graphattn.graph import TokenGraph
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
out = {expr}
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
edges = out.num_edges if isinstance(out, TokenGraph) else None
print(json.dumps(dict(seconds=seconds, extra_peak_mib=(peak - base) / 1024, edges=edges,
                      result=None if edges is not None else out)))
"""


def run_case(expr: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.format(expr=expr)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    if row["edges"] is not None:
        row["edge_list_mib"] = row["edges"] * 16 / 2**20
        row["peak_over_edge_list"] = row["extra_peak_mib"] / row["edge_list_mib"]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    rows = []
    for name, expr in CASES.items():
        row = {"case": name, **run_case(expr)}
        rows.append(row)
        ratio = row.get("peak_over_edge_list")
        print(
            f"{name:<44} {row['seconds']:7.2f} s  edges={row['edges']!s:>10}  "
            f"extra peak {row['extra_peak_mib']:7.0f} MiB"
            + (f" ({ratio:.2f}x the edge list)" if ratio is not None else "")
        )
    report = {
        "command": "PYTHONPATH=. .venv/bin/python benchmarks/bench_patterns.py "
        + " ".join(shlex.quote(a) for a in (argv or [])),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_average": os.getloadavg(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.out.parent, suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
