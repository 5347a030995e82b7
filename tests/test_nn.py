"""GraphAttention against nn.MultiheadAttention: values, weights and gradients."""

import re
import runpy
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

import graphattn.nn.attention as attention_module
from graphattn import TokenGraph
from graphattn.nn import GraphAttention, padding_bias

ROOT = Path(__file__).resolve().parents[1]


def make_mask(kind: str, n: int, m: int, gen: torch.Generator) -> torch.Tensor:
    """Bool (n, m) mask, True = may attend; every target keeps at least one source."""
    if kind == "full":
        return torch.ones(n, m, dtype=torch.bool)
    if kind == "causal":
        return torch.ones(n, m, dtype=torch.bool).tril()
    mask = torch.rand(n, m, generator=gen) < 0.4
    mask[torch.arange(n), torch.randint(m, (n,), generator=gen)] = True
    return mask


def edge_weights(mha_weights: torch.Tensor, graph: TokenGraph) -> torch.Tensor:
    """Dense per-head weights ``(..., H, N, M)`` read at the edges -> ``(..., E, H)``."""
    return mha_weights[..., graph.dst, graph.src].transpose(-1, -2)


def grads(module: nn.Module, *tensors: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {name: p.grad for name, p in module.named_parameters()}
    out.update({f"input{i}": t.grad for i, t in enumerate(tensors)})
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["full", "causal", "random"])
@pytest.mark.parametrize("batched", [False, True])
def test_from_torch_matches_mha(dtype, kind, batched):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    n, c, h = 7, 12, 3
    mha = nn.MultiheadAttention(c, h, batch_first=True, dtype=dtype)
    with torch.no_grad():  # nonzero biases, so that they are checked too
        mha.in_proj_bias.normal_(generator=gen)
        mha.out_proj.bias.normal_(generator=gen)
    attn = GraphAttention.from_torch(mha)
    graph = TokenGraph.from_dense_mask(make_mask(kind, n, n, gen))
    shape = (2, n, c) if batched else (n, c)
    x = torch.randn(shape, dtype=dtype, generator=gen)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()

    ref, ref_w = mha(
        x1, x1, x1, attn_mask=~graph.to_dense_mask(), average_attn_weights=False
    )  # mha's bool mask: True = blocked
    out, w = attn(x2, graph, need_weights=True)
    ref_w = edge_weights(ref_w, graph)
    assert_close(out, ref)
    assert_close(w, ref_w)

    g_out = torch.randn(ref.shape, dtype=dtype, generator=gen)
    g_w = torch.randn(ref_w.shape, dtype=dtype, generator=gen)
    ((ref * g_out).sum() + (ref_w * g_w).sum()).backward()
    ((out * g_out).sum() + (w * g_w).sum()).backward()
    assert_close(grads(attn, x2), grads(mha, x1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("same_kv", [True, False])
def test_cross_attention_matches_mha(dtype, same_kv):
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    b, n, m, c, h = 2, 4, 6, 8, 2
    kdim, vdim = (5, 5) if same_kv else (5, 3)
    mha = nn.MultiheadAttention(c, h, batch_first=True, kdim=kdim, vdim=vdim, dtype=dtype)
    with torch.no_grad():
        mha.in_proj_bias.normal_(generator=gen)
    attn = GraphAttention.from_torch(mha)
    assert attn.in_proj_weight is None and attn.k_proj_weight.shape == (c, kdim)
    graph = TokenGraph.from_dense_mask(make_mask("random", n, m, gen))
    assert graph.is_cross and graph.num_src_nodes == m
    x = torch.randn(b, n, c, dtype=dtype, generator=gen)
    key = torch.randn(b, m, kdim, dtype=dtype, generator=gen)
    value = key if same_kv else torch.randn(b, m, vdim, dtype=dtype, generator=gen)
    leaves_ref = [t.clone().requires_grad_() for t in (x, key, value)]
    leaves = [t.clone().requires_grad_() for t in (x, key, value)]

    ref, ref_w = mha(*leaves_ref, attn_mask=~graph.to_dense_mask(), average_attn_weights=False)
    context = leaves[1] if same_kv else (leaves[1], leaves[2])
    if same_kv:  # one context tensor serves as keys and values
        ref, ref_w = mha(leaves_ref[0], leaves_ref[1], leaves_ref[1],
                         attn_mask=~graph.to_dense_mask(), average_attn_weights=False)
    out, w = attn(leaves[0], graph, context=context, need_weights=True)
    assert_close(out, ref)
    assert_close(w, edge_weights(ref_w, graph))

    g_out = torch.randn(ref.shape, dtype=dtype, generator=gen)
    (ref * g_out).sum().backward()
    (out * g_out).sum().backward()
    used = 2 if same_kv else 3
    assert_close(grads(attn, *leaves[:used]), grads(mha, *leaves_ref[:used]))


def test_to_torch_round_trip():
    torch.manual_seed(2)
    for attn in (GraphAttention(8, 2), GraphAttention(8, 4, kdim=3, vdim=5, bias=False)):
        mha = attn.to_torch()
        assert isinstance(mha, nn.MultiheadAttention) and mha.batch_first
        back = GraphAttention.from_torch(mha)
        for (name, p), (name2, p2) in zip(
            attn.state_dict().items(), back.state_dict().items(), strict=True
        ):
            assert name == name2
            assert torch.equal(p, p2)
    attn = GraphAttention(8, 2, dropout=0.25).eval()
    mha = attn.to_torch()
    assert mha.dropout == 0.25 and not mha.training
    x = torch.randn(2, 5, 8)
    graph = TokenGraph.from_dense_mask(make_mask("causal", 5, 5, None))
    assert_close(attn(x, graph)[0], mha(x, x, x, attn_mask=~graph.to_dense_mask())[0])


def test_parameter_layout_matches_mha():
    for kwargs in ({}, {"bias": False}, {"kdim": 3}, {"vdim": 5, "bias": False}):
        ours = GraphAttention(8, 2, **kwargs)
        ref = nn.MultiheadAttention(8, 2, batch_first=True, **kwargs)
        assert {k: v.shape for k, v in ours.state_dict().items()} == {
            k: v.shape for k, v in ref.state_dict().items()
        }


def test_grouped_query_attention_equals_repeated_heads():
    """H_kv = 1 shared key/value head == MHA whose k/v projections repeat that head."""
    gen = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    c, h, h_kv, n = 8, 4, 2, 6
    attn = GraphAttention(c, h, num_kv_heads=h_kv).double()
    with torch.no_grad():
        attn.in_proj_bias.normal_(generator=gen)
    d = c // h
    mha = nn.MultiheadAttention(c, h, batch_first=True, kdim=c, vdim=c, dtype=torch.float64)
    rep = lambda t: t.unflatten(0, (h_kv, d)).repeat_interleave(h // h_kv, 0).flatten(0, 1)  # noqa: E731
    with torch.no_grad():
        bq, bk, bv = attn.in_proj_bias.split([c, h_kv * d, h_kv * d])
        mha.in_proj_weight.copy_(
            torch.cat([attn.q_proj_weight, rep(attn.k_proj_weight), rep(attn.v_proj_weight)])
        )
        mha.in_proj_bias.copy_(torch.cat([bq, rep(bk), rep(bv)]))
        mha.out_proj.load_state_dict(attn.out_proj.state_dict())
    graph = TokenGraph.from_dense_mask(make_mask("random", n, n, gen))
    x = torch.randn(2, n, c, dtype=torch.float64, generator=gen)
    ref, ref_w = mha(x, x, x, attn_mask=~graph.to_dense_mask(), average_attn_weights=False)
    out, w = attn(x, graph, need_weights=True)
    assert_close(out, ref)
    assert_close(w, edge_weights(ref_w, graph))
    with pytest.raises(ValueError, match="num_kv_heads"):
        attn.to_torch()


def test_padding_bias_matches_key_padding_mask():
    gen = torch.Generator().manual_seed(4)
    torch.manual_seed(4)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    attn = GraphAttention.from_torch(mha)
    graph = TokenGraph.from_dense_mask(make_mask("full", 5, 5, gen))
    valid = torch.tensor([[True] * 5, [True, True, True, False, False]])
    x = torch.randn(2, 5, 8, generator=gen)
    ref, _ = mha(x, x, x, key_padding_mask=~valid)  # mha: True = ignore
    out, w = attn(x, graph, bias=padding_bias(graph, valid, 2), need_weights=True)
    assert_close(out, ref)
    assert (w[1][valid[1][graph.src] == 0] == 0).all()  # no weight leaves a padding token


def test_dropout_passed_only_in_training(monkeypatch):
    seen = []
    real = attention_module.graph_attention

    def spy(*args, **kwargs):
        seen.append(kwargs["dropout_p"])
        return real(*args, **kwargs)

    monkeypatch.setattr(attention_module, "graph_attention", spy)
    attn = GraphAttention(8, 2, dropout=0.3)
    graph = TokenGraph.from_dense_mask(make_mask("full", 3, 3, None))
    x = torch.randn(3, 8)
    attn.train()(x, graph)
    attn.eval()(x, graph)
    assert seen == [0.3, 0.0]


def test_weights_returned_not_stashed():
    attn = GraphAttention(8, 2)
    graph = TokenGraph.from_dense_mask(make_mask("causal", 4, 4, None))
    out, w = attn(torch.randn(4, 8), graph)
    assert w is None and out.shape == (4, 8)
    _, w = attn(torch.randn(4, 8), graph, need_weights=True)
    assert w.shape == (graph.num_edges, 2)
    assert not [k for k, v in vars(attn).items() if isinstance(v, torch.Tensor)]
    assert_close(w.sum(0), torch.full((2,), 4.0))  # each of the 4 targets sums to 1


def test_gradcheck_float64():
    torch.manual_seed(5)
    attn = GraphAttention(4, 2).double()
    graph = TokenGraph([[0, 0, 1, 2, 1], [0, 1, 1, 1, 2]], num_nodes=3)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: attn(t, graph)[0], (x,))


def test_constructor_errors():
    with pytest.raises(ValueError, match="num_heads=3 must divide embed_dim=8"):
        GraphAttention(8, 3)
    with pytest.raises(ValueError, match="num_kv_heads=3 must divide num_heads=4"):
        GraphAttention(8, 4, num_kv_heads=3)
    with pytest.raises(TypeError, match="embed_dim must be an int"):
        GraphAttention(8.0, 2)
    with pytest.raises(ValueError, match="num_heads must be positive"):
        GraphAttention(8, 0)
    with pytest.raises(ValueError, match="dropout must be in"):
        GraphAttention(8, 2, dropout=1.0)
    with pytest.raises(ValueError, match="add_bias_kv"):
        GraphAttention.from_torch(nn.MultiheadAttention(8, 2, add_bias_kv=True))
    with pytest.raises(TypeError, match="nn.MultiheadAttention"):
        GraphAttention.from_torch(nn.Linear(2, 2))


def test_forward_errors():
    attn = GraphAttention(8, 2, kdim=6, vdim=6)
    self_graph = TokenGraph.from_dense_mask(torch.ones(4, 4, dtype=torch.bool))
    cross = TokenGraph.from_dense_mask(torch.ones(4, 3, dtype=torch.bool))
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match=r"x must have shape \(N, C\) or \(B, N, C\)"):
        attn(torch.randn(8), self_graph)
    with pytest.raises(ValueError, match=r"embed_dim=8 features .* got shape \(4, 7\)"):
        attn(torch.randn(4, 7), self_graph)
    with pytest.raises(TypeError, match="graph must be a TokenGraph"):
        attn(x, torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="num_nodes=4 targets but x has 5 tokens"):
        attn(torch.randn(5, 8), self_graph)
    with pytest.raises(ValueError, match="cross graph .* pass its source tokens as context"):
        attn(x, cross)
    with pytest.raises(ValueError, match="num_src_nodes=3 sources but context has 2 tokens"):
        attn(x, cross, context=torch.randn(2, 6))
    with pytest.raises(ValueError, match=r"6 features .*\(kdim\)"):
        attn(x, cross, context=torch.randn(3, 8))
    with pytest.raises(ValueError, match=r"context key must have shape \(B=2, M, 6\)"):
        attn(torch.randn(2, 4, 8), cross, context=torch.randn(3, 3, 6))
    with pytest.raises(ValueError, match="same number of tokens"):
        attn(x, cross, context=(torch.randn(3, 6), torch.randn(2, 6)))
    with pytest.raises(TypeError, match="context must be a tensor"):
        attn(x, cross, context=[torch.randn(3, 6)])
    with pytest.raises(TypeError, match="context key must be floating-point"):
        attn(x, cross, context=torch.ones(3, 6, dtype=torch.long))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        attn(torch.ones(4, 8, dtype=torch.long), self_graph)
    with pytest.raises(ValueError, match=r"valid must have shape \(B, M=4\)"):
        padding_bias(self_graph, torch.ones(2, 3, dtype=torch.bool), 2)


def test_mha_equivalence_example_runs(capsys):
    runpy.run_path(str(ROOT / "examples" / "mha_equivalence.py"), run_name="__main__")
    assert "max |difference|" in capsys.readouterr().out


def test_modules_doc_examples_run():
    text = (ROOT / "docs" / "modules.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 5
    for k, block in enumerate(blocks):
        exec(compile(block, f"docs/modules.md block {k}", "exec"), {})


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_per_head_graphs_match_mha_with_per_head_masks(dtype):
    gen = torch.Generator().manual_seed(6)
    torch.manual_seed(6)
    b, n, c, h = 2, 5, 8, 2
    mha = nn.MultiheadAttention(c, h, batch_first=True, dtype=dtype)
    attn = GraphAttention.from_torch(mha)
    graphs = [TokenGraph.from_dense_mask(make_mask(k, n, n, gen)) for k in ("causal", "random")]
    masks = torch.stack([g.to_dense_mask() for g in graphs])  # (H, N, N)
    x = torch.randn(b, n, c, dtype=dtype, generator=gen)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    # mha takes a 3-d mask (B*H, N, M), batch-major, True = blocked
    ref, ref_w = mha(x1, x1, x1, attn_mask=~masks.repeat(b, 1, 1), average_attn_weights=False)
    out, weights = attn(x2, graphs, need_weights=True)
    assert_close(out, ref)
    assert len(weights) == h
    for head, (g, w) in enumerate(zip(graphs, weights, strict=True)):
        assert_close(w, ref_w[:, head, g.dst, g.src])  # (B, E_h)
    g_out = torch.randn(ref.shape, dtype=dtype, generator=gen)
    (ref * g_out).sum().backward()
    (out * g_out).sum().backward()
    assert_close(grads(attn, x2), grads(mha, x1))
    with pytest.raises(ValueError, match=r"one graph per head \(num_heads=2\), got 3"):
        attn(x, graphs + graphs[:1])
    with pytest.raises(ValueError, match=r"graph\[1\] has num_nodes=4"):
        attn(x, [graphs[0], TokenGraph.from_dense_mask(make_mask("full", 4, 4, gen))])


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_permuting_tokens_permutes_outputs(n, seed):
    gen = torch.Generator().manual_seed(seed)
    attn = GraphAttention(4, 2).double()
    # a random graph that may leave some targets without any incoming edge
    graph = TokenGraph.from_dense_mask(torch.rand(n, n, generator=gen) < 0.5)
    x = torch.randn(n, 4, dtype=torch.float64, generator=gen)
    perm = torch.randperm(n, generator=gen)
    out, w = attn(x, graph, need_weights=True)
    out_p, _ = attn(x[perm], graph.permute(perm))
    assert_close(out_p, out[perm])
    # weights sum to 1 over each target's incoming edges; an isolated target's attention
    # output is exactly zero, so the module gives out_proj's bias there
    sums = torch.zeros(n, 2, dtype=w.dtype).index_add_(0, graph.dst, w)  # (N, H)
    has_edge = graph.in_degree() > 0
    assert_close(sums[has_edge], torch.ones(int(has_edge.sum()), 2, dtype=w.dtype))
    bias_only = attn.out_proj.bias.expand(n, -1)[~has_edge]
    assert torch.equal(out[~has_edge], bias_only)


def test_half_precision_runs_close_to_float32():
    torch.manual_seed(7)
    attn = GraphAttention(16, 4)
    graph = TokenGraph.from_dense_mask(make_mask("causal", 6, 6, None))
    x = torch.randn(2, 6, 16)
    ref, _ = attn(x, graph)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # float32 module, bfloat16 compute
        out, _ = attn(x, graph)
    assert out.dtype == torch.bfloat16
    assert_close(out.float(), ref, atol=5e-2, rtol=5e-2)
    out, w = attn.to(torch.bfloat16)(x.bfloat16(), graph, need_weights=True)
    assert out.dtype == torch.bfloat16 and w.dtype == torch.float32
    assert_close(out.float(), ref, atol=5e-2, rtol=5e-2)


def test_batched_graphs_equal_separate_runs():
    """Different graphs per sequence: TokenGraph.batch over concatenated tokens."""
    gen = torch.Generator().manual_seed(8)
    torch.manual_seed(8)
    attn = GraphAttention(8, 2).double()
    graphs = [TokenGraph.from_dense_mask(make_mask(k, n, n, gen))
              for k, n in (("causal", 3), ("random", 5), ("full", 2))]
    xs = [torch.randn(g.num_nodes, 8, dtype=torch.float64, generator=gen) for g in graphs]
    out, w = attn(torch.cat(xs), TokenGraph.batch(graphs), need_weights=True)  # (10, 8)
    separate = [attn(x, g, need_weights=True) for x, g in zip(xs, graphs, strict=True)]
    assert_close(out, torch.cat([o for o, _ in separate]))
    assert_close(w, torch.cat([sw for _, sw in separate]))  # batch keeps edges in member order
