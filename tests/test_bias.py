"""Bias helpers: ALiBi, relative-position tables and T5 buckets, against dense formulas."""

import math

import pytest
import torch
import torch.nn.functional as F

from graphattn import graph_attention
from graphattn.bias import (
    ALiBi,
    T5RelativePositionBias,
    alibi,
    alibi_slopes,
    relative_position_bias,
    t5_bucket,
)
from graphattn.graph import TokenGraph


def causal(n):
    return TokenGraph.from_dense_mask(torch.ones(n, n, dtype=torch.bool).tril())


def qkv(n, h, d, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(1, n, h, d, generator=gen, dtype=torch.float64) for _ in range(3)]


def sdpa(q, k, v, float_mask):
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=float_mask
    )
    return out.transpose(1, 2)


def test_alibi_slopes_follow_the_paper():
    assert alibi_slopes(8).tolist() == [2.0 ** -(k + 1) for k in range(8)]
    # 6 heads: the 4 slopes of H=4, then every other slope of H=8
    assert alibi_slopes(6).tolist() == [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3]
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="num_heads"):
            alibi_slopes(bad)


def test_alibi_equals_the_dense_causal_alibi_mask():
    n, h = 7, 4
    q, k, v = qkv(n, h, 8)
    i = torch.arange(n)
    dense = -(i.view(-1, 1) - i.view(1, -1)).double() * alibi_slopes(h).double().view(h, 1, 1)
    dense = dense.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), -math.inf)  # (H, N, N)
    for backend in ("reference", "edge", "dense"):
        out = graph_attention(q, k, v, causal(n), bias=alibi(h), backend=backend)
        torch.testing.assert_close(out, sdpa(q, k, v, dense))
    assert isinstance(alibi(h), ALiBi)


def test_relative_position_table_is_learned_through_attention():
    n, h, radius = 6, 2, 2
    q, k, v = qkv(n, h, 4, seed=1)
    table = torch.randn(2 * radius + 1, h, dtype=torch.float64, requires_grad=True)
    out = graph_attention(q, k, v, causal(n), bias=relative_position_bias(table))
    i = torch.arange(n)
    rel = (i.view(1, -1) - i.view(-1, 1)).clamp(-radius, radius) + radius  # (N, N) j - i
    dense = table[rel].permute(2, 0, 1)  # (H, N, N)
    dense = dense.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), -math.inf)
    ref = sdpa(q, k, v, dense)
    torch.testing.assert_close(out, ref)
    cot = torch.randn_like(out)
    (g1,) = torch.autograd.grad((out * cot).sum(), table)
    (g2,) = torch.autograd.grad((ref * cot).sum(), table)
    torch.testing.assert_close(g1, g2)
    assert g1[radius + 1:].abs().sum() == 0  # j > i never occurs in a causal graph


def test_relative_position_function_and_errors():
    bias = relative_position_bias(lambda rel: rel.double())
    assert bias(torch.tensor([0, 4]), torch.tensor([3, 1])).tolist() == [-3.0, 3.0]
    with pytest.raises(ValueError, match=r"\(2R \+ 1,\)"):
        relative_position_bias(torch.zeros(4))
    with pytest.raises(ValueError, match=r"\(2R \+ 1,\)"):
        relative_position_bias(torch.zeros(3, 2, 2))
    with pytest.raises(TypeError, match="floating-point"):
        relative_position_bias(torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="tensor or a callable"):
        relative_position_bias([0.0, 1.0, 2.0])


def test_t5_buckets_match_transformers():
    t5 = pytest.importorskip("transformers.models.t5.modeling_t5")
    rel = torch.arange(-300, 300)
    for bidirectional in (True, False):
        for num_buckets, max_distance in ((32, 128), (16, 64)):
            ours = t5_bucket(rel, bidirectional=bidirectional, num_buckets=num_buckets,
                             max_distance=max_distance)
            theirs = t5.T5Attention._relative_position_bucket(
                rel, bidirectional=bidirectional, num_buckets=num_buckets,
                max_distance=max_distance,
            )
            assert torch.equal(ours, theirs)


def test_t5_bias_looks_up_the_bucket_of_each_edge():
    table = torch.randn(32, 3, dtype=torch.float64)
    g = causal(40)
    bias = T5RelativePositionBias(table, bidirectional=False)(g.src, g.dst)  # (E, 3)
    expected = table[t5_bucket(g.src - g.dst, bidirectional=False)]
    torch.testing.assert_close(bias, expected)
    q, k, v = qkv(40, 3, 4, seed=2)
    out = graph_attention(q, k, v, g, bias=T5RelativePositionBias(table, bidirectional=False))
    torch.testing.assert_close(out, graph_attention(q, k, v, g, bias=expected))
