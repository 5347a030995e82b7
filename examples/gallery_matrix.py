"""Attention matrices: a full head, and a sparse graph whose non-edges are hatched."""

from pathlib import Path

from gallery_common import minilm_layers, run, save

from graphattn.plot import draw_matrix


def main(out_dir: Path) -> list[Path]:
    graph, weights = minilm_layers()[2]
    sparse_graph, sparse_weights = minilm_layers(window=2)[2]  # the same model on a window
    return [
        save(draw_matrix(graph, weights, head=8).figure, out_dir, "matrix.png"),
        save(draw_matrix(sparse_graph, sparse_weights).figure, out_dir, "matrix_sparse.png"),
    ]


if __name__ == "__main__":
    run(main)
