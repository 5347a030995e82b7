"""The benchmark's cases: patterns, sizes and implementations, which cases run, and why not.

Examples
--------
>>> case = Case("window", 1024, "dense", "fwd")
>>> expected_edges("window", 1024), skip_reason(case, budget=16)
(131072, None)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

__all__ = [
    "BIGBIRD_BLOCK",
    "GIB",
    "IMPLS",
    "LARGE_N",
    "MODES",
    "PATTERNS",
    "SIZES",
    "TARGET_N",
    "WINDOW",
    "Case",
    "MIN_N",
    "build_graph",
    "check_sizes",
    "expected_edges",
    "flex_predicate",
    "plan_cases",
    "skip_reason",
]

IMPLS = ("graphattn", "dense", "pyg", "flex")
MODES = ("fwd", "fwdbwd")
PATTERNS = ("window", "strided", "bigbird", "random", "causal")
SIZES = (1024, 4096, 16384, 65536)
LARGE_N = 1_048_576  # graphattn alone, window pattern
TARGET_N = 16384  # the size at which the speed targets are stated
WINDOW = 128  # keys per query of the window and random patterns; stride of strided
BIGBIRD_BLOCK = 64
GIB = 2**30
# the fewest tokens each pattern is built on: a window (stride, keys) of WINDOW, and
# BigBird's 3 window blocks of BIGBIRD_BLOCK need more than 2 blocks
MIN_N = {"window": WINDOW, "strided": WINDOW, "bigbird": 2 * BIGBIRD_BLOCK + 1,
         "random": WINDOW, "causal": 1}  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One benchmark case; ``backend`` applies to the graphattn implementation."""

    pattern: str
    n: int
    impl: str
    mode: str
    heads: int = 4
    dim: int = 64
    backend: str = "auto"
    threads: int = 0  # 0: torch's default
    reps: int = 7  # most timed calls
    seconds: float = 5.0  # timed calls stop after this much time (at least 2 calls)


# ------------------------------------------------------------------ patterns
def build_graph(pattern: str, n: int):
    """The benchmark's graph ``pattern`` on ``n`` tokens (see docs/performance.md)."""
    from graphattn import patterns

    if pattern == "window":
        return patterns.sliding_window(n, WINDOW)
    if pattern == "strided":
        return patterns.strided(n, WINDOW)
    if pattern == "bigbird":
        return patterns.bigbird(n, window=3, num_global=2, num_random=3, block=BIGBIRD_BLOCK)
    if pattern == "random":
        return patterns.random(n, WINDOW, causal=True)
    if pattern == "causal":
        return patterns.causal(n)
    raise ValueError(f"unknown pattern {pattern!r}; choose from {PATTERNS}")


def check_sizes(patterns: list[str], sizes: list[int]) -> None:
    """Raise unless every pattern of ``patterns`` can be built on every N of ``sizes``.

    Raises
    ------
    ValueError
        Naming ``--sizes``, the pattern and the fewest tokens it needs.

    Examples
    --------
    >>> check_sizes(["window"], [16])
    Traceback (most recent call last):
    ...
    ValueError: --sizes: window needs N >= 128 (its window), got 16
    """
    why = {"bigbird": "3 blocks of 64", "causal": "one token"}
    for pattern in patterns:
        small = [n for n in sizes if n < MIN_N[pattern]]
        if small:
            need = why.get(pattern, "its window")
            raise ValueError(
                f"--sizes: {pattern} needs N >= {MIN_N[pattern]} ({need}), got {small[0]}"
            )


def expected_edges(pattern: str, n: int) -> int:
    """Edge count of a pattern, without building it (for skip decisions)."""
    if pattern in ("window", "random"):
        return n * WINDOW
    if pattern == "strided":
        return n * WINDOW + n * n // (2 * WINDOW)
    if pattern == "bigbird":
        return n * BIGBIRD_BLOCK * (3 + 2 + 3) + 2 * n * BIGBIRD_BLOCK * 2
    return n * (n + 1) // 2


def flex_predicate(pattern: str):
    """FlexAttention ``mask_mod`` for patterns that have a closed form, else None."""
    if pattern == "window":
        return lambda b, h, i, j: (j <= i) & (i - j < WINDOW)
    if pattern == "causal":
        return lambda b, h, i, j: j <= i
    if pattern == "strided":
        return lambda b, h, i, j: (j <= i) & ((i - j < WINDOW) | ((i - j) % WINDOW == 0))
    return None


# ------------------------------------------------------------------ skipping
def skip_reason(case: Case, budget: float) -> str | None:
    """Why ``case`` is not run within ``budget`` GiB, or None."""
    n, h, d = case.n, case.heads, case.dim
    e = expected_edges(case.pattern, n)
    grad = 2 if case.mode == "fwdbwd" else 1
    if e > 2**28:
        return f"the graph alone has {e:,} edges ({e * 16 / GIB:.0f} GiB of edge list)"
    if case.n > max(SIZES) and case.impl != "graphattn":
        return "N = 1,048,576 is run for graphattn alone"
    if case.impl == "dense":
        # bool mask, its float form, and for the backward the same again (measured on CPU:
        # SDPA with a mask runs a fused kernel that never holds all (H, N, N) scores)
        need = n * n * 5 * grad
        if need > budget * GIB:
            return f"dense scores would need {need / GIB:.0f} GiB"
    if case.impl == "pyg":
        need = e * h * d * 4 * 4 * grad  # q[dst], k[src], v[src] and messages (E, H, D)
        if need > budget * GIB:
            return f"the (E, H, D) gathers would need {need / GIB:.0f} GiB"
    if case.impl == "flex" and case.mode == "fwdbwd":
        return "compiled FlexAttention has no backward on CPU"
    return None


# ------------------------------------------------------------------ planning
def plan_cases(args: argparse.Namespace) -> list[Case]:
    """The cases of a run (the options of ``graphattn bench``), in order (small N first)."""
    cases = []
    # the size the targets are stated at first, then N = 1,048,576, so that a run cut
    # short still has what the targets need
    sizes = sorted(args.sizes, key=lambda n: (n != TARGET_N, n))
    for n in sizes:
        if args.large and n != TARGET_N and not any(c.n == LARGE_N for c in cases):
            for mode in args.modes:
                cases.append(
                    Case("window", LARGE_N, "graphattn", mode, args.heads, args.dim, args.backend,
                         args.threads, 1, 0.0)
                )  # fmt: skip
        for pattern in args.patterns:
            for impl in args.impls:
                for mode in args.modes:
                    cases.append(
                        Case(pattern, n, impl, mode, args.heads, args.dim, args.backend,
                             args.threads, args.reps, args.seconds)
                    )  # fmt: skip
    if args.large and not any(c.n == LARGE_N for c in cases):
        for mode in args.modes:
            cases.append(
                Case("window", LARGE_N, "graphattn", mode, args.heads, args.dim, args.backend,
                     args.threads, 1, 0.0)
            )  # fmt: skip
    return cases
