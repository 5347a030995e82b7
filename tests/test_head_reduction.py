"""Weights reduced over heads by the attention call (graph_attention(head_reduction=)).

Oracle: the reference backend's per-head weights reduced by
``graphattn.flow.aggregate_heads`` (``"norm"`` with every head's values in its
own block of a concatenated model space, where ``|| sum_h a_h v_h ||`` is the
norm over heads of ``a_h ||v_h||``), on the graphs whose weights the block
kernel reduces as it computes them (full, causal: several rows per batch, one
row per batch) and on graphs it reduces after (a window; logits whose
log-sum-exp is too large for the fused path; a gradient).
"""

import math

import pytest
import torch

from graphattn import TokenGraph, graph_attention, patterns
from graphattn.backends import KernelCall
from graphattn.backends.heads import HEAD_REDUCTIONS
from graphattn.backends.structured import structured_attention
from graphattn.flow import aggregate_heads


def qkv(b, n, h, d, seed, scale=1.0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(b, n, h, d, generator=gen, dtype=dtype) * scale
    k, v = (torch.randn(b, n, h, d, generator=gen, dtype=dtype) for _ in range(2))
    return q, k, v


def reduced_oracle(w, mode, v, g):
    """``aggregate_heads`` of per-head weights ``(B, E, H)``, example by example: ``(B, E)``."""
    if mode != "norm":
        return aggregate_heads(w, mode)
    b, m, h, d = v.shape
    blocks = v.new_zeros(b, m, h, h * d)  # head h's value in its own block of the model space
    for i in range(h):
        blocks[:, :, i, i * d : (i + 1) * d] = v[:, :, i]
    return aggregate_heads(w, "norm", values=blocks, graph=g)


GRAPHS = {
    "causal": lambda n: patterns.causal(n),
    "full": lambda n: patterns.full(n),
    "window": lambda n: patterns.sliding_window(n, 9),
}


@pytest.mark.parametrize("mode", HEAD_REDUCTIONS)
@pytest.mark.parametrize("graph", sorted(GRAPHS))
@pytest.mark.parametrize("chunk", [1, 500, 2**22])  # one row, a few rows, every row per batch
@pytest.mark.parametrize("logits", [1.0, 40.0])  # 40: |lse| too large, the exact tile path
def test_reduced_weights_equal_the_reference_weights_reduced(mode, graph, chunk, logits):
    from graphattn.backends.block import block_attention

    g = GRAPHS[graph](60)
    q, k, v = qkv(2, 60, 3, 8, seed=1, scale=logits)
    call = KernelCall(q, k, v, g, scale=0.35, return_weights=True, head_reduction=mode)
    out, w = graph_attention(q, k, v, g, scale=0.35, return_weights=True, head_reduction=mode,
                             backend="block")  # fmt: skip
    ref_out, ref_w = graph_attention(*(x.double() for x in (q, k, v)), g, scale=0.35,
                                     backend="reference", return_weights=True)  # fmt: skip
    want = reduced_oracle(ref_w, mode, v.double(), g).float()  # (B, E)
    tol = {"rtol": 1e-5, "atol": 2e-6} if logits == 1.0 else {"rtol": 1e-4, "atol": 5e-5}
    assert w.shape == (2, g.num_edges)
    torch.testing.assert_close(w, want, **tol)
    torch.testing.assert_close(out, ref_out.float(), **tol)
    kernel_out, kernel_w = block_attention(call, chunk_elements=chunk)  # the kernel alone
    fused = graph != "window" and logits == 1.0  # reduced inside the kernel
    assert kernel_w.dim() == (2 if fused else 3)
    got = kernel_w if fused else reduced_oracle(kernel_w.double(), mode, v.double(), g).float()
    torch.testing.assert_close(got, want, **tol)


@pytest.mark.parametrize("mode", HEAD_REDUCTIONS)
@pytest.mark.parametrize("pattern", ["causal", "full"])
def test_the_fused_reduction_is_exact_in_float64(mode, pattern):
    g = patterns.get(pattern, 40)
    q, k, v = qkv(1, 40, 4, 6, seed=2, dtype=torch.float64)
    call = KernelCall(q, k, v, g, scale=0.5, return_weights=True, head_reduction=mode)
    _, w = structured_attention(call, chunk_elements=300)  # (B, E): reduced as computed
    scores = torch.einsum("bnhd,bmhd->bhnm", q, k) * 0.5
    dense = scores.masked_fill(~g.to_dense_mask(), -math.inf).softmax(-1)  # (B, H, N, M)
    per_head = dense[:, :, g.dst, g.src].transpose(1, 2)  # (B, E, H)
    torch.testing.assert_close(w, reduced_oracle(per_head, mode, v, g), rtol=1e-12, atol=1e-14)


def test_a_full_cross_graph_and_an_unbatched_call_reduce_to_one_weight_per_edge():
    g = TokenGraph.from_dense_mask(torch.ones(5, 9, dtype=torch.bool))
    gen = torch.Generator().manual_seed(3)
    q, k, v = torch.randn(5, 2, 4, generator=gen), *torch.randn(2, 9, 2, 4, generator=gen)
    _, w = graph_attention(q, k, v, g, return_weights=True, head_reduction="mean")
    _, ref = graph_attention(q, k, v, g, return_weights=True, backend="reference")
    assert w.shape == (g.num_edges,)
    torch.testing.assert_close(w, ref.mean(-1))


@pytest.mark.parametrize("backend", ["reference", "edge", "dense", "block"])
@pytest.mark.parametrize("mode", HEAD_REDUCTIONS)
def test_every_backend_reduces_and_the_gradient_flows_through_the_reduction(backend, mode):
    g = patterns.sliding_window(24, 5)
    q, k, v = (x.requires_grad_() for x in qkv(2, 24, 3, 4, seed=4, dtype=torch.float64))
    _, w = graph_attention(q, k, v, g, return_weights=True, head_reduction=mode, backend=backend)
    grads = torch.autograd.grad(w.square().sum(), (q, k, v), materialize_grads=True)
    _, per_head = graph_attention(q, k, v, g, return_weights=True, backend="reference")
    want = reduced_oracle(per_head, mode, v, g)
    want_grads = torch.autograd.grad(want.square().sum(), (q, k, v), materialize_grads=True)
    torch.testing.assert_close(w, want)
    for got, ref in zip(grads, want_grads, strict=True):
        torch.testing.assert_close(got, ref)


def test_gradcheck_of_the_mean_weights_in_float64():
    g = patterns.causal(6)
    q, k, v = (x.requires_grad_() for x in qkv(1, 6, 2, 3, seed=5, dtype=torch.float64))

    def mean_weights(q, k, v):
        return graph_attention(q, k, v, g, return_weights=True, head_reduction="mean")[1]

    assert torch.autograd.gradcheck(mean_weights, (q, k, v))


@pytest.mark.parametrize("mode", HEAD_REDUCTIONS)
@pytest.mark.parametrize("pattern", ["causal", "window"])
def test_non_finite_inputs_make_the_reduced_weights_of_the_targets_that_read_them_nan(
    mode, pattern
):
    g = patterns.causal(12) if pattern == "causal" else patterns.sliding_window(12, 4)
    q, k, v = qkv(1, 12, 3, 4, seed=6)
    k[0, 5, 1, 2] = math.nan  # key 5, head 1: every target that reads 5 has a NaN score in head 1
    v[0, 8, 0, 0] = math.inf  # a bad value leaves the weights finite
    _, w = graph_attention(q, k, v, g, return_weights=True, head_reduction=mode)
    _, per_head = graph_attention(q, k, v, g, return_weights=True, backend="reference")
    if mode == "norm":  # the norm reads the values: |inf| at source 8's edges
        want = reduced_oracle(per_head, mode, v.nan_to_num(posinf=math.inf), g)
    else:
        want = aggregate_heads(per_head, mode)
    reads_5 = g.dst.unsqueeze(0) == g.dst[g.src == 5].unique().unsqueeze(1)  # (T, E)
    assert bool(w[0, reads_5.any(0)].isnan().all())
    torch.testing.assert_close(w, want, equal_nan=True)


def test_bad_head_reductions_are_refused_before_any_work():
    g = patterns.causal(4)
    q = k = v = torch.zeros(4, 2, 3)
    with pytest.raises(ValueError, match=r"head_reduction must be None or one of .*'sum'"):
        graph_attention(q, k, v, g, return_weights=True, head_reduction="sum")
    with pytest.raises(TypeError, match="head_reduction must be None or a string, got int"):
        graph_attention(q, k, v, g, return_weights=True, head_reduction=1)
    with pytest.raises(ValueError, match="set return_weights=True"):
        graph_attention(q, k, v, g, head_reduction="mean")
    with pytest.raises(ValueError, match="one graph for every head"):
        graph_attention(q, k, v, [g, g], return_weights=True, head_reduction="max")
