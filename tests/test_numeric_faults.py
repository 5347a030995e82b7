"""Numeric faults found by the hardening read (issue 17): -inf rows, empty graphs."""

import math

import pytest
import torch

from graphattn import graph_attention
from graphattn.backends.base import segment_softmax
from graphattn.graph import TokenGraph
from graphattn.variants import COSINE, LINEAR, SIGMOID, AttentionVariant, linear, variant_attention

CPU_BACKENDS = ["reference", "edge", "dense", "block", "split"]
BIAS_BACKENDS = ["reference", "edge", "dense", "block"]  # split takes no bias


@pytest.mark.parametrize("backend", BIAS_BACKENDS)
def test_a_target_whose_edges_are_all_minus_inf_has_zero_finite_gradients(backend):
    g = TokenGraph([[0], [0]])  # one node, one self edge
    q = torch.ones(1, 1, 1, requires_grad=True)
    k = torch.ones(1, 1, 1, requires_grad=True)
    v = torch.full((1, 1, 1), 5.0, requires_grad=True)
    bias = torch.tensor([[-math.inf]], requires_grad=True)
    out = graph_attention(q, k, v, g, bias=bias, backend=backend)
    grads = torch.autograd.grad(out.sum(), (q, k, v, bias))
    assert out.item() == 0.0
    for grad in grads:
        assert torch.equal(grad, torch.zeros_like(grad)), backend


def test_segment_softmax_has_no_nan_gradient_for_all_minus_inf_targets():
    score = torch.tensor([1.0, -math.inf, -math.inf, 2.0]).view(1, 4, 1).requires_grad_()
    w = segment_softmax(score, torch.tensor([0, 1, 1, 2]), 4)
    (grad,) = torch.autograd.grad((w * 10.0).sum(), score)
    assert torch.isfinite(grad).all()
    assert w.flatten().tolist() == [1.0, 0.0, 0.0, 1.0]


def test_variant_softmax_and_linear_have_no_nan_gradient_for_minus_inf_or_zero_rows():
    g = TokenGraph([[0, 1], [0, 1]])

    def minus_inf(q_i, k_j, edges):
        return (q_i * k_j).sum(-1) * 10.0 - math.inf  # (B, E, H): every edge removed

    q = torch.full((1, 2, 1, 2), 10.0, requires_grad=True)
    out = variant_attention(q, q, q, g, AttentionVariant("off", minus_inf))
    (grad,) = torch.autograd.grad(out.sum(), q)
    assert torch.equal(out, torch.zeros_like(out)) and torch.equal(grad, torch.zeros_like(grad))
    score = torch.zeros(1, 2, 1, requires_grad=True)
    (grad,) = torch.autograd.grad(linear(score, torch.tensor([0, 1]), 2).sum(), score)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_a_graph_without_edges_gives_zero_outputs_and_zero_gradients(backend):
    g = TokenGraph(torch.zeros(2, 0, dtype=torch.long), 3)
    q, k, v = (torch.randn(3, 2, 4, requires_grad=True) for _ in range(3))
    bias = None if backend == "split" else torch.zeros(0, 2, requires_grad=True)
    out = graph_attention(q, k, v, g, bias=bias, backend=backend)
    leaves = (q, k, v) if bias is None else (q, k, v, bias)
    grads = torch.autograd.grad(out.sum(), leaves)
    assert torch.equal(out, torch.zeros_like(out))
    for leaf, grad in zip(leaves, grads, strict=True):
        assert grad is not None and grad.shape == leaf.shape, backend
        assert torch.equal(grad, torch.zeros_like(grad)), backend


@pytest.mark.parametrize("variant", [COSINE, LINEAR, SIGMOID], ids=lambda v: v.name)
def test_variants_on_a_graph_without_edges_give_zero_gradients(variant):
    g = TokenGraph(torch.zeros(2, 0, dtype=torch.long), 3)
    q = torch.randn(1, 3, 2, 4, requires_grad=True)
    out = variant_attention(q, q, q, g, variant)
    (grad,) = torch.autograd.grad(out.sum(), q)
    assert torch.equal(out, torch.zeros_like(out)) and torch.equal(grad, torch.zeros_like(grad))
