"""Reproduce torch.nn.MultiheadAttention with graphattn.

A causal mask is a graph: token i attends to token j <= i, i.e. the edges
j -> i. ``GraphAttention.from_torch`` copies the weights of an
``nn.MultiheadAttention``; both modules then compute the same outputs and the
same attention weights (graphattn returns them per edge).

Note the mask conventions: ``TokenGraph.to_dense_mask()`` is True where a
token MAY attend (like ``scaled_dot_product_attention``), while
``nn.MultiheadAttention``'s boolean ``attn_mask`` is True where attention is
BLOCKED, hence the ``~``.

Run: PYTHONPATH=. python examples/mha_equivalence.py
"""

import torch
from torch import nn

from graphattn import TokenGraph
from graphattn.nn import GraphAttention


def main() -> None:
    torch.manual_seed(0)
    batch, n, embed_dim, num_heads = 2, 6, 16, 4
    mha = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True).eval()
    attn = GraphAttention.from_torch(mha)

    causal = TokenGraph.from_dense_mask(torch.ones(n, n, dtype=torch.bool).tril())
    print(causal.to_string())

    x = torch.randn(batch, n, embed_dim)
    ref, ref_weights = mha(
        x, x, x, attn_mask=~causal.to_dense_mask(), average_attn_weights=False
    )  # ref_weights: (B, H, N, M), dense
    out, weights = attn(x, causal, need_weights=True)  # weights: (B, E, H), per edge

    dense_at_edges = ref_weights[:, :, causal.dst, causal.src].transpose(1, 2)  # (B, E, H)
    print(f"edges: {causal.num_edges} of {n * n} pairs")
    print(f"outputs: max |difference| = {(out - ref).abs().max().item():.2e}")
    print(f"weights: max |difference| = {(weights - dense_at_edges).abs().max().item():.2e}")
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(weights, dense_at_edges)


if __name__ == "__main__":
    main()
