"""Shared pieces of the gallery scripts: real attention from all-MiniLM-L6-v2 and saving.

Every ``gallery_*.py`` script has ``main(out_dir) -> list of written paths``
and runs as ``python examples/gallery_<kind>.py OUT_DIR``.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only

import matplotlib.pyplot as plt  # noqa: E402

from graphattn.plot import save_figure  # noqa: E402

SENTENCE = "The animal did not cross the street because it was too tired."
DPI = 110  # pictures in docs/img are saved at this resolution


@cache
def minilm_layers(window: int | None = None):
    """Per layer ``(graph, weights (E, 12))`` of all-MiniLM-L6-v2 on :data:`SENTENCE`.

    ``window=None`` is BERT's own full graph; an int runs the same model on a
    bidirectional sliding window of that width (a sparse graph).
    """
    from graphattn import patterns

    model = _minilm()
    ids, _ = model.tokenize(SENTENCE)
    graph = None
    if window is not None:
        graph = lambda n: patterns.get("sliding_window", n, window=window, causal=False)  # noqa: E731
    return model(ids, graph, need_weights=True).sentence(0)


@cache
def _minilm():
    from graphattn.pretrained import load_minilm

    return load_minilm()


def save(fig, out_dir: Path, name: str) -> Path:
    """Save ``fig`` as ``out_dir / name`` and close it."""
    path = save_figure(fig, Path(out_dir) / name, dpi=DPI)
    plt.close(fig)
    return path


def run(main) -> None:
    """Command-line entry: ``main(OUT_DIR)`` with OUT_DIR from argv (created if missing)."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    for path in main(out):
        print(path)
