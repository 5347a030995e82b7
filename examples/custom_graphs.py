"""Build custom token graphs by hand, from networkx and by composition; print their analysis.

Run from the repository root:

    python examples/custom_graphs.py
"""

from __future__ import annotations

import networkx as nx

from graphattn import analysis, patterns
from graphattn.graph import TokenGraph

SENTENCE = "the cat sat on the mat".split()


def by_hand() -> TokenGraph:
    """Every word attends to itself and the word before; the object also sees its verb."""
    n = len(SENTENCE)
    src = list(range(n)) + list(range(n - 1)) + [2]  # itself, the word before, "sat"
    dst = list(range(n)) + list(range(1, n)) + [5]  # into: itself, the next word, "mat"
    return TokenGraph([src, dst], tokens=SENTENCE, name="by hand")


def from_networkx() -> TokenGraph:
    """A dependency tree drawn in networkx: heads and dependents attend to each other."""
    tree = nx.Graph()  # undirected: an edge both ways
    tree.add_edges_from(
        [("sat", "cat"), ("cat", "the#1"), ("sat", "on"), ("on", "mat"), ("mat", "the#2")]
    )
    order = ["the#1", "cat", "sat", "on", "the#2", "mat"]  # sentence order
    g = TokenGraph.from_networkx(tree, nodes=order, name="dependency tree")
    return g.with_tokens(SENTENCE).add_self_loops()


def by_composition(n: int = 16) -> TokenGraph:
    """A causal Longformer: a window of 3 plus one global token, cut to j <= i."""
    g = patterns.intersection(
        patterns.union(patterns.sliding_window(n, 3, causal=False), patterns.global_tokens(n, 1)),
        patterns.causal(n),
    )
    g.name = f"causal longformer(n={n})"  # the composed name spells out the whole formula
    return g


def main() -> None:
    for g in (by_hand(), from_networkx(), by_composition()):
        print(g.to_string())
        print(analysis.describe(g, block_size=4))
        print()

    print(f"{'pattern':<36}{'layers_to_reach':>15}  Sparse Transformer valid")
    for g in (
        patterns.sliding_window(64, 8),
        patterns.strided(64, 8),
        patterns.fixed(64, 8),
        patterns.attention_sink(64, sinks=1, window=8),
        by_composition(64),
    ):
        valid = analysis.sparse_transformer_valid(g)
        print(f"{g.name:<36}{analysis.layers_to_reach(g)!s:>15}  {valid}")

    reached = analysis.reach(patterns.sliding_window(4096, 3), layers=4)
    print(f"\n4 layers of a window of 3 on 4096 tokens reach: {reached!r}")


if __name__ == "__main__":
    main()
