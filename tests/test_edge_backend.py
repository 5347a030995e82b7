"""The edge backend: chunk plans, chunked results and its memory-saving backward."""

import math

import pytest
import torch

from graphattn import graph_attention
from graphattn.backends import KernelCall
from graphattn.backends.edge import edge_attention, edge_chunks
from graphattn.graph import TokenGraph


def inputs(b, n, m, h, d, dv, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()
        for shape in ((b, n, h, d), (b, m, h, d), (b, m, h, dv))
    )


def band(n, width):
    """Causal band: target i attends to i-width+1 .. i."""
    dst = torch.arange(n).repeat_interleave(width)  # (n * width,)
    src = dst - torch.arange(width).repeat(n)  # (n * width,)
    keep = src >= 0
    return TokenGraph(torch.stack([src[keep], dst[keep]]), n)


def run(q, k, v, g, chunk_elements, bias=None, dropout_p=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return edge_attention(
        KernelCall(q, k, v, g, scale=0.5, bias=bias, return_weights=True, dropout_p=dropout_p,
                   generator=gen),
        chunk_elements=chunk_elements,
    )  # fmt: skip


def test_chunk_plan_holds_whole_targets_and_covers_every_edge():
    g = band(10, 3)
    for max_edges in (1, 2, 3, 5, 7, 100):
        runs = edge_chunks(g, max_edges)
        assert runs[0][0] == 0 and runs[-1][1] == 10
        assert runs[0][2] == 0 and runs[-1][3] == g.num_edges
        for (t_lo, t_hi, e_lo, e_hi), nxt in zip(runs, runs[1:] + [None], strict=True):
            assert t_lo < t_hi
            assert (e_lo, e_hi) == (int(g.indptr[t_lo]), int(g.indptr[t_hi]))
            assert e_hi - e_lo <= max_edges or t_hi - t_lo == 1  # oversize target alone
            if nxt is not None:
                assert nxt[0] == t_hi
    assert edge_chunks(g, 3) is edge_chunks(g, 3)  # cached while the graph lives
    with pytest.raises(ValueError, match="max_edges must be >= 1"):
        edge_chunks(g, 0)


@pytest.mark.parametrize("chunk_elements", [1, 7, 50, 10**6])
def test_chunked_results_equal_the_reference(chunk_elements):
    mask = torch.rand(12, 9, generator=torch.Generator().manual_seed(1)) < 0.4
    mask[3] = False
    g = TokenGraph.from_dense_mask(mask)
    q, k, v = inputs(2, 12, 9, 2, 3, 4, seed=1)
    bias = torch.randn(g.num_edges, 2, dtype=torch.float64, requires_grad=True)
    out, w = run(q, k, v, g, chunk_elements, bias=bias.expand(2, -1, -1))
    ref, w_ref = graph_attention(q, k, v, g, scale=0.5, bias=bias, backend="reference",
                                 return_weights=True)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(w, w_ref)
    cot = torch.randn(out.shape, dtype=torch.float64)
    cot_w = torch.randn(w.shape, dtype=torch.float64)
    mine = torch.autograd.grad((out * cot).sum() + (w * cot_w).sum(), (q, k, v, bias))
    theirs = torch.autograd.grad((ref * cot).sum() + (w_ref * cot_w).sum(), (q, k, v, bias))
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a, b)


def test_gradcheck_with_small_chunks_bias_and_returned_weights():
    g = band(6, 3)
    q, k, v = inputs(1, 6, 6, 2, 2, 3, seed=2)
    bias = torch.randn(1, g.num_edges, 2, dtype=torch.float64, requires_grad=True)
    f = lambda *t: run(*t[:3], g, 8, bias=t[3])  # noqa: E731
    assert torch.autograd.gradcheck(f, (q, k, v, bias), fast_mode=True)


def test_gradcheck_with_dropout_uses_the_same_mask_in_backward():
    g = band(6, 4)
    q, k, v = inputs(1, 6, 6, 1, 2, 2, seed=3)
    f = lambda *t: run(*t, g, 6, dropout_p=0.4, seed=5)  # noqa: E731
    assert torch.autograd.gradcheck(f, (q, k, v), fast_mode=True)


def test_backward_saves_no_edge_by_dim_tensor():
    """Only q, k, v, the per-edge weights (and dropout mask) are kept for backward."""
    g = band(64, 16)
    b, h, d = 2, 2, 8
    q, k, v = inputs(b, 64, 64, h, d, d, seed=4)
    saved = []

    def pack(t):
        saved.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out, _ = run(q, k, v, g, chunk_elements=256, dropout_p=0.1)
    allowed = {tuple(q.shape), tuple(k.shape), tuple(v.shape), (b, h, g.num_edges)}
    assert saved and set(saved) <= allowed
    assert max(math.prod(s) for s in saved) < g.num_edges * h * d
    out.sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_a_target_with_more_edges_than_the_budget_is_one_chunk():
    g = TokenGraph.from_dense_mask(torch.ones(3, 40, dtype=torch.bool))
    q, k, v = inputs(1, 3, 40, 1, 2, 2, seed=6)
    out, w = run(q, k, v, g, chunk_elements=4)
    ref, w_ref = graph_attention(q, k, v, g, scale=0.5, backend="reference", return_weights=True)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(w, w_ref)


def test_long_sparse_graph_runs_in_bounded_chunks():
    """A 20,000-token band: linear in N, far below the dense N x N size."""
    n = 20_000
    g = band(n, 8)
    gen = torch.Generator().manual_seed(7)
    q, k, v = (torch.randn(1, n, 2, 8, generator=gen).requires_grad_() for _ in range(3))
    out = graph_attention(q, k, v, g, backend="edge")
    out[:, ::97].sum().backward()
    ref = graph_attention(q[:, :200].detach(), k[:, :200].detach(), v[:, :200].detach(),
                          g.subgraph(range(200)), backend="reference")
    torch.testing.assert_close(out[:, :200].detach(), ref)
    assert torch.isfinite(k.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_edge_backward_on_cuda_matches_cpu():
    g = band(50, 7)
    q, k, v = inputs(2, 50, 50, 2, 4, 4, seed=8)
    cpu = torch.autograd.grad(graph_attention(q, k, v, g, backend="edge").sum(), (q, k, v))
    qc, kc, vc = (t.detach().cuda().requires_grad_() for t in (q, k, v))
    out = graph_attention(qc, kc, vc, g, backend="edge")
    assert out.device.type == "cuda"
    for a, b in zip(torch.autograd.grad(out.sum(), (qc, kc, vc)), cpu, strict=True):
        torch.testing.assert_close(a.cpu(), b)
