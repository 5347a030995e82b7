"""A new attention variant in a few lines: GAT-style additive attention on a token graph.

A variant is a score per edge plus a normalizer over each target's incoming
edges (graphattn.variants). GAT (Velickovic et al., 2018) scores an edge
j -> i with a learned vector per head, ``LeakyReLU(a_dst . q_i + a_src . k_j)``,
and normalizes with softmax. The script compares it with the built-in
variants on one causal graph, printing each target's total weight: 1 for the
softmax and linear normalizers, free for sigmoid attention.

Run: PYTHONPATH=. python examples/variants.py
"""

import torch
import torch.nn.functional as F

from graphattn import TokenGraph
from graphattn.variants import (
    COSINE,
    DOT_PRODUCT,
    LINEAR,
    SIGMOID,
    AttentionVariant,
    softmax,
    variant_attention,
)


def gat(a_dst: torch.Tensor, a_src: torch.Tensor, slope: float = 0.2) -> AttentionVariant:
    """GAT-style additive attention with per-head vectors ``a_dst, a_src (H, D)``."""

    def score(q_i, k_j, edges):  # q_i, k_j: (B, E, H, D)
        return F.leaky_relu((q_i * a_dst).sum(-1) + (k_j * a_src).sum(-1), slope)  # (B, E, H)

    return AttentionVariant("gat", score, softmax)


def main() -> None:
    torch.manual_seed(0)
    n, h, d = 6, 2, 8
    graph = TokenGraph.from_tokens("the cat sat on the mat", "causal")
    q, k, v = (torch.randn(n, h, d) for _ in range(3))
    a_dst, a_src = torch.randn(h, d, requires_grad=True), torch.randn(h, d, requires_grad=True)

    for variant in (DOT_PRODUCT, COSINE, SIGMOID, LINEAR, gat(a_dst, a_src)):
        out, w = variant_attention(q, k, v, graph, variant, return_weights=True)
        per_target = torch.zeros(n, h).index_add(0, graph.dst, w.float())  # (N, H)
        totals = [round(x, 3) for x in per_target[:, 0].tolist()]
        print(f"{variant.name:>18}: out {tuple(out.shape)}, total weight per target {totals}")

    out = variant_attention(q, k, v, graph, gat(a_dst, a_src))
    out.square().mean().backward()  # the GAT vectors are learnable through the graph
    print("grad of a_dst:", a_dst.grad.norm().item() > 0)


if __name__ == "__main__":
    main()
