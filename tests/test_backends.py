"""The fast backends ("block", "edge", "flex") against the reference and torch's dense SDPA."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from graphattn import explain_backend, graph_attention, patterns
from graphattn.backends import KernelCall, get_backend
from graphattn.backends.block import block_attention
from graphattn.backends.tiles import BLOCK_SIZES, SMALLER_TILES, block_plan, block_size_for
from graphattn.graph import TokenGraph

FAST = ["block", "edge"]


def qkv(b, n, m, h, d, dv, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(*shape, generator=gen, dtype=dtype).requires_grad_()
        for shape in ((b, n, h, d), (b, m, h, d), (b, m, h, dv))
    )


def sdpa(q, k, v, mask, scale):
    """Torch SDPA on node-major (B, N, H, D); ``mask`` bool (N, M), True = attend."""
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask, scale=scale
    )
    return out.transpose(1, 2)  # (B, N, H, Dv)


def cotangent(t, seed):
    return torch.randn(t.shape, generator=torch.Generator().manual_seed(seed), dtype=t.dtype)


def assert_equals_sdpa(out, q, k, v, g, scale, seed):
    """``out`` is dense SDPA on ``g``'s mask: values, and gradients in ``q, k, v`` of a random
    function of it (cotangent ``seed``)."""
    ref = sdpa(q, k, v, g.to_dense_mask(), scale)
    torch.testing.assert_close(out, ref)
    cot = cotangent(out, seed)
    mine = torch.autograd.grad((out * cot).sum(), (q, k, v))
    theirs = torch.autograd.grad((ref * cot).sum(), (q, k, v))
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a, b)


def outputs_and_grads(backend, q, k, v, g, bias=None, **kw):
    """out, weights and the gradients of a random function of both."""
    out, w = graph_attention(
        q, k, v, g, scale=0.4, bias=bias, return_weights=True, backend=backend, **kw
    )
    loss = (out * cotangent(out, 1)).sum() + (w * cotangent(w, 2)).sum()
    inputs = (q, k, v) if bias is None else (q, k, v, bias)
    return out, w, torch.autograd.grad(loss, inputs)


GRAPHS = {
    "window": lambda: patterns.sliding_window(70, 9),
    "bidirectional window": lambda: patterns.sliding_window(45, 6, causal=False),
    "strided": lambda: patterns.strided(60, 8),
    "bigbird blocks": lambda: patterns.bigbird(64, block=8, num_random=2),
    "bigbird tokens": lambda: patterns.bigbird(50),
    "random causal": lambda: patterns.random(55, 6, causal=True),
    "isolated targets": lambda: TokenGraph([[0, 3, 3, 9], [1, 1, 7, 7]], 12),
    "cross": lambda: patterns.cross_window(13, 29, 5),
    "full": lambda: patterns.full(20),
}


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("name", list(GRAPHS))
def test_values_gradients_and_weights_equal_the_reference(backend, name):
    g = GRAPHS[name]()
    q, k, v = qkv(2, g.num_nodes, g.num_src_nodes, 3, 8, 5, seed=len(name))
    bias = torch.randn(2, g.num_edges, 3, dtype=torch.float64, requires_grad=True)
    out, w, grads = outputs_and_grads(backend, q, k, v, g, bias=bias)
    ref, w_ref, grads_ref = outputs_and_grads("reference", q, k, v, g, bias=bias)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(w, w_ref)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("name", ["window", "bigbird blocks", "random causal", "cross"])
def test_values_and_gradients_equal_dense_sdpa(backend, name):
    """Equal head dims and no weights: the block backend's fused kernels run here."""
    g = GRAPHS[name]()
    q, k, v = qkv(2, g.num_nodes, g.num_src_nodes, 2, 8, 8, seed=3)
    out = graph_attention(q, k, v, g, scale=0.4, backend=backend)
    assert_equals_sdpa(out, q, k, v, g, 0.4, seed=5)


