"""TokenGraph: canonical form, conversions, set algebra, files and error paths."""

import ast
import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphattn import patterns
from graphattn.graph import FORMAT_NAME, OwnedEdges, TokenGraph, register_pattern_resolver

SETTINGS = settings(max_examples=30, deadline=None)


@st.composite
def edge_lists(draw, max_n=9, cross=None):
    """(edge pairs (src, dst) with repeats, N, M, cross) for a random graph."""
    is_cross = draw(st.booleans()) if cross is None else cross
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(1, max_n)) if is_cross else n
    pairs = draw(st.lists(st.tuples(st.integers(0, m - 1), st.integers(0, n - 1)), max_size=40))
    return pairs, n, m, is_cross


def make(pairs, n, m, is_cross, **kw):
    ei = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t()  # (2, E)
    return TokenGraph(ei, n, num_src_nodes=m if is_cross else None, cross=is_cross, **kw)


@st.composite
def graph_triples(draw):
    """Three random self graphs on the same N."""
    n = draw(st.integers(1, 7))
    pair = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
    return [make(draw(st.lists(pair, max_size=30)), n, n, False) for _ in range(3)]


# ------------------------------------------------------------ by hand
def test_canonical_order_by_hand():
    g = TokenGraph([[2, 0, 1, 0, 0], [2, 2, 1, 1, 2]])  # unsorted, one duplicate
    assert g.edge_index.tolist() == [[0, 1, 0, 2], [1, 1, 2, 2]]
    assert g.src.tolist() == [0, 1, 0, 2] and g.dst.tolist() == [1, 1, 2, 2]
    assert (g.num_nodes, g.num_src_nodes, g.num_edges, g.is_cross) == (3, 3, 4, False)
    assert g.in_degree().tolist() == [0, 2, 2] and g.out_degree().tolist() == [2, 1, 1]
    assert g.indptr.tolist() == [0, 0, 2, 4]
    assert g.density == 4 / 9


def test_cross_graph_by_hand():
    g = TokenGraph([[3, 0], [0, 1]], 2, num_src_nodes=4, src_tokens=list("wxyz"))
    assert g.is_cross and (g.num_nodes, g.num_src_nodes) == (2, 4)
    assert g.edge_index.tolist() == [[3, 0], [0, 1]]
    assert g.to_dense_mask().int().tolist() == [[0, 0, 0, 1], [1, 0, 0, 0]]
    assert g.src_tokens == list("wxyz") and g.tokens is None
    assert repr(g) == "TokenGraph(N=2, M=4, cross, E=2, density=0.25)"


def test_graph_never_changes_with_the_callers_array():
    ei = torch.tensor([[0, 0], [1, 2]])  # already canonical: kept without sorting
    g = TokenGraph(ei)
    ei[0, 0] = 2
    assert g.edge_index.tolist() == [[0, 0], [1, 2]]
    arr = np.array([[0, 1], [1, 2]])
    g = TokenGraph(arr)
    arr[:] = 0
    assert g.edge_index.tolist() == [[0, 1], [1, 2]]
    handed = torch.tensor([[0, 1], [1, 2]])
    assert TokenGraph(OwnedEdges(handed)).edge_index.data_ptr() == handed.data_ptr()


def test_non_canonical_owned_edges_are_sorted():
    g = TokenGraph(OwnedEdges(torch.tensor([[1, 0, 1], [2, 2, 2]])), 3)
    assert g.edge_index.tolist() == [[0, 1], [2, 2]]


def test_from_networkx_any_hashables_and_order():
    G = nx.DiGraph()
    G.add_edge(("w", 1), "cat")
    G.add_edge(3.5, "cat")
    g = TokenGraph.from_networkx(G, nodes=["cat", 3.5, ("w", 1)])
    assert g.tokens == ["cat", "3.5", "('w', 1)"]
    assert g.edge_index.tolist() == [[1, 2], [0, 0]]
    U = nx.Graph([("a", "b")])
    assert TokenGraph.from_networkx(U).edge_index.tolist() == [[1, 0], [0, 1]]


def test_from_tokens_labels_a_pattern():
    g = TokenGraph.from_tokens("The sky is blue")
    assert g.tokens == ["The", "sky", "is", "blue"] and g.num_edges == 10
    g = TokenGraph.from_tokens(["a", "b", "c"], "sliding_window", window=2)
    assert g.edge_index.tolist() == [[0, 0, 1, 1, 2], [0, 1, 1, 2, 2]]
    with pytest.raises(ValueError, match="tokens is empty"):
        TokenGraph.from_tokens("   ")


