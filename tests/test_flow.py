"""Tests of graphattn.flow: rollout, attention flow, paths, cross rollout, faithfulness."""

from __future__ import annotations

import itertools
import math
from collections import deque

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphattn.flow import (
    CrossRelevance,
    FlowPath,
    ablation_importance,
    aggregate_heads,
    attention_flow,
    attention_rollout,
    cross_rollout,
    faithfulness,
    flow_graph,
    spearman,
    top_paths,
)
from graphattn.functional import graph_attention
from graphattn.graph import TokenGraph

# ---------------------------------------------------------------- helpers


def random_graph(n: int, p: float, gen: torch.Generator, *, causal: bool = False) -> TokenGraph:
    mask = torch.rand(n, n, generator=gen) < p
    if causal:
        mask &= torch.ones(n, n, dtype=torch.bool).tril()
    return TokenGraph.from_dense_mask(mask, cross=False)


def random_weights(g: TokenGraph, heads: int, gen: torch.Generator, dtype=torch.float64):
    """Positive weights ``(E, H)`` normalized over the incoming edges of every target."""
    s = torch.rand(g.num_edges, heads, generator=gen, dtype=dtype) + 0.05  # (E, H)
    total = torch.zeros(g.num_nodes, heads, dtype=dtype).index_add_(0, g.dst, s)  # (N, H)
    return s / total[g.dst]


def attention_weights(g: TokenGraph, heads: int, gen: torch.Generator) -> torch.Tensor:
    """Weights ``(E, H)`` from graph_attention on random q, k, v (float64)."""
    q, k, v = (
        torch.randn(g.num_nodes, heads, 4, generator=gen, dtype=torch.float64) for _ in range(3)
    )
    _, w = graph_attention(q, k, v, g, return_weights=True)
    return w


def dense_layer(g: TokenGraph, w: torch.Tensor, residual: float, reduce: str = "mean"):
    """The definition: ``A = r I + (1 - r) W`` with every row divided by its own sum."""
    w = w if w.dim() == 2 else w.unsqueeze(1)
    per_edge = {"mean": w.mean(1), "max": w.amax(1), "min": w.amin(1)}[reduce].double()
    W = torch.zeros(g.num_nodes, g.num_nodes, dtype=torch.float64)
    W = W.index_put((g.dst, g.src), per_edge)  # W[i, j] = weight of edge j -> i
    A = residual * torch.eye(g.num_nodes, dtype=torch.float64) + (1 - residual) * W
    s = A.sum(1, keepdim=True)
    return A / torch.where(s > 0, s, torch.ones_like(s))


def dense_rollout(layers, residual: float, reduce: str = "mean") -> torch.Tensor:
    R = torch.eye(layers[0][0].num_nodes, dtype=torch.float64)
    for g, w in layers:
        R = dense_layer(g, w, residual, reduce) @ R
    return R


def random_layers(n, num_layers, p, seed, *, heads=2, causal=False, from_attention=False):
    gen = torch.Generator().manual_seed(seed)
    layers = []
    for _ in range(num_layers):
        g = random_graph(n, p, gen, causal=causal)
        w = attention_weights(g, heads, gen) if from_attention else random_weights(g, heads, gen)
        layers.append((g, w))
    return layers


def edmonds_karp(cap: np.ndarray, s: int, t: int) -> float:
    """Independent max flow: BFS augmenting paths on a dense capacity matrix."""
    flow = np.zeros_like(cap)
    total = 0.0
    while True:
        parent = np.full(cap.shape[0], -1)
        parent[s] = s
        queue = deque([s])
        while queue and parent[t] < 0:
            u = queue.popleft()
            for v in np.nonzero((cap[u] - flow[u] > 1e-15) & (parent < 0))[0]:
                parent[v] = u
                queue.append(v)
        if parent[t] < 0:
            return total
        path, v = [], t
        while v != s:
            path.append((parent[v], v))
            v = parent[v]
        push = min(cap[u, v] - flow[u, v] for u, v in path)
        for u, v in path:
            flow[u, v] += push
            flow[v, u] -= push
        total += push


def dense_flow(layers, residual: float) -> np.ndarray:
    """``F[i, j]``: Edmonds-Karp max flow from input j to output i on the layered DAG."""
    n, L = layers[0][0].num_nodes, len(layers)
    cap = np.zeros(((L + 1) * n, (L + 1) * n))
    for l, (g, w) in enumerate(layers, start=1):
        A = dense_layer(g, w, residual).detach().numpy()  # A[i, j]: edge (l-1, j) -> (l, i)
        cap[(l - 1) * n : l * n, l * n : (l + 1) * n] = A.T
    return np.array([[edmonds_karp(cap, j, L * n + i) for j in range(n)] for i in range(n)])


