"""TokenGraph.to_dense: per-edge values as a dense matrix, against a hand-written scatter."""

from __future__ import annotations

import pytest
import torch

from graphattn import TokenGraph, graph_attention, patterns

EDGES = [[0, 0, 1, 2], [0, 1, 1, 2]]  # 0 -> 0, 0 -> 1, 1 -> 1, 2 -> 2


def test_one_value_per_edge_exact():
    g = TokenGraph(EDGES)
    dense = g.to_dense(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert dense.tolist() == [[1.0, 0.0, 0.0], [2.0, 3.0, 0.0], [0.0, 0.0, 4.0]]


def test_heads_and_batch_are_head_major():
    g = TokenGraph(EDGES)
    values = torch.arange(2 * 4 * 3, dtype=torch.float64).view(2, 4, 3)  # (B, E, H)
    dense = g.to_dense(values)
    assert dense.shape == (2, 3, 3, 3) and dense.dtype == torch.float64
    for b in range(2):
        for h in range(3):
            want = torch.zeros(3, 3, dtype=torch.float64)
            for e, (j, i) in enumerate(zip(*EDGES, strict=True)):
                want[i, j] = values[b, e, h]
            assert torch.equal(dense[b, h], want)
    assert torch.equal(g.to_dense(values[0]), dense[0])  # (E, H) -> (H, N, M)


def test_fill_and_cross_graph():
    g = TokenGraph([[2, 0], [0, 1]], 2, num_src_nodes=3)  # 2 -> 0, 0 -> 1
    dense = g.to_dense(torch.tensor([5.0, 6.0]), fill=float("-inf"))
    inf = float("inf")
    assert dense.tolist() == [[-inf, -inf, 5.0], [6.0, -inf, -inf]]
    mask = g.to_dense(torch.ones(2, dtype=torch.bool), fill=False)
    assert torch.equal(mask, g.to_dense_mask())


def test_matches_dense_attention_weights():
    g = patterns.causal(5)
    q, k, v = torch.randn(3, 5, 2, 4).unbind(0)
    _, w = graph_attention(q, k, v, g, return_weights=True)  # (E, H)
    scores = torch.einsum("nhd,mhd->hnm", q, k) / 2.0
    want = scores.masked_fill(~g.to_dense_mask(), float("-inf")).softmax(-1)
    torch.testing.assert_close(g.to_dense(w), want)


def test_gradient_flows_to_the_edges():
    g = TokenGraph(EDGES)
    values = torch.ones(4, 2, requires_grad=True)
    (g.to_dense(values) * torch.arange(9.0).view(3, 3)).sum().backward()
    assert values.grad[:, 0].tolist() == [0.0, 3.0, 4.0, 8.0]  # dense index i * 3 + j


@pytest.mark.parametrize(
    ("values", "error"),
    [
        (torch.ones(3), ValueError),
        (torch.ones(4, 2, 1, 1), ValueError),
        (torch.ones(2, 3, 1), ValueError),
        (torch.ones(5, 2), ValueError),
        ([1.0, 2.0, 3.0, 4.0], TypeError),
    ],
)
def test_wrong_values_are_refused(values, error):
    with pytest.raises(error, match="values must") as info:
        TokenGraph(EDGES).to_dense(values)
    if error is ValueError:
        assert "E=4" in str(info.value)


def test_wrong_fill_is_refused():
    with pytest.raises(TypeError, match="fill must be a number, got str"):
        TokenGraph(EDGES).to_dense(torch.ones(4), fill="0")
