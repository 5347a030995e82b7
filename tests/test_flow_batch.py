"""Tests of the batch rule of graphattn.flow: weights ``(B, E)`` / ``(B, E, H)``."""

from __future__ import annotations

import pytest
import torch

from graphattn.flow import (
    aggregate_heads,
    attention_flow,
    attention_rollout,
    cross_rollout,
    flow_graph,
    route_scores,
    routes,
    top_paths,
)
from graphattn.flow.batch import check_example, edge_batch, select_example
from graphattn.flow.prune import prune_top_k
from graphattn.graph import TokenGraph
from graphattn.patterns import sliding_window

G = TokenGraph.from_dense_mask(torch.ones(5, 5, dtype=torch.bool).tril(), cross=False)  # E = 15


def batch(b, heads, seed=0):
    """Per-edge weights ``(B, E, H)`` (float64), two layers."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(b, G.num_edges, heads, generator=gen, dtype=torch.float64) for _ in range(2)]


@pytest.mark.parametrize("heads", [1, 3])
def test_rollout_of_a_batch_is_the_stack_of_the_examples(heads):
    ws = batch(3, heads)
    got = attention_rollout([(G, w) for w in ws])
    assert got.shape == (3, 5, 5)
    for b in range(3):
        assert torch.equal(got[b], attention_rollout([(G, w[b]) for w in ws]))
    rows = attention_rollout([(G, w) for w in ws], targets=[4, 2])
    torch.testing.assert_close(rows, got[:, [4, 2]])  # top-down: another summation order


def test_single_head_batch_b_e_like_contributions_return_it():
    ws = [w[..., 0] for w in batch(2, 1)]  # (B, E)
    got = attention_rollout([(G, w) for w in ws])
    assert torch.equal(got[1], attention_rollout([(G, w[1]) for w in ws]))
    one = attention_rollout([(G, w[:1]) for w in ws])  # (1, E): one example, batched
    assert one.shape == (1, 5, 5) and torch.equal(one[0], got[0])


def test_two_d_weights_with_e_first_are_one_example_even_when_e_equals_h():
    w = torch.rand(G.num_edges, G.num_edges, dtype=torch.float64)  # (E, H) with H == E
    assert edge_batch(w, G) is None and edge_batch(w.unsqueeze(2), G) == G.num_edges
    got = attention_rollout([(G, w)])
    assert got.shape == (5, 5)
    torch.testing.assert_close(got, attention_rollout([(G, w.mean(1))]))
    batched = attention_rollout([(G, w.unsqueeze(2))])  # (B, E, 1): a batch of B = E
    assert batched.shape == (G.num_edges, 5, 5)


def test_paths_flow_and_flow_graph_give_one_result_per_example():
    ws = batch(2, 2, seed=1)
    layers = [(G, w) for w in ws]
    paths = top_paths(layers, 4, 0, 3)
    assert [len(p) for p in paths] == [3, 3]
    for b in range(2):
        assert paths[b] == top_paths([(G, w[b]) for w in ws], 4, 0, 3)
    flow = attention_flow(layers, [4])
    assert flow.shape == (2, 1, 5)
    assert torch.equal(flow[1], attention_flow([(G, w[1]) for w in ws], [4]))
    graphs = flow_graph(layers)
    assert len(graphs) == 2
    assert sorted(graphs[0].edges(data="weight")) == sorted(
        flow_graph([(G, w[0]) for w in ws]).edges(data="weight")
    )


@pytest.mark.parametrize("residual", [None, 0.5])
def test_routes_and_route_scores_give_one_result_per_example(residual):
    ws = batch(2, 2, seed=4)
    layers = [(G, w) for w in ws]
    got = routes(layers, 4, 0.1, residual=residual)
    assert len(got) == 2
    scores = route_scores(layers, 4, residual=residual)
    assert scores.shape == (2, 5)
    for b in range(2):
        alone = [(G, w[b]) for w in ws]
        want = routes(alone, 4, 0.1, residual=residual)
        assert [n.tolist() for n in got[b].nodes] == [n.tolist() for n in want.nodes]
        assert torch.equal(scores[b], route_scores(alone, 4, residual=residual))


def test_select_example_is_one_example_of_the_batch_rule():
    ws = batch(3, 2)
    layers = [(G, w) for w in ws]
    picked = select_example(layers, -1)
    assert all(torch.equal(w, full[2]) for (_, w), full in zip(picked, ws, strict=True))
    alone = [(G, w[0]) for w in ws]
    assert select_example(alone) is alone and select_example(alone, 0) is alone
    with pytest.raises(ValueError, match="batch of 3 examples; pass example=b"):
        select_example(layers)
    with pytest.raises(ValueError, match=r"example must be in \[-3, 3\)"):
        select_example(layers, 3)
    with pytest.raises(ValueError, match="example=2 picks from a batch"):
        select_example(alone, 2)
    with pytest.raises(TypeError, match="example"):
        select_example(layers, True)
    assert check_example(None, 1) == 0
    with pytest.raises(ValueError, match="batch of 0"):
        check_example(None, 0, "routes")


def test_pruned_batch_with_dropped_per_example():
    ws = batch(2, 2, seed=2)
    pruned = [prune_top_k(G, w, 2) for w in ws]
    got = attention_rollout(
        [(p.graph, p.weights) for p in pruned], dropped=[p.dropped for p in pruned]
    )
    for b in range(2):
        one = [prune_top_k(G, w[b], 2) for w in ws]
        alone = attention_rollout(
            [(p.graph, p.weights) for p in one], dropped=[p.dropped for p in one]
        )
        torch.testing.assert_close(got[b], alone)


def test_aggregate_heads_of_a_batch():
    w = batch(2, 3)[0]  # (B, E, H)
    got = aggregate_heads(w, "max")
    assert torch.equal(
        got, torch.stack([aggregate_heads(w[0], "max"), aggregate_heads(w[1], "max")])
    )
    flat = w[..., 0]  # (B, E)
    assert aggregate_heads(flat, "mean", graph=G) is flat
    assert aggregate_heads(flat[:, :3].T.contiguous(), "mean").shape == (3,)  # (E, H) without graph
    values = torch.rand(2, 5, 3, 4, dtype=torch.float64)  # (B, M, H, C)
    norm = aggregate_heads(w, "norm", values=values, graph=G)
    torch.testing.assert_close(norm[1], aggregate_heads(w[1], "norm", values=values[1], graph=G))
    with pytest.raises(ValueError, match=r"\(B, M, H, C\) with B = 2"):
        aggregate_heads(w, "norm", values=values[0], graph=G)


def test_cross_rollout_of_a_batch():
    gen = torch.Generator().manual_seed(3)
    enc = TokenGraph.from_dense_mask(torch.ones(3, 3, dtype=torch.bool), cross=False)
    dec = TokenGraph.from_dense_mask(torch.ones(2, 2, dtype=torch.bool).tril(), cross=False)
    crs = TokenGraph.from_dense_mask(torch.ones(2, 3, dtype=torch.bool), cross=True)
    e, d, c = (torch.rand(2, g.num_edges, 2, generator=gen) for g in (enc, dec, crs))
    got = cross_rollout([(enc, e)], [(dec, d)], [(crs, c)])
    assert got.cross.shape == (2, 2, 3) and got.encoder.shape == (2, 3, 3)
    one = cross_rollout([(enc, e[1])], [(dec, d[1])], [(crs, c[1])])
    for field in ("cross", "decoder", "encoder"):
        assert torch.equal(getattr(got, field)[1], getattr(one, field))
    assert cross_rollout([], [(dec, d)], [(crs, c)]).cross.shape == (2, 2, 3)
    with pytest.raises(ValueError, match="batch all layers alike"):
        cross_rollout([(enc, e[0])], [(dec, d)], [(crs, c)])


def test_mixed_batches_are_refused():
    ws = batch(2, 2)
    with pytest.raises(ValueError, match=r"layers\[1\] has batch size None but layers\[0\] has 2"):
        attention_rollout([(G, ws[0]), (G, ws[1][0])])
    with pytest.raises(ValueError, match=r"layers\[1\] has batch size 3"):
        top_paths([(G, ws[0]), (G, batch(3, 2)[1])], 4, 0)
    with pytest.raises(ValueError, match="batch of 0"):
        attention_rollout([(G, w[:0]) for w in ws])


def test_batched_rollout_keeps_every_option_per_example():
    """A batch of one gives what the unbatched call gives, for every option (normalize too)."""
    g = sliding_window(6, 3)
    w = torch.rand(g.num_edges, 2, generator=torch.Generator().manual_seed(0)) * 3
    for normalize in (True, False):
        one = attention_rollout([(g, w)] * 2, residual=0.2, normalize=normalize)
        batched = attention_rollout([(g, w[None])] * 2, residual=0.2, normalize=normalize)
        torch.testing.assert_close(batched[0], one, rtol=0, atol=0)
    with pytest.raises(TypeError, match="normalize"):
        attention_rollout([(g, w[None])], normalize="no")