# ------------------------------------------------------------ rollout


def test_rollout_hand_computed():
    # 0 -> 0 (1.0), 0 -> 1 (0.5), 1 -> 1 (0.5); residual 0.5:
    # A = [[1, 0], [0.25, 0.75]] and A @ A = [[1, 0], [0.4375, 0.5625]].
    g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    w = torch.tensor([1.0, 0.5, 0.5], dtype=torch.float64)
    one = attention_rollout([(g, w)])
    torch.testing.assert_close(one, torch.tensor([[1.0, 0.0], [0.25, 0.75]], dtype=torch.float64))
    two = attention_rollout([(g, w), (g, w)])
    torch.testing.assert_close(
        two, torch.tensor([[1.0, 0.0], [0.4375, 0.5625]], dtype=torch.float64)
    )


def test_rollout_hand_computed_three_tokens_without_self_edges():
    # Token 2 attends to 0 and 1 (0.25, 0.75), token 1 to 0, token 0 has no incoming edge.
    g = TokenGraph([[0, 0, 1], [1, 2, 2]])
    w = torch.tensor([1.0, 0.25, 0.75])
    # residual 0.5: row 0 = identity (isolated target keeps itself),
    # row 1 = (0.5, 0.5, 0), row 2 = (0.125, 0.375, 0.5).
    expected_one = torch.tensor([[1.0, 0, 0], [0.5, 0.5, 0], [0.125, 0.375, 0.5]])
    torch.testing.assert_close(attention_rollout([(g, w)]), expected_one)
    # residual 0: plain attention, isolated row stays zero (no NaN).
    r0 = attention_rollout([(g, w)], residual=0.0)
    torch.testing.assert_close(r0, torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0.25, 0.75, 0]]))
    # residual 1: only the identity is left.
    torch.testing.assert_close(attention_rollout([(g, w)], residual=1.0), torch.eye(3))


def test_rollout_renormalizes_rows_not_columns():
    # Max-reduced heads do not sum to 1; each row must be divided by its own sum.
    g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    w = torch.tensor([[1.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    out = attention_rollout([(g, w)], residual=0.0, head_reduce="max")
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.0], [0.5, 0.5]]))


@pytest.mark.parametrize("reduce", ["mean", "max", "min"])
@pytest.mark.parametrize("residual", [0.0, 0.3, 0.5, 1.0])
def test_rollout_equals_dense_matrix_product(reduce, residual):
    layers = random_layers(9, 4, 0.4, seed=3, heads=3, from_attention=True)
    out = attention_rollout(layers, residual=residual, head_reduce=reduce)
    torch.testing.assert_close(out, dense_rollout(layers, residual, reduce))


def test_rollout_single_head_weights_and_float32():
    gen = torch.Generator().manual_seed(0)
    g = random_graph(7, 0.5, gen)
    w = random_weights(g, 1, gen, dtype=torch.float32)[:, 0]  # (E,)
    out = attention_rollout([(g, w), (g, w)])
    assert out.dtype == torch.float32
    torch.testing.assert_close(
        out.double(), dense_rollout([(g, w), (g, w)], 0.5), atol=1e-6, rtol=1e-5
    )


def test_rollout_rows_sum_to_one_and_isolated_targets():
    layers = random_layers(12, 5, 0.3, seed=5)
    mask = layers[-1][0].to_dense_mask()
    mask[[3, 7]] = False  # targets 3 and 7 get no incoming edge in the last layer
    gen = torch.Generator().manual_seed(0)
    last = TokenGraph.from_dense_mask(mask)
    layers[-1] = (last, random_weights(last, 2, gen))
    isolated = [3, 7]
    out = attention_rollout(layers)
    torch.testing.assert_close(out.sum(1), torch.ones(12, dtype=torch.float64))
    assert (out >= 0).all()
    zero = attention_rollout(layers, residual=0.0)
    sums = zero.sum(1)
    for i in isolated:
        assert sums[i] == 0  # nothing flows into a target without edges
    assert torch.isfinite(zero).all()


