"""The benchmark's report: the ratio table and the JSON written to ``bench.json``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import torch

from graphattn._files import atomic_write
from graphattn.bench.cases import IMPLS, PATTERNS
from graphattn.bench.targets import by_case, check_targets, result_key

__all__ = ["ratio_table", "report", "write_json"]


def ratio_table(results: list[dict]) -> str:
    """Text table: graphattn's time and each peer's time as a multiple of it."""
    by = by_case(results)
    rows = sorted(
        {result_key(r) for r in results}, key=lambda k: (PATTERNS.index(k[0]), k[1], k[2])
    )
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


def report(args: argparse.Namespace, results: list[dict], total: int) -> dict:
    """The JSON report of a (possibly unfinished) run of ``total`` cases."""
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


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` via a temporary file (never half-written)."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1)))
