"""``graphattn experiment``: train a small model under several patterns and compare them."""

from __future__ import annotations

import argparse
import shlex
import sys

from graphattn.experiments import default_config, load_config, markdown_table, run_experiment


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``graphattn experiment``."""
    parser = subparsers.add_parser(
        "experiment",
        help="train the same small model under several attention patterns and compare them",
        description=(
            "Train a small decoder-only GraphLM on a task once per pattern and seed, with the "
            "same budget, and write results.json, results.md, loss_curves.png and "
            "accuracy.png. Without CONFIG, runs the default experiment (associative recall "
            "with the query far from its key; examples/experiment_default.toml). An "
            "interrupted run (Ctrl-C) resumes from its checkpoints when run again."
        ),
    )
    parser.add_argument(
        "config", nargs="?", metavar="CONFIG", help="a .toml or .json experiment config"
    )
    parser.add_argument(
        "--out",
        default="experiment-results",
        metavar="DIR",
        help="output folder, also holding the checkpoints (default: %(default)s)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="delete this experiment's checkpoints and start over"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the experiment; 0 when complete, 130 when interrupted (run again to resume)."""
    cfg = default_config() if args.config is None else load_config(args.config)
    command = "graphattn " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["experiment"] else None
    results = run_experiment(
        cfg, args.out, resume=not args.fresh, progress=not args.no_progress, command=command
    )
    print(markdown_table(results))
    print(f"wrote {args.out}/results.md, results.json, loss_curves.png, accuracy.png")
    if results["status"] != "complete":
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    return 0