def test_from_tokens_takes_a_builder_and_needs_a_resolver_for_names():
    g = TokenGraph.from_tokens("a b c", patterns.sliding_window, window=2)
    assert g == TokenGraph.from_tokens("a b c", "sliding_window", window=2)
    with pytest.raises(TypeError, match="pattern must return a TokenGraph, got int"):
        TokenGraph.from_tokens("a b", lambda n: n)
    with pytest.raises(TypeError, match="pattern must be a pattern name or a callable"):
        TokenGraph.from_tokens("a b", 3)
    register_pattern_resolver(None)
    try:
        with pytest.raises(ValueError, match="no pattern resolver is registered"):
            TokenGraph.from_tokens("a b", "causal")
    finally:
        register_pattern_resolver(patterns.get)


def test_graph_layer_imports_only_private_utilities():
    """graphattn/graph builds on nothing of graphattn but _validate, _files and _cache."""
    allowed = {"graphattn.graph", "graphattn._validate", "graphattn._files", "graphattn._cache"}
    package = Path(__file__).resolve().parents[1] / "graphattn" / "graph"
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else ["graphattn.graph"]
            else:
                continue
            for name in names:
                inside = name == "graphattn" or name.startswith("graphattn.")
                ok = any(name == a or name.startswith(a + ".") for a in allowed)
                assert not inside or ok, f"{path.name} imports {name}"


def test_to_string_and_repr():
    g = TokenGraph([[0, 1], [1, 0]], tokens=["a", "b"], name="swap")
    assert g.to_string() == "TokenGraph('swap', N=2, E=2, density=0.5)\n  a b\na . x\nb x ."
    assert TokenGraph([[0, 1], [1, 0]]).to_string() == "TokenGraph(N=2, E=2, density=0.5)\n. x\nx ."
    with pytest.raises(ValueError, match="max_nodes=2"):
        TokenGraph([[0], [2]]).to_string(max_nodes=2)


# ------------------------------------------------- canonical form (hypothesis)
@SETTINGS
@given(edge_lists())
def test_canonical_order_and_csr(case):
    pairs, n, m, is_cross = case
    g = make(pairs, n, m, is_cross)
    expected = sorted(set(pairs), key=lambda p: (p[1], p[0]))
    assert [tuple(e) for e in g.edge_index.t().tolist()] == expected
    assert g.edge_index.dtype == torch.long and g.edge_index.shape == (2, len(expected))
    assert g.in_degree().tolist() == [sum(1 for _, d in expected if d == i) for i in range(n)]
    assert g.out_degree().tolist() == [sum(1 for s, _ in expected if s == j) for j in range(m)]
    ptr = g.indptr
    for i in range(n):
        assert g.dst[ptr[i] : ptr[i + 1]].eq(i).all()
    assert make(list(reversed(pairs)), n, m, is_cross) == g  # order of input is irrelevant


# -------------------------------------------------------- round trips
@SETTINGS
@given(edge_lists(), st.booleans())
def test_dense_mask_round_trip(case, labelled):
    pairs, n, m, is_cross = case
    tokens = [f"t{i}" for i in range(n)] if labelled else None
    g = make(pairs, n, m, is_cross, tokens=tokens)
    mask = g.to_dense_mask()
    assert mask.dtype == torch.bool and mask.shape == (n, m)
    assert {(j, i) for i, j in mask.nonzero().tolist()} == set(pairs)
    back = TokenGraph.from_dense_mask(mask, cross=is_cross, tokens=tokens)
    assert back == g


@SETTINGS
@given(edge_lists(), st.booleans())
def test_networkx_round_trip(case, labelled):
    pairs, n, m, is_cross = case
    tokens = [f"t{i}" for i in range(n)] if labelled else None
    src_tokens = [f"s{j}" for j in range(m)] if labelled and is_cross else None
    g = make(pairs, n, m, is_cross, tokens=tokens, src_tokens=src_tokens)
    G = g.to_networkx()
    assert G.number_of_edges() == g.num_edges
    back = TokenGraph.from_networkx(G)
    if labelled or is_cross:
        assert back == g
    else:  # without labels from_networkx names nodes str(node)
        assert back == g.with_tokens([str(i) for i in range(n)])


@SETTINGS
@given(edge_lists(), st.booleans(), st.sampled_from([".json", ".npz"]))
def test_save_load_round_trip(tmp_path_factory, case, labelled, suffix):
    pairs, n, m, is_cross = case
    tokens = [f"tok {i}" for i in range(n)] if labelled else None
    src_tokens = [f"src {j}" for j in range(m)] if labelled and is_cross else None
    g = make(pairs, n, m, is_cross, tokens=tokens, src_tokens=src_tokens, name="g")
    path = g.save(tmp_path_factory.mktemp("g") / f"graph{suffix}")
    back = TokenGraph.load(path)
    assert back == g and back.name == "g" and back.is_cross == is_cross
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_batch_unbatch_round_trip():
    a = TokenGraph([[0], [1]], tokens=["a", "b"])
    b = TokenGraph([[0, 1, 2], [2, 2, 2]], tokens=["c", "d", "e"])
    g = TokenGraph.batch([a, b])
    assert g.edge_index.tolist() == [[0, 2, 3, 4], [1, 4, 4, 4]]
    assert g.ptr.tolist() == [0, 2, 5] and g.tokens == list("abcde")
    assert g.unbatch() == [a, b]


