"""graphattn.distributed partitions and plans, without processes: exact sets, bytes, errors."""

from __future__ import annotations

import pytest
import torch

import graphattn.distributed as gd
from graphattn import TokenGraph, patterns

GRAPHS = {
    "window": lambda: patterns.sliding_window(40, 4, causal=False),
    "strided": lambda: patterns.strided(40, 6),
    "bigbird": lambda: patterns.bigbird(40, window=3, num_global=2, num_random=2, seed=1),
    "random": lambda: patterns.random(40, 3, seed=2),
    "cross": lambda: patterns.cross_window(30, 20, 2),
    "isolated": lambda: TokenGraph([[0, 1, 5], [1, 1, 6]], num_nodes=12),
}
METHODS = ["contiguous", "metis"]


def _needs_metis(method: str) -> None:
    if method == "metis":
        pytest.importorskip("pymetis")


def _expected_halo(graph: TokenGraph, part: gd.Partition, r: int) -> set[int]:
    """Written out: sources of edges into rank r's targets that r does not own."""
    owned = set(part.owned[r].tolist())
    own_src = set(part.owned_src[r].tolist())
    return {s for s, t in graph.edge_index.t().tolist() if t in owned and s not in own_src}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("p", [1, 2, 3, 4, 50])
def test_partition_covers_and_halo_is_exact(name, method, p):
    _needs_metis(method)
    g = GRAPHS[name]()
    part = gd.partition(g, p, method=method)
    assert len(part.owned) == len(part.owned_src) == len(part.halo) == p
    for owned, n, owner in ((part.owned, g.num_nodes, part.owner),
                            (part.owned_src, g.num_src_nodes, part.src_owner)):  # fmt: skip
        assert torch.equal(torch.sort(torch.cat(owned)).values, torch.arange(n))
        for r, rows in enumerate(owned):
            assert torch.equal(rows, torch.sort(rows).values)
            assert (owner[rows] == r).all()
    if not g.is_cross:
        assert all(torch.equal(a, b) for a, b in zip(part.owned, part.owned_src, strict=True))
    for r in range(p):
        halo = part.halo[r].tolist()
        assert len(halo) == len(set(halo))
        assert set(halo) == _expected_halo(g, part, r)
        # grouped by owner ascending, ascending within a group
        key = [(int(part.src_owner[s]), s) for s in halo]
        assert key == sorted(key)
        for s in range(p):
            sent = part.rows(s, r).tolist()
            assert sent == [x for x in halo if part.src_owner[x] == s]
            assert int(part.counts[s, r]) == len(sent)
    assert torch.diagonal(part.counts).sum() == 0


@pytest.mark.parametrize("method", METHODS)
def test_partition_is_deterministic(method):
    _needs_metis(method)
    g = patterns.bigbird(64, window=3, num_global=2, num_random=3, seed=4)
    a, b = gd.partition(g, 4, method=method), gd.partition(g, 4, method=method)
    assert a.fingerprint == b.fingerprint
    assert all(torch.equal(x, y) for x, y in zip(a.owned, b.owned, strict=True))
    assert all(torch.equal(x, y) for x, y in zip(a.halo, b.halo, strict=True))
    other = gd.partition(patterns.bigbird(64, seed=5), 4, method=method)
    assert other.fingerprint != a.fingerprint


def test_contiguous_is_balanced_ranges():
    g = patterns.sliding_window(64, 8, causal=False)
    part = gd.partition(g, 4, method="contiguous")
    cuts = [int(o[0]) for o in part.owned[1:]]
    assert [o.tolist() for o in part.owned] == [
        list(range(a, b)) for a, b in zip([0, *cuts], [*cuts, 64], strict=True)
    ]
    load = [int((1 + g.in_degree()[o]).sum()) for o in part.owned]
    assert max(load) - min(load) <= 2 * 16  # within one token's weight of each other
    for r, cut in enumerate(cuts):  # each side of a cut needs the 7 tokens across it
        assert set(range(cut, cut + 7)) <= set(part.halo[r].tolist())
        assert set(range(cut - 7, cut)) <= set(part.halo[r + 1].tolist())
    assert [len(h) for h in part.halo] == [7, 14, 14, 7]


def test_contiguous_balances_edges():
    # causal full attention: late targets have many more edges, so they get fewer per rank
    part = gd.partition(patterns.causal(100), 2, method="contiguous")
    n0, n1 = len(part.owned[0]), len(part.owned[1])
    assert n0 > 60 and n0 + n1 == 100
    indeg = patterns.causal(100).in_degree()
    e0, e1 = int(indeg[part.owned[0]].sum()), int(indeg[part.owned[1]].sum())
    assert abs((e0 + n0) - (e1 + n1)) <= 101


