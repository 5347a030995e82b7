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


# token 0 reads only itself; 1 reads 0 and 1; 2 reads itself: a NaN at token 1 reaches target 1
NAN_GRAPH = TokenGraph([[0, 0, 1, 2], [0, 1, 1, 2]], 3)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("where", ["q", "k", "v"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_non_finite_token_reaches_exactly_the_targets_that_read_it(backend, where, value):
    torch.manual_seed(0)
    t = {name: torch.randn(1, 3, 2, 4) for name in "qkv"}
    t[where][0, 1, 0, 2] = value  # head 0 of token 1
    out = graph_attention(t["q"], t["k"], t["v"], NAN_GRAPH, backend=backend)  # (1, 3, 2, 4)
    ref = graph_attention(t["q"], t["k"], t["v"], NAN_GRAPH, backend="reference")
    assert not torch.isfinite(out[0, 1, 0]).all(), backend  # target 1 reads token 1
    clean = torch.ones(3, 2, dtype=torch.bool)
    clean[1, 0] = False
    torch.testing.assert_close(out[0][clean], ref[0][clean])  # other targets and heads: exact


def test_flex_eager_keeps_a_nan_to_the_targets_that_read_it():
    from graphattn.backends import KernelCall
    from graphattn.backends.flex import flex_attention_kernel

    for where in "kv":
        t = {name: torch.randn(1, 3, 2, 4) for name in "qkv"}
        t[where][0, 1, 0, 2] = math.nan
        call = KernelCall(t["q"], t["k"], t["v"], NAN_GRAPH, scale=0.5)
        out, _ = flex_attention_kernel(call, compiled=False)
        expected = torch.zeros(3, 2, dtype=torch.bool)
        expected[1, 0] = True
        assert torch.equal(out[0].isnan().any(-1), expected), where


# Large logits: q and k near `mag` make scores of about mag**2 * sqrt(D) (up to ~3e4 here, the
# range float32 and bf16 attention meets before logits are capped), all close to each other.
def _large_logit_errors(backend, graph, mag, dtype):
    gen = torch.Generator().manual_seed(int(mag))
    n, m = graph.num_nodes, graph.num_src_nodes
    q = mag + torch.randn(n, 2, 8, generator=gen)
    k = mag + torch.randn(m, 2, 8, generator=gen)
    v = torch.randn(m, 2, 8, generator=gen)
    cot = torch.randn(n, 2, 8, generator=gen, dtype=torch.float64)
    exact = [t.to(dtype).double().requires_grad_() for t in (q, k, v)]
    o64, w64 = graph_attention(*exact, graph, backend="reference", return_weights=True)
    g64 = torch.autograd.grad((o64 * cot).sum(), exact)
    errors = {}
    for name in (backend, "reference"):
        ins = [t.to(dtype).requires_grad_() for t in (q, k, v)]
        weights = name != "split"
        res = graph_attention(*ins, graph, backend=name, return_weights=weights)
        out, w = res if weights else (res, None)
        grads = torch.autograd.grad((out.double() * cot).sum(), ins)
        natural = [8**-0.5 * mag * 12, 8**-0.5 * mag * 12, 3.0]  # sizes of dq, dk, dv
        errors[name] = [(out.double() - o64).abs().max().item()] + [
            (a.double() - b).abs().max().item() / s
            for a, b, s in zip(grads, g64, natural, strict=True)
        ]
        if w is not None:
            sums = torch.zeros(n, 2, dtype=torch.float64).index_add(0, graph.dst, w.double())
            assert (sums[sums > 0] - 1).abs().max() < 1e-5, (name, mag)
    return errors[backend], errors["reference"]


LARGE_GRAPHS = {
    "random": lambda: TokenGraph.from_dense_mask(
        torch.rand(40, 40, generator=torch.Generator().manual_seed(1)) < 0.5
    ),
    "cross": lambda: TokenGraph.from_dense_mask(
        torch.rand(5, 3, generator=torch.Generator().manual_seed(2)) < 0.8
    ),
}


@pytest.mark.parametrize("backend", ["block", "split", "dense", "edge"])
@pytest.mark.parametrize("graph", list(LARGE_GRAPHS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_weights_and_gradients_stay_as_accurate_as_the_reference_at_large_logits(
    backend, graph, dtype
):
    g = LARGE_GRAPHS[graph]()
    for mag in (3.0, 30.0, 100.0):
        mine, ref = _large_logit_errors(backend, g, mag, dtype)
        for a, b, what in zip(mine, ref, ("out", "dq", "dk", "dv"), strict=True):
            assert a <= 10 * b + 1e-5, (backend, mag, what, a, b)


def _plain_grads(name, dtype, q, k, v, g, cot):
    leaves = [t.to(dtype).requires_grad_() for t in (q, k, v)]
    out = graph_attention(*leaves, g, backend=name)
    return [x.double() for x in torch.autograd.grad((out.double() * cot).sum(), leaves)]


@pytest.mark.parametrize("backend", ["block", "split"])
def test_plain_attention_gradients_at_large_logits_match_the_reference(backend):
    # no bias, no weights: the path where block (and split's block part) may use the fused
    # CPU kernels, whose float32 log-sum-exp is too coarse for scores of ~1e3 and more
    g = TokenGraph.from_dense_mask(
        torch.rand(100, 100, generator=torch.Generator().manual_seed(0)) < 0.6
    )
    for mag in (10.0, 30.0):
        gen = torch.Generator().manual_seed(int(mag))
        q, k = (mag + torch.randn(2, 100, 2, 8, generator=gen, dtype=torch.float64)).unbind(0)
        v = torch.randn(100, 2, 8, generator=gen, dtype=torch.float64)
        cot = torch.randn(100, 2, 8, generator=gen, dtype=torch.float64)

        inputs = (q, k, v, g, cot)
        truth = _plain_grads("reference", torch.float64, *inputs)
        ref = _plain_grads("reference", torch.float32, *inputs)
        mine = _plain_grads(backend, torch.float32, *inputs)
        for a, r, t in zip(mine, ref, truth, strict=True):
            assert (a - t).abs().max() <= 3 * (r - t).abs().max() + 1e-6, (backend, mag)


def test_a_float16_cross_graph_with_inputs_near_1e4_keeps_its_value_gradient():
    g = TokenGraph.from_dense_mask(
        torch.rand(5, 3, generator=torch.Generator().manual_seed(0)) < 0.8
    )
    gen = torch.Generator().manual_seed(1)
    q = (1e4 * torch.rand(5, 1, 3, generator=gen)).half()
    k = (1e4 * torch.rand(3, 1, 3, generator=gen)).half()
    v = torch.randn(3, 1, 3, generator=gen).half()
    dvs = {}
    for backend in CPU_BACKENDS:
        leaf = v.clone().requires_grad_()
        out = graph_attention(q, k, leaf, g, backend=backend)
        (dvs[backend],) = torch.autograd.grad(out.float().sum(), leaf)
    for backend in CPU_BACKENDS:
        assert torch.equal(dvs[backend], dvs["reference"]), (backend, dvs[backend])