def test_rollout_over_causal_graphs_is_lower_triangular():
    layers = random_layers(10, 4, 0.6, seed=7, causal=True, from_attention=True)
    out = attention_rollout(layers)
    assert torch.equal(out.triu(1), torch.zeros_like(out))
    assert (out.diagonal() > 0).all()
    torch.testing.assert_close(out.sum(1), torch.ones(10, dtype=torch.float64))


def test_targets_path_agrees_with_dense_path():
    layers = random_layers(15, 6, 0.3, seed=11, heads=4)
    full = attention_rollout(layers, residual=0.4, head_reduce="min")
    targets = [14, 0, 3, 3]
    part = attention_rollout(layers, residual=0.4, head_reduce="min", targets=targets)
    assert part.shape == (4, 15)
    torch.testing.assert_close(part, full[targets])
    single = attention_rollout(layers, residual=0.4, head_reduce="min", targets=torch.tensor([5]))
    torch.testing.assert_close(single, full[5:6])
    torch.testing.assert_close(
        attention_rollout(layers, residual=0.4, head_reduce="min", targets=2), full[2:3]
    )
    torch.testing.assert_close(
        attention_rollout(layers, residual=0.4, head_reduce="min", targets=np.int64(2)), full[2:3]
    )


def test_rollout_with_self_loops_in_graph_merges_with_residual():
    # Self edges of the graph and the identity add up in one entry before normalizing.
    g = TokenGraph([[0, 1, 0], [0, 1, 1]])  # 0->0, 0->1, 1->1
    w = torch.tensor([1.0, 0.2, 0.8])
    out = attention_rollout([(g, w)], residual=0.5)
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.0], [0.1, 0.9]]))


@pytest.mark.parametrize("targets", [None, [4, 1, 1]])
def test_rollout_gradients_match_dense_oracle(targets):
    layers = random_layers(6, 3, 0.5, seed=13, heads=2)
    ws = [w.clone().requires_grad_(True) for _, w in layers]
    ref_ws = [w.clone().requires_grad_(True) for _, w in layers]
    out = attention_rollout(
        [(g, w) for (g, _), w in zip(layers, ws, strict=True)], residual=0.3, targets=targets
    )
    ref = dense_rollout([(g, w) for (g, _), w in zip(layers, ref_ws, strict=True)], 0.3)
    ref = ref if targets is None else ref[targets]
    torch.testing.assert_close(out, ref)
    upstream = torch.randn(
        out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    grads = torch.autograd.grad((out * upstream).sum(), ws)
    ref_grads = torch.autograd.grad((ref * upstream).sum(), ref_ws)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_rollout_gradcheck_float64():
    layers = random_layers(4, 2, 0.6, seed=14, heads=2)
    ws = tuple(w.clone().requires_grad_(True) for _, w in layers)

    def run(targets):
        def fn(*weights):
            pairs = [(g, w) for (g, _), w in zip(layers, weights, strict=True)]
            return attention_rollout(pairs, residual=0.4, targets=targets)

        return fn

    assert torch.autograd.gradcheck(run(None), ws)
    assert torch.autograd.gradcheck(run([3, 0]), ws)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 8),
    num_layers=st.integers(1, 4),
    p=st.floats(0.0, 1.0),
    residual=st.sampled_from([0.0, 0.25, 0.5, 0.9]),
    seed=st.integers(0, 2**16),
)
def test_rollout_property_random_graphs(n, num_layers, p, residual, seed):
    layers = random_layers(n, num_layers, p, seed)
    out = attention_rollout(layers, residual=residual)
    torch.testing.assert_close(out, dense_rollout(layers, residual))
    if residual > 0:
        torch.testing.assert_close(out.sum(1), torch.ones(n, dtype=torch.float64))
    targets = list(range(n))[::-1]
    torch.testing.assert_close(
        attention_rollout(layers, residual=residual, targets=targets), out[targets]
    )


# ------------------------------------------------------------- flow


def test_flow_hand_computed():
    # A = [[1, 0], [0.25, 0.75]] twice. From input 0 to output 1: 0.25 via (1, 0) and
    # 0.25 via (1, 1) (the edge (0,0)->(1,1) has capacity 0.25): 0.5. From input 1: 0.75.
    g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    w = torch.tensor([1.0, 0.5, 0.5])
    raw = attention_flow([(g, w), (g, w)], [1, 0], normalize=False)
    torch.testing.assert_close(raw, torch.tensor([[0.5, 0.75], [1.0, 0.0]], dtype=torch.float64))
    norm = attention_flow([(g, w), (g, w)], [1, 0])
    torch.testing.assert_close(norm, torch.tensor([[0.4, 0.6], [1.0, 0.0]], dtype=torch.float64))


