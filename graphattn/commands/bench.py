"""``graphattn bench``: graphattn's backends against dense SDPA, PyG's recipe and FlexAttention.

The command line of the benchmark harness :mod:`graphattn.bench`, which runs
every case in its own process and writes ``bench.json`` and two plots. Every
option is checked before the first case runs; a folder that already holds a
``bench.json`` (the committed ``benchmarks/results/`` among them) is written
over only with ``--overwrite``. It warns when the machine is loaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graphattn.bench import (
    IMPLS,
    LARGE_N,
    MODES,
    PATTERNS,
    SIZES,
    check_sizes,
    explain,
    machine_warnings,
    run_benchmark,
    write_json,
    write_plots,
)
from graphattn.commands.options import count, folder, number

__all__ = ["DEFAULT_OUT", "add_parser", "run"]

DEFAULT_OUT = Path("bench-results")  # not benchmarks/results/: that folder holds committed results


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


def _positive_int(text: str) -> int:
    values = _positive_ints(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one positive integer, got {text!r}")
    return values[0]


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
    _add_case_options(p)
    _add_run_options(p)
    return p


def _add_case_options(p: argparse.ArgumentParser) -> None:
    """What is timed: patterns, sizes, peers, modes, backend and shapes."""
    p.add_argument("--patterns", type=_choices(PATTERNS), default=list(PATTERNS))
    p.add_argument("--sizes", type=_positive_ints, default=list(SIZES), help="values of N")
    p.add_argument("--impls", type=_choices(IMPLS), default=list(IMPLS))
    p.add_argument("--modes", type=_choices(MODES), default=list(MODES))
    p.add_argument("--backend", default="auto", help="graphattn backend (default auto)")
    p.add_argument("--large", action="store_true", help=f"also window N={LARGE_N:,} (graphattn)")
    p.add_argument("--heads", type=_positive_int, default=4)
    p.add_argument("--dim", type=_positive_int, default=64)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """How it is timed and where the results go."""
    p.add_argument(
        "--threads", type=count(0), default=0, help="torch threads (0: torch's default)"
    )
    p.add_argument("--reps", type=count(1), default=7, help="most timed calls per case")
    p.add_argument(
        "--seconds", type=number(0, open_low=False), default=5.0,
        help="timed calls stop after this",
    )  # fmt: skip
    p.add_argument(
        "--budget-gib", type=number(0, open_low=True), default=16.0,
        help="skip cases needing more",
    )  # fmt: skip
    p.add_argument(
        "--timeout", type=number(0, open_low=True), default=900.0, help="seconds per case"
    )
    p.add_argument(
        "--out", type=folder, default=DEFAULT_OUT,
        help="output folder (default: %(default)s; the committed results are in "
        "benchmarks/results)",
    )  # fmt: skip
    p.add_argument(
        "--overwrite", action="store_true",
        help="write into a folder that already holds a bench.json (such as benchmarks/results)",
    )  # fmt: skip
    p.add_argument(
        "--quick", action="store_true", help="smoke test: N=256,512, window/random, no flex"
    )


def _check(args: argparse.Namespace) -> None:
    """Refuse, before any case runs, what argparse alone cannot see."""
    from graphattn.backends import backend_names

    if args.backend != "auto" and args.backend not in backend_names():
        raise ValueError(
            f"--backend must be 'auto' or one of {backend_names()}, got {args.backend!r}"
        )
    if (args.out / "bench.json").exists() and not args.overwrite:
        raise ValueError(
            f"--out {str(args.out)!r} already holds a bench.json; choose another folder or "
            "pass --overwrite to replace it"
        )
    check_sizes(args.patterns, args.sizes)


def _warn(when: str) -> None:
    """Print a warning per sign that the machine is loaded (nothing on a quiet one)."""
    for line in machine_warnings():
        print(f"graphattn bench: warning ({when}): {line}", file=sys.stderr, flush=True)


def _print_targets(targets: list[dict]) -> None:
    """One line per target, then what each kind of line measures."""
    for t in targets:
        print(f"{'met ' if t['met'] else 'MISS'} {t['target']}: {t['value']:.2f} ({t['limit']})")
    kinds = dict.fromkeys(t["target"].rpartition(": ")[2] for t in targets)
    if kinds:
        print("\nwhat the target lines measure:")
    for kind in kinds:
        print(f"  {kind}: {explain(kind)}")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; write ``bench.json`` and plots to ``args.out``."""
    if args.quick:
        args.sizes, args.patterns, args.large = [256, 512], ["window", "random"], False
        args.impls = [i for i in args.impls if i != "flex"]
        args.reps, args.seconds = 2, 0.0
    _check(args)
    _warn("before the run")
    data = run_benchmark(args)
    print("\n" + data["table"] + "\n")
    _print_targets(data["targets"])
    _warn("after the run")
    write_json(args.out / "bench.json", data)
    for path in [args.out / "bench.json", *write_plots(data["results"], args.out)]:
        print(f"wrote {path}")
    return 0
