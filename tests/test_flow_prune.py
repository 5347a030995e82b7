"""Tests of graphattn.flow.prune and of flow over pruned layers (``dropped=``)."""

from __future__ import annotations

import pytest
import torch

from graphattn.flow import attention_flow, attention_rollout, flow_graph, top_paths
from graphattn.flow.prune import prune_top_k, segment_top_k
from graphattn.graph import TokenGraph


def causal_layers(n, num_layers, heads, seed):
    """Causal graphs with softmax weights ``(E, H)`` (float64), one per layer."""
    gen = torch.Generator().manual_seed(seed)
    g = TokenGraph.from_dense_mask(torch.ones(n, n, dtype=torch.bool).tril(), cross=False)
    out = []
    for _ in range(num_layers):
        s = torch.randn(g.num_edges, heads, generator=gen, dtype=torch.float64) * 2  # (E, H)
        dense = torch.full((n, n, heads), -torch.inf, dtype=torch.float64)
        dense[g.dst, g.src] = s
        out.append((g, dense.softmax(1)[g.dst, g.src]))  # (E, H)
    return out


def dense_matrix(g, w_edge, n):
    """``W[i, j]`` of edge ``j -> i`` from per-edge values ``(E,)``."""
    return torch.zeros(n, n, dtype=w_edge.dtype).index_put((g.dst, g.src), w_edge)


@pytest.mark.parametrize("budget", [1, 7, 1 << 22])  # one row per chunk, a few, all
@pytest.mark.parametrize(
    "degrees", [[0, 3, 1, 0, 12, 2, 5], [6, 6, 6, 6, 6]]  # a wide segment, empty ones; all equal
)
def test_segment_top_k_matches_a_sort_per_segment(budget, degrees):
    gen = torch.Generator().manual_seed(0)
    degree, n = torch.tensor(degrees), len(degrees)
    indptr = torch.cat([torch.zeros(1, dtype=torch.long), degree.cumsum(0)])
    score = torch.rand(2, int(indptr[-1]), generator=gen, dtype=torch.float64)  # (B, E)
    values, index = segment_top_k(indptr, score, 4, budget=budget)
    assert values.shape == index.shape == (2, n, 4)
    for b in range(2):
        for i in range(n):
            entries = range(int(indptr[i]), int(indptr[i + 1]))
            best = sorted(entries, key=lambda e: -float(score[b, e]))[:4]
            assert index[b, i, : len(best)].tolist() == best
            assert bool((index[b, i, len(best) :] == -1).all())
            assert values[b, i, : len(best)].tolist() == score[b, best].tolist()


def test_prune_keeps_the_top_k_of_every_target_and_sums_the_rest():
    ((g, w),) = causal_layers(9, 1, 3, seed=1)
    p = prune_top_k(g, w, 3)
    mean = w.mean(1)
    kept = set(zip(p.graph.src.tolist(), p.graph.dst.tolist(), strict=True))
    for i in range(9):
        into = (g.dst == i).nonzero().squeeze(1)
        top = into[torch.argsort(-mean[into], stable=True)[:3]]
        assert {(int(g.src[e]), i) for e in top} == {(s, d) for s, d in kept if d == i}
        rest = into[torch.argsort(-mean[into], stable=True)[3:]]
        torch.testing.assert_close(p.dropped[i], w[rest].sum(0))  # (H,) per head
    mask = torch.zeros(9, 9, dtype=torch.bool)
    mask[p.graph.dst, p.graph.src] = True
    full = torch.zeros(9, 9, 3, dtype=w.dtype).index_put((g.dst, g.src), w)  # (N, N, H)
    torch.testing.assert_close(p.weights, full[p.graph.dst, p.graph.src])
    torch.testing.assert_close(p.weights.sum(0) + p.dropped.sum(0), w.sum(0))


def test_prune_with_k_at_least_the_in_degree_returns_the_inputs():
    ((g, w),) = causal_layers(6, 1, 2, seed=2)
    p = prune_top_k(g, w, 6)
    assert p.graph is g and p.weights is w
    assert torch.equal(p.dropped, torch.zeros(6, 2, dtype=w.dtype))


def test_prune_batch_keeps_each_example_top_k_on_the_union_graph():
    (g, w0), (_, w1) = causal_layers(7, 2, 1, seed=3)
    w = torch.stack([w0[:, 0], w1[:, 0]])  # (B, E)
    p = prune_top_k(g, w, 2)
    assert p.weights.shape == (2, p.graph.num_edges) and p.dropped.shape == (2, 7)
    for b in range(2):
        own = prune_top_k(g, w[b], 2)
        on_union = dense_matrix(p.graph, p.weights[b], 7)
        torch.testing.assert_close(on_union, dense_matrix(own.graph, own.weights, 7))
        torch.testing.assert_close(p.dropped[b], own.dropped)


def test_prune_errors():
    ((g, w),) = causal_layers(4, 1, 1, seed=0)
    with pytest.raises(ValueError, match="k must be"):
        prune_top_k(g, w, 0)
    with pytest.raises(TypeError, match="k must be"):
        prune_top_k(g, w, 1.5)
    with pytest.raises(ValueError, match=r"E = graph.num_edges = 10, got \(9, 1\)"):
        prune_top_k(g, w[:9], 1)
    with pytest.raises(TypeError, match="floating"):
        prune_top_k(g, torch.ones(10, dtype=torch.long), 1)
    with pytest.raises(TypeError, match="TokenGraph"):
        prune_top_k(g.edge_index, w, 1)


def pruned(layers, k):
    out = [prune_top_k(g, w, k) for g, w in layers]
    return [(p.graph, p.weights) for p in out], [p.dropped for p in out]