@pytest.mark.parametrize("seed,causal", [(0, False), (1, True), (2, False)])
def test_flow_equals_independent_max_flow(seed, causal):
    layers = random_layers(5, 3, 0.5, seed=seed, causal=causal, from_attention=True)
    expected = dense_flow(layers, 0.5)
    got = attention_flow(layers, list(range(5)), normalize=False)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-9)
    normalized = attention_flow(layers, [4, 1])
    rows = expected[[4, 1]]
    np.testing.assert_allclose(normalized.numpy(), rows / rows.sum(1, keepdims=True), atol=1e-9)
    if causal:
        assert np.all(np.triu(got.numpy(), 1) == 0)


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 4),
    num_layers=st.integers(1, 3),
    p=st.floats(0.0, 1.0),
    residual=st.sampled_from([0.0, 0.5, 0.8]),
    seed=st.integers(0, 2**16),
)
def test_flow_property_random_graphs(n, num_layers, p, residual, seed):
    layers = random_layers(n, num_layers, p, seed)
    got = attention_flow(layers, list(range(n)), residual=residual, normalize=False)
    np.testing.assert_allclose(got.numpy(), dense_flow(layers, residual), atol=1e-9)


def test_flow_bounds():
    # Every row of A sums to 1, so at most 1 unit reaches an output; a flow is at least
    # the bottleneck of the strongest path.
    layers = random_layers(6, 3, 0.5, seed=4)
    raw = attention_flow(layers, [0, 5], normalize=False)
    assert (raw <= 1 + 1e-9).all() and (raw >= 0).all()
    for r, i in enumerate([0, 5]):
        for j in range(6):
            best = top_paths(layers, i, j, k=1)
            if best:
                path = best[0].tokens
                mats = [dense_layer(g, w, 0.5) for g, w in layers]
                bottleneck = min(float(mats[l][path[l + 1], path[l]]) for l in range(3))
                assert raw[r, j] >= bottleneck - 1e-12


def test_flow_prune_drops_weak_edges():
    layers = random_layers(6, 2, 0.8, seed=8)
    G_all = flow_graph(layers)
    G_pruned = flow_graph(layers, prune=0.2)
    assert G_pruned.number_of_edges() < G_all.number_of_edges()
    assert all(d["weight"] >= 0.2 for *_, d in G_pruned.edges(data=True))
    full = attention_flow(layers, [3], normalize=False)
    pruned = attention_flow(layers, [3], prune=0.2, normalize=False)
    assert (pruned <= full + 1e-12).all()


def test_flow_graph_structure():
    layers = random_layers(4, 2, 0.6, seed=9)
    G = flow_graph(layers, residual=0.3)
    assert isinstance(G, nx.DiGraph)
    assert G.number_of_nodes() == 3 * 4
    assert nx.is_directed_acyclic_graph(G)
    for l, (g, w) in enumerate(layers, start=1):
        A = dense_layer(g, w, 0.3)
        for i in range(4):
            for j in range(4):
                if A[i, j] > 0:
                    data = G.edges[(l - 1, j), (l, i)]
                    assert data["weight"] == pytest.approx(float(A[i, j]))
                    assert data["capacity"] == data["weight"]
                else:
                    assert not G.has_edge((l - 1, j), (l, i))
    # out-weights of every non-input node's incoming edges sum to 1 (rows of A)
    for node in G:
        if node[0] > 0:
            assert sum(d["weight"] for *_, d in G.in_edges(node, data=True)) == pytest.approx(1)


def test_flow_graph_labels():
    g = TokenGraph([[0, 1], [1, 1]], tokens=["x", "y"])
    G = flow_graph([(g, torch.tensor([0.5, 0.5]))])
    assert G.nodes[(0, 1)] == {"layer": 0, "token": 1, "label": "y"}


# ------------------------------------------------------------- paths


def brute_force_paths(layers, target, source, residual=0.5):
    n = layers[0][0].num_nodes
    mats = [dense_layer(g, w, residual) for g, w in layers]
    out = []
    for middle in itertools.product(range(n), repeat=len(layers) - 1):
        tokens = (source, *middle, target)
        strength = math.prod(float(mats[l][tokens[l + 1], tokens[l]]) for l in range(len(mats)))
        if strength > 0:
            out.append((strength, tokens))
    return sorted(out, reverse=True)