@pytest.mark.parametrize("backend", FAST)
def test_isolated_targets_and_minus_inf_rows_are_exact_zeros_without_nan(backend):
    g = GRAPHS["isolated targets"]()
    q, k, v = qkv(1, 12, 12, 2, 4, 4, seed=4)
    bias = torch.zeros(1, g.num_edges, 2, dtype=torch.float64)
    bias[:, 2:] = -float("inf")  # target 7 loses both edges
    bias.requires_grad_()
    out, w, grads = outputs_and_grads(backend, q, k, v, g, bias=bias)
    isolated = torch.ones(12, dtype=torch.bool)
    isolated[1] = False
    assert torch.equal(out[:, isolated], torch.zeros_like(out[:, isolated]))
    assert torch.equal(w[:, 2:], torch.zeros_like(w[:, 2:]))
    assert all(torch.isfinite(t).all() for t in grads)


@pytest.mark.parametrize("backend", FAST)
def test_per_head_graphs_equal_one_graph_per_head(backend):
    graphs = [patterns.sliding_window(40, 4), patterns.strided(40, 5), patterns.random(40, 3)]
    q, k, v = qkv(2, 40, 40, 3, 4, 4, seed=6)
    out = graph_attention(q, k, v, graphs, backend=backend)
    for h, g in enumerate(graphs):
        ref = sdpa(
            q[:, :, h : h + 1], k[:, :, h : h + 1], v[:, :, h : h + 1], g.to_dense_mask(), None
        )
        torch.testing.assert_close(out[:, :, h : h + 1], ref)


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_keeps_dtype_and_matches_float32(backend, dtype):
    g = patterns.bigbird(96, block=16, num_random=1)
    q, k, v = (t.detach() for t in qkv(1, 96, 96, 2, 16, 16, dtype=torch.float32, seed=7))
    out = graph_attention(q.to(dtype), k.to(dtype), v.to(dtype), g, backend=backend)
    ref = graph_attention(q, k, v, g, backend="reference")
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)
    qh = q.to(dtype).requires_grad_()
    graph_attention(qh, k.to(dtype), v.to(dtype), g, backend=backend).sum().backward()
    assert qh.grad.dtype == dtype and torch.isfinite(qh.grad.float()).all()


@pytest.mark.parametrize("backend", FAST)
def test_gradcheck_float64(backend):
    g = patterns.sliding_window(6, 2) | patterns.random(6, 1, seed=1)
    q, k, v = qkv(1, 6, 6, 1, 2, 2, seed=8)
    bias = torch.randn(1, g.num_edges, 1, dtype=torch.float64, requires_grad=True)

    def fn(q, k, v, bias):
        return graph_attention(q, k, v, g, bias=bias, return_weights=True, backend=backend)

    assert torch.autograd.gradcheck(fn, (q, k, v, bias))


def test_block_bf16_forward_on_bf16_tiles_matches_float32_and_contains_nan():
    """bf16 inputs on a banded graph: the fused forward on bf16 tiles, bf16's own sum as test."""
    g = patterns.sliding_window(300, 40)  # 5 query blocks of 64, banded key tiles
    q, k, v = (t.detach() for t in qkv(2, 300, 300, 3, 16, 16, dtype=torch.float32, seed=11))
    half = [t.bfloat16() for t in (q, k, v)]
    out = block_attention(KernelCall(*half, g, scale=0.25))[0]
    ref = graph_attention(*(t.float() for t in half), g, scale=0.25, backend="reference")
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=1e-2, rtol=1e-2)
    half[2][0, 7, 1] = math.nan  # value of token 7, head 1: read by targets 7..46
    out = block_attention(KernelCall(*half, g, scale=0.25))[0].float()
    assert out[0, 7:47, 1].isnan().all() and not out[0, :7].isnan().any()
    assert not out[0, 47:].isnan().any() and not out[0, :, [0, 2]].isnan().any()
    assert not out[1].isnan().any()


def test_block_gradcheck_on_the_fused_path_with_padding_rows():
    """D == Dv, no bias, no weights: fused forward and backward; N is not a block multiple."""
    g = patterns.sliding_window(11, 4)
    q, k, v = qkv(1, 11, 11, 1, 3, 3, seed=9)
    fn = lambda q, k, v: block_attention(KernelCall(q, k, v, g, scale=0.5), block_size=4)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v))


