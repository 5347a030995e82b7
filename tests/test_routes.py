"""flow.routes and flow.route_scores against dense definitions written out here."""

import itertools

import pytest
import torch

from graphattn import GraphLM, TokenGraph
from graphattn.flow import Routes, contributions, route_scores, routes
from graphattn.patterns import cross


def dense_shares(graph, weights, residual):
    """``(A (N, N) attention shares, r (N,) residual shares)`` of one layer, rows summing to 1."""
    n = graph.num_nodes
    w = weights if weights.dim() == 1 else weights.mean(-1)
    W = torch.zeros(n, n, dtype=torch.float64)
    W[graph.dst, graph.src] = w.double()
    if residual is None:  # the self entries are the residual
        r = W.diagonal().clone()
        rows = W.sum(1)
        W.fill_diagonal_(0)
    else:
        r = torch.full((n,), float(residual), dtype=torch.float64)
        W = (1 - residual) * W
        rows = W.sum(1) + r
    rows = torch.where(rows > 0, rows, torch.ones_like(rows))
    return W / rows[:, None], r / rows


def dense_routes(layers, target, tau, residual):
    """Top-down: per layer the kept (source, target) pairs, the kept residual tokens, the rows."""
    active = {target}
    edges, res, rows = [], [], [sorted(active)]
    for g, w in reversed(layers):
        A, r = dense_shares(g, w, residual)
        e = {(j, i) for i in active for j in range(g.num_nodes) if A[i, j] >= tau and A[i, j] > 0}
        k = {i for i in active if r[i] >= tau}
        edges.append(e)
        res.append(k)
        active = {j for j, _ in e} | k
        rows.append(sorted(active))
    return edges[::-1], res[::-1], rows[::-1]


def brute_scores(layers, target, residual):
    """max over all paths input j -> target of the smallest share on the path."""
    n = layers[0][0].num_nodes
    mats = []
    for g, w in layers:
        A, r = dense_shares(g, w, residual)
        mats.append((A, r))
    best = torch.zeros(n, dtype=torch.float64)
    for path in itertools.product(range(n), repeat=len(layers)):  # tokens at rows 0..L-1
        nodes = (*path, target)
        width = 1.0
        for l, (A, r) in enumerate(mats):
            j, i = nodes[l], nodes[l + 1]
            width = min(width, float(A[i, j]) if i != j else float(r[i]))
        best[path[0]] = max(float(best[path[0]]), width)
    return best


def check_against_dense(layers, target, tau, residual):
    got = routes(layers, target, tau, residual=residual)
    edges, res, rows = dense_routes(layers, target, tau, residual)
    assert isinstance(got, Routes) and len(got.layers) == len(layers)
    assert [r.tolist() for r in got.nodes] == rows
    for (g, w), layer, e, k in zip(layers, got.layers, edges, res, strict=True):
        A, r = dense_shares(g, w, residual)
        assert set(zip(layer.graph.src.tolist(), layer.graph.dst.tolist(), strict=True)) == e
        assert layer.graph.num_nodes == g.num_nodes and layer.graph.tokens == g.tokens
        torch.testing.assert_close(layer.weights.double(), A[layer.graph.dst, layer.graph.src])
        assert set(layer.residual.tolist()) == k
        torch.testing.assert_close(layer.residual_weights.double(), r[layer.residual])
    return got


def random_layers(n=5, num_layers=3, heads=2, seed=0, self_loops=True):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num_layers):
        mask = torch.rand(n, n, generator=gen) < 0.6
        mask = mask & torch.ones(n, n, dtype=torch.bool).tril()  # causal
        if self_loops:
            mask.fill_diagonal_(True)
        g = TokenGraph.from_dense_mask(mask)
        g = TokenGraph(g.edge_index, n, tokens=[f"t{i}" for i in range(n)])
        out.append((g, torch.rand(g.num_edges, heads, generator=gen)))
    return out


@pytest.mark.parametrize("residual", [None, 0.0, 0.5])
@pytest.mark.parametrize("tau", [0.05, 0.2, 0.45])
def test_routes_of_raw_weights_equal_the_dense_definition(residual, tau):
    layers = random_layers()
    check_against_dense(layers, 4, tau, residual)


def test_a_target_without_incoming_edges_keeps_only_its_residual():
    g = TokenGraph([[0, 0], [0, 1]], 3)  # token 2 has no edge
    w = torch.tensor([1.0, 1.0])
    got = routes([(g, w)], 2, 0.1, residual=0.5)
    assert got.layers[0].graph.num_edges == 0 and got.layers[0].residual.tolist() == [2]
    assert routes([(g, w)], 2, 0.1).nodes[0].tolist() == []  # residual None: no self entry


@pytest.mark.parametrize("method", ["alti", "globenc", "value_zeroing", "grad_attention"])
def test_routes_of_every_contribution_method(method):
    torch.manual_seed(0)
    lm = GraphLM(30, 16, 2, 2, pattern="causal", max_len=16).eval()
    ids = torch.randint(30, (1, 7))
    layers = [(g, c[0]) for g, c in contributions(lm, ids, method)]
    residual = None if method in ("alti", "globenc") else 0.5
    got = check_against_dense(layers, 6, 0.1, residual)
    assert got.nodes[-1].tolist() == [6] and got.target == 6 and got.threshold == 0.1
    assert got.num_edges == sum(len(l.residual) + l.graph.num_edges for l in got.layers)


@pytest.mark.parametrize("residual", [None, 0.5])
def test_route_scores_are_the_widest_paths(residual):
    layers = random_layers(n=4, num_layers=3, seed=3)
    scores = route_scores(layers, 3, residual=residual)
    torch.testing.assert_close(scores.double(), brute_scores(layers, 3, residual))
    for tau in (0.05, 0.15, 0.3, 0.6):
        on_route = routes(layers, 3, tau, residual=residual).nodes[0]
        assert on_route.tolist() == (scores >= tau).nonzero().squeeze(1).tolist()


def test_routes_refuse_bad_arguments():
    layers = random_layers(n=3, num_layers=1)
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\], got 0"):
        routes(layers, 0, 0)
    with pytest.raises(TypeError, match="threshold must be a number"):
        routes(layers, 0, "0.1")
    with pytest.raises(ValueError, match=r"target must lie in \[0, 3\)"):
        routes(layers, 3, 0.1)
    with pytest.raises(TypeError, match="target must be one int token position, got list"):
        route_scores(layers, [0])
    with pytest.raises(ValueError, match="residual must be in"):
        routes(layers, 0, 0.1, residual=2.0)
    with pytest.raises(ValueError, match="head_reduce must be one of"):
        routes(layers, 0, 0.1, head_reduce="sum")
    with pytest.raises(ValueError, match="cross graph"):
        routes([(cross(2, 3), torch.ones(6))], 0, 0.1)