def test_top_paths_match_brute_force_and_sum_to_rollout():
    layers = random_layers(5, 3, 0.5, seed=12)
    target, source = 4, 1
    expected = brute_force_paths(layers, target, source)
    got = top_paths(layers, target, source, k=6)
    assert all(isinstance(p, FlowPath) for p in got)
    assert [p.tokens for p in got] == [t for _, t in expected[:6]]
    np.testing.assert_allclose([p.strength for p in got], [s for s, _ in expected[:6]])
    everything = top_paths(layers, target, source, k=10_000)
    assert len(everything) == len(expected)
    total = sum(p.strength for p in everything)
    assert total == pytest.approx(float(attention_rollout(layers)[target, source]))


def test_top_paths_hand_computed_and_unreachable():
    g = TokenGraph([[0, 0, 1], [0, 1, 1]])  # causal: nothing flows from 1 to 0
    w = torch.tensor([1.0, 0.5, 0.5])
    assert top_paths([(g, w), (g, w)], target=0, source=1) == []
    paths = top_paths([(g, w), (g, w)], target=1, source=0, k=1)
    assert paths == [FlowPath((0, 0, 1), 0.25)]


def test_top_paths_take_labels_and_carry_them():
    g = TokenGraph.from_tokens("the cat saw the dog", "causal")
    layers = [(g, torch.rand(g.num_edges, 2, generator=torch.Generator().manual_seed(s)))
              for s in range(2)]
    by_label = top_paths(layers, target="dog", source="cat", k=3)
    assert by_label == top_paths(layers, target=4, source=1, k=3)
    for p in by_label:
        assert p.labels == tuple(g.tokens[t] for t in p.tokens)
        assert p.labels[0] == "cat" and p.labels[-1] == "dog"
    with pytest.raises(ValueError, match=r"source='the' must name exactly one token; found 2"):
        top_paths(layers, target="dog", source="the")
    with pytest.raises(ValueError, match="found 0 in the graph's labels"):
        top_paths(layers, target="cow", source=0)


# ------------------------------------------------------------- heads


def test_aggregate_heads_modes():
    w = torch.tensor([[0.1, 0.3, 0.8], [0.9, 0.7, 0.2]])
    torch.testing.assert_close(aggregate_heads(w), torch.tensor([0.4, 0.6]))
    torch.testing.assert_close(aggregate_heads(w, "max"), torch.tensor([0.8, 0.9]))
    torch.testing.assert_close(aggregate_heads(w, "min"), torch.tensor([0.1, 0.2]))
    single = torch.tensor([0.25, 0.75])
    torch.testing.assert_close(aggregate_heads(single, "max"), single)


def test_aggregate_heads_norm_matches_explicit_sum():
    gen = torch.Generator().manual_seed(1)
    g = random_graph(6, 0.5, gen)
    w = random_weights(g, 3, gen)
    values = torch.randn(6, 3, 5, generator=gen, dtype=torch.float64)  # (M, H, C)
    got = aggregate_heads(w, "norm", values=values, graph=g)
    for e in range(g.num_edges):
        j = int(g.src[e])
        vec = sum(w[e, h] * values[j, h] for h in range(3))
        assert float(got[e]) == pytest.approx(float(vec.norm()))
    # usable as layer weights: rollout renormalizes the rows
    out = attention_rollout([(g, got)])
    assert torch.isfinite(out).all()


