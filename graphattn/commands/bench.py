"""``graphattn bench``: the command line of :mod:`graphattn.bench`."""

from graphattn.bench.measure import add_parser, run

__all__ = ["add_parser", "run"]
