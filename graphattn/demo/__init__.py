"""The main demo (moved into a package; split in the next commit)."""

from graphattn.demo.running import (
    CAPTIONS,
    DEFAULT_TEXTS,
    MARKER,
    DemoConfig,
    DemoResult,
    _load_model,
    demo_patterns,
    pattern_graph,
    run_demo,
)

__all__ = ["DEFAULT_TEXTS", "DemoConfig", "DemoResult", "demo_patterns", "run_demo"]
__all__ += ["CAPTIONS", "MARKER", "_load_model", "pattern_graph"]
