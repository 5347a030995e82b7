"""Long sequences stay readable and fast: pruned graph drawings and binned matrices."""

from pathlib import Path

import torch
from gallery_common import run, save

from graphattn import graph_attention, patterns
from graphattn.plot import draw_attention, draw_matrix


def main(out_dir: Path) -> list[Path]:
    n = 2048
    graph = patterns.get("longformer", n, window=64, globals=[0, 1024])
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(n, 2, 16, generator=gen), torch.randn(n, 2, 16, generator=gen)
    _, weights = graph_attention(q, k, k, graph, return_weights=True)  # (E, 2)
    return [
        save(draw_attention(graph, weights, head=0).figure, out_dir, "long_attention.png"),
        save(draw_matrix(graph, weights, head=0).figure, out_dir, "long_matrix.png"),
    ]


if __name__ == "__main__":
    run(main)
