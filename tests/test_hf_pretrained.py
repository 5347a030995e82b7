"""The real all-MiniLM-L6-v2 through transformers + graphattn equals graphattn.pretrained.

Two independent paths to the same numbers on a sparse graph: transformers'
BertModel with attn_implementation="graphattn", and graphattn's own BERT port.
"""

import pytest
import torch

pytest.importorskip("transformers", reason="hf extra not installed")

import transformers  # noqa: E402
from minilm_available import needs_minilm

import graphattn.hf  # noqa: E402
from graphattn import patterns  # noqa: E402
from graphattn.pretrained import load_minilm  # noqa: E402
from graphattn.pretrained.loading import minilm_dir  # noqa: E402


@needs_minilm
def test_minilm_through_transformers_equals_graphattn_pretrained_on_a_sparse_graph():
    ours = load_minilm()
    hf = transformers.BertModel.from_pretrained(str(minilm_dir()), attn_implementation="graphattn")
    hf = hf.eval()
    ids, tokens = ours.tokenize(["She deposited the money at the bank on the river today."])
    n = len(tokens[0])
    graph = patterns.sliding_window(n, 2, causal=False) | patterns.global_tokens(n, [0, n - 1])
    assert graph.density < 0.5
    with torch.no_grad(), graphattn.hf.record() as rec:
        want = ours(ids, graph, need_weights=True)
        got = hf(input_ids=ids, attention_mask=torch.ones_like(ids), token_graph=graph)
    assert (got.last_hidden_state - want.last_hidden_state).abs().max().item() < 1e-5
    assert len(rec.self_attention) == 6
    for (g, w), (g2, w2) in zip(rec.self_attention, want.sentence(0), strict=True):
        assert g == graph and torch.equal(g2.edge_index, graph.edge_index)
        torch.testing.assert_close(w[0], w2, atol=1e-6, rtol=1e-5)
    with torch.no_grad():
        full = hf(input_ids=ids).last_hidden_state
    assert (full - got.last_hidden_state).abs().max().item() > 1e-3
