"""What the model-shaped benchmarks share: one cell per fresh process, a table, atomic JSON.

A *cell* is one measurement (an implementation, a size, a mode) run by the
benchmark script itself in a new Python process (``--cell ...``), so that the
first call of a new process and the peak resident memory are the cell's own.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shlex
import subprocess
import sys
from pathlib import Path


def check_options(parser, args, positive: tuple[str, ...]):
    """``args`` once its ``positive`` options are >= 1, every size holds the window and
    ``--memory-share`` (where the script has it) is a share.

    An option named ``top_k`` is spelled ``--top-k`` in the message.
    """
    for name in positive:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    share = getattr(args, "memory_share", 1.0)  # the scripts of add_cell_options have it
    if not 0 < share <= 1:
        parser.error(f"--memory-share must be in (0, 1], got {share}")
    if min(args.sizes) < args.window:
        parser.error(f"--sizes must all be >= --window {args.window}, got {args.sizes}")
    return args


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far, GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def add_cell_options(parser, results: Path, kept: str) -> None:
    """``--window``, ``--timeout``, ``--memory-share`` and ``--out`` of a model-shaped cell script.

    ``kept`` names what a cell keeps in memory, for ``--memory-share``'s help.
    """
    parser.add_argument("--window", type=int, default=256, help="keys of the window graph")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per process")
    parser.add_argument(
        "--memory-share", type=float, default=0.6,
        help=f"skip a cell whose {kept} need more than this share of the machine's memory",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=results, help=f"JSON results (default {results})"
    )


def too_big(need_gib: float, share: float, says: str) -> dict | None:
    """The row of a cell needing ``need_gib`` GiB, more than ``share`` of the machine's memory.

    None when it fits (``os.sysconf``'s total memory); otherwise the row's
    error, ``"not run: "`` and ``says`` formatted with the GiB.
    """
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    if need_gib <= share * total:
        return None
    return {"error": "not run: " + says.format(need_gib)}


def interleave(runs: dict, rounds: int) -> dict[str, list]:
    """Call every one of ``runs`` (name: function) once, then ``rounds`` times in turn.

    The first calls are warm-ups; returns each name's results of the rounds.
    Interleaved, every run sees the same moments of a machine whose speed
    moves with its other tenants.
    """
    for run in runs.values():
        run()  # warm-up
    seen = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            seen[name].append(run())
    return seen


def spawn(
    script: str, cell: list[str], options: list[str], timeout: float, flag: str = "--cell"
) -> dict:
    """Run ``script flag *cell *options`` in a new process: its last line (JSON), or the error."""
    cmd = [sys.executable, script, flag, *cell, *options]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict], keys: list[str], columns: dict[str, str]) -> str:
    """Rows as a Markdown table: ``keys`` as they are, ``columns`` (key: title) to 3 decimals."""
    head = [*keys, *columns.values(), ""]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r[k]) for k in keys]
        cells += ["" if r.get(k) is None else f"{r[k]:.3f}" for k in columns]
        lines.append("| " + " | ".join([*cells, r.get("error", "")]) + " |")
    return "\n".join(lines)


def write(out: Path, script: str, argv: list[str], rows: list[dict]) -> None:
    """``rows`` with the command and the machine, written atomically to ``out``."""
    command = f"PYTHONPATH=. .venv/bin/python {script} " + shlex.join(argv)
    meta = {"command": command.strip(), "machine": platform.platform(), "cores": os.cpu_count()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps({**meta, "rows": rows}, indent=1))
    tmp.replace(out)