@pytest.mark.parametrize("residual", [0.0, 0.5])
def test_pruned_rollout_is_the_masked_dense_product_and_accounts_for_the_loss(residual):
    layers = causal_layers(8, 3, 2, seed=4)
    kept, dropped = pruned(layers, 2)
    n = 8
    eye = torch.eye(n, dtype=torch.float64)
    exact, oracle = eye, eye
    for (g, w), (gk, wk) in zip(layers, kept, strict=True):
        full = residual * eye + (1 - residual) * dense_matrix(g, w.mean(1), n)
        rowsum = full.sum(1, keepdim=True)  # the unpruned normalization
        exact = full / rowsum @ exact
        part = residual * eye + (1 - residual) * dense_matrix(gk, wk.mean(1), n)
        oracle = part / rowsum @ oracle
    got = attention_rollout(kept, residual=residual, dropped=dropped)
    torch.testing.assert_close(got, oracle)
    torch.testing.assert_close(attention_rollout(layers, residual=residual), exact)
    lost = 1 - got.sum(1)
    assert bool((exact - got >= -1e-12).all()) and float(lost.max()) > 0.05
    torch.testing.assert_close(lost, (exact - got).abs().sum(1))  # the L1 error, exactly
    rows = attention_rollout(kept, residual=residual, dropped=dropped, targets=[7, 3])
    torch.testing.assert_close(rows, oracle[[7, 3]])


def test_pruned_rollout_gradients_match_the_dense_oracle():
    layers = causal_layers(6, 2, 2, seed=5)
    kept, dropped = pruned(layers, 2)
    ws = [w.detach().requires_grad_() for _, w in kept]
    got = attention_rollout([(g, w) for (g, _), w in zip(kept, ws, strict=True)], dropped=dropped)
    (got * torch.arange(36.0, dtype=got.dtype).view(6, 6)).sum().backward()
    ref_ws = [w.detach().requires_grad_() for _, w in kept]
    eye, out = torch.eye(6, dtype=torch.float64), torch.eye(6, dtype=torch.float64)
    for (g, _), w, d in zip(kept, ref_ws, dropped, strict=True):
        a = 0.5 * eye + 0.5 * dense_matrix(g, w.mean(1), 6)
        out = a / (a.sum(1, keepdim=True) + 0.5 * d.mean(1, keepdim=True)) @ out
    (out * torch.arange(36.0, dtype=out.dtype).view(6, 6)).sum().backward()
    for w, r in zip(ws, ref_ws, strict=True):
        torch.testing.assert_close(w.grad, r.grad)


def test_k_at_least_the_in_degree_gives_the_unpruned_results_bit_for_bit():
    layers = causal_layers(6, 3, 2, seed=6)
    kept, dropped = pruned(layers, 6)
    assert torch.equal(attention_rollout(kept, dropped=dropped), attention_rollout(layers))
    assert torch.equal(
        attention_rollout(kept, dropped=dropped, targets=[5]),
        attention_rollout(layers, targets=[5]),
    )
    assert top_paths(kept, 5, 0, 4, dropped=dropped) == top_paths(layers, 5, 0, 4)
    assert torch.equal(attention_flow(kept, [5], dropped=dropped), attention_flow(layers, [5]))


def test_pruned_paths_flow_and_flow_graph_keep_the_unpruned_weights():
    layers = causal_layers(6, 2, 1, seed=7)
    kept, dropped = pruned(layers, 2)
    full = {p.tokens: p.strength for p in top_paths(layers, 5, 0, 10_000)}
    got = top_paths(kept, 5, 0, 10_000, dropped=dropped)
    assert got and len(got) < len(full)
    for p in got:
        assert p.strength == pytest.approx(full[p.tokens])
    whole, part = flow_graph(layers), flow_graph(kept, dropped=dropped)
    assert part.number_of_edges() < whole.number_of_edges()
    for u, v, wt in part.edges(data="weight"):  # u = (l - 1, j), v = (l, i)
        if u[1] != v[1]:
            assert wt == pytest.approx(whole.edges[u, v]["weight"])
        else:  # the residual, plus the self edge's attention where it was kept
            assert 0.5 <= wt <= whole.edges[u, v]["weight"] + 1e-12
    flow = attention_flow(kept, [5], dropped=dropped, normalize=False)
    assert bool((flow <= attention_flow(layers, [5], normalize=False) + 1e-12).all())


def test_dropped_errors():
    layers = causal_layers(4, 2, 2, seed=8)
    kept, dropped = pruned(layers, 1)
    with pytest.raises(ValueError, match=r"one entry per layer \(2\), got 1"):
        attention_rollout(kept, dropped=dropped[:1])
    with pytest.raises(TypeError, match="sequence"):
        attention_rollout(kept, dropped=dropped[0])
    with pytest.raises(ValueError, match=r"dropped\[1\] must have shape \(4,\) or \(4, 2\)"):
        attention_rollout(kept, dropped=[dropped[0], dropped[1][:3]])
    with pytest.raises(ValueError, match="non-negative"):
        top_paths(kept, 3, 0, dropped=[dropped[0], -dropped[1]])
    with pytest.raises(ValueError, match="head_reduce='mean' only"):
        attention_rollout(kept, head_reduce="max", dropped=dropped)
    maxed = [prune_top_k(g, w.amax(1), 1) for g, w in layers]  # reduced first: exact for max
    r = attention_rollout([(p.graph, p.weights) for p in maxed], dropped=[p.dropped for p in maxed])
    assert bool((r.sum(1) <= 1 + 1e-12).all())