@pytest.mark.parametrize("chunk", [1, 300, 10**6])
def test_block_online_softmax_over_key_slices_equals_reference(chunk):
    """A tiny chunk forces one query block at a time and one key block per slice."""
    g = patterns.bigbird(48, window=2, num_global=2, num_random=1) | patterns.causal(48)
    q, k, v = qkv(2, 48, 48, 2, 4, 4, seed=10)
    bias = torch.randn(2, g.num_edges, 2, dtype=torch.float64, requires_grad=True)

    def run(name):
        kw = dict(scale=0.3, bias=bias, return_weights=True, dropout_p=0.0, generator=None)
        if name == "block":
            return block_attention(KernelCall(q, k, v, g, **kw), block_size=4, chunk_elements=chunk)
        return get_backend(name).kernel(KernelCall(q, k, v, g, **kw))

    (out, w), (ref, w_ref) = run("block"), run("reference")
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(w, w_ref)
    cot, cot_w = cotangent(out, 1), cotangent(w, 2)
    mine = torch.autograd.grad((out * cot).sum() + (w * cot_w).sum(), (q, k, v, bias))
    theirs = torch.autograd.grad((ref * cot).sum() + (w_ref * cot_w).sum(), (q, k, v, bias))
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a, b)


WINDOW_AND_GATHERED = [
    patterns.sliding_window(64, 9),  # a ramp and one band group
    patterns.bigbird(40, window=1, num_global=1, num_random=2, block=4)
    | patterns.sliding_window(40, 9),
]


@pytest.mark.parametrize("rows", [1, 3, None])
@pytest.mark.parametrize("g", WINDOW_AND_GATHERED, ids=["window", "bigbird"])
def test_block_fused_forward_batches_equal_dense_sdpa(g, rows):
    """The fused forward batches a band's query blocks by what it holds (no scores): a few
    at a time or all; beside gathered groups (BigBird's randoms), counted by their scores."""
    from graphattn.backends import block

    n = g.num_nodes
    q, k, v = qkv(1, n, n, 2, 3, 3, seed=12)
    plan = block_plan(g, 4)
    widest = max(grp.kb.shape[1] for grp in plan.groups)
    chunk = 10**6 if rows is None else rows * 2 * 4 * 4 * widest  # whole rows of tiles fit
    t = block._Tiles(KernelCall(q, k, v, g, scale=0.4), plan, None, chunk, None)
    assert t.fused
    if rows is not None and g is WINDOW_AND_GATHERED[0]:  # the band in several batches
        main = len(plan.groups) - 1  # the band group after the ramp
        walk = block._tile_rows(plan, 2, chunk, t.fused_row_elements)
        band = [r for r in walk if r.gi == main]
        assert 1 < len(band) < plan.groups[main].qb.numel()
    out, _ = block_attention(KernelCall(q, k, v, g, scale=0.4), block_size=4, chunk_elements=chunk)
    assert_equals_sdpa(out, q, k, v, g, 0.4, seed=3)


def test_block_fused_forward_holds_no_scores():
    """Per query block of a band the fused forward counts its output tile (and a mask of its
    own), not its scores: a 256-key window's main group fits five times the rows."""
    from graphattn.backends import block

    g = patterns.sliding_window(4096, 256)
    q = k = v = torch.zeros(1, 4096, 12, 64)
    call, chunk = KernelCall(q, k, v, g, scale=0.125), block.CHUNK_ELEMENTS
    t = block._Tiles(call, block_plan(g, 64), None, chunk, None)
    main = t.plan.groups[-1]
    assert t.fused and main.band is not None and main.blocked.shape[0] == 1
    assert t.fused_row_elements(main) == 12 * 64 * 64  # the output tile alone
    scores = 12 * 64 * 64 * main.kb.shape[1]
    assert scores == 5 * t.fused_row_elements(main)
    default = list(block._tile_rows(t.plan, 12, chunk))
    fused = list(block._tile_rows(t.plan, 12, chunk, t.fused_row_elements))
    assert len(fused) < len(default)
    rows = [sum(r.r1 - r.r0 for r in walk) for walk in (fused, default)]
    assert rows == [t.plan.num_q_blocks] * 2