def test_aggregate_heads_errors():
    g = TokenGraph([[0, 1], [1, 1]])
    w = torch.rand(2, 2)
    with pytest.raises(ValueError, match="mode"):
        aggregate_heads(w, "median")
    with pytest.raises(ValueError, match="values"):
        aggregate_heads(w, "norm")
    with pytest.raises(ValueError, match=r"\(M, H, C\)"):
        aggregate_heads(w, "norm", values=torch.rand(2, 3, 4), graph=g)
    with pytest.raises(TypeError, match="floating"):
        aggregate_heads(torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        aggregate_heads(torch.rand(2, 2, 2, 2))


# ------------------------------------------------------------- cross rollout


def chefer_reference(enc, dec_self, dec_cross, normalize=True):
    """Equations 5-10 of Chefer et al. (2021b), written out densely."""

    def abar(g, w, grad=None):
        w = w if w.dim() == 2 else w.unsqueeze(1)
        if grad is not None:
            grad = grad if grad.dim() == 2 else grad.unsqueeze(1)
            w = (grad * w).clamp(min=0)
        dense = torch.zeros(g.num_nodes, g.num_src_nodes, w.shape[1], dtype=torch.float64)
        dense[g.dst, g.src] = w.double()
        return dense.mean(-1)

    def bar(r):
        eye = torch.eye(r.shape[0], dtype=torch.float64)
        hat = r - eye
        s = hat.sum(1, keepdim=True)
        return torch.nan_to_num(hat / s) + eye

    m, n = dec_cross[0][0].num_src_nodes, dec_cross[0][0].num_nodes
    r_ee, r_dd = torch.eye(m, dtype=torch.float64), torch.eye(n, dtype=torch.float64)
    r_de = torch.zeros(n, m, dtype=torch.float64)
    for layer in enc:
        r_ee = r_ee + abar(*layer) @ r_ee
    for s_layer, c_layer in zip(dec_self, dec_cross, strict=True):
        a = abar(*s_layer)
        r_dd, r_de = r_dd + a @ r_dd, r_de + a @ r_de
        left, right = (bar(r_dd), bar(r_ee)) if normalize else (r_dd, r_ee)
        r_de = r_de + left.T @ abar(*c_layer) @ right
    return r_de, r_dd, r_ee


def encoder_decoder_layers(m=5, n=4, blocks=2, seed=0, grads=False):
    gen = torch.Generator().manual_seed(seed)
    enc_g = TokenGraph.from_dense_mask(torch.ones(m, m, dtype=torch.bool))
    dec_g = TokenGraph.from_dense_mask(torch.ones(n, n, dtype=torch.bool).tril())
    cross_g = TokenGraph.from_dense_mask(torch.rand(n, m, generator=gen) < 0.7, cross=True)

    def layer(g):
        q = torch.randn(g.num_nodes, 2, 4, generator=gen, dtype=torch.float64)
        k, v = (
            torch.randn(g.num_src_nodes, 2, 4, generator=gen, dtype=torch.float64) for _ in range(2)
        )
        _, w = graph_attention(q, k, v, g, return_weights=True)
        if grads:
            return (g, w, torch.randn(w.shape, generator=gen, dtype=torch.float64))
        return (g, w)

    return (
        [layer(enc_g) for _ in range(2)],
        [layer(dec_g) for _ in range(blocks)],
        [layer(cross_g) for _ in range(blocks)],
    )


@pytest.mark.parametrize("grads", [False, True])
@pytest.mark.parametrize("normalize", [True, False])
def test_cross_rollout_matches_reference(grads, normalize):
    enc, dec_self, dec_cross = encoder_decoder_layers(grads=grads, seed=int(grads))
    rel = cross_rollout(enc, dec_self, dec_cross, normalize=normalize)
    assert isinstance(rel, CrossRelevance)
    r_de, r_dd, r_ee = chefer_reference(enc, dec_self, dec_cross, normalize)
    assert rel.cross.shape == (4, 5)
    torch.testing.assert_close(rel.cross, r_de)
    torch.testing.assert_close(rel.decoder, r_dd)
    torch.testing.assert_close(rel.encoder, r_ee)
    assert torch.equal(rel.decoder.triu(1), torch.zeros(4, 4, dtype=torch.float64))


def test_cross_rollout_gradients_match_reference():
    enc, dec_self, dec_cross = encoder_decoder_layers(seed=5)
    groups = (enc, dec_self, dec_cross)
    mine = [[(g, w.clone().requires_grad_(True)) for g, w in grp] for grp in groups]
    theirs = [[(g, w.clone().requires_grad_(True)) for g, w in grp] for grp in groups]
    rel = cross_rollout(*mine)
    ref = chefer_reference(*theirs)[0]
    torch.testing.assert_close(rel.cross, ref)
    leaves = [w for grp in mine for _, w in grp]
    ref_leaves = [w for grp in theirs for _, w in grp]
    grads = torch.autograd.grad(rel.cross.sum(), leaves)
    ref_grads = torch.autograd.grad(ref.sum(), ref_leaves)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_cross_rollout_gradient_weighting():
    enc, dec_self, dec_cross = encoder_decoder_layers(seed=3)
    ones = [[(g, w, torch.ones_like(w)) for g, w in group] for group in (enc, dec_self, dec_cross)]
    plain = cross_rollout(enc, dec_self, dec_cross)
    torch.testing.assert_close(cross_rollout(*ones).cross, plain.cross)
    negative = [
        [(g, w, -torch.ones_like(w)) for g, w in group] for group in (enc, dec_self, dec_cross)
    ]
    # (grad * A)^+ is zero everywhere: no relevance moves, maps stay at their start
    rel = cross_rollout(*negative)
    torch.testing.assert_close(rel.cross, torch.zeros(4, 5, dtype=torch.float64))
    torch.testing.assert_close(rel.encoder, torch.eye(5, dtype=torch.float64))


def test_cross_rollout_without_encoder_layers():
    _, dec_self, dec_cross = encoder_decoder_layers(seed=4)
    rel = cross_rollout([], dec_self, dec_cross)
    torch.testing.assert_close(rel.encoder, torch.eye(5, dtype=torch.float64))
    torch.testing.assert_close(rel.cross, chefer_reference([], dec_self, dec_cross)[0])


def test_cross_rollout_errors():
    enc, dec_self, dec_cross = encoder_decoder_layers()
    with pytest.raises(ValueError, match=r"decoder_cross_layers\[0\] must be a cross graph"):
        cross_rollout(enc, dec_self, [dec_self[0], dec_self[1]])
    with pytest.raises(ValueError, match=r"encoder_layers\[0\] must be a self graph"):
        cross_rollout([dec_cross[0]], dec_self, dec_cross)
    with pytest.raises(ValueError, match="one entry per decoder block"):
        cross_rollout(enc, dec_self[:1], dec_cross)
    with pytest.raises(ValueError, match="empty"):
        cross_rollout(enc, [], [])
    small = random_layers(3, 1, 1.0, seed=0)
    with pytest.raises(ValueError, match=r"encoder_layers\[0\] must have \(N, M\) = \(5, 5\)"):
        cross_rollout(small, dec_self, dec_cross)
    g, w = dec_cross[0]
    with pytest.raises(ValueError, match="grad must have the shape"):
        cross_rollout(enc, dec_self, [(g, w, torch.ones(w.shape[0], 3)), dec_cross[1]])


# ------------------------------------------------------------- faithfulness


def average_ranks_loop(x):
    return [sum(1 for b in x if b < a) + (sum(1 for b in x if b == a) + 1) / 2 for a in x]


def pearson(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=2, max_size=12))
def test_spearman_matches_ranks_with_ties(pairs):
    x, y = [p[0] for p in pairs], [p[1] for p in pairs]
    rho = spearman(x, y)
    if len(set(x)) == 1 or len(set(y)) == 1:
        assert math.isnan(rho)
    else:
        assert rho == pytest.approx(pearson(average_ranks_loop(x), average_ranks_loop(y)))


