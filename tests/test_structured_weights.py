"""Returned weights of full and causal graphs, row by row (graphattn.backends.structured).

Oracle: the reference backend's weights and the dense softmax, on graphs and
chunk sizes that put several rows in a batch, one row per batch, rows wider
than the block backend's chunk (sliced tiles), and logits large enough that
the fused float32 log-sum-exp is refused (the exact two-step subtraction).
"""

import pytest
import torch

from graphattn import TokenGraph, graph_attention, patterns
from graphattn.backends import KernelCall
from graphattn.backends.block import block_attention
from graphattn.backends.structured import structured_weights


def qkv(b, n, m, h, d, seed, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(b, n, h, d, generator=gen) * scale
    k, v = (torch.randn(b, m, h, d, generator=gen) for _ in range(2))
    return q, k, v


@pytest.mark.parametrize("pattern", ["causal", "full"])
@pytest.mark.parametrize("chunk", [1, 37, 4 * 64 * 64 * 3, 2**22])
@pytest.mark.parametrize("logits", [1.0, 40.0])  # 40: |lse| > FUSED_MAX_LSE, exact path
def test_block_weights_of_full_and_causal_graphs_equal_the_reference(pattern, chunk, logits):
    """Against the reference backend in float64: float32 rounds scores of ~100 to ~1e-5."""
    g = patterns.get(pattern, 150)
    q, k, v = qkv(2, 150, 150, 3, 8, seed=1, scale=logits)
    call = KernelCall(q, k, v, g, scale=0.35, return_weights=True)
    out, w = block_attention(call, block_size=16, chunk_elements=chunk)
    ref_out, ref_w = graph_attention(*(x.double() for x in (q, k, v)), g, scale=0.35,
                                     backend="reference", return_weights=True)  # fmt: skip
    tol = {"rtol": 1e-5, "atol": 2e-6} if logits == 1.0 else {"rtol": 1e-4, "atol": 5e-5}
    torch.testing.assert_close(out, ref_out.float(), **tol)
    torch.testing.assert_close(w, ref_w.float(), **tol)


@pytest.mark.parametrize("pattern", ["causal", "full"])
def test_weights_are_the_dense_softmax_in_edge_order_in_float64(pattern):
    g = patterns.get(pattern, 70)
    q, k, v = (x.double() for x in qkv(1, 70, 70, 2, 4, seed=2))
    _, w = block_attention(KernelCall(q, k, v, g, scale=0.5, return_weights=True),
                           chunk_elements=300)  # fmt: skip
    scores = torch.einsum("bnhd,bmhd->bhnm", q, k) * 0.5
    scores = scores.masked_fill(~g.to_dense_mask(), float("-inf"))
    dense = scores.softmax(-1)  # (B, H, N, M)
    expected = dense[:, :, g.dst, g.src].transpose(1, 2)  # (B, E, H)
    torch.testing.assert_close(w, expected, rtol=1e-12, atol=1e-14)


def test_a_cross_full_graph_uses_every_source():
    g = TokenGraph.from_dense_mask(torch.ones(5, 9, dtype=torch.bool))
    q, k, v = qkv(1, 5, 9, 2, 4, seed=3)
    _, w = block_attention(KernelCall(q, k, v, g, scale=0.5, return_weights=True))
    _, ref = graph_attention(q, k, v, g, scale=0.5, backend="reference", return_weights=True)
    torch.testing.assert_close(w, ref, rtol=1e-5, atol=1e-7)


def test_structured_weights_from_a_folded_lse():
    """``[q * scale, -lse] . [k, 1]``: the weights are the row softmax in edge order."""
    gen = torch.Generator().manual_seed(4)
    q, k = torch.randn(6, 2, 3, generator=gen), torch.randn(6, 2, 3, generator=gen)
    s = torch.einsum("nhd,mhd->hnm", q, k)  # (BH, N, M)
    lse = s.masked_fill(torch.ones(6, 6).triu(1).bool(), -torch.inf).logsumexp(-1)  # (BH, N)
    qp = torch.cat([q, -lse.t().unsqueeze(-1)], -1)  # (N, BH, D + 1)
    kp = torch.cat([k, torch.ones(6, 2, 1)], -1)
    w = structured_weights(qp, kp, (6, 6), True, 5)
    rows, cols = torch.tril_indices(6, 6)
    torch.testing.assert_close(w, (s[:, rows, cols] - lse[:, rows]).exp())
