"""Contributions computed slice by slice equal the whole computation (memory at length)."""

import pytest
import torch

import graphattn.flow.blocks as blocks
import graphattn.flow.decompose as decompose
from graphattn import GraphLM, GraphTransformer, patterns
from graphattn.flow import contributions


@pytest.mark.parametrize("method", ["alti", "globenc", "value_zeroing", "grad_attention"])
@pytest.mark.parametrize("model", ["lm", "post-LN"])
def test_tiny_slices_give_the_same_contributions(monkeypatch, method, model):
    torch.manual_seed(0)
    if model == "lm":
        net = GraphLM(30, 8, 2, 2, max_len=12).double().eval()
        inputs, graph = torch.randint(0, 30, (2, 12)), patterns.sliding_window(12, 4)
    else:
        net = GraphTransformer(8, 2, 2, norm_first=False).double().eval()
        inputs, graph = torch.randn(2, 12, 8, dtype=torch.float64), patterns.bigbird(12, 2, 1, 1)
    whole = contributions(net, inputs, method, graph)
    # a few values per slice: every target chunk holds one target, every edge slice a few edges
    monkeypatch.setattr(blocks, "TERM_ELEMENTS", 40)
    monkeypatch.setattr(decompose, "TERM_ELEMENTS", 40)
    sliced = contributions(net, inputs, method, graph)
    for (g, c), (g1, c1) in zip(whole, sliced, strict=True):
        assert g == g1
        torch.testing.assert_close(c1, c, rtol=1e-12, atol=1e-12)


def _block(graph, seed):
    gen = torch.Generator().manual_seed(seed)
    b, h, c, n, m = 2, 3, 5, graph.num_nodes, graph.num_src_nodes
    return blocks.AttentionBlock(
        graph=graph,
        weights=torch.rand(b, graph.num_edges, h, generator=gen, dtype=torch.float64),
        values=torch.randn(b, m, h, c, generator=gen, dtype=torch.float64).transpose(1, 2)
        .contiguous().transpose(1, 2),  # a permuted layout, as an einsum gives  # fmt: skip
        residual=torch.randn(b, n, c, generator=gen, dtype=torch.float64),
        out_bias=None, norm1=None, ffn=lambda x: x, norm2=None,
    )  # fmt: skip


@pytest.mark.parametrize("slice_values", [10**6, 40, 7])
@pytest.mark.parametrize("name", ["causal", "window", "random", "cross"])
def test_edge_terms_and_attention_output_equal_the_per_edge_sum(monkeypatch, name, slice_values):
    """Dense blocks (causal, window) and gathered edges (random, sparse cross) alike."""
    graph = {
        "causal": lambda: patterns.causal(40),
        "window": lambda: patterns.sliding_window(40, 6),
        "random": lambda: patterns.random(40, 3, seed=1),
        "cross": lambda: patterns.get("cross_window", 30, n_src=50, window=3),
    }[name]()
    block = _block(graph, seed=len(name))
    expected = torch.einsum("beh,behc->bec", block.weights, block.values[:, graph.src])
    out = torch.zeros(2, graph.num_nodes, 5, dtype=torch.float64).index_add_(1, graph.dst, expected)
    monkeypatch.setattr(blocks, "TERM_ELEMENTS", slice_values)
    torch.testing.assert_close(block.edge_terms(), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(block.edge_terms(5, 17), expected[:, 5:17], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(block.attention_output(), out, rtol=1e-12, atol=1e-12)
