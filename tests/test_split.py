"""The "split" backend (block tiles + edge remainder, merged by log-sum-exp) against oracles."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from graphattn import graph_attention, patterns
from graphattn.backends import KernelCall
from graphattn.backends.split import split_attention, split_plan, tile_share
from graphattn.graph import TokenGraph


def qkv(b, n, m, h, d, dv, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(*shape, generator=gen, dtype=dtype).requires_grad_()
        for shape in ((b, n, h, d), (b, m, h, d), (b, m, h, dv))
    )


def split(q, k, v, g, block_size=8, min_fill=0.25):
    out, _ = split_attention(
        KernelCall(q, k, v, g, scale=0.4), block_size=block_size, min_fill=min_fill
    )
    return out


def reference(q, k, v, g):
    return graph_attention(q, k, v, g, scale=0.4, backend="reference")


def sdpa(q, k, v, g):
    mask = g.to_dense_mask()  # (N, M), True = attend
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask, scale=0.4
    )
    return out.transpose(1, 2).nan_to_num(0.0)  # rows without edges: 0, as graphattn


def values_and_grads(fn, q, k, v, g):
    out = fn(q, k, v, g)
    cot = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    return out, torch.autograd.grad((out * cot).sum(), (q, k, v))


def _scattered(n, m, e, seed=2):
    gen = torch.Generator().manual_seed(seed)
    src, dst = torch.randint(m, (e,), generator=gen), torch.randint(n, (e,), generator=gen)
    return TokenGraph(torch.stack([src, dst]), n, num_src_nodes=m)


GRAPHS = {
    "strided": lambda: patterns.strided(60, 8),
    "window + random": lambda: patterns.sliding_window(64, 10) | patterns.random(64, 3, seed=1),
    "bigbird tokens": lambda: patterns.bigbird(50),
    "isolated targets": lambda: patterns.sliding_window(40, 9) - TokenGraph(
        [list(range(9)), [8] * 9], 40
    ),  # target 8 has no edge
    "cross": lambda: patterns.cross_window(13, 29, 5) | _scattered(13, 29, 20),
    "all in tiles": lambda: patterns.sliding_window(48, 8),
    "none in tiles": lambda: patterns.random(48, 2, seed=3),
}


@pytest.mark.parametrize("name", list(GRAPHS))
def test_values_and_gradients_equal_the_reference(name):
    g = GRAPHS[name]()
    q, k, v = qkv(2, g.num_nodes, g.num_src_nodes, 3, 8, 5, seed=len(name))
    out, grads = values_and_grads(split, q, k, v, g)
    ref, grads_ref = values_and_grads(reference, q, k, v, g)
    torch.testing.assert_close(out, ref)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", ["strided", "window + random", "cross"])
def test_values_and_gradients_equal_dense_sdpa(name):
    """Equal head dims: the block part runs the fused CPU flash kernels, forward and backward."""
    g = GRAPHS[name]()
    q, k, v = qkv(1, g.num_nodes, g.num_src_nodes, 2, 8, 8, seed=4)
    plan = split_plan(g, 8)
    assert plan.tiles.num_edges and plan.rest.num_edges  # both kernels run
    out, grads = values_and_grads(split, q, k, v, g)
    ref, grads_ref = values_and_grads(sdpa, q, k, v, g)
    torch.testing.assert_close(out, ref)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b)


def test_float32_at_the_default_block_size_through_graph_attention(monkeypatch):
    from graphattn.backends import split as split_module
    from graphattn.backends.tiles import block_size_for

    sizes, real = [], split_module.block_plan
    spy = lambda g, bs, d: sizes.append(bs) or real(g, bs, d)  # noqa: E731
    monkeypatch.setattr(split_module, "block_plan", spy)
    g = patterns.strided(512, 64)
    q, k, v = qkv(1, 512, 512, 4, 16, 16, dtype=torch.float32, seed=5)
    out, grads = values_and_grads(
        lambda *a: graph_attention(*a, scale=0.4, backend="split"), q, k, v, g
    )
    ref, grads_ref = values_and_grads(sdpa, q, k, v, g)
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-4)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)
    assert sizes == [64]  # with a backward to run, the tiles stay at 64
    with torch.no_grad():  # without: cut at 64, the well-filled tiles at the side chosen for them
        fast = graph_attention(q, k, v, g, scale=0.4, backend="split")
    torch.testing.assert_close(fast, ref, atol=2e-5, rtol=1e-4)
    assert sizes[1:] == [block_size_for(split_plan(g, 64).tiles)] and sizes[1] < 64


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype):
    g = GRAPHS["strided"]()
    q, k, v = qkv(1, 60, 60, 2, 8, 8, dtype=torch.float32, seed=6)
    out = split(q.to(dtype), k.to(dtype), v.to(dtype), g)
    assert out.dtype == dtype
    ref = reference(*(t.to(dtype).float() for t in (q, k, v)), g)
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)


def test_gradcheck_float64():
    g = patterns.sliding_window(12, 3) | TokenGraph([[0, 1], [11, 11]], 12)
    q, k, v = qkv(1, 12, 12, 2, 3, 3, seed=7)
    fn = lambda q, k, v: split(q, k, v, g, block_size=4)  # noqa: E731
    assert split_plan(g, 4).tiles.num_edges and split_plan(g, 4).rest.num_edges
    assert torch.autograd.gradcheck(fn, (q, k, v))


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(4, 40),
    band=st.integers(1, 12),
    extra=st.integers(0, 60),
    block=st.sampled_from([2, 4, 8]),
    seed=st.integers(0, 2**16),
)
def test_random_band_plus_scattered_graphs(n, band, extra, block, seed):
    g = patterns.sliding_window(n, min(band, n)) | _scattered(n, n, extra, seed)
    q, k, v = qkv(1, n, n, 2, 4, 4, seed=seed)
    out, grads = values_and_grads(lambda *a: split(*a, block_size=block), q, k, v, g)
    ref, grads_ref = values_and_grads(reference, q, k, v, g)
    torch.testing.assert_close(out, ref)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b)


def test_plan_partitions_the_edges_by_tile_fill():
    g = patterns.strided(256, 32)
    plan = split_plan(g, 32, 0.25)
    both = plan.tiles | plan.rest
    assert both == g and (plan.tiles & plan.rest).num_edges == 0
    # every tile of the tile part is at least a quarter full, every other tile less
    for part, full in ((plan.tiles, True), (plan.rest, False)):
        key = part.dst // 32 * 8 + part.src // 32
        _, counts = torch.unique(key, return_counts=True)
        assert bool(((counts >= 256) if full else (counts < 256)).all())
    assert split_plan(g, 32, 0.25) is plan  # cached
    share = tile_share(g, 32, 0.25)
    assert share == plan.tiles.num_edges / g.num_edges and 0 < share < 1


@pytest.mark.parametrize(
    "kw, match",
    [({"block_size": 0}, "block_size"), ({"min_fill": 0.0}, "min_fill"),
     ({"min_fill": 1.5}, "min_fill")],
)  # fmt: skip
def test_plan_rejects_bad_parameters(kw, match):
    with pytest.raises(ValueError, match=match):
        split_plan(patterns.causal(8), **kw)


@pytest.mark.parametrize(
    "kw, match",
    [({"return_weights": True}, "weights"), ({"dropout_p": 0.1}, "dropout"),
     ({"bias": torch.zeros(1, 36, 1)}, "bias")],
)  # fmt: skip
def test_refuses_bias_weights_and_dropout(kw, match):
    g = patterns.causal(8)
    q = torch.randn(1, 8, 1, 4)
    with pytest.raises(ValueError, match="split"):
        split_attention(KernelCall(q, q, q, g, **({"scale": 0.5, "bias": None,
                                                   "return_weights": False, "dropout_p": 0.0,
                                                   "generator": None} | kw)))  # fmt: skip
    with pytest.raises(ValueError, match=match):
        graph_attention(q, q, q, g, backend="split", **{
            "return_weights": kw.get("return_weights", False),
            "dropout_p": kw.get("dropout_p", 0.0), "bias": kw.get("bias"),
        })  # fmt: skip


def test_per_head_graphs_equal_one_graph_per_head():
    graphs = [patterns.strided(256, 32), patterns.sliding_window(256, 40), patterns.random(256, 5)]
    q, k, v = qkv(2, 256, 256, 3, 8, 8, seed=8)
    out, grads = values_and_grads(
        lambda *a: graph_attention(*a[:3], graphs, scale=0.4, backend="split"), q, k, v, None
    )

    def per_head(q, k, v, _):
        return torch.cat(
            [sdpa(q[:, :, h : h + 1], k[:, :, h : h + 1], v[:, :, h : h + 1], g)
             for h, g in enumerate(graphs)], dim=2,
        )  # fmt: skip

    ref, grads_ref = values_and_grads(per_head, q, k, v, None)
    torch.testing.assert_close(out, ref)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b)
    batched = TokenGraph.batch(graphs)  # what the dispatcher hands the kernel
    plan = split_plan(batched)
    assert plan.tiles.num_edges and plan.rest.num_edges
