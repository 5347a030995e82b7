"""The kernels' front door: AttentionInputs, and every entry point going through it."""

from __future__ import annotations

import math

import pytest
import torch

from graphattn import TokenGraph, graph_attention, patterns
from graphattn.backends import front
from graphattn.backends.checks import check_scale
from graphattn.backends.front import (
    HEAD_MAJOR_GRAPHS,
    AttentionInputs,
    add_batch_dim,
    drop_batch_dim,
    repeat_kv_heads,
)
from graphattn.variants import COSINE, DOT_PRODUCT, variant_attention


def test_repeat_kv_heads_matches_repeat_interleave():
    k = torch.randn(2, 5, 3, 4)  # (B, M, H_kv, D)
    assert repeat_kv_heads(k, 3) is k  # one key head per query head: nothing to repeat
    assert torch.equal(repeat_kv_heads(k, 6), k.repeat_interleave(2, dim=2))
    assert torch.equal(repeat_kv_heads(k[0], 12, dim=1), k[0].repeat_interleave(4, dim=1))


def test_batch_dim_round_trip():
    q, k, v = torch.zeros(3, 2, 4), torch.zeros(5, 1, 4), torch.zeros(5, 1, 7)
    qb, kb, vb, batched = add_batch_dim(q, k, v)
    assert (qb.shape, kb.shape, vb.shape) == ((1, 3, 2, 4), (1, 5, 1, 4), (1, 5, 1, 7))
    assert batched is False
    assert add_batch_dim(qb, kb, vb)[3] is True
    out, weights = drop_batch_dim(torch.ones(1, 3, 2, 7), torch.ones(1, 9, 2))
    assert out.shape == (3, 2, 7) and weights.shape == (9, 2)
    assert drop_batch_dim(out[None], None)[1] is None


def test_inputs_of_one_graph():
    g = patterns.causal(4)
    q, k = torch.randn(4, 4, 8), torch.randn(4, 2, 8)  # 4 query heads, 2 key heads
    inputs = AttentionInputs.of(q, k, k, g)
    assert (inputs.batched, inputs.num_heads, inputs.graph, inputs.graphs) == (False, 4, g, None)
    assert inputs.scale_or_default(None) == 1 / math.sqrt(8) and inputs.scale_or_default(2) == 2.0
    call = inputs.kernel_call(scale=0.5, return_weights=True)
    assert call.q.shape == (1, 4, 4, 8) and call.k.shape == (1, 4, 4, 8)
    assert torch.equal(call.k[0, :, 1], k[:, 0]) and torch.equal(call.k[0, :, 2], k[:, 1])
    assert (call.graph, call.scale, call.return_weights, call.bias) == (g, 0.5, True, None)


def test_inputs_of_per_head_graphs_fold_and_unfold():
    graphs = [patterns.causal(3), patterns.full(3)]
    q = torch.randn(2, 3, 2, 4)
    inputs = AttentionInputs.of(q, q, q, graphs)
    assert inputs.graph is None and inputs.graphs == graphs and inputs.batched
    call = inputs.kernel_call(scale=1.0)
    assert call.q.shape == (2, 6, 1, 4)  # one head over H * N head-major tokens
    assert torch.equal(call.q[:, 3:, 0], q[:, :, 1])
    assert call.graph is HEAD_MAJOR_GRAPHS.get(graphs)
    out, weights = inputs.finish(call.q.view(2, 6, 1, 4), torch.ones(2, 6 + 9, 1))
    assert torch.equal(out, q) and [w.shape for w in weights] == [(2, 6), (2, 9)]


@pytest.mark.parametrize(
    ("q", "k", "graph", "error", "match"),
    [
        (torch.zeros(4, 2, 8), torch.zeros(4, 3, 8), patterns.causal(4), ValueError,
         "k/v heads H_kv=3 must divide the query heads H=2"),
        (torch.zeros(4, 2, 8), torch.zeros(4, 2, 8), patterns.causal(5), ValueError,
         "graph has N=5 targets"),
        (torch.zeros(4, 2, 8), torch.zeros(4, 2, 8), "causal", TypeError,
         "graph must be a TokenGraph or a sequence of H TokenGraphs, got str"),
        (torch.zeros(4, 2, 8, dtype=torch.long), torch.zeros(4, 2, 8), patterns.causal(4),
         TypeError, "q must be a floating-point tensor"),
    ],
)  # fmt: skip
def test_inputs_of_refuses_like_the_checks(q, k, graph, error, match):
    with pytest.raises(error, match=match):
        AttentionInputs.of(q, k, k, graph)
    with pytest.raises(error, match=match):
        graph_attention(q, k, k, graph)


@pytest.mark.parametrize("scale", [float("nan"), float("inf")])
def test_check_scale_refuses_non_finite(scale):
    with pytest.raises(ValueError, match="scale must be finite"):
        check_scale(scale)
    with pytest.raises(TypeError, match="scale must be a float or None, got bool"):
        check_scale(True)


@pytest.fixture
def counted(monkeypatch):
    """The key heads ``H_kv`` of every AttentionInputs.of call."""
    calls = []
    original = front.AttentionInputs.of.__func__

    def of(cls, *args):
        calls.append(args[1].shape[-2])
        return original(cls, *args)

    monkeypatch.setattr(front.AttentionInputs, "of", classmethod(of))
    return calls


def test_every_entry_point_goes_through_the_front_door(counted):
    g = patterns.causal(5)
    q, k = torch.randn(5, 4, 8), torch.randn(5, 2, 8)
    graph_attention(q, k, k, g)
    assert counted == [2]
    variant_attention(q, k, k, g, COSINE)
    assert len(counted) == 2
    variant_attention(q, k, k, g, DOT_PRODUCT)  # its fast path runs graph_attention
    assert len(counted) == 4


def test_hf_softcap_keeps_key_heads_for_the_front_door(counted):
    pytest.importorskip("transformers")
    from graphattn.hf.attention import _run

    g = patterns.causal(5)
    q, k, v = torch.randn(1, 5, 4, 8), torch.randn(1, 5, 2, 8), torch.randn(1, 5, 2, 8)
    out, weights = _run(q, k, v, g, 0.5, None, 0.0, 20.0, (True, None))
    assert counted == [2]  # the key heads as the model gave them
    scores = torch.einsum("nhd,mhd->hnm", q[0], k[0].repeat_interleave(2, 1)) * 0.5
    scores = (20.0 * torch.tanh(scores / 20.0)).masked_fill(~g.to_dense_mask(), -torch.inf)
    want = torch.einsum("hnm,mhd->nhd", scores.softmax(-1), v[0].repeat_interleave(2, 1))
    torch.testing.assert_close(out[0], want)
    assert weights.shape == (1, g.num_edges, 4)


def test_distributed_unbatched_helpers_are_the_front_doors():
    from graphattn.distributed import attention

    assert attention.add_batch_dim is add_batch_dim and attention.drop_batch_dim is drop_batch_dim


def test_single_token_graph_object_passes_through():
    g = TokenGraph([[0], [0]])
    inputs = AttentionInputs.of(torch.ones(1, 1, 2), torch.ones(1, 1, 2), torch.ones(1, 1, 3), g)
    out, _ = inputs.finish(*graph_attention(inputs.q, inputs.k, inputs.v, g, return_weights=True))
    assert out.tolist() == [[[1.0, 1.0, 1.0]]]
