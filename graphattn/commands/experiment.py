"""``graphattn experiment``: train a small model under several patterns and compare them."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from graphattn.commands.options import count, folder
from graphattn.experiments import (
    cross_attention_experiments,
    default_config,
    load_config,
    markdown_table,
    run_experiment,
    run_seq2seq_experiment,
)
from graphattn.experiments.common.parallel import launch
from graphattn.experiments.seq2seq.report import seq2seq_table


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
        type=folder,
        default="experiment-results",
        metavar="DIR",
        help="output folder, also holding the checkpoints (default: %(default)s)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="delete this experiment's checkpoints and start over"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_mode_options(parser)
    return parser


def _add_mode_options(parser: argparse.ArgumentParser) -> None:
    """``--cross-attention`` (the encoder-decoder experiment) and ``--nproc`` (processes)."""
    parser.add_argument(
        "--cross-attention",
        nargs="?",
        const="both",
        choices=["both", "reorder", "monotonic"],
        metavar="TASK",
        help="instead, train GraphSeq2Seq under different cross graphs on a translation task "
        "(reorder, monotonic or both; the experiment of docs/experiments.md) into OUT/TASK",
    )
    parser.add_argument(
        "--nproc",
        type=count(1),
        default=1,
        metavar="P",
        help="train data-parallel in P processes (gloo on 127.0.0.1), each on 1/P of every "
        "batch, with the same numbers as one process (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the experiment; 0 when complete, 130 when interrupted (run again to resume)."""
    command = "graphattn " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["experiment"] else None
    if args.cross_attention is not None:
        return _cross_attention(args, command)
    cfg = default_config() if args.config is None else load_config(args.config)
    if args.nproc < 1 or args.nproc > cfg.train.batch_size:
        raise ValueError(
            f"--nproc must be in [1, train.batch_size={cfg.train.batch_size}], got {args.nproc}"
        )
    options = {"resume": not args.fresh, "progress": not args.no_progress, "command": command}
    if args.nproc == 1:
        results = run_experiment(cfg, args.out, **options)
    else:
        launch(args.nproc, run_experiment, cfg, args.out, **options)
        results = json.loads((Path(args.out) / "results.json").read_text())
    print(markdown_table(results))
    print(f"wrote {args.out}/results.md, results.json, loss_curves.png, accuracy.png")
    if results["status"] != "complete":
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def _cross_attention(args: argparse.Namespace, command: str | None) -> int:
    """The encoder-decoder experiment(s): one results folder per task under ``args.out``."""
    if args.config is not None:
        raise ValueError("--cross-attention runs the documented experiment; it takes no CONFIG")
    experiments = cross_attention_experiments()
    names = sorted(experiments) if args.cross_attention == "both" else [args.cross_attention]
    for name in names:
        results = run_seq2seq_experiment(experiments[name], Path(args.out) / name, command=command)
        print(f"{name}:\n{seq2seq_table(results)}")
        print(f"wrote {args.out}/{name}/results.md, results.json, alignments.png")
    return 0
