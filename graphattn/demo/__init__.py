"""The main demo: a real pretrained model's attention, drawn as message passing on token graphs.

:func:`run_demo` loads all-MiniLM-L6-v2 (or, where it is not installed, a
small random built-in model), runs two sentences that share an ambiguous word,
and writes a folder of pictures with a self-contained offline ``index.html``:
the sentence as a token graph, per-head drawings and heatmaps, the layers x
heads grid, rollout and max-flow, what the shared word attends to in each
sentence and how far apart its two contextual embeddings end up, the
sentence under sparse graphs with the drift they cause, and a cross-attention
(encoder -> decoder) bipartite graph. ``graphattn demo`` runs it.

Modules: :mod:`~graphattn.demo.running` (the configuration and
:func:`run_demo`), :mod:`~graphattn.demo.model` (loading and running the
model), :mod:`~graphattn.demo.figures` (one function per picture) and
:mod:`~graphattn.demo.page` (the ``index.html`` page and the printed summary).
"""

from graphattn.demo.page import CAPTIONS
from graphattn.demo.running import (
    COMPARED,
    DEFAULT_TEXTS,
    DEMO_PARAMS,
    MARKER,
    DemoConfig,
    DemoResult,
    demo_patterns,
    pattern_graph,
    run_demo,
)

__all__ = [
    "CAPTIONS",
    "COMPARED",
    "DEFAULT_TEXTS",
    "DEMO_PARAMS",
    "MARKER",
    "DemoConfig",
    "DemoResult",
    "demo_patterns",
    "pattern_graph",
    "run_demo",
]