def test_spearman_hand_computed():
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # ranks (1, 2.5, 2.5, 4) and (1, 3, 2, 4): 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert faithfulness(torch.tensor([0.3, 0.2, 0.1]), [1.0, 2.0, 3.0]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="1-D"):
        spearman([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        spearman([1, float("nan")], [1, 2])


def test_ablation_importance_linear_model():
    coef = torch.tensor([[1.0, 2.0], [0.0, 0.0], [-1.0, 3.0]])
    x = torch.tensor([[1.0, 1.0], [5.0, 5.0], [2.0, 1.0]])
    imp = ablation_importance(lambda t: (t * coef).sum(), x, ())
    torch.testing.assert_close(imp, torch.tensor([3.0, 0.0, 1.0], dtype=torch.float64))
    # token ids replaced by a mask id, callable target
    ids = torch.tensor([3, 1, 2])
    table = torch.tensor([0.0, 10.0, 20.0, 30.0])
    imp = ablation_importance(lambda t: table[t], ids, lambda out: out.max(), replace_with=0)
    torch.testing.assert_close(imp, torch.tensor([10.0, 0.0, 0.0], dtype=torch.float64))


def test_ablation_importance_errors():
    x = torch.ones(3, 2)
    with pytest.raises(ValueError, match="one value"):
        ablation_importance(lambda t: t, x, 0)
    with pytest.raises(TypeError, match="callable"):
        ablation_importance("model", x, 0)
    with pytest.raises(ValueError, match="N > 0"):
        ablation_importance(lambda t: t.sum(), torch.ones(0, 2), ())


def test_rollout_is_faithful_on_a_linear_attention_model():
    # A model whose output is a rollout-weighted sum of its inputs (attention without
    # values mixing): output token i = sum_j R[i, j] x_j. Ablating x_j changes y_i by
    # R[i, j] * x_j, so with x_j = 1 the importance ranks exactly like the rollout row.
    layers = random_layers(8, 3, 0.5, seed=21, causal=True)
    R = dense_rollout(layers, 0.5)
    imp = ablation_importance(lambda t: R @ t, torch.ones(8, dtype=torch.float64), 7)
    rollout_row = attention_rollout(layers, targets=[7])[0]
    torch.testing.assert_close(imp, rollout_row)
    assert faithfulness(rollout_row, imp) == pytest.approx(1.0)


# ------------------------------------------------------------- errors


def test_layer_errors():
    g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    w = torch.tensor([1.0, 0.5, 0.5])
    with pytest.raises(
        ValueError,
        match=r"layers\[0\]: weights must have shape .* E = "
        r"graph.num_edges = 3, got \(2,\)",
    ):
        attention_rollout([(g, w[:2])])
    with pytest.raises(ValueError, match=r"layers\[1\] has N=3 tokens but layers\[0\] has N=2"):
        attention_rollout([(g, w), (TokenGraph([[0], [2]]), torch.ones(1))])
    cross = TokenGraph([[0, 1], [0, 0]], num_nodes=1, num_src_nodes=2)
    with pytest.raises(ValueError, match="cross graph .* use cross_rollout"):
        attention_rollout([(cross, torch.ones(2))])
    with pytest.raises(ValueError, match="non-negative"):
        attention_rollout([(g, -w)])
    with pytest.raises(ValueError, match="NaN"):
        attention_rollout([(g, torch.tensor([1.0, float("nan"), 0.5]))])
    with pytest.raises(TypeError, match="floating"):
        attention_rollout([(g, torch.tensor([1, 0, 1]))])
    with pytest.raises(TypeError, match="TokenGraph"):
        attention_rollout([(g.to_dense_mask(), w)])
    with pytest.raises(TypeError, match="pair"):
        attention_rollout([(g, w, w)])
    with pytest.raises(ValueError, match="empty"):
        attention_rollout([])
    with pytest.raises(ValueError, match=r"\(B, E, H\) with E = graph.num_edges = 3, got \(2, 4"):
        attention_rollout([(g, torch.rand(2, 4, 2))])
    half = torch.tensor([1.0, 0.5, 0.5], dtype=torch.bfloat16)
    torch.testing.assert_close(attention_rollout([(g, half)]), attention_rollout([(g, w)]))
    with pytest.raises(TypeError, match="sequence"):
        attention_rollout((g, w) for _ in range(2))


def test_option_errors():
    g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    layers = [(g, torch.tensor([1.0, 0.5, 0.5]))]
    with pytest.raises(ValueError, match=r"residual must be in \[0, 1\], got 1.5"):
        attention_rollout(layers, residual=1.5)
    with pytest.raises(TypeError, match="residual"):
        attention_rollout(layers, residual="half")
    with pytest.raises(ValueError, match='head_reduce .* "norm"'):
        attention_rollout(layers, head_reduce="norm")
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 2\), got values in \[0, 2\]"):
        attention_rollout(layers, targets=[0, 2])
    with pytest.raises(TypeError, match="integer"):
        attention_rollout(layers, targets=[0.5])
    with pytest.raises(ValueError, match="1-D"):
        attention_flow(layers, [])
    with pytest.raises(ValueError, match="prune"):
        flow_graph(layers, prune=1.0)
    with pytest.raises(ValueError, match="k must be"):
        top_paths(layers, 1, 0, k=0)
    with pytest.raises(ValueError, match="source must lie"):
        top_paths(layers, 1, 5)


# ------------------------------------------------------------- example


def test_flow_example_runs_and_draws(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "flow_example.py"
    spec = importlib.util.spec_from_file_location("flow_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "flow_layers.png").stat().st_size > 0
    assert (tmp_path / "rollout_matrix.png").stat().st_size > 0
    text = capsys.readouterr().out
    assert "strongest paths" in text and "faithfulness" in text


def test_benchmark_helpers_on_a_small_case(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_flow.py"
    spec = importlib.util.spec_from_file_location("bench_flow", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.bench_rollout(128, 2, 8, repeat=1, full=True)
    assert [r["targets"] for r in rows] == [1, 64, 128]
    assert all(r["max_row_sum_error"] < 1e-5 for r in rows)
    bench.write_json({"results": rows}, tmp_path / "flow.json")
    assert json.loads((tmp_path / "flow.json").read_text())["results"] == rows
