"""The ``graphattn`` command: one subcommand per module in :mod:`graphattn.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each name is a module graphattn.commands.<name> with ``add_parser(subparsers)``
# and ``run(args) -> int``.
COMMANDS = ["demo", "experiment", "draw", "bench", "attribution"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``graphattn`` command."""
    parser = argparse.ArgumentParser(
        prog="graphattn", description="Attention as message passing on token graphs."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"graphattn.commands.{name}")
        module.add_parser(sub).set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``graphattn`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, TypeError, OSError, FloatingPointError) as err:
        print(f"graphattn {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