# ---------------------------------------------------------- set algebra
def masks(*graphs):
    return [g.to_dense_mask() for g in graphs]


@SETTINGS
@given(graph_triples())
def test_set_algebra_laws(triple):
    a, b, c = triple
    ma, mb, mc = masks(a, b, c)
    assert (a | b).to_dense_mask().equal(ma | mb)
    assert (a & b).to_dense_mask().equal(ma & mb)
    assert (a - b).to_dense_mask().equal(ma & ~mb)
    assert a | b == b | a and a & b == b & a  # commutative
    assert (a | b) | c == a | (b | c) and (a & b) & c == a & (b & c)  # associative
    assert a & (b | c) == (a & b) | (a & c)  # distributive
    assert a | (b & c) == (a | b) & (a | c)
    assert (a - b) | (a & b) == a and (a - b) & b == a - a  # difference splits a
    assert (a - a).num_edges == 0 and a | a == a and a & a == a


@SETTINGS
@given(edge_lists(cross=False))
def test_unary_operations_match_dense(case):
    pairs, n, _, _ = case
    g = make(pairs, n, n, False, tokens=[str(i) for i in range(n)])
    mask = g.to_dense_mask()
    eye = torch.eye(n, dtype=torch.bool)
    assert g.reverse().to_dense_mask().equal(mask.t())
    assert g.reverse().reverse() == g
    assert g.add_self_loops().to_dense_mask().equal(mask | eye)
    assert g.remove_self_loops().to_dense_mask().equal(mask & ~eye)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    p = g.permute(perm)
    assert p.to_dense_mask().equal(mask[perm][:, perm])
    assert p.tokens == [str(int(k)) for k in perm]
    keep = perm[: max(1, n // 2)]
    assert g.subgraph(keep).to_dense_mask().equal(mask[keep][:, keep])


# ------------------------------------------------------------ error paths
@pytest.mark.parametrize(
    ("edge_index", "kwargs", "error", "match"),
    [
        ([[0, 1, 2]], {}, ValueError, r"shape \(2, E\), got \(1, 3\)"),
        (torch.zeros(3, 2, dtype=torch.long), {}, ValueError, r"shape \(2, E\), got \(3, 2\)"),
        (torch.zeros(4, dtype=torch.long), {}, ValueError, r"shape \(2, E\), got \(4,\)"),
        (torch.zeros(2, 2), {}, TypeError, "must hold integers, got dtype torch.float32"),
        ([[0.5], [1.0]], {}, TypeError, "must hold integers"),
        (torch.ones(2, 2, dtype=torch.bool), {}, TypeError, "torch.bool"),
        ("0 1", {}, TypeError, "edge_index must be a tensor"),
        ([[-1], [0]], {}, ValueError, r"negative index \(-1\)"),
        ([[0], [3]], {"num_nodes": 3}, ValueError, "target 3 is out of range for num_nodes=3"),
        ([[5], [0]], {"num_nodes": 2, "num_src_nodes": 3}, ValueError, "source 5 is out of range"),
        ([[0], [1]], {"num_nodes": 0}, ValueError, "num_nodes must be positive, got 0"),
        ([[0], [1]], {"num_nodes": 2.0}, TypeError, "num_nodes must be an int"),
        ([[], []], {}, ValueError, "num_nodes must be given for a graph without edges"),
        ([[0], [1]], {"num_nodes": 2, "tokens": ["a"]}, ValueError, "tokens must have 2 labels"),
        ([[0], [1]], {"tokens": "ab"}, TypeError, "not one string"),
        ([[0], [1]], {"num_nodes": 2, "num_src_nodes": 3, "cross": False}, ValueError, "cross="),
    ],
)
def test_constructor_errors(edge_index, kwargs, error, match):
    with pytest.raises(error, match=match):
        TokenGraph(edge_index, **kwargs)


def test_operation_errors():
    a, b = TokenGraph([[0], [1]]), TokenGraph([[0], [1]], 3)
    with pytest.raises(ValueError, match=r"same sizes.*\(2, 2, False\) vs \(3, 3, False\)"):
        a | b
    with pytest.raises(TypeError, match="two TokenGraphs"):
        a & "b"
    cross = TokenGraph([[0], [0]], 1, num_src_nodes=2)
    with pytest.raises(ValueError, match="self graphs only"):
        cross.reverse()
    with pytest.raises(ValueError, match="repeats a node"):
        a.subgraph([0, 0])
    with pytest.raises(ValueError, match="outside"):
        a.subgraph([2])
    with pytest.raises(ValueError, match="must list all 2 nodes"):
        a.permute([1])
    with pytest.raises(ValueError, match="made by TokenGraph.batch"):
        a.unbatch()
    with pytest.raises(ValueError, match="cannot mix cross and self"):
        TokenGraph.batch([a, cross])
    with pytest.raises(ValueError, match="src_tokens is only for cross graphs"):
        a.with_tokens(["a", "b"], ["c", "d"])


def test_dense_mask_errors():
    big = TokenGraph([[0], [1]], 100)
    with pytest.raises(ValueError, match=r"\(100, 100\) has 10000 elements, more than max_"):
        big.to_dense_mask(max_elements=9999)
    assert big.to_dense_mask(max_elements=10000).sum() == 1
    with pytest.raises(TypeError, match="bool tensor"):
        TokenGraph.from_dense_mask(torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"shape \(N, M\)"):
        TokenGraph.from_dense_mask(torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="N, M > 0"):
        TokenGraph.from_dense_mask(torch.ones(0, 3, dtype=torch.bool))


def test_file_errors(tmp_path):
    g = TokenGraph([[0], [1]])
    with pytest.raises(ValueError, match=r"must end in .json or .npz"):
        g.save(tmp_path / "g.pt")
    assert list(tmp_path.iterdir()) == []
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable graphattn graph file"):
        TokenGraph.load(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a readable"):
        TokenGraph.load(bad)
    bad.write_text(json.dumps({"format": "something.else", "version": 1}))
    with pytest.raises(ValueError, match="not a graphattn graph file"):
        TokenGraph.load(bad)
    meta = json.loads(g.save(tmp_path / "ok.json").read_text())
    bad.write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        TokenGraph.load(bad)
    bad.write_text(json.dumps({**meta, "edge_index": [[0], [7]]}))
    with pytest.raises(ValueError, match="holds an invalid graph.*out of range"):
        TokenGraph.load(bad)
    bad.write_text(json.dumps({**meta, "num_nodes": "three"}))
    with pytest.raises(ValueError, match="holds an invalid graph"):
        TokenGraph.load(bad)
    bad.write_text(json.dumps({k: v for k, v in meta.items() if k != "edge_index"}))
    with pytest.raises(ValueError, match="no edge_index"):
        TokenGraph.load(bad)
    assert meta["format"] == FORMAT_NAME
    npz = tmp_path / "bad.npz"
    npz.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="not a readable"):
        TokenGraph.load(npz)
    np.savez(npz, other=np.zeros(3))
    with pytest.raises(ValueError, match="not a readable"):
        TokenGraph.load(npz)
    with pytest.raises(FileNotFoundError):
        TokenGraph.load(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="must end in"):
        TokenGraph.load(tmp_path / "g.txt")


def test_networkx_edge_attributes_round_trip():
    g = TokenGraph([[2, 0, 1, 0], [0, 1, 1, 2]], tokens=list("abc"))  # stored in canonical order
    w = torch.arange(2 * g.num_edges, dtype=torch.float64).view(g.num_edges, 2)  # (E, H)
    bias = torch.tensor([0.5, -1.0, 2.0, 0.0])  # (E,)
    G = g.to_networkx({"weights": w, "bias": bias})
    for k, (j, i) in enumerate(g.edge_index.t().tolist()):
        assert G.edges[j, i] == {"weights": w[k].tolist(), "bias": float(bias[k])}
    back = TokenGraph.from_networkx(G)
    assert back == g
    assert torch.equal(back.edge_attr_from_networkx(G, "weights"), w)
    assert torch.equal(back.edge_attr_from_networkx(G, "bias"), bias.double())
    cross = patterns.cross(2, 3)
    Gc = cross.to_networkx({"w": torch.arange(6.0)})
    assert torch.equal(
        TokenGraph.from_networkx(Gc).edge_attr_from_networkx(Gc, "w"), torch.arange(6.0).double()
    )
    with pytest.raises(ValueError, match=r"edge_attrs\['bias'\] must have shape \(4,\)"):
        g.to_networkx({"bias": torch.zeros(3)})
    with pytest.raises(TypeError, match="edge_attrs must be a mapping"):
        g.to_networkx([w])
    with pytest.raises(ValueError, match="no edge attribute 'nope'"):
        back.edge_attr_from_networkx(G, "nope")
