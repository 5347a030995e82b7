"""Argument types shared by the subcommands: each refuses a bad value while parsing.

A value refused here never reaches the command: argparse prints a one-line
error naming the option and exits with status 2.

Examples
--------
>>> count(1)("3"), number(0, open_low=True)("0.5"), folder("out").name
(3, 0.5, 'out')
>>> count(1)("0")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: expected an integer >= 1, got '0'
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

__all__ = ["count", "folder", "number", "words"]


def count(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: one integer in ``[low, high]`` (``high=None``: no upper bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"in [{low}, {high:,}]"
            raise argparse.ArgumentTypeError(f"expected an integer {bound}, got {text!r}")
        return value

    return parse


def number(low: float, *, open_low: bool) -> Callable[[str], float]:
    """An argparse type: one finite number above ``low`` (or equal to it unless ``open_low``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (open_low and value == low):
            bound = f"> {low:g}" if open_low else f">= {low:g}"
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text!r}")
        return value

    return parse


def folder(text: str) -> Path:
    """An argparse type: a folder path, never empty (``""`` would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a folder name, got {text!r}")
    return Path(text)


def words(text: str) -> list[str]:
    """An argparse type: space-separated words, at least one."""
    parts = text.split()
    if not parts:
        raise argparse.ArgumentTypeError(f"expected at least one word, got {text!r}")
    return parts
