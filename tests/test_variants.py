"""Attention variants and linear attention against their dense formulas."""

import math

import pytest
import torch
import torch.nn.functional as F

from graphattn import graph_attention
from graphattn.graph import TokenGraph
from graphattn.linear import graph_linear_attention
from graphattn.variants import (
    COSINE,
    DOT_PRODUCT,
    LINEAR,
    SIGMOID,
    AttentionVariant,
    cosine,
    dot_product_score,
    elu_feature_map,
    sigmoid_attention,
    variant_attention,
)

F64 = torch.float64


def qkv(b, n, m, h, d, dv, seed=0, h_kv=None):
    gen = torch.Generator().manual_seed(seed)
    h_kv = h if h_kv is None else h_kv
    shapes = ((b, n, h, d), (b, m, h_kv, d), (b, m, h_kv, dv))
    return [torch.randn(*s, generator=gen, dtype=F64).requires_grad_() for s in shapes]


def random_mask(n, m, seed, empty=()):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, m, generator=gen) < 0.5
    mask[torch.arange(n), torch.randint(m, (n,), generator=gen)] = True
    mask[list(empty)] = False
    return mask


def dense_out(weights, v):
    """``weights (B, H, N, M)`` times node-major ``v (B, M, H, Dv)`` -> ``(B, N, H, Dv)``."""
    return torch.einsum("bhnm,bmhd->bnhd", weights, v)


def assert_same(out, ref, inputs):
    torch.testing.assert_close(out, ref)
    cot = torch.randn(out.shape, generator=torch.Generator().manual_seed(9), dtype=out.dtype)
    mine = torch.autograd.grad((out * cot).sum(), inputs)
    theirs = torch.autograd.grad((ref * cot).sum(), inputs)
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a, b)


def test_dot_product_on_the_edge_path_equals_graph_attention():
    plain = AttentionVariant("dot", dot_product_score)  # no fast path: the generic edge path
    mask = random_mask(7, 9, 0, empty=[3])
    g = TokenGraph.from_dense_mask(mask)
    q, k, v = qkv(2, 7, 9, 2, 4, 3)
    out, w = variant_attention(q, k, v, g, plain, scale=0.3, return_weights=True)
    ref, w_ref = graph_attention(q, k, v, g, scale=0.3, return_weights=True, backend="reference")
    torch.testing.assert_close(w, w_ref)
    assert_same(out, ref, (q, k, v))
    fast = variant_attention(q, k, v, g, DOT_PRODUCT, scale=0.3)
    torch.testing.assert_close(fast, ref)


def test_cosine_attention_equals_dense_formula():
    mask = random_mask(6, 6, 1)
    g = TokenGraph.from_dense_mask(mask)
    q, k, v = qkv(1, 6, 6, 2, 4, 4, seed=1)
    out = variant_attention(q, k, v, g, cosine(7.0))
    qn, kn = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    score = torch.einsum("bnhd,bmhd->bhnm", qn, kn) * 7.0  # (B, H, N, M)
    ref = dense_out(torch.softmax(score.masked_fill(~mask, -math.inf), -1), v)
    assert_same(out, ref, (q, k, v))
    assert COSINE.name == "cosine(tau=10.0)"
    with pytest.raises(ValueError, match="tau must be a positive number"):
        cosine(0.0)


def test_sigmoid_attention_equals_dense_formula():
    mask = random_mask(6, 5, 2, empty=[0])
    g = TokenGraph.from_dense_mask(mask)
    q, k, v = qkv(2, 6, 5, 2, 4, 3, seed=2)
    out, w = variant_attention(q, k, v, g, SIGMOID, return_weights=True)
    score = torch.einsum("bnhd,bmhd->bhnm", q, k) / 2.0  # (B, H, N, M), scale 1/sqrt(4)
    offset = -mask.sum(1).clamp_min(1).double().log().view(-1, 1)  # (N, 1) -log in-degree
    ref = dense_out(torch.sigmoid(score + offset) * mask, v)
    assert_same(out, ref, (q, k, v))
    assert torch.equal(out[:, 0], torch.zeros_like(out[:, 0]))
    fixed = variant_attention(q, k, v, g, sigmoid_attention(-1.0))
    torch.testing.assert_close(fixed, dense_out(torch.sigmoid(score - 1.0) * mask, v))
    assert w.shape == (2, g.num_edges, 2)


def test_linear_attention_on_the_full_graph_equals_the_kernel_formula():
    n = 8
    g = TokenGraph.from_dense_mask(torch.ones(n, n, dtype=torch.bool))
    q, k, v = qkv(2, n, n, 2, 4, 3, seed=3)
    out = graph_linear_attention(q, k, v, g)
    fq, fk = elu_feature_map(q), elu_feature_map(k)  # (B, N, H, D)
    kv = torch.einsum("bmhd,bmhe->bhde", fk, v)  # (B, H, D, Dv)
    num = torch.einsum("bnhd,bhde->bnhe", fq, kv)  # (B, N, H, Dv)
    den = torch.einsum("bnhd,bhd->bnh", fq, fk.sum(1)).unsqueeze(-1)  # (B, N, H, 1)
    assert_same(out, num / den, (q, k, v))