def test_block_plan_counts_tiles_and_is_cached():
    g = patterns.sliding_window(256, 64)
    plan = block_plan(g, 64)
    assert plan is block_plan(g, 64)
    # query block b needs key blocks b-1 and b, block 0 only itself
    assert plan.num_pairs == 7
    assert [(g_.kb.shape[1], g_.band) for g_ in plan.groups] == [(1, 0), (2, 1)]
    assert plan.fill == pytest.approx(g.num_edges / (7 * 64 * 64))
    full = block_plan(patterns.full(128), 64)
    assert full.fill == 1.0 and all(grp.blocked is None for grp in full.groups)
    with pytest.raises(ValueError, match="block_size"):
        block_plan(g, 0)


def test_block_size_for_takes_smaller_tiles_only_where_they_save_work():
    window, causal = patterns.sliding_window(4096, 128), patterns.causal(4096)
    bigbird = patterns.bigbird(4096, window=3, num_global=2, num_random=3, block=64)
    assert [block_size_for(g) for g in (window, causal, bigbird)] == [32, 64, 64]
    assert block_size_for(window) is block_size_for(window)  # cached with the graph
    # the rule: each step down saves at least 1 - SMALLER_TILES of the computed positions
    computed = {bs: block_plan(window, bs).num_pairs * bs**2 for bs in BLOCK_SIZES}
    assert computed[32] <= SMALLER_TILES * computed[64]
    assert computed[16] > SMALLER_TILES * computed[32]
    assert block_size_for(patterns.sliding_window(4096, 16)) == 16  # a thin band: 16


@pytest.mark.parametrize("bs", [1, 5, 16])
def test_tile_counts_by_table_equal_tile_counts_by_sorting(bs, monkeypatch):
    from graphattn.backends import tiles

    gen = torch.Generator().manual_seed(3)
    pairs = torch.stack([torch.randint(0, 410, (2000,), generator=gen),
                         torch.randint(0, 300, (2000,), generator=gen)])  # fmt: skip
    pairs = torch.cat([pairs, torch.tensor([[409], [299]])], 1)  # the last tile is kept
    g = TokenGraph(pairs, 300, num_src_nodes=410, cross=True)
    by_table = tiles.tile_counts(g, bs)
    monkeypatch.setattr(tiles, "COUNT_TABLE", 0)
    g2 = TokenGraph(g.edge_index.clone(), 300, num_src_nodes=410, cross=True)  # not cached
    by_sort = tiles.tile_counts(g2, bs)
    for a, b in zip(by_table, by_sort, strict=True):
        assert torch.equal(a, b)
    nkb = -(-410 // bs)
    assert int(by_table[1].sum()) == g.num_edges
    assert int(by_table[0][-1]) == 299 // bs * nkb + 409 // bs


def _band():
    return patterns.sliding_window(150, 40) | TokenGraph([[0, 3], [149, 120]], 150)


@pytest.mark.parametrize("with_weights", [False, True])
def test_the_chosen_block_size_without_grad_equals_the_reference(with_weights, monkeypatch):
    from graphattn.backends import block

    sizes, real = [], block.block_plan
    monkeypatch.setattr(block, "block_plan", lambda g, bs, d: sizes.append(bs) or real(g, bs, d))
    g = _band()
    q, k, v = (t.detach() for t in qkv(2, 150, 150, 2, 4, 4, seed=13))
    call = KernelCall(q, k, v, g, scale=0.4, return_weights=with_weights)
    out, w = block_attention(call)
    ref, w_ref = get_backend("reference").kernel(call)
    torch.testing.assert_close(out, ref)
    if with_weights:
        torch.testing.assert_close(w, w_ref)
    assert sizes == [block_size_for(g)] == [16]
    block_attention(KernelCall(*qkv(2, 150, 150, 2, 4, 4), g, scale=0.4))  # with grad: 64
    assert sizes[1:] == [64]


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
@pytest.mark.parametrize("with_weights", [False, True])
def test_every_block_size_equals_the_reference(block_size, with_weights):
    """A band over many blocks of each side: the fused path (no weights) and the weights path."""
    g = _band()
    q, k, v = qkv(2, 150, 150, 2, 4, 4, seed=12)
    call = KernelCall(q, k, v, g, scale=0.4, return_weights=with_weights)
    out, w = block_attention(call, block_size=block_size)
    ref, w_ref = get_backend("reference").kernel(call)
    torch.testing.assert_close(out, ref)
    if with_weights:
        torch.testing.assert_close(w, w_ref)

    def loss(out, w):  # a random function of the output and of the weights, if any
        return (out * cotangent(out, 1)).sum() + (0 if w is None else (w * cotangent(w, 2)).sum())

    mine = torch.autograd.grad(loss(out, w), (q, k, v))
    theirs = torch.autograd.grad(loss(ref, w_ref if with_weights else None), (q, k, v))
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a, b)


