"""Attention weights on the token graph (static head view) from all-MiniLM-L6-v2."""

from pathlib import Path

from gallery_common import minilm_layers, run, save

from graphattn.plot import draw_attention


def main(out_dir: Path) -> list[Path]:
    graph, weights = minilm_layers()[2]  # layer 2: (graph, weights (E, 12))
    heads = draw_attention(graph, weights, head=[0, 3, 9], layout="bipartite", top_k=3)
    mean = draw_attention(graph, weights, head="mean", layout="arc", top_k=2)
    return [
        save(heads.figure, out_dir, "attention_heads.png"),
        save(mean.figure, out_dir, "attention_arc.png"),
    ]


if __name__ == "__main__":
    run(main)
