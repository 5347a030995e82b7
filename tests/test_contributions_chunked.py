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
