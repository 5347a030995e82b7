"""``graphattn demo``: a pretrained model's attention as pictures of token graphs."""

from __future__ import annotations

import argparse

from graphattn.commands.options import folder
from graphattn.demo import DEFAULT_TEXTS, DemoConfig, run_demo


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``graphattn demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="draw a pretrained model's attention on token graphs (writes a folder)",
        description=(
            "Run all-MiniLM-L6-v2 (or a small built-in model if it is not installed) on two "
            "sentences sharing an ambiguous word and write pictures of its attention as token "
            "graphs, with an offline index.html."
        ),
    )
    _add_input_options(parser)
    _add_output_options(parser)
    return parser


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    """What the demo reads: the texts and the sparse pattern beside the standard ones."""
    parser.add_argument(
        "--text",
        action="append",
        metavar="TEXT",
        help=f"a sentence; give it once or twice (default: {' / '.join(DEFAULT_TEXTS)})",
    )
    parser.add_argument(
        "--pattern",
        default="causal",
        metavar="NAME",
        help="a sparse pattern shown beside full, sliding-window and BigBird (default: causal)",
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    """Where it writes, the word it compares, the model and the progress bar."""
    parser.add_argument(
        "--out",
        type=folder,
        default="graphattn-demo",
        metavar="DIR",
        help="output folder (default: %(default)s)",
    )
    parser.add_argument(
        "--word", help="the word compared across the two texts (default: bank, or a shared word)"
    )
    parser.add_argument(
        "--model",
        choices=("auto", "minilm", "tiny"),
        default="auto",
        help="auto: MiniLM if installed, else the built-in model (default: auto)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its summary; returns the exit status."""
    cfg = DemoConfig(
        texts=tuple(args.text) if args.text else DEFAULT_TEXTS,
        pattern=args.pattern,
        out=str(args.out),
        model=args.model,
        word=args.word,
        progress=not args.quiet,
    )
    result = run_demo(cfg)
    print(result.summary)
    return 0
