"""The attention benchmark: graphattn's backends against dense SDPA, PyG's recipe and FlexAttention.

``graphattn bench`` (:mod:`graphattn.commands.bench`) runs it; so does
``benchmarks/bench_attention.py``.

Every case (pattern, N, implementation, forward or forward+backward) runs in
its own Python process, so that its peak memory is measured alone: the
process's peak resident set (``VmHWM``, reset with ``/proc/self/clear_refs``
after the graph, its graph-only plans and the inputs exist) minus its resident
set just before the first call. Times are the median of repeated calls after
one warm-up call (which builds caches and, for FlexAttention, compiles).

Implementations:

* ``graphattn``: :func:`graphattn.graph_attention` (``--backend``, default
  ``auto``; the backend it ran is recorded);
* ``dense``: ``torch.nn.functional.scaled_dot_product_attention`` with the
  graph's boolean ``(N, N)`` mask;
* ``pyg``: PyG's edge-wise recipe, ``torch_geometric.utils.softmax`` over each
  target's edges and ``scatter`` of ``alpha * v[src]`` (needs the ``bench`` extra);
* ``flex``: ``torch.compile(flex_attention)`` with a ``BlockMask`` (from the
  pattern's predicate where it has one, else :func:`graphattn.to_block_mask`);
  forward only on CPU.

Cases that cannot fit ``--budget-gib`` are skipped with a note saying why.

Modules: :mod:`~graphattn.bench.cases` (what runs and what is skipped),
:mod:`~graphattn.bench.measure` (one case in this process; the worker),
:mod:`~graphattn.bench.runner` (every case in its own process),
:mod:`~graphattn.bench.machine` (whether the machine is quiet enough to time on),
:mod:`~graphattn.bench.targets`, :mod:`~graphattn.bench.report` and
:mod:`~graphattn.bench.plots` (what a run is checked against, its table and
JSON, its plots).
"""

from graphattn.bench.cases import (
    BIGBIRD_BLOCK,
    GIB,
    IMPLS,
    LARGE_N,
    MIN_N,
    MODES,
    PATTERNS,
    SIZES,
    TARGET_N,
    WINDOW,
    Case,
    build_graph,
    check_sizes,
    expected_edges,
    flex_predicate,
    plan_cases,
    skip_reason,
)
from graphattn.bench.machine import machine_warnings
from graphattn.bench.measure import make_call, run_case
from graphattn.bench.plots import COLORS, write_plots
from graphattn.bench.report import ratio_table, report, write_json
from graphattn.bench.runner import has_pyg, launch, run_benchmark
from graphattn.bench.targets import MEANINGS, by_case, check_targets, explain, result_key

__all__ = [
    "BIGBIRD_BLOCK",
    "COLORS",
    "GIB",
    "IMPLS",
    "LARGE_N",
    "MEANINGS",
    "MIN_N",
    "MODES",
    "PATTERNS",
    "SIZES",
    "TARGET_N",
    "WINDOW",
    "Case",
    "build_graph",
    "by_case",
    "check_sizes",
    "check_targets",
    "expected_edges",
    "explain",
    "flex_predicate",
    "has_pyg",
    "launch",
    "machine_warnings",
    "make_call",
    "plan_cases",
    "ratio_table",
    "report",
    "result_key",
    "run_benchmark",
    "run_case",
    "skip_reason",
    "write_json",
    "write_plots",
]
