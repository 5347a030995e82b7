"""Running the benchmark: every case in a fresh Python process, results kept as they come."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from graphattn.bench.cases import Case, plan_cases, skip_reason
from graphattn.bench.report import report, write_json

__all__ = ["has_pyg", "launch", "run_benchmark"]


def launch(case: Case, timeout: float) -> dict:
    """Run ``case`` in a fresh Python process (:mod:`graphattn.bench.measure`)."""
    root = str(Path(__file__).resolve().parents[2])  # the folder holding graphattn/
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "graphattn.bench.measure", json.dumps(asdict(case))]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"case": asdict(case), "error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"case": asdict(case), "error": f"exit {proc.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1])


def has_pyg() -> bool:
    """Whether PyG (``torch_geometric``, the ``bench`` extra) is installed."""
    return importlib.util.find_spec("torch_geometric") is not None


def run_benchmark(args: argparse.Namespace) -> dict:
    """Run the cases of ``args`` (the options of ``graphattn bench``); return the report.

    Prints one line per case run and rewrites ``args.out / "bench.json"`` after
    each, so that a run cut short keeps what it measured.
    """
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    cases = plan_cases(args)
    for case in cases:
        if case.impl == "pyg" and not has_pyg():
            results.append({"case": asdict(case), "skipped": "torch_geometric is not installed"})
            continue
        reason = skip_reason(case, args.budget_gib)
        if reason:
            results.append({"case": asdict(case), "skipped": reason})
            continue
        r = launch(case, args.timeout)
        results.append(r)
        what = f"{r['median_s'] * 1e3:.1f} ms" if "median_s" in r else r.get("error")
        print(f"{case.pattern:8} N={case.n:<8} {case.impl:9} {case.mode:6} {what}", flush=True)
        write_json(args.out / "bench.json", report(args, results, len(cases)))
    return report(args, results, len(cases))