def test_metis_beats_contiguous_on_a_scattered_graph():
    pytest.importorskip("pymetis")
    perm = torch.randperm(256, generator=torch.Generator().manual_seed(0))
    g = patterns.sliding_window(256, 4, causal=False).permute(perm)  # a window, scattered
    halo = {m: sum(len(h) for h in gd.partition(g, 4, method=m).halo) for m in METHODS}
    assert halo["metis"] * 4 < halo["contiguous"]


def test_world_size_above_nodes_leaves_ranks_empty():
    g = patterns.sliding_window(3, 2)
    part = gd.partition(g, 5, method="contiguous")
    assert sorted(len(o) for o in part.owned) == [0, 0, 1, 1, 1]
    plan = gd.local_plan(part, next(r for r in range(5) if len(part.owned[r]) == 0))
    assert plan.graph is None and plan.edge_ids.numel() == 0


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_local_plan_is_the_restricted_graph(name):
    g = GRAPHS[name]()
    part = gd.partition(g, 3, method="contiguous")
    seen = []
    for r in range(3):
        plan = gd.local_plan(part, r)
        assert plan is gd.local_plan(part, r)  # cached
        sources = torch.cat([part.owned_src[r], part.halo[r]])[plan.source_order]
        assert torch.equal(sources, torch.sort(sources).values)
        assert torch.equal(plan.to_global, torch.arange(len(plan.edge_ids)))
        if plan.graph is None:
            assert plan.edge_ids.numel() == 0
            continue
        local = plan.graph.edge_index[:, plan.to_global]  # (2, E_r) in global order
        glob = torch.stack([sources[local[0]], part.owned[r][local[1]]])
        assert torch.equal(glob, g.edge_index[:, plan.edge_ids])
        seen.append(plan.edge_ids)
    assert torch.equal(torch.sort(torch.cat(seen)).values, torch.arange(g.num_edges))


def test_bytes_accounting():
    g = patterns.sliding_window(64, 8, causal=False)
    part = gd.partition(g, 4, method="contiguous")
    rows = gd.rows_sent(part)
    assert rows["halo_forward"].tolist() == [7, 14, 14, 7]
    assert rows["halo_backward"].tolist() == [len(h) for h in part.halo] == [7, 14, 14, 7]
    own = [len(o) for o in part.owned_src]  # [17, 15, 15, 17]: edges balance the load
    assert rows["allgather_forward"].tolist() == [3 * x for x in own]
    assert rows["allgather_backward"].tolist() == [64 - x for x in own]
    assert rows["ring_forward"].tolist() == [64 - own[(s + 1) % 4] for s in range(4)]
    assert rows["ring_backward"].tolist() == [2 * (64 - own[(s + 1) % 4]) for s in range(4)]
    b = gd.bytes_sent(part, heads=2, head_dim=8, value_dim=4, batch=3, itemsize=2)
    for key, value in rows.items():
        assert b[key].tolist() == [x * 3 * 2 * (8 + 4) * 2 for x in value.tolist()]


def test_partition_errors():
    g = patterns.sliding_window(8, 2)
    with pytest.raises(TypeError, match="graph must be a TokenGraph"):
        gd.partition(g.edge_index, 2)
    with pytest.raises(ValueError, match="world_size must be"):
        gd.partition(g, 0)
    with pytest.raises(TypeError, match="world_size must be an int"):
        gd.partition(g, 2.0)
    with pytest.raises(ValueError, match="method must be one of"):
        gd.partition(g, 2, method="spectral")
    part = gd.partition(g, 2, method="contiguous")
    with pytest.raises(ValueError, match="rank must be"):
        gd.local_plan(part, 2)
    with pytest.raises(TypeError, match="part must be a Partition"):
        gd.rows_sent(g)
    with pytest.raises(ValueError, match="heads must be"):
        gd.bytes_sent(part, heads=0, head_dim=4)


def test_metis_without_pymetis_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pymetis", None)
    with pytest.raises(ImportError, match=r"graphattn\[distributed\]"):
        gd.partition(patterns.sliding_window(8, 2), 2, method="metis")


def test_graph_attention_needs_a_process_group():
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        pytest.skip("a process group is already initialized")
    part = gd.partition(patterns.sliding_window(4, 2), 1, method="contiguous")
    q = torch.zeros(4, 1, 2)
    with pytest.raises(RuntimeError, match="initialized process group"):
        gd.graph_attention(q, q, q, part)


def test_a_world_size_whose_plan_cannot_fit_in_memory_is_a_value_error():
    g = patterns.sliding_window(8, 2)
    with pytest.raises(ValueError, match=r"halo counts of world_size=1000000 .* at most 8 ranks"):
        gd.partition(g, 10**6, method="contiguous")