def head_major(b, n, h, d, seed):
    """``(B, N, H, D)`` views of ``(B, H, N, D)`` tensors: the layout transformers passes."""
    gen = torch.Generator().manual_seed(seed)
    made = (torch.randn(b, h, n, d, generator=gen, dtype=torch.float64) for _ in range(3))
    return tuple(t.requires_grad_().transpose(1, 2) for t in made)


@pytest.mark.parametrize("b", [1, 2])
@pytest.mark.parametrize("with_weights", [False, True])
@pytest.mark.parametrize("block_size", BLOCK_SIZES)
@pytest.mark.parametrize("graph", ["band", "general"])
def test_head_major_operands_are_read_in_place_and_equal_the_reference(
    b, with_weights, block_size, graph
):
    """Whole blocks of head-major operands: tiles are views of them (a band) or gathers."""
    n = 128
    g = patterns.sliding_window(n, 40) if graph == "band" else patterns.random(n, 9, seed=3)
    q, k, v = head_major(b, n, 3, 4, seed=5)
    call = KernelCall(q, k, v, g, scale=0.4, return_weights=with_weights)
    out, w = block_attention(call, block_size=block_size)
    plain = tuple(t.detach().contiguous().requires_grad_() for t in (q, k, v))
    ref, w_ref = get_backend("reference").kernel(
        KernelCall(*plain, g, scale=0.4, return_weights=with_weights)
    )
    torch.testing.assert_close(out, ref)
    if with_weights:
        torch.testing.assert_close(w, w_ref)

    def loss(out, w):
        return (out * cotangent(out, 1)).sum() + (0 if w is None else (w * cotangent(w, 2)).sum())

    mine = torch.autograd.grad(loss(out, w), (q, k, v))
    theirs = torch.autograd.grad(loss(ref, w_ref if with_weights else None), plain)
    for a, r in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a, r)


def test_node_major_views_whole_head_major_operands_and_copies_the_rest():
    from graphattn.backends.block import _node_major

    x = torch.randn(2, 3, 8, 4).transpose(1, 2)  # (B, N, H, D) view of (B, H, N, D)
    view = _node_major(x, 8, torch.float32)  # (N, B * H, D)
    assert view.data_ptr() == x.data_ptr()
    torch.testing.assert_close(view, x.transpose(0, 1).reshape(8, 6, 4))
    for rows, dtype, y in ((8, torch.float32, x.contiguous()), (16, torch.float32, x),
                           (8, torch.float64, x)):  # fmt: skip
        copy = _node_major(y, rows, dtype)  # node-major B = 2, padded, cast: copies
        assert copy.data_ptr() != y.data_ptr() and copy.shape == (rows, 6, 4)
        torch.testing.assert_close(copy[:8], x.transpose(0, 1).reshape(8, 6, 4).to(dtype))
        assert not copy[8:].any()


@pytest.mark.parametrize("backend", ["block"])
def test_dropout_is_refused_by_name(backend):
    g = patterns.causal(6)
    q, k, v = qkv(1, 6, 6, 1, 2, 2)
    with pytest.raises(ValueError, match=backend):
        graph_attention(q, k, v, g, dropout_p=0.5, backend=backend)


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 24),
    m=st.integers(1, 24),
    p=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
    backend=st.sampled_from(FAST),
)
def test_property_random_graphs_equal_the_reference(n, m, p, seed, backend):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, m, generator=gen) < p
    g = TokenGraph.from_dense_mask(mask, cross=n != m) if mask.any() else None
    if g is None:
        return
    q, k, v = qkv(1, n, m, 2, 3, 3, seed=seed)
    out, w = graph_attention(q, k, v, g, return_weights=True, backend=backend)
    ref, w_ref = graph_attention(q, k, v, g, return_weights=True, backend="reference")
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(w, w_ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("backend", FAST)
def test_cuda_matches_cpu(backend):
    g = patterns.bigbird(128, block=16, num_random=1)
    q, k, v = qkv(2, 128, 128, 2, 16, 16, dtype=torch.float32, seed=11)
    cpu = graph_attention(q, k, v, g, backend=backend)
    qc, kc, vc = (t.detach().cuda().requires_grad_() for t in (q, k, v))
    out = graph_attention(qc, kc, vc, g, backend=backend)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), cpu.detach(), atol=1e-4, rtol=1e-4)
    out.sum().backward()
    assert torch.isfinite(qc.grad).all()


