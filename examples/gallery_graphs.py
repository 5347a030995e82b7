"""Token graphs in every layout: arc, bipartite (a cross graph), circle, spring, layered."""

from pathlib import Path

from gallery_common import run, save

from graphattn import TokenGraph, patterns
from graphattn.plot import draw_graph

WORDS = "The cat sat on the mat because it was warm".split()


def main(out_dir: Path) -> list[Path]:
    causal = patterns.causal(len(WORDS)).with_tokens(WORDS)
    window = patterns.get("sliding_window", len(WORDS), window=2, causal=False).with_tokens(WORDS)
    # a small dependency-like graph: heads attend to their dependents and back
    src = [1, 0, 2, 1, 4, 3, 5, 4, 2, 5, 6, 8, 7, 9, 8, 6, 2]
    dst = [0, 1, 1, 2, 3, 4, 4, 5, 5, 2, 2, 7, 8, 8, 9, 8, 6]
    deps = TokenGraph([src, dst], len(WORDS), tokens=WORDS, name="dependencies")
    cross = patterns.get("cross_window", 6, n_src=len(WORDS), window=2).with_tokens(
        "Le chat est sur le tapis".split(), WORDS
    )
    return [
        save(draw_graph(causal, "arc").figure, out_dir, "graph_arc.png"),
        save(draw_graph(cross, "bipartite").figure, out_dir, "graph_bipartite.png"),
        save(draw_graph(window, "circle").figure, out_dir, "graph_circle.png"),
        save(draw_graph(deps, "spring").figure, out_dir, "graph_spring.png"),
        save(draw_graph([window] * 3, "layered").figure, out_dir, "graph_layered.png"),
    ]


if __name__ == "__main__":
    run(main)
