"""graph_attention against PyTorch's dense attention: values, gradients and weights."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from graphattn import graph_attention
from graphattn.backends import (
    AttentionRequest,
    auto_selector,
    backend_names,
    get_backend,
    register_backend,
    register_selector,
    select_backend,
    unregister_backend,
)
from graphattn.backends.base import dropout_keep
from graphattn.functional import HEAD_MAJOR_GRAPHS
from graphattn.graph import TokenGraph

BACKENDS = ["reference", "edge", "dense"]
DTYPES = [torch.float32, torch.float64]


def tol(dtype):
    return {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 1e-10, "rtol": 1e-9}


def sdpa(q, k, v, mask=None, is_causal=False, scale=None):
    """Torch SDPA on node-major (B, N, H, D) tensors; ``mask`` is bool (N, M), True = attend."""
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
        attn_mask=mask, is_causal=is_causal, scale=scale,
    )
    return out.transpose(1, 2)  # (B, N, H, Dv)


def qkv(b, n, m, h, d, dv, dtype, seed=0, h_kv=None):
    gen = torch.Generator().manual_seed(seed)
    h_kv = h if h_kv is None else h_kv
    q = torch.randn(b, n, h, d, generator=gen, dtype=dtype).requires_grad_()
    k = torch.randn(b, m, h_kv, d, generator=gen, dtype=dtype).requires_grad_()
    v = torch.randn(b, m, h_kv, dv, generator=gen, dtype=dtype).requires_grad_()
    return q, k, v


def grads(out, inputs, seed=1):
    """Gradients of a random linear function of ``out`` w.r.t. ``inputs``."""
    cot = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return torch.autograd.grad((out * cot).sum(), inputs)


def random_mask(n, m, p, seed, every_row=True):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, m, generator=gen) < p
    if every_row:
        mask[torch.arange(n), torch.randint(m, (n,), generator=gen)] = True
    return mask


def check_against(out, ref, inputs, dtype):
    torch.testing.assert_close(out, ref, **tol(dtype))
    for g, r in zip(grads(out, inputs), grads(ref, inputs), strict=True):
        torch.testing.assert_close(g, r, **tol(dtype))


# ------------------------------------------------------------ dense oracles
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_full_graph_equals_sdpa_without_mask(backend, dtype):
    q, k, v = qkv(2, 9, 9, 3, 8, 5, dtype)
    g = TokenGraph.from_dense_mask(torch.ones(9, 9, dtype=torch.bool))
    out = graph_attention(q, k, v, g, backend=backend)
    check_against(out, sdpa(q, k, v), (q, k, v), dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_causal_graph_equals_sdpa_is_causal(backend, dtype):
    q, k, v = qkv(2, 11, 11, 2, 4, 6, dtype, seed=3)
    g = TokenGraph.from_dense_mask(torch.ones(11, 11, dtype=torch.bool).tril())
    out = graph_attention(q, k, v, g, backend=backend)
    check_against(out, sdpa(q, k, v, is_causal=True), (q, k, v), dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_random_graph_equals_sdpa_with_dense_mask(backend, dtype, seed):
    q, k, v = qkv(2, 13, 13, 2, 4, 3, dtype, seed=seed)
    g = TokenGraph.from_dense_mask(random_mask(13, 13, 0.3, seed))
    out = graph_attention(q, k, v, g, backend=backend, scale=0.7)
    check_against(out, sdpa(q, k, v, g.to_dense_mask(), scale=0.7), (q, k, v), dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_graph_equals_sdpa(backend, dtype):
    q, k, v = qkv(2, 6, 10, 2, 4, 7, dtype, seed=4)
    g = TokenGraph.from_dense_mask(random_mask(6, 10, 0.4, 4))
    assert g.is_cross
    out = graph_attention(q, k, v, g, backend=backend)
    check_against(out, sdpa(q, k, v, g.to_dense_mask()), (q, k, v), dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_weights_equal_dense_softmax_at_the_edges(backend, dtype):
    q, k, v = qkv(2, 8, 8, 3, 4, 4, dtype, seed=5)
    mask = random_mask(8, 8, 0.5, 5)
    g = TokenGraph.from_dense_mask(mask)
    _, w = graph_attention(q, k, v, g, backend=backend, return_weights=True)
    score = torch.einsum("bnhd,bmhd->bhnm", q, k) / 2.0  # (B, H, N, M), scale 1/sqrt(4)
    probs = torch.softmax(score.masked_fill(~mask, -math.inf), -1)  # (B, H, N, M)
    expected = probs[:, :, g.dst, g.src].transpose(1, 2)  # (B, E, H)
    assert w.dtype == dtype and w.shape == (2, g.num_edges, 3)
    torch.testing.assert_close(w, expected, **tol(dtype))
    # gradients through the returned weights match the dense softmax's
    for a, b in zip(grads(w, (q, k)), grads(expected, (q, k)), strict=True):
        torch.testing.assert_close(a, b, **tol(dtype))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_grouped_query_attention_equals_sdpa_with_repeated_heads(backend, dtype):
    q, k, v = qkv(2, 7, 7, 6, 4, 4, dtype, seed=6, h_kv=2)
    mask = random_mask(7, 7, 0.5, 6)
    g = TokenGraph.from_dense_mask(mask)
    out = graph_attention(q, k, v, g, backend=backend)
    ref = sdpa(q, k.repeat_interleave(3, dim=2), v.repeat_interleave(3, dim=2), mask)
    check_against(out, ref, (q, k, v), dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unbatched_inputs_give_unbatched_outputs(backend):
    q, k, v = qkv(1, 5, 5, 2, 4, 3, torch.float64, seed=7)
    g = TokenGraph.from_dense_mask(random_mask(5, 5, 0.5, 7))
    out, w = graph_attention(q[0], k[0], v[0], g, backend=backend, return_weights=True)
    out_b, w_b = graph_attention(q, k, v, g, backend=backend, return_weights=True)
    assert out.shape == (5, 2, 3) and w.shape == (g.num_edges, 2)
    torch.testing.assert_close(out, out_b[0])
    torch.testing.assert_close(w, w_b[0])


def test_batched_graph_equals_separate_graphs():
    """Different graphs in one batch: TokenGraph.batch over concatenated tokens."""
    ga = TokenGraph.from_dense_mask(random_mask(4, 4, 0.5, 8))
    gb = TokenGraph.from_dense_mask(random_mask(6, 6, 0.5, 9))
    q, k, v = qkv(1, 10, 10, 2, 4, 4, torch.float64, seed=8)
    out = graph_attention(q, k, v, TokenGraph.batch([ga, gb]))
    torch.testing.assert_close(out[:, :4], graph_attention(q[:, :4], k[:, :4], v[:, :4], ga))
    torch.testing.assert_close(out[:, 4:], graph_attention(q[:, 4:], k[:, 4:], v[:, 4:], gb))


# ---------------------------------------------------------------- isolated
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_isolated_targets_are_exact_zeros_without_nan(backend, dtype):
    mask = random_mask(9, 9, 0.4, 10)
    empty = torch.tensor([2, 5])
    mask[empty] = False
    g = TokenGraph.from_dense_mask(mask)
    q, k, v = qkv(2, 9, 9, 2, 4, 4, dtype, seed=10)
    out, w = graph_attention(q, k, v, g, backend=backend, return_weights=True)
    assert torch.equal(out[:, empty], torch.zeros_like(out[:, empty]))
    assert w.shape[1] == g.num_edges and not torch.isin(g.dst, empty).any()
    gq, gk, gv = grads(out, (q, k, v))
    assert torch.isfinite(torch.cat([gq.flatten(), gk.flatten(), gv.flatten()])).all()
    assert torch.equal(gq[:, empty], torch.zeros_like(gq[:, empty]))
    # the other rows are SDPA's on the rows that have edges
    rows = torch.tensor([i for i in range(9) if i not in empty.tolist()])
    ref = sdpa(q[:, rows], k, v, mask[rows])
    torch.testing.assert_close(out[:, rows], ref, **tol(dtype))


@pytest.mark.parametrize("backend", BACKENDS)
def test_graph_without_edges_gives_zeros(backend):
    g = TokenGraph(torch.zeros(2, 0, dtype=torch.long), 4)
    q, k, v = qkv(1, 4, 4, 2, 3, 3, torch.float64)
    out, w = graph_attention(q, k, v, g, backend=backend, return_weights=True)
    assert torch.equal(out, torch.zeros_like(out)) and w.shape == (1, 0, 2)
    (gq,) = torch.autograd.grad(out.sum(), (q,), allow_unused=True, materialize_grads=True)
    assert torch.equal(gq, torch.zeros_like(gq))


# -------------------------------------------------------------------- bias
def dense_bias(g, bias_ebh, b, h):
    """A float SDPA mask (B, H, N, M): the per-edge bias at edges, -inf elsewhere."""
    full = torch.full((b, h, g.num_nodes, g.num_src_nodes), -math.inf, dtype=bias_ebh.dtype)
    full[:, :, g.dst, g.src] = bias_ebh.transpose(1, 2)
    return full


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", ["E", "EH", "BEH", "callable"])
def test_bias_equals_sdpa_float_mask(backend, shape):
    dtype = torch.float64
    mask = random_mask(7, 7, 0.5, 11)
    g = TokenGraph.from_dense_mask(mask)
    q, k, v = qkv(2, 7, 7, 3, 4, 4, dtype, seed=11)
    e = g.num_edges
    gen = torch.Generator().manual_seed(12)
    base = {
        "E": torch.randn(e, generator=gen, dtype=dtype),
        "EH": torch.randn(e, 3, generator=gen, dtype=dtype),
        "BEH": torch.randn(2, e, 3, generator=gen, dtype=dtype),
        "callable": None,
    }[shape]
    if shape == "callable":
        slopes = torch.tensor([0.5, 0.25, 0.125], dtype=dtype, requires_grad=True)

        def bias(src, dst):
            return -(dst - src).abs().to(dtype).unsqueeze(-1) * slopes  # (E, H)

        full = (-(g.dst - g.src).abs().to(dtype).unsqueeze(-1) * slopes).expand(2, e, 3)
        leaf = slopes
    else:
        leaf = base.requires_grad_()
        bias = leaf
        full = leaf.reshape(-1, e, 1) if shape == "E" else leaf
        full = full.expand(2, e, 3)
    out = graph_attention(q, k, v, g, backend=backend, bias=bias)
    ref = sdpa(q, k, v, dense_bias(g, full, 2, 3))
    check_against(out, ref, (q, k, v, leaf), dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_minus_inf_bias_on_a_target_is_no_edges(backend):
    mask = random_mask(6, 6, 0.6, 13)
    g = TokenGraph.from_dense_mask(mask)
    q, k, v = qkv(1, 6, 6, 2, 4, 4, torch.float64, seed=13)
    bias = torch.zeros(g.num_edges, dtype=torch.float64)
    bias[g.dst == 3] = -math.inf
    bias[torch.nonzero(g.dst == 4)[0]] = -math.inf  # one edge of target 4 removed
    bias.requires_grad_()
    out, w = graph_attention(q, k, v, g, bias=bias, backend=backend, return_weights=True)
    minus = g - TokenGraph(g.edge_index[:, bias.detach() == -math.inf], 6)
    out2, w2 = graph_attention(q, k, v, minus, backend=backend, return_weights=True)
    torch.testing.assert_close(out, out2)
    assert torch.equal(out[:, 3], torch.zeros_like(out[:, 3]))
    removed = bias.detach() == -math.inf  # (E,)
    assert torch.equal(w[:, removed], torch.zeros(1, int(removed.sum()), 2, dtype=torch.float64))
    torch.testing.assert_close(w[:, ~removed], w2)
    for gr in grads(out, (q, k, v, bias)):
        assert torch.isfinite(gr).all()


# ---------------------------------------------------------------- gradcheck
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_float64(backend):
    mask = random_mask(5, 6, 0.5, 14)
    mask[1] = False
    g = TokenGraph.from_dense_mask(mask)
    q, k, v = qkv(2, 5, 6, 2, 3, 2, torch.float64, seed=14)
    bias = torch.randn(g.num_edges, 2, dtype=torch.float64, requires_grad=True)

    def f(q, k, v, bias):
        return graph_attention(q, k, v, g, bias=bias, backend=backend, return_weights=True)

    # the full Jacobian for the plain reference; random projections (fast mode) for the
    # kernels with many small sparse calls per evaluation
    assert torch.autograd.gradcheck(f, (q, k, v, bias), fast_mode=backend != "reference")


# --------------------------------------------------------------- per head
@pytest.mark.parametrize("backend", BACKENDS)
def test_per_head_graphs_equal_one_head_at_a_time(backend):
    graphs = [TokenGraph.from_dense_mask(random_mask(6, 6, 0.4, s)) for s in (15, 16, 17)]
    q, k, v = qkv(2, 6, 6, 3, 4, 5, torch.float64, seed=15)
    bias = [torch.randn(g.num_edges, dtype=torch.float64) for g in graphs]
    out, ws = graph_attention(q, k, v, graphs, bias=bias, backend=backend, return_weights=True)
    assert out.shape == (2, 6, 3, 5) and len(ws) == 3
    for h, g in enumerate(graphs):
        sl = slice(h, h + 1)
        ref, w = graph_attention(
            q[:, :, sl], k[:, :, sl], v[:, :, sl], g, bias=bias[h], return_weights=True
        )
        torch.testing.assert_close(out[:, :, sl], ref)
        assert ws[h].shape == (2, g.num_edges)
        torch.testing.assert_close(ws[h], w[..., 0])
    # the gradient flows back to every head's inputs like in the dense formulation
    dense = torch.stack([g.to_dense_mask() for g in graphs])  # (H, N, M)
    ref = sdpa(q, k, v, dense_bias_per_head(graphs, bias, 2))
    check_against(out, ref, (q, k, v), torch.float64)
    assert dense.shape == (3, 6, 6)


def dense_bias_per_head(graphs, bias, b):
    h = len(graphs)
    full = torch.full((b, h, 6, 6), -math.inf, dtype=torch.float64)
    for i, (g, bi) in enumerate(zip(graphs, bias, strict=True)):
        full[:, i, g.dst, g.src] = bi
    return full


def test_per_head_graphs_with_callable_bias_and_unbatched_weights():
    graphs = [TokenGraph.from_dense_mask(random_mask(5, 5, 0.5, s)) for s in (18, 19)]
    q, k, v = qkv(1, 5, 5, 2, 4, 4, torch.float64, seed=18)

    def bias(src, dst):
        return torch.stack([-(dst - src).abs(), (dst - src).abs()], -1).double()  # (E, 2)

    out, ws = graph_attention(q[0], k[0], v[0], graphs, bias=bias, return_weights=True)
    assert ws[0].shape == (graphs[0].num_edges,)
    for h, g in enumerate(graphs):
        b = bias(g.src, g.dst)[:, h]
        ref = graph_attention(q[0, :, h:h + 1], k[0, :, h:h + 1], v[0, :, h:h + 1], g, bias=b)
        torch.testing.assert_close(out[:, h:h + 1], ref)


# ------------------------------------------------------------ low precision
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_keeps_dtype_and_matches_float32(backend, dtype):
    mask = random_mask(10, 10, 0.4, 20)
    mask[4] = False
    g = TokenGraph.from_dense_mask(mask)
    q, k, v = (t.detach().to(dtype).requires_grad_() for t in qkv(2, 10, 10, 2, 8, 8,
                                                                   torch.float32, seed=20))
    out, w = graph_attention(q, k, v, g, backend=backend, return_weights=True)
    assert out.dtype == dtype and w.dtype == torch.float32
    ref, w_ref = graph_attention(
        *(t.detach().float() for t in (q, k, v)), g, backend="reference", return_weights=True
    )
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(w, w_ref, atol=1e-2, rtol=1e-2)
    gq, gk, gv = torch.autograd.grad(out.float().sum(), (q, k, v))
    assert gq.dtype == dtype and all(torch.isfinite(x.float()).all() for x in (gq, gk, gv))


# ----------------------------------------------------------------- dropout
@pytest.mark.parametrize("backend", ["reference", "edge"])
def test_dropout_uses_the_generator_and_returns_pre_dropout_weights(backend):
    g = TokenGraph.from_dense_mask(random_mask(8, 8, 0.5, 21))
    q, k, v = qkv(2, 8, 8, 2, 4, 4, torch.float64, seed=21)

    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        return graph_attention(q, k, v, g, dropout_p=0.3, generator=gen, backend=backend,
                               return_weights=True)

    (out1, w1), (out2, _), (out3, _) = run(0), run(0), run(1)
    torch.testing.assert_close(out1, out2, rtol=0, atol=0)
    assert not torch.allclose(out1, out3)
    _, w_plain = graph_attention(q, k, v, g, backend=backend, return_weights=True)
    torch.testing.assert_close(w1, w_plain)
    keep = dropout_keep((2, g.num_edges, 2), 0.3, torch.Generator().manual_seed(0),
                        torch.device("cpu"))
    p = w_plain * keep / 0.7  # (B, E, H)
    expected = torch.zeros(2, 8, 2, 4, dtype=torch.float64).index_add(
        1, g.dst, p.unsqueeze(-1) * v[:, g.src]
    )
    torch.testing.assert_close(out1, expected)
    # gradients equal the reference's under the same mask
    ref, _ = graph_attention(q, k, v, g, dropout_p=0.3, backend="reference",
                             generator=torch.Generator().manual_seed(0), return_weights=True)
    check_against(out1, ref, (q, k, v), torch.float64)


def test_dense_refuses_dropout_and_auto_avoids_it():
    g = TokenGraph.from_dense_mask(torch.ones(4, 4, dtype=torch.bool))
    q, k, v = qkv(1, 4, 4, 1, 2, 2, torch.float32)
    with pytest.raises(ValueError, match="dense.*dropout"):
        graph_attention(q, k, v, g, dropout_p=0.1, backend="dense")
    assert graph_attention(q, k, v, g, dropout_p=0.1).shape == (1, 4, 1, 2)


# ----------------------------------------------------------- properties
@st.composite
def graphs_and_perms(draw):
    n = draw(st.integers(1, 7))
    bits = draw(st.lists(st.booleans(), min_size=n * n, max_size=n * n))
    mask = torch.tensor(bits).view(n, n)
    perm = draw(st.permutations(list(range(n))))
    seed = draw(st.integers(0, 2**16))
    return TokenGraph.from_dense_mask(mask), torch.tensor(perm), seed


@settings(max_examples=25, deadline=None)
@given(graphs_and_perms(), st.sampled_from(BACKENDS))
def test_property_permuting_nodes_permutes_outputs(case, backend):
    g, perm, seed = case
    n = g.num_nodes
    q, k, v = (t.detach() for t in qkv(1, n, n, 2, 3, 3, torch.float64, seed=seed))
    out = graph_attention(q, k, v, g, backend=backend)
    out_p = graph_attention(q[:, perm], k[:, perm], v[:, perm], g.permute(perm), backend=backend)
    torch.testing.assert_close(out_p, out[:, perm])


@settings(max_examples=25, deadline=None)
@given(graphs_and_perms(), st.sampled_from(BACKENDS))
def test_property_weights_sum_to_one_and_isolated_targets_are_zero(case, backend):
    g, _, seed = case
    n = g.num_nodes
    q, k, v = (t.detach() for t in qkv(2, n, n, 2, 3, 3, torch.float64, seed=seed))
    out, w = graph_attention(q, k, v, g, backend=backend, return_weights=True)
    sums = torch.zeros(2, n, 2, dtype=torch.float64).index_add(1, g.dst, w)  # (B, N, H)
    has_edge = g.in_degree() > 0
    torch.testing.assert_close(sums[:, has_edge], torch.ones_like(sums[:, has_edge]))
    assert torch.equal(out[:, ~has_edge], torch.zeros_like(out[:, ~has_edge]))
    assert (w >= 0).all()


# ------------------------------------------------------------ selection
def request_for(g, **kw):
    base = dict(batch=1, num_heads=2, head_dim=4, value_dim=4,
                device=torch.device("cpu"), dtype=torch.float32)
    base.update(kw)
    return AttentionRequest(g, **base)


def test_auto_selector_prefers_dense_for_small_dense_graphs_and_edge_for_sparse():
    dense_g = TokenGraph.from_dense_mask(torch.ones(8, 8, dtype=torch.bool).tril())
    # a sparse graph past the size where dense is cheap anyway (tiny calls run dense)
    sparse_g = TokenGraph(torch.stack([torch.arange(4095), torch.arange(1, 4096)]), 4096)
    assert auto_selector(request_for(dense_g)) == "dense"
    assert auto_selector(request_for(sparse_g)) == "edge"
    assert auto_selector(request_for(dense_g, dropout=0.1)) == "edge"
    too_big = request_for(dense_g, batch=10**6, return_weights=True)  # explicit B*H*N*M scores
    assert "scores exceed" in get_backend("dense").supports(too_big)
    assert auto_selector(too_big) == "block"  # a recorded causal graph: fused, weights from lse
    assert get_backend("dense").supports(request_for(dense_g, batch=10**6)) is None  # SDPA path
    huge_mask = request_for(TokenGraph([[0], [1]], 10_000))
    assert "mask exceeds" in get_backend("dense").supports(huge_mask)


def test_register_selector_none_restores_the_auto_policy():
    few_edges = request_for(TokenGraph([[0], [1]], 1000))
    previous = register_selector(lambda request: "reference")
    try:
        assert previous is auto_selector
        assert select_backend(few_edges) == "reference"
    finally:
        register_selector(None)
    assert select_backend(few_edges) == auto_selector(few_edges) == "edge"


def test_supports_is_asked_once_per_call():
    g = TokenGraph.from_dense_mask(random_mask(6, 6, 0.5, 31))
    q, k, v = qkv(1, 6, 6, 2, 4, 4, torch.float32, seed=31)
    asked = []
    entries = {name: get_backend(name) for name in backend_names()}

    def spy(name, supports):
        return lambda request: asked.append(name) or supports(request)

    try:
        for name, entry in entries.items():
            register_backend(name, entry.kernel, spy(name, entry.supports), replace=True)
        graph_attention(q, k, v, g)  # auto: each candidate asked at most once
        assert asked and len(asked) == len(set(asked))
        asked.clear()
        graph_attention(q, k, v, g, backend="edge")
        assert asked == ["edge"]
    finally:
        for name, entry in entries.items():
            register_backend(name, entry.kernel, entry.supports, replace=True)


def test_register_selector_drives_auto_and_is_checked():
    g = TokenGraph.from_dense_mask(torch.ones(4, 4, dtype=torch.bool))
    q, k, v = qkv(1, 4, 4, 1, 2, 2, torch.float32)
    calls = []

    def kernel(call):
        calls.append(call.graph)
        return get_backend("reference").kernel(call)

    register_backend("spy", kernel, lambda r: None if r.num_heads == 1 else "one head only")
    previous = register_selector(lambda request: "spy")
    try:
        graph_attention(q, k, v, g)
        assert calls == [g]
        with pytest.raises(ValueError, match="one head only"):
            graph_attention(q.expand(1, 4, 2, 2), k.expand(1, 4, 2, 2), v.expand(1, 4, 2, 2), g,
                            backend="spy")
        with pytest.raises(RuntimeError, match="refuses"):
            select_backend(request_for(g, num_heads=2))
        register_selector(lambda request: "nope")
        with pytest.raises(RuntimeError, match="unknown backend 'nope'"):
            graph_attention(q, k, v, g)
    finally:
        register_selector(previous)
        unregister_backend("spy")
    assert "spy" not in backend_names()


def test_registry_errors():
    with pytest.raises(ValueError, match="already registered"):
        register_backend("edge", get_backend("edge").kernel, lambda r: None)
    with pytest.raises(ValueError, match="'auto'"):
        register_backend("auto", get_backend("edge").kernel, lambda r: None)
    with pytest.raises(TypeError, match="callable"):
        register_backend("x", "not callable", lambda r: None)
    with pytest.raises(TypeError, match="name must be a str"):
        register_backend(3, get_backend("edge").kernel, lambda r: None)
    with pytest.raises(ValueError, match="unknown backend 'x'"):
        get_backend("x")
    with pytest.raises(ValueError, match="unknown backend"):
        unregister_backend("x")
    with pytest.raises(TypeError, match="selector"):
        register_selector(5)


# ----------------------------------------------------------------- errors
def ok_inputs():
    g = TokenGraph.from_dense_mask(torch.ones(4, 4, dtype=torch.bool).tril())
    q, k, v = (t.detach() for t in qkv(2, 4, 4, 2, 3, 3, torch.float32))
    return q, k, v, g


@pytest.mark.parametrize(
    "change, error, match",
    [
        (lambda q, k, v, g: ([1.0], k, v, g), TypeError, "q must be a torch.Tensor"),
        (lambda q, k, v, g: (q.long(), k, v, g), TypeError, "q must be a floating-point"),
        (lambda q, k, v, g: (q[0, 0], k, v, g), ValueError, r"q must have shape \(N, H, D\)"),
        (lambda q, k, v, g: (q, k[0], v, g), ValueError, "k must have 4 dims"),
        (lambda q, k, v, g: (q, k.double(), v, g), TypeError, "k must have q's dtype"),
        (lambda q, k, v, g: (q, k[:1], v[:1], g), ValueError, "share the batch size"),
        (lambda q, k, v, g: (q, k[..., :2], v, g), ValueError, "k must have shape"),
        (lambda q, k, v, g: (q, k, v[:, :3], g), ValueError, "v must have shape"),
        (lambda q, k, v, g: (q.repeat(1, 1, 2, 1)[:, :, :3], k, v, g), ValueError,
         "H_kv=2 must divide the query heads H=3"),
        (lambda q, k, v, g: (q[:, :3], k, v, g), ValueError, "q has N=3 tokens"),
        (lambda q, k, v, g: (q, k[:, :3], v[:, :3], g), ValueError, "k/v have M=3"),
        (lambda q, k, v, g: (q, k, v, g.to_dense_mask()), TypeError, "graph must be a TokenGraph"),
        (lambda q, k, v, g: (q, k, v, [g]), ValueError, "one graph per head"),
        (lambda q, k, v, g: (q, k, v, [g, TokenGraph([[0], [0]], 4, num_src_nodes=4, cross=True)]),
         ValueError, "all be cross graphs or all self"),
        (lambda q, k, v, g: (q, k, v, [g, TokenGraph([[0], [0]], 5)]), ValueError, r"graph\[1\]"),
    ],
)
def test_bad_tensors_and_graphs(change, error, match):
    with pytest.raises(error, match=match):
        graph_attention(*change(*ok_inputs()))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"scale": "1"}, TypeError, "scale must be a float"),
        ({"scale": math.nan}, ValueError, "scale must be finite"),
        ({"dropout_p": 1.0}, ValueError, r"dropout_p must be in \[0, 1\)"),
        ({"dropout_p": None}, TypeError, "dropout_p must be a float"),
        ({"return_weights": 1}, TypeError, "return_weights must be a bool"),
        ({"check_inputs": "yes"}, TypeError, "check_inputs must be a bool"),
        ({"backend": "fast"}, ValueError, "unknown backend 'fast'"),
        ({"backend": None}, TypeError, "backend must be a str"),
        ({"generator": 3}, TypeError, "generator must be a torch.Generator"),
        ({"bias": torch.zeros(3)}, ValueError, r"bias must have shape \(E,\)=\(10,\)"),
        ({"bias": torch.zeros(10, 3)}, ValueError, r"\(E, H\)=\(10, 2\)"),
        ({"bias": torch.zeros(10, dtype=torch.long)}, TypeError, "bias must be a floating"),
        ({"bias": [torch.zeros(10)]}, TypeError, "bias must be a tensor"),
        ({"bias": lambda s, d: [0.0]}, TypeError, "must return a tensor"),
        ({"bias": lambda s, d: torch.zeros(1, 10, 2)}, ValueError, r"must return \(E,\)"),
        ({"bias": lambda s, d: torch.zeros(4)}, ValueError, r"bias\(src, dst\) must have shape"),
    ],
)
def test_bad_options(kwargs, error, match):
    q, k, v, g = ok_inputs()
    with pytest.raises(error, match=match):
        graph_attention(q, k, v, g, **kwargs)


def test_bad_per_head_bias():
    q, k, v, g = ok_inputs()
    with pytest.raises(TypeError, match="sequence of H tensors"):
        graph_attention(q, k, v, [g, g], bias=torch.zeros(10))
    with pytest.raises(ValueError, match=r"bias\[1\] must have shape"):
        graph_attention(q, k, v, [g, g], bias=[torch.zeros(10), torch.zeros(9)])
    with pytest.raises(ValueError, match=r"graph\[0\] must return"):
        graph_attention(q, k, v, [g, g], bias=lambda s, d: torch.zeros(10, 3))


def test_check_inputs_rejects_nan_and_positive_inf_bias():
    q, k, v, g = ok_inputs()
    bad = q.clone()
    bad[0, 1, 0, 0] = math.nan
    graph_attention(bad, k, v, g)  # not checked by default
    with pytest.raises(ValueError, match="q holds NaN"):
        graph_attention(bad, k, v, g, check_inputs=True)
    with pytest.raises(ValueError, match="v holds NaN"):
        graph_attention(q, k, v * math.inf, g, check_inputs=True)
    bias = torch.zeros(10)
    bias[0] = math.inf
    with pytest.raises(ValueError, match=r"bias holds NaN or \+inf"):
        graph_attention(q, k, v, g, bias=bias, check_inputs=True)
    bias[0] = -math.inf
    graph_attention(q, k, v, g, bias=bias, check_inputs=True)


def test_wrong_device_is_rejected():
    q, k, v, g = ok_inputs()
    meta = k.to("meta")
    with pytest.raises(ValueError, match="k must be on q's device"):
        graph_attention(q, meta, v, g)
    with pytest.raises(ValueError, match="bias must be on q's device"):
        graph_attention(q, k, v, g, bias=torch.zeros(10, device="meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_matches_cpu_and_keeps_device(backend, dtype):
    g = TokenGraph.from_dense_mask(random_mask(16, 16, 0.3, 22))
    q, k, v = (t.detach() for t in qkv(2, 16, 16, 2, 8, 8, torch.float32, seed=22))
    out = graph_attention(*(t.cuda().to(dtype) for t in (q, k, v)), g, backend=backend)
    assert out.device.type == "cuda" and out.dtype == dtype
    torch.testing.assert_close(out.float().cpu(), graph_attention(q, k, v, g),
                               atol=2e-2, rtol=2e-2)


def test_per_head_batched_graph_is_reused_across_calls():
    graphs = [TokenGraph.from_dense_mask(random_mask(5, 5, 0.5, s)) for s in (23, 24)]
    q, k, v = (t.detach() for t in qkv(1, 5, 5, 2, 3, 3, torch.float64, seed=23))
    first = graph_attention(q, k, v, graphs, backend="edge")
    cached = HEAD_MAJOR_GRAPHS.entries(graphs[0])
    assert len(cached) == 1 and cached[0] == TokenGraph.batch(graphs)
    torch.testing.assert_close(graph_attention(q, k, v, graphs, backend="edge"), first)
    assert len(HEAD_MAJOR_GRAPHS.entries(graphs[0])) == 1