# ------------------------------------------------------------------- flex
@pytest.mark.parametrize(
    "name", ["window", "bigbird blocks", "random causal", "isolated targets", "cross", "full"]
)
def test_block_mask_equals_the_dense_mask_and_eager_flex_equals_the_reference(name):
    """The BlockMask's materialized mask is the graph's; FlexAttention's eager path runs it."""
    from graphattn.backends.flex import flex_attention_kernel, to_block_mask

    g = GRAPHS[name]()
    bm = to_block_mask(g, 16)
    assert bm is to_block_mask(g, 16)  # cached while the graph lives
    dense = bm.to_dense()[0, 0].bool()  # (nqb, nkb) blocks FlexAttention visits
    tiles = g.to_dense_mask()
    nqb, nkb = dense.shape
    padded = torch.zeros(nqb * 16, nkb * 16, dtype=torch.bool)
    padded[: g.num_nodes, : g.num_src_nodes] = tiles
    touched = padded.view(nqb, 16, nkb, 16).any(3).any(1)  # (nqb, nkb)
    assert torch.equal(dense, touched)
    i = torch.arange(g.num_nodes).view(-1, 1)
    j = torch.arange(g.num_src_nodes).view(1, -1)
    assert torch.equal(bm.mask_mod(0, 0, i, j), tiles)
    q, k, v = (t.detach().float() for t in qkv(2, g.num_nodes, g.num_src_nodes, 2, 8, 8))
    kw = dict(scale=0.4, bias=None, return_weights=False, dropout_p=0.0, generator=None)
    out, _ = flex_attention_kernel(KernelCall(q, k, v, g, **kw), compiled=False)
    ref, _ = get_backend("reference").kernel(KernelCall(q, k, v, g, **kw))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_flex_under_no_grad_takes_inputs_that_require_grad():
    """Grad mode off: FlexAttention gets detached inputs, not a refusal of the CPU backward."""
    from graphattn.backends.flex import flex_attention_kernel

    g = patterns.sliding_window(20, 3)
    q, k, v = qkv(1, 20, 20, 2, 8, 8)  # requires_grad
    kw = dict(scale=0.3, bias=None, return_weights=False, dropout_p=0.0, generator=None)
    with torch.no_grad():
        out, _ = flex_attention_kernel(KernelCall(q, k, v, g, **kw), compiled=False)
        ref, _ = get_backend("reference").kernel(KernelCall(q, k, v, g, **kw))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_flex_refuses_what_it_cannot_do_and_reorder_is_a_permutation():
    from graphattn.backends.flex import reorder_nodes

    g = patterns.random(30, 3, seed=2)
    q, k, v = qkv(1, 30, 30, 1, 4, 4)
    with pytest.raises(ValueError, match="no backward"):
        graph_attention(q, k, v, g, backend="flex")
    with pytest.raises(ValueError, match="no weights"):
        graph_attention(q.detach(), k.detach(), v.detach(), g, return_weights=True, backend="flex")
    perm = reorder_nodes(g)
    assert sorted(perm.tolist()) == list(range(30))
    p = g.permute(perm)
    out = graph_attention(q[:, perm], k[:, perm], v[:, perm], p, backend="reference")
    ref = graph_attention(q, k, v, g, backend="reference")
    torch.testing.assert_close(out, ref[:, perm])
    with pytest.raises(ValueError, match="self graph"):
        reorder_nodes(patterns.cross(3, 4))


