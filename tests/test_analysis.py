"""Pattern analysis: hand-derived numbers for the classic patterns, dense oracles for the rest."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphattn import analysis, patterns
from graphattn.analysis import (
    BlockDensity,
    Description,
    block_density,
    degree_stats,
    density,
    describe,
    is_causal,
    layers_to_reach,
    reach,
    sparse_transformer_valid,
)
from graphattn.graph import TokenGraph

SETTINGS = settings(max_examples=30, deadline=None)


@st.composite
def random_graphs(draw, max_n=12, causal=None):
    """A random self graph from a seeded Bernoulli mask (optionally lower-triangular)."""
    n = draw(st.integers(1, max_n))
    p = draw(st.sampled_from([0.05, 0.15, 0.3, 0.6]))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    mask = torch.rand(n, n, generator=gen) < p
    if causal if causal is not None else draw(st.booleans()):
        mask = mask.tril()
    return TokenGraph.from_dense_mask(mask)


def dense_reach(mask: torch.Tensor, layers: int) -> torch.Tensor:
    """R[i, j]: a path of at most `layers` edges from j to i, self-loops added."""
    n = mask.shape[0]
    step = (mask | torch.eye(n, dtype=torch.bool)).double()
    out = torch.eye(n, dtype=torch.double)
    for _ in range(layers):
        out = ((step @ out) > 0).double()
    return out.bool()


def dense_layers(mask: torch.Tensor) -> int | None:
    n = mask.shape[0]
    causal = bool((mask & ~mask.tril()).sum() == 0)
    allowed = torch.ones(n, n, dtype=torch.bool).tril() if causal else torch.ones(n, n).bool()
    for layers in range(1, n + 1):
        if bool((dense_reach(mask, layers) | ~allowed).all()):
            return layers
    return None


# --------------------------------------------------- hand-derived numbers
def test_density_and_causality_of_classics():
    assert density(patterns.full(7)) == 1.0
    assert density(patterns.causal(8)) == 36 / 64  # N (N + 1) / 2 of N^2
    assert density(patterns.sliding_window(10, 3)) == (10 * 3 - 3) / 100  # 3 per row, minus 1 + 2
    assert density(patterns.cross(2, 5)) == 1.0
    assert is_causal(patterns.causal(5)) and is_causal(patterns.attention_sink(9, 2, 3))
    assert is_causal(patterns.strided(9, 3)) and is_causal(patterns.fixed(9, 3))
    assert not is_causal(patterns.full(3)) and not is_causal(patterns.prefix_lm(5, 2))
    assert not is_causal(patterns.cross(3, 3))
    assert is_causal(patterns.prefix_lm(5, 1))  # a prefix of one token is plain causal


def test_degree_stats_by_hand():
    s = degree_stats(patterns.star(5))  # relay: 5 sources; satellites: relay, self, 2 ring
    assert s["in"] == {"min": 4, "max": 5, "mean": 21 / 5, "std": pytest.approx(0.4)}
    assert s["out"] == s["in"]  # star is symmetric
    g = TokenGraph([[0, 0], [1, 2]], 4)
    s = degree_stats(g)
    assert s["in"]["max"] == 1 and s["isolated_targets"] == 2 and s["unused_sources"] == 3
    s = degree_stats(patterns.cross(2, 3))
    assert s["in"]["mean"] == 3 and s["out"]["mean"] == 2


def test_block_density_by_hand():
    # causal(8), blocks of 4: (0,0) 10 edges of 16, (1,0) 16 of 16, (1,1) 10 of 16
    assert block_density(patterns.causal(8), 4) == BlockDensity(4, 3, 4, 48, 36 / 48)
    # full(10), blocks of 4: blocks of 4x4, 4x2, 2x4, 2x2 -> all entries real
    assert block_density(patterns.full(10), 4) == BlockDensity(4, 9, 9, 100, 1.0)
    # window of 2 on 8 tokens, blocks of 2: 4 diagonal blocks (3 edges each, 2x2=4 entries)
    # and 3 sub-diagonal blocks holding one edge each
    assert block_density(patterns.sliding_window(8, 2), 2) == BlockDensity(2, 7, 16, 28, 15 / 28)
    blocked = patterns.bigbird(64, 2, 1, 1, block=8)
    assert block_density(blocked, 8).density == 1.0  # a blocked pattern wastes nothing
    assert block_density(TokenGraph([[], []], 3), 2) == BlockDensity(2, 0, 4, 0, 0.0)
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        block_density(patterns.full(3), 0)


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        (patterns.full(16), 1),
        (patterns.causal(16), 1),
        (patterns.sliding_window(16, 2), 15),  # N - 1: one step back per layer
        (patterns.sliding_window(16, 4), 5),  # ceil((N - 1) / (w - 1))
        (patterns.sliding_window(16, 4, causal=False), 5),
        (patterns.strided(64, 8), 2),  # Child et al.: two steps
        (patterns.fixed(64, 8), 2),
        (patterns.fixed(64, 8, c=2), 2),
        (patterns.longformer(32, 2, 1), 2),  # via the global token
        (patterns.star(9), 2),  # via the relay
        (patterns.attention_sink(10, sinks=1, window=2), 8),  # 1 -> 9 walks the window
        (patterns.prefix_lm(6, 6), 1),
        (patterns.prefix_lm(6, 3), None),  # not causal: token 5 never reaches token 0
        (patterns.block_diagonal(8, 4), None),
        (patterns.documents([3, 5]), None),
        (TokenGraph([[0], [0]], 1), 1),
    ],
    ids=lambda x: x.name if isinstance(x, TokenGraph) else str(x),
)
def test_layers_to_reach_classics(graph, expected):
    assert layers_to_reach(graph) == expected


def test_layers_to_reach_max_layers():
    assert layers_to_reach(patterns.sliding_window(16, 2), max_layers=14) is None
    assert layers_to_reach(patterns.sliding_window(16, 2), max_layers=15) == 15


def test_sparse_transformer_validity():
    n, s = 64, 8
    assert sparse_transformer_valid(patterns.strided(n, s))
    assert sparse_transformer_valid(patterns.fixed(n, s))
    assert not sparse_transformer_valid(patterns.sliding_window(n, s))
    local = patterns.sliding_window(n, s)
    every_s = patterns.from_predicate(lambda i, j: (j <= i) & ((i - j) % s == 0), n)
    assert sparse_transformer_valid([every_s, local])  # Child et al.'s factorized heads
    assert sparse_transformer_valid([local, every_s])
    assert not sparse_transformer_valid([every_s, every_s])
    assert not sparse_transformer_valid([local, local])
    assert sparse_transformer_valid([patterns.causal(n)])
    with pytest.raises(ValueError, match="different sizes"):
        sparse_transformer_valid([local, patterns.causal(8)])
    with pytest.raises(ValueError, match="empty"):
        sparse_transformer_valid([])


def test_reach_of_windows_is_a_wider_window():
    """L layers of window w (i - w < j <= i) reach i - L(w - 1) <= j <= i: window L(w-1)+1."""
    g = patterns.sliding_window(4096, 3)
    assert reach(g, 5) == patterns.sliding_window(4096, 11)
    assert reach(patterns.sliding_window(4096, 4, causal=False), 3) == patterns.sliding_window(
        4096, 10, causal=False
    )
    assert reach(g, 1) == g
    assert reach(g, 0) == TokenGraph(torch.arange(4096).expand(2, -1), 4096)
    assert reach(g, 2).name == "reach(sliding_window(w=3), layers=2)"
    labelled = TokenGraph.from_tokens("a b c d", "sliding_window", window=2)
    assert reach(labelled, 2).tokens == list("abcd")
    assert reach(labelled, 2).edge_index.equal(patterns.sliding_window(4, 3).edge_index)


def test_reach_in_small_chunks_is_the_same(monkeypatch):
    g = patterns.strided(40, 5)
    whole = reach(g, 2)
    monkeypatch.setattr(analysis, "PRODUCT_CHUNK", 7)
    assert reach(g, 2) == whole and layers_to_reach(g) == 2


def test_errors_name_the_argument():
    with pytest.raises(TypeError, match="graph must be a TokenGraph"):
        density("causal")
    with pytest.raises(ValueError, match="cross graph"):
        reach(patterns.cross(3, 4), 2)
    with pytest.raises(ValueError, match="cross graph"):
        layers_to_reach(patterns.cross(3, 4))
    with pytest.raises(ValueError, match="layers must be >= 0"):
        reach(patterns.causal(3), -1)
    with pytest.raises(TypeError, match="layers must be an int"):
        reach(patterns.causal(3), 1.5)
    with pytest.raises(ValueError, match="N x N table"):
        layers_to_reach(patterns.sliding_window(10_000, 2))


# ------------------------------------------------------- dense oracles
@SETTINGS
@given(random_graphs(), st.integers(0, 4))
def test_reach_equals_dense_matrix_power(g, layers):
    expected = dense_reach(g.to_dense_mask(), layers)
    assert torch.equal(reach(g, layers).to_dense_mask(), expected)


@SETTINGS
@given(random_graphs())
def test_layers_to_reach_equals_dense_search(g):
    assert layers_to_reach(g) == dense_layers(g.to_dense_mask())


@SETTINGS
@given(random_graphs(causal=True))
def test_sparse_transformer_valid_equals_dense(g):
    r = dense_reach(g.to_dense_mask(), 2)
    n = g.num_nodes
    assert sparse_transformer_valid(g) == bool(r.tril().sum() == n * (n + 1) // 2)


@SETTINGS
@given(random_graphs(), st.integers(1, 5))
def test_block_density_equals_dense_count(g, b):
    mask = g.to_dense_mask()
    n = mask.shape[0]
    nonempty, computed = 0, 0
    for r in range(0, n, b):
        for c in range(0, n, b):
            block = mask[r : r + b, c : c + b]
            if block.any():
                nonempty += 1
                computed += block.numel()
    got = block_density(g, b)
    assert (got.nonempty_blocks, got.computed) == (nonempty, computed)
    assert got.total_blocks == math.ceil(n / b) ** 2
    assert got.density == (g.num_edges / computed if computed else 0.0)


# ------------------------------------------------------------- describe
def test_describe_causal_by_hand():
    d = describe(patterns.causal(4), block_size=2)
    assert isinstance(d, Description) and isinstance(d, dict)
    assert d == {
        "name": "causal",
        "num_nodes": 4,
        "num_src_nodes": 4,
        "cross": False,
        "num_edges": 10,
        "density": 0.625,
        "causal": True,
        "self_loops": 4,
        "symmetric": False,
        "in_degree": {"min": 1, "max": 4, "mean": 2.5, "std": pytest.approx(math.sqrt(1.25))},
        "out_degree": {"min": 1, "max": 4, "mean": 2.5, "std": pytest.approx(math.sqrt(1.25))},
        "isolated_targets": 0,
        "block_size": 2,
        "block_density": 10 / 12,
        "nonempty_blocks": 3,
        "layers_to_reach": 1,
    }
    text = str(d)
    assert text.splitlines()[0].split() == ["name", "causal"]
    assert ["layers_to_reach", "1"] in [line.split() for line in text.splitlines()]
    assert ["in_degree", "min=1,", "max=4,", "mean=2.5,", "std=1.118"] in [
        line.split() for line in text.splitlines()
    ]


def test_describe_cross_and_large_graphs():
    d = describe(patterns.cross_window(4, 8, 2))
    assert d["cross"] and "layers_to_reach" not in d and "self_loops" not in d
    assert describe(patterns.full(5))["symmetric"] is True
    d = describe(patterns.sliding_window(5000, 8), reach_limit=1000)
    assert "layers_to_reach" not in d and d["num_edges"] == 5000 * 8 - 28


@pytest.mark.parametrize(
    "graph",
    [patterns.sliding_window(9, 2), patterns.sliding_window(9, 2, causal=False),
     patterns.causal(6), patterns.get("strided", 9, stride=3)],
)
def test_reach_coverage_counts_only_allowed_sources(graph):
    n = graph.num_nodes
    mask = graph.to_dense_mask() | torch.eye(n, dtype=torch.bool)  # (N, N) one layer + residual
    reached = torch.eye(n, dtype=torch.bool)
    for layers in range(1, 4):
        reached = (mask.double() @ reached.double()) > 0  # (N, N) paths of <= layers edges
        allowed = torch.ones(n, n, dtype=torch.bool)
        if analysis.is_causal(graph):
            allowed = allowed.tril()  # j <= i
        expected = (reached & allowed).sum(1).double() / allowed.sum(1)
        assert torch.allclose(analysis.reach_coverage(graph, layers), expected)
    if analysis.is_causal(graph):  # a causal target is never short of its future
        full = analysis.layers_to_reach(graph)
        assert torch.all(analysis.reach_coverage(graph, full) == 1.0)
