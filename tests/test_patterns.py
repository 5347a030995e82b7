"""Every pattern against its written definition, as an independent dense broadcast."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphattn import patterns
from graphattn.graph import TokenGraph
from graphattn.patterns import (
    attention_sink,
    bigbird,
    block_diagonal,
    causal,
    cross,
    cross_window,
    documents,
    fixed,
    from_predicate,
    full,
    get,
    global_tokens,
    intersection,
    longformer,
    prefix_lm,
    random,
    sliding_window,
    star,
    strided,
    union,
)

SETTINGS = settings(max_examples=15, deadline=None)


def grid(n, m=None):
    """Broadcast index tensors: i (N, 1) targets, j (1, M) sources."""
    return torch.arange(n)[:, None], torch.arange(n if m is None else m)[None, :]


def check(g: TokenGraph, expected: torch.Tensor):
    """The graph is canonical and its mask is exactly ``expected``."""
    mask = expected.expand(g.num_nodes, g.num_src_nodes)
    assert torch.equal(g.to_dense_mask(), mask), g.name
    keys = g.dst * g.num_src_nodes + g.src
    assert bool((keys[1:] > keys[:-1]).all()), "edges not in canonical order"
    assert g.name


# ------------------------------------------------------------ exact small lists
def test_small_edge_lists_by_hand():
    assert causal(3).edge_index.tolist() == [[0, 0, 1, 0, 1, 2], [0, 1, 1, 2, 2, 2]]
    assert full(2).edge_index.tolist() == [[0, 1, 0, 1], [0, 0, 1, 1]]
    assert sliding_window(4, 2).edge_index.tolist() == [
        [0, 0, 1, 1, 2, 2, 3],
        [0, 1, 1, 2, 2, 3, 3],
    ]
    assert sliding_window(3, 2, causal=False).edge_index.tolist() == [
        [0, 1, 0, 1, 2, 1, 2],
        [0, 0, 1, 1, 1, 2, 2],
    ]
    assert prefix_lm(3, 2).edge_index.tolist() == [[0, 1, 0, 1, 0, 1, 2], [0, 0, 1, 1, 2, 2, 2]]
    assert attention_sink(4, sinks=1, window=1).edge_index.tolist() == [
        [0, 0, 1, 0, 2, 0, 3],
        [0, 1, 1, 2, 2, 3, 3],
    ]
    assert star(3).edge_index.tolist() == [[0, 1, 2, 0, 1, 2, 0, 1, 2], [0, 0, 0, 1, 1, 1, 2, 2, 2]]
    g = cross_window(2, 4, 1)
    assert g.is_cross and g.edge_index.tolist() == [[0, 2], [0, 1]]
    assert documents([1, 2]).edge_index.tolist() == [[0, 1, 1, 2], [0, 1, 2, 2]]
    assert strided(4, 2).edge_index.tolist() == [
        [0, 0, 1, 0, 1, 2, 1, 2, 3],
        [0, 1, 1, 2, 2, 2, 3, 3, 3],
    ]


# ------------------------------------------------------- definitions (dense)
@SETTINGS
@given(st.integers(1, 40), st.data())
def test_full_causal(n, data):
    i, j = grid(n)
    check(full(n), torch.ones(n, n, dtype=torch.bool))
    check(causal(n), j <= i)


@SETTINGS
@given(st.integers(1, 40), st.data(), st.booleans(), st.integers(1, 4))
def test_sliding_window(n, data, is_causal, dilation):
    w = data.draw(st.integers(1, n))
    i, j = grid(n)
    d = i - j
    if is_causal:
        expected = (d >= 0) & (d % dilation == 0) & (d // dilation < w)
    else:
        expected = (d.abs() % dilation == 0) & (d.abs() // dilation < w)
    check(sliding_window(n, w, causal=is_causal, dilation=dilation), expected)


def test_sliding_window_convention_counts_itself():
    """sliding_window(n, w) is the w keys i-w < j <= i: row i >= w-1 has exactly w keys."""
    g = sliding_window(10, 4)
    assert g.in_degree().tolist() == [1, 2, 3, 4, 4, 4, 4, 4, 4, 4]
    assert g.to_dense_mask()[9].nonzero().flatten().tolist() == [6, 7, 8, 9]
    assert sliding_window(10, 1) == TokenGraph([list(range(10)), list(range(10))])


def test_sliding_window_large_is_canonical_and_counted():
    n, w = 50_000, 64
    g = sliding_window(n, w)
    assert g.num_edges == n * w - w * (w - 1) // 2
    keys = g.dst * n + g.src
    assert bool((keys[1:] > keys[:-1]).all())
    assert bool(((g.dst - g.src >= 0) & (g.dst - g.src < w)).all())


@SETTINGS
@given(st.integers(1, 40), st.data(), st.booleans())
def test_strided(n, data, is_causal):
    s = data.draw(st.integers(1, n))
    i, j = grid(n)
    d = i - j
    if is_causal:
        expected = (d >= 0) & ((d < s) | (d % s == 0))
    else:
        expected = (d.abs() < s) | (d % s == 0)
    check(strided(n, s, causal=is_causal), expected)


@SETTINGS
@given(st.integers(1, 40), st.data(), st.booleans())
def test_fixed(n, data, is_causal):
    s = data.draw(st.integers(1, n))
    c = data.draw(st.integers(1, s))
    i, j = grid(n)
    expected = (j // s == i // s) | (j % s >= s - c)
    if is_causal:
        expected = expected & (j <= i)
    check(fixed(n, s, c, causal=is_causal), expected)


@SETTINGS
@given(st.integers(1, 30), st.data(), st.booleans())
def test_global_tokens(n, data, symmetric):
    chosen = data.draw(st.lists(st.integers(0, n - 1), max_size=4))
    is_global = torch.zeros(n, dtype=torch.bool)
    is_global[chosen] = True
    i, j = grid(n)
    expected = is_global[j] | (is_global[i] if symmetric else False)
    check(global_tokens(n, chosen, symmetric=symmetric), expected)
    k = data.draw(st.integers(0, n))
    first = torch.arange(n) < k
    check(global_tokens(n, k), first[j] | first[i])


@SETTINGS
@given(st.integers(1, 30), st.data())
def test_longformer(n, data):
    w = data.draw(st.integers(1, n))
    k = data.draw(st.integers(0, n))
    i, j = grid(n)
    check(longformer(n, w, k), ((i - j).abs() < w) | (i < k) | (j < k))


@SETTINGS
@given(st.integers(1, 30), st.data())
def test_prefix_lm(n, data):
    p = data.draw(st.integers(0, n))
    i, j = grid(n)
    check(prefix_lm(n, p), (j <= i) | (j < p))


@SETTINGS
@given(st.lists(st.integers(1, 6), min_size=1, max_size=6), st.booleans())
def test_block_diagonal_and_documents(sizes, is_causal):
    n = sum(sizes)
    block = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    i, j = grid(n)
    same = block[i] == block[j]
    check(block_diagonal(n, sizes, causal=is_causal), same & (j <= i) if is_causal else same)
    check(documents(sizes, causal=is_causal), same & (j <= i) if is_causal else same)
    size = sizes[0]
    check(block_diagonal(n, size), i // size == j // size)


@SETTINGS
@given(st.integers(1, 30), st.data())
def test_attention_sink(n, data):
    s = data.draw(st.integers(0, n))
    w = data.draw(st.integers(1, n))
    i, j = grid(n)
    check(attention_sink(n, s, w), (j <= i) & ((j < s) | (i - j < w)))


@pytest.mark.parametrize("n", [2, 3, 4, 7])
def test_star(n):
    i, j = grid(n)
    sat = (i >= 1) & (j >= 1)
    ring = ((i - j) % (n - 1) == 0) | ((i - j) % (n - 1) == 1) | ((j - i) % (n - 1) == 1)
    check(star(n), (i == 0) | (j == 0) | (sat & ring))


@SETTINGS
@given(st.integers(1, 20), st.integers(1, 20), st.data(), st.booleans())
def test_cross_patterns(n, m, data, is_causal):
    i, j = grid(n, m)
    g = cross(n, m)
    check(g, torch.ones(n, m, dtype=torch.bool))
    assert g.is_cross
    w = data.draw(st.integers(1, m))
    c = i * m // n
    expected = (c - w < j) & (j <= c) if is_causal else (j - c).abs() < w
    g = cross_window(n, m, w, causal=is_causal)
    check(g, expected)
    assert g.is_cross and g.num_src_nodes == m


@SETTINGS
@given(st.integers(1, 20), st.integers(1, 20), st.integers(1, 25), st.integers(0, 10**6))
def test_the_seq2seq_cross_patterns(n, m, w, seed):
    i, j = grid(n, m)
    c = i.clamp(max=m - 1)  # the diagonal of equal-length sentences, stopped at the last source
    check(patterns.diagonal_window(n, m, w), (j - c).abs() < w)
    check(patterns.no_cross(n, m), torch.zeros(n, m, dtype=torch.bool))
    k = min(w, m)
    g = patterns.random_cross(n, m, w, seed=seed)
    assert g.is_cross and g.num_src_nodes == m
    assert torch.equal(g.in_degree(), torch.full((n,), k))
    assert g == patterns.random_cross(n, m, w, seed=seed)
    shorter = patterns.random_cross(max(n - 1, 1), m, w, seed=seed)  # a row does not depend on N
    assert torch.equal(shorter.to_dense_mask(), g.to_dense_mask()[: shorter.num_nodes])
    check(g, g.to_dense_mask())  # canonical


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: patterns.diagonal_window(3, 4, 0), "window"),
        (lambda: patterns.diagonal_window(0, 4, 1), "n_dst"),
        (lambda: patterns.random_cross(3, 0, 1), "n_src"),
        (lambda: patterns.random_cross(3, 4, 0), "k"),
        (lambda: patterns.random_cross(3, 4, 1, seed=-1), "seed"),
        (lambda: patterns.no_cross(3, 0), "n_src"),
    ],
)
def test_the_seq2seq_cross_patterns_refuse_bad_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_the_seq2seq_cross_patterns_keep_their_old_path():
    from graphattn.experiments import seq2seq

    assert seq2seq.diagonal_window is patterns.diagonal_window
    assert seq2seq.random_cross is patterns.random_cross and seq2seq.no_cross is patterns.no_cross
    from graphattn.patterns.registry import is_cross

    assert is_cross("diagonal_window") and is_cross("random_cross") and is_cross("no_cross")


# ---------------------------------------------------------------- random
@SETTINGS
@given(st.integers(1, 30), st.data(), st.booleans(), st.integers(0, 10**6))
def test_random_k_degrees_and_seed(n, data, is_causal, seed):
    k = data.draw(st.integers(0, n))
    g = random(n, k, seed=seed, causal=is_causal)
    allowed = torch.arange(1, n + 1) if is_causal else torch.full((n,), n)
    assert torch.equal(g.in_degree(), allowed.clamp(max=k))
    if is_causal:
        assert bool((g.src <= g.dst).all())
    assert g == random(n, k, seed=seed, causal=is_causal)
    check(g, g.to_dense_mask())  # canonical


def test_random_k_is_uniform():
    """Over many seeds every (i, j) is picked with probability k / allowed(i)."""
    n, k, seeds = 10, 3, 300
    counts = sum(random(n, k, seed=s).to_dense_mask().long() for s in range(seeds))
    assert counts.min() > 50 and counts.max() < 130  # mean 90, sd 8
    counts = sum(random(n, k, seed=s, causal=True).to_dense_mask().long() for s in range(seeds))
    assert counts[5, :6].min() > 110 and counts[5, :6].max() < 190  # mean 150, sd 9
    assert counts[1, :2].tolist() == [seeds, seeds]  # fewer than k allowed: all of them


def test_random_p_density_and_causal():
    g = random(200, p=0.1, seed=3)
    assert 3700 < g.num_edges < 4300  # mean 4000, sd 60
    assert random(200, p=0.1, seed=3) == g != random(200, p=0.1, seed=4)
    assert bool((random(50, p=0.5, causal=True).src <= random(50, p=0.5, causal=True).dst).all())
    assert random(5, p=1.0) == full(5) and random(5, p=0.0).num_edges == 0


def test_bigbird_is_window_global_random():
    n, w, g, r = 30, 3, 2, 2
    i, j = grid(n)
    expected = ((i - j).abs() < w) | (i < g) | (j < g) | random(n, r, seed=5).to_dense_mask()
    check(bigbird(n, w, g, r, seed=5), expected)


def test_bigbird_blocked_expands_the_block_pattern():
    n, b = 22, 4  # 6 blocks, the last one of 2 tokens
    blocks = bigbird(6, 2, 1, 1, seed=1).to_dense_mask()
    i, j = grid(n)
    check(bigbird(n, 2, 1, 1, seed=1, block=b), blocks[i // b, j // b])


# ---------------------------------------------------------- from_predicate
PREDICATES = {
    "causal": lambda i, j: j <= i,
    "mod": lambda i, j: (i * 3 + j * 5) % 7 < 3,
    "row_only": lambda i, j: i % 2 == 0,
    "col_only": lambda i, j: j % 3 == 0,
}


@SETTINGS
@given(
    st.sampled_from(sorted(PREDICATES)), st.integers(1, 25), st.none() | st.integers(1, 25)
)
def test_from_predicate_equals_dense_predicate(name, n, m):
    fn = PREDICATES[name]
    i, j = grid(n, m)
    g = from_predicate(fn, n, m)
    check(g, fn(i, j))
    assert g.is_cross == (m is not None)


def test_from_predicate_tiles(monkeypatch):
    """With a tiny tile the rows are evaluated in many pieces; the result is the same."""
    fn = PREDICATES["mod"]
    whole = from_predicate(fn, 37, 23)
    monkeypatch.setattr("graphattn.patterns.predicates.PREDICATE_TILE", 50)
    seen = []
    tiled = from_predicate(lambda i, j: (seen.append(i.shape), fn(i, j))[1], 37, 23)
    assert tiled == whole and len(seen) == 19 and max(s[0] for s in seen) == 2


def test_from_predicate_errors():
    with pytest.raises(TypeError, match="fn must be callable"):
        from_predicate(3, 4)
    with pytest.raises(TypeError, match="bool tensor"):
        from_predicate(lambda i, j: i - j, 4)
    with pytest.raises(ValueError, match="broadcast"):
        from_predicate(lambda i, j: torch.ones(5, 7, dtype=torch.bool), 4)
    with pytest.raises(ValueError, match="n_dst"):
        from_predicate(lambda i, j: j <= i, 0)


# ------------------------------------------------------------ composition
def test_union_intersection_names_and_edges():
    a, b = sliding_window(8, 2), global_tokens(8, 1)
    u = union(a, b)
    assert u.to_dense_mask().equal(a.to_dense_mask() | b.to_dense_mask())
    assert u.name == "sliding_window(w=2) | global_tokens(globals=1)"
    x = intersection(u, causal(8))
    assert x.to_dense_mask().equal(u.to_dense_mask() & causal(8).to_dense_mask())
    assert x.name == "(sliding_window(w=2) | global_tokens(globals=1)) & causal"
    with pytest.raises(ValueError, match="empty"):
        union()
    with pytest.raises(TypeError, match="TokenGraph"):
        union(a, "causal")


# --------------------------------------------------------------- registry
PARAMS = {
    "attention_sink": dict(sinks=2, window=3),
    "bigbird": dict(window=2, num_global=1, num_random=1),
    "block_diagonal": dict(sizes=3),
    "causal": {},
    "cross": dict(n_src=5),
    "cross_window": dict(n_src=5, window=2),
    "diagonal_window": dict(n_src=5, window=2),
    "documents": dict(lengths=[4, 6]),
    "fixed": dict(stride=4),
    "full": {},
    "global_tokens": dict(globals=1),
    "longformer": dict(window=2),
    "no_cross": dict(n_src=5),
    "prefix_lm": dict(prefix=3),
    "random": dict(k=2),
    "random_cross": dict(n_src=5, k=2),
    "sliding_window": dict(window=3),
    "star": {},
    "strided": dict(stride=3),
}


def test_registry_builds_every_pattern():
    assert patterns.available() == sorted(PARAMS)
    for name, params in PARAMS.items():
        g = get(name, 10, **params)
        assert isinstance(g, TokenGraph) and g.num_nodes == 10 and g.name.startswith(name)


def test_registry_matches_builders_and_from_tokens():
    assert get("sliding_window", 9, window=3) == sliding_window(9, 3)
    assert get("documents", 5, lengths=[2, 3]) == documents([2, 3])
    g = TokenGraph.from_tokens("a b c d", "prefix_lm", prefix=2)
    assert g.tokens == list("abcd") and g.edge_index.equal(prefix_lm(4, 2).edge_index)


def test_registry_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown pattern 'nope'.*sliding_window"):
        get("nope", 4)
    with pytest.raises(ValueError, match="unknown parameter 'windw'"):
        get("sliding_window", 4, windw=2)
    with pytest.raises(ValueError, match="bad parameters"):
        get("sliding_window", 4)
    with pytest.raises(ValueError, match=r"window must be in \[1, 4\], got 5"):
        get("sliding_window", 4, window=5)
    with pytest.raises(ValueError, match="window must be"):
        sliding_window(4, 0)
    with pytest.raises(TypeError, match="window must be an int"):
        sliding_window(4, 2.0)
    with pytest.raises(ValueError, match="dilation"):
        sliding_window(4, 2, dilation=0)
    with pytest.raises(ValueError, match="lengths must sum to n=6"):
        get("documents", 6, lengths=[2, 3])
    with pytest.raises(ValueError, match="globals holds an index outside"):
        global_tokens(4, [4])
    with pytest.raises(ValueError, match="exactly one of k and p"):
        random(4)
    with pytest.raises(ValueError, match="p must be a probability"):
        random(4, p=1.5)
    with pytest.raises(ValueError, match="c must be in"):
        fixed(8, 4, c=5)
    with pytest.raises(ValueError, match="sizes must sum"):
        block_diagonal(5, [2, 2])
    with pytest.raises(ValueError, match="n must be >= 2"):
        star(1)
    with pytest.raises(ValueError, match="prefix"):
        prefix_lm(3, 4)
    with pytest.raises(TypeError, match="lengths must be a sequence"):
        documents(5)