# ------------------------------------------------------------------- auto
def test_auto_policy_picks_by_density_fill_dropout_and_size():
    from graphattn import explain_backend

    big_window = patterns.sliding_window(4096, 128)
    assert explain_backend(big_window, num_heads=4).backend == "block"
    scattered = patterns.random(4096, 64, causal=True)
    choice = explain_backend(scattered, num_heads=4)
    assert choice.backend == "edge" and "block fill" in choice.reason
    assert explain_backend(scattered, num_heads=4, dropout=0.1).backend == "edge"
    assert explain_backend(patterns.causal(16)).backend == "dense"  # tiny
    short = explain_backend(patterns.sliding_window(32, 8), batch=32, num_heads=4)
    assert short.backend == "dense" and "short sequences" in short.reason
    longer = explain_backend(patterns.sliding_window(256, 8), batch=32, num_heads=4)
    assert longer.backend != "dense"
    assert explain_backend(patterns.full(512), num_heads=4).backend == "dense"
    long_causal = explain_backend(patterns.causal(16384), num_heads=4, needs_grad=True)
    assert long_causal.backend == "dense" and "needs no mask" in long_causal.reason
    assert explain_backend(patterns.causal(4096), num_heads=4, return_weights=True).backend != (
        "dense"
    )
    assert explain_backend(TokenGraph([[0], [1]], 1000)).backend == "edge"  # few edges
    text = str(choice)
    assert text.startswith("auto -> 'edge'") and "flex: could run" in text
    grad = explain_backend(big_window, num_heads=4, needs_grad=True)
    assert "no backward" in grad.refusals["flex"]
    with pytest.raises(TypeError, match="TokenGraph"):
        explain_backend("causal")


def test_auto_runs_the_explained_backend_and_matches_the_reference():
    from graphattn.backends import register_selector
    from graphattn.backends.auto import auto_selector

    register_selector(auto_selector)  # the auto policy in force, whatever ran before
    g = patterns.sliding_window(300, 32)
    q, k, v = qkv(1, 300, 300, 2, 8, 8, seed=12)
    out = graph_attention(q, k, v, g)  # auto -> block
    ref = graph_attention(q, k, v, g, backend="reference")
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("name", ["full", "causal"])
def test_dense_runs_full_and_causal_graphs_without_a_mask(name):
    from graphattn.backends.dense import mask_structure

    g = patterns.get(name, 40)
    assert mask_structure(g) == name
    almost = g - TokenGraph([[0], [39]], 40)  # one edge short: the mask is needed again
    assert mask_structure(almost) == "general"
    for graph in (g, almost):
        q, k, v = qkv(2, 40, 40, 2, 8, 8, seed=5)
        out = graph_attention(q, k, v, graph, backend="dense")
        ref = graph_attention(q, k, v, graph, backend="reference")
        torch.testing.assert_close(out, ref)
        grads = torch.autograd.grad(out.square().sum(), (q, k, v))
        ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
        torch.testing.assert_close(grads, ref_grads)


def test_block_rows_wider_than_the_chunk_merge_slices_in_the_operands_dtype():
    """float32 rows computed in several key-block slices (online softmax) equal one slice."""
    from graphattn.backends.base import KernelCall
    from graphattn.backends.block import block_attention

    g = patterns.causal(256)
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 256, 2, 8, generator=gen) for _ in range(3))
    call = KernelCall(q, k, v, g, scale=0.3, return_weights=True)
    whole, w = block_attention(call)
    sliced, w_sliced = block_attention(call, block_size=16, chunk_elements=2 * 16 * 16 * 3)
    assert sliced.dtype == torch.float32
    torch.testing.assert_close(sliced, whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(w_sliced, w, rtol=1e-5, atol=1e-6)


def test_auto_records_full_and_causal_graphs_on_the_fused_block_path():
    """Returned weights without grad or bias: a causal graph runs fused, not on explicit scores."""
    g = patterns.causal(1024)
    assert explain_backend(g, num_heads=12, return_weights=True).backend == "block"
    assert explain_backend(g, num_heads=12, return_weights=True, needs_grad=True).backend == "dense"
    assert explain_backend(g, num_heads=12, return_weights=True, has_bias=True).backend == "dense"