def test_causal_linear_attention_equals_prefix_sums_and_weights_sum_to_one():
    n = 9
    g = TokenGraph.from_dense_mask(torch.ones(n, n, dtype=torch.bool).tril())
    q, k, v = qkv(1, n, n, 3, 4, 2, seed=4)
    out, w = graph_linear_attention(q[0], k[0], v[0], g, return_weights=True)
    fq, fk = elu_feature_map(q[0]), elu_feature_map(k[0])  # (N, H, D)
    kv = torch.einsum("nhd,nhe->nhde", fk, v[0]).cumsum(0)  # (N, H, D, Dv) prefix sums
    num = torch.einsum("nhd,nhde->nhe", fq, kv)
    den = (fq * fk.cumsum(0)).sum(-1, keepdim=True)  # (N, H, 1)
    assert_same(out, num / den, (q, k, v))
    sums = torch.zeros(n, 3, dtype=F64).index_add(0, g.dst, w)
    torch.testing.assert_close(sums, torch.ones_like(sums))
    assert LINEAR.name == "linear(elu+1)"


def test_variants_give_zero_to_isolated_targets_and_no_nan_gradients():
    mask = random_mask(6, 6, 5, empty=[2, 4])
    g = TokenGraph.from_dense_mask(mask)
    for variant in (COSINE, SIGMOID, LINEAR, AttentionVariant("dot", dot_product_score)):
        q, k, v = qkv(1, 6, 6, 2, 3, 3, seed=5)
        out = variant_attention(q, k, v, g, variant)
        assert torch.equal(out[:, [2, 4]], torch.zeros_like(out[:, [2, 4]])), variant.name
        for gr in torch.autograd.grad(out.sum(), (q, k, v)):
            assert torch.isfinite(gr).all(), variant.name


def test_gradcheck_float64_cosine_and_linear():
    g = TokenGraph.from_dense_mask(random_mask(4, 5, 6))
    q, k, v = qkv(1, 4, 5, 2, 3, 2, seed=6)
    for variant in (COSINE, LINEAR):
        f = lambda q, k, v, variant=variant: variant_attention(q, k, v, g, variant)  # noqa: E731
        assert torch.autograd.gradcheck(f, (q, k, v))


def test_edge_features_reach_the_score_function_and_gqa_works():
    g = TokenGraph.from_dense_mask(random_mask(5, 5, 7))
    attr = torch.randn(g.num_edges, 3, dtype=F64)
    proj = torch.randn(3, 4, dtype=F64)  # F -> H

    def score(q_i, k_j, edges):
        return dot_product_score(q_i, k_j, edges) + edges.attr @ proj  # (B, E, H)

    with_features = AttentionVariant("dot+edge features", score)
    q, k, v = qkv(2, 5, 5, 4, 3, 3, seed=7, h_kv=2)
    out = variant_attention(q, k, v, g, with_features, edge_attr=attr)
    ref = graph_attention(q, k, v, g, bias=attr @ proj)
    torch.testing.assert_close(out, ref)


def test_variant_errors():
    g = TokenGraph.from_dense_mask(random_mask(4, 4, 8))
    q, k, v = (t.detach() for t in qkv(1, 4, 4, 2, 3, 3, seed=8))
    with pytest.raises(TypeError, match="variant must be an AttentionVariant"):
        variant_attention(q, k, v, g, "softmax")
    with pytest.raises(TypeError, match="single TokenGraph"):
        variant_attention(q, k, v, [g, g], COSINE)
    with pytest.raises(ValueError, match="edge_attr must have shape"):
        variant_attention(q, k, v, g, COSINE, edge_attr=torch.zeros(g.num_edges + 1, 2))
    with pytest.raises(TypeError, match="edge_attr must be a tensor"):
        variant_attention(q, k, v, g, COSINE, edge_attr=[0.0])
    broken = AttentionVariant("broken", lambda q_i, k_j, edges: q_i.sum(-1, keepdim=True))
    with pytest.raises(ValueError, match=r"'broken': score must return \(B, E, H\)"):
        variant_attention(q, k, v, g, broken)
    with pytest.raises(ValueError, match="k/v have M=3"):
        variant_attention(q, k[:, :3], v[:, :3], g, COSINE)


def test_chunked_variant_runs_equal_one_run_in_values_and_gradients():
    mask = random_mask(12, 12, 10, empty=[0, 7])
    g = TokenGraph.from_dense_mask(mask)
    q, k, v = qkv(2, 12, 12, 2, 3, 3, seed=10)
    attr = torch.randn(g.num_edges, 2, dtype=F64)
    proj = torch.randn(2, 2, dtype=F64, requires_grad=True)

    def score(q_i, k_j, edges):
        return F.cosine_similarity(q_i, k_j, dim=-1) * 5 + edges.attr @ proj  # (B, E, H)

    variant = AttentionVariant("cos+attr", score)
    whole, w_whole = variant_attention(q, k, v, g, variant, edge_attr=attr, return_weights=True)
    parts, w_parts = variant_attention(q, k, v, g, variant, edge_attr=attr, return_weights=True,
                                       chunk_elements=40)  # several runs, checkpointed
    torch.testing.assert_close(parts, whole)
    torch.testing.assert_close(w_parts, w_whole)
    inputs = (q, k, v, proj)
    a = torch.autograd.grad(parts.square().sum() + w_parts.sum(), inputs)
    b = torch.autograd.grad(whole.square().sum() + w_whole.sum(), inputs)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y)
    assert torch.equal(parts[:, [0, 7]], torch.zeros_like(parts[:, [0, 7]]))
