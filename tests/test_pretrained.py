"""graphattn.pretrained: BERT on token graphs equals the original model on its own graph."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch
from minilm_available import needs_minilm

from graphattn import TokenGraph
from graphattn.pretrained import (
    BertConfig,
    BertModel,
    Pattern,
    load_bert,
    load_minilm,
    measure_drift,
    tiny_bert,
)
from graphattn.pretrained import drift as drift_module
from graphattn.pretrained.drift import DRIFT_GRAPHS, DRIFT_TEXTS, window_and_specials
from graphattn.pretrained.drift import main as drift_main
from graphattn.pretrained.loading import minilm_dir

os.environ["HF_HUB_OFFLINE"] = "1"  # the oracles must never reach the network
os.environ["TRANSFORMERS_OFFLINE"] = "1"

TEXTS = ["He left the roses by the bank.", "She deposited the money at the bank today."]




@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


@pytest.fixture(scope="module")
def hf_bert():
    transformers = pytest.importorskip("transformers", reason="oracle extra not installed")
    model = transformers.BertModel.from_pretrained(str(minilm_dir()), attn_implementation="eager")
    return model.eval()


def causal_graph(n: int) -> TokenGraph:
    i, j = torch.tril_indices(n, n)  # target i, source j <= i
    return TokenGraph(torch.stack([j, i]), n)


def additive_mask(graph: TokenGraph) -> torch.Tensor:
    """Hugging Face's 4-D additive mask (0 = may attend, finfo.min = blocked) of a graph."""
    allowed = graph.to_dense_mask()  # (N, N), [i, j] iff edge j -> i
    blocked = torch.finfo(torch.float32).min
    return torch.zeros(allowed.shape).masked_fill(~allowed, blocked)[None, None]  # (1, 1, N, N)


def dense_weights(graph: TokenGraph, weights: torch.Tensor) -> torch.Tensor:
    """Scatter per-edge weights (E, H) into a dense (H, N, N) attention map."""
    out = torch.zeros(weights.shape[1], graph.num_nodes, graph.num_src_nodes)
    out[:, graph.dst, graph.src] = weights.T  # (H, N, M)
    return out


# ------------------------------------------------------------------ exactness
@needs_minilm
def test_full_graph_equals_transformers_bert_with_padding(minilm, hf_bert):
    ids, tokens = minilm.tokenize(TEXTS)
    assert ids.shape == (2, max(len(t) for t in tokens))
    assert len(tokens[0]) < ids.shape[1]  # the first text is padded
    with torch.no_grad():
        ours = minilm(ids).last_hidden_state
        ref = hf_bert(ids, attention_mask=(ids != 0).long()).last_hidden_state
    assert ours.shape == ref.shape == (2, ids.shape[1], 384)
    assert (ours - ref).abs().max().item() < 1e-5  # padding positions included


@needs_minilm
def test_hidden_states_equal_transformers_hidden_states(minilm, hf_bert):
    ids, tokens = minilm.tokenize(TEXTS)
    with torch.no_grad():
        ours = minilm(ids, need_hidden_states=True).hidden_states
        ref = hf_bert(ids, attention_mask=(ids != 0).long(), output_hidden_states=True)
    assert len(ours) == len(ref.hidden_states) == 7
    for a, b in zip(ours, ref.hidden_states, strict=True):
        assert (a - b).abs().max().item() < 1e-5


@needs_minilm
def test_attention_weights_equal_transformers_attentions(minilm, hf_bert):
    ids, tokens = minilm.tokenize(TEXTS)
    with torch.no_grad():
        out = minilm(ids, need_weights=True)
        ref = hf_bert(ids, attention_mask=(ids != 0).long(), output_attentions=True)
    for b in range(2):
        n = len(tokens[b])
        for layer, (g, w) in enumerate(out.sentence(b)):
            assert g.tokens == tokens[b]
            assert g.num_nodes == n and g.num_edges == n * n
            want = ref.attentions[layer][b, :, :n, :n]  # (H, n, n)
            torch.testing.assert_close(dense_weights(g, w), want, atol=1e-6, rtol=1e-5)


@needs_minilm
def test_causal_graph_equals_transformers_with_the_same_mask(minilm, hf_bert):
    ids, tokens = minilm.tokenize(TEXTS[0])
    g = causal_graph(len(tokens))
    with torch.no_grad():
        ours = minilm(ids, g).last_hidden_state
        ref = hf_bert(ids, attention_mask=additive_mask(g)).last_hidden_state
        full = minilm(ids).last_hidden_state
    assert (ours - ref).abs().max().item() < 1e-5
    # Every position moves, even the last, which sees all tokens but whose inputs
    # from earlier positions changed in the layers below.
    assert (ours - full).abs().amax(dim=-1).min().item() > 1e-3


@needs_minilm
def test_embed_equals_sentence_transformers(minilm):
    st = pytest.importorskip("sentence_transformers", reason="oracle extra not installed")
    ref = st.SentenceTransformer(str(minilm_dir()), device="cpu")
    want = torch.as_tensor(ref.encode(TEXTS))
    got = minilm.embed(TEXTS)
    assert got.shape == (2, 384)
    assert (got - want).abs().max().item() < 1e-5
    one = minilm.embed(TEXTS[1])
    assert one.shape == (384,)
    assert (one - want[1]).abs().max().item() < 1e-5


@needs_minilm
def test_minilm_tokenization(minilm):
    ids, tokens = minilm.tokenize(TEXTS[0])
    assert tokens == ["[CLS]", "he", "left", "the", "roses", "by", "the", "bank", ".", "[SEP]"]
    assert ids[0, 0].item() == 101 and ids[0, -1].item() == 102
    assert minilm.tokenize("x " * 300)[0].shape == (1, 302)  # the file's truncation is off


# ------------------------------------------------------------ graph semantics
def test_causal_graph_makes_earlier_positions_blind_to_later_tokens():
    model = tiny_bert()
    ids_a, tokens = model.tokenize("the cat sat on the mat")
    ids_b, _ = model.tokenize("the cat sat on the dog")
    g = causal_graph(len(tokens))
    with torch.no_grad():
        a, b = model(ids_a, g).last_hidden_state, model(ids_b, g).last_hidden_state
        fa, fb = model(ids_a).last_hidden_state, model(ids_b).last_hidden_state
    k = tokens.index("mat")
    torch.testing.assert_close(a[0, :k], b[0, :k], rtol=0, atol=0)  # exactly unaffected
    assert (a[0, k:] - b[0, k:]).abs().max() > 1e-3
    assert (fa[0, :k] - fb[0, :k]).abs().max() > 1e-3  # on the full graph everyone sees it


def test_graph_forms_agree_and_per_layer_graphs_apply_per_layer():
    model = tiny_bert()
    ids, tokens = model.tokenize("the river bank")
    n = len(tokens)
    full = TokenGraph(torch.cartesian_prod(torch.arange(n), torch.arange(n)).T, n)
    causal = causal_graph(n)
    with torch.no_grad():
        ref = model(ids).last_hidden_state
        for spec in (full, lambda m: full, [full, full], [None, lambda m: full]):
            torch.testing.assert_close(model(ids, spec).last_hidden_state, ref)
        mixed = model(ids, [causal, full], need_weights=True)
        only_causal = model(ids, [causal, causal]).last_hidden_state
    assert [g.num_edges for g, _ in mixed.attentions] == [n * (n + 1) // 2, n * n]
    assert (mixed.last_hidden_state - ref).abs().max() > 1e-4
    assert (mixed.last_hidden_state - only_causal).abs().max() > 1e-4


def test_batch_with_padding_equals_texts_one_by_one():
    model = tiny_bert()
    texts = ["the bank", "she deposited the money at the bank"]
    ids, tokens = model.tokenize(texts)
    with torch.no_grad():
        batch = model(ids, lambda n: causal_graph(n), need_weights=True)
        for b, text in enumerate(texts):
            one_ids, _ = model.tokenize(text)
            one = model(one_ids, lambda n: causal_graph(n), need_weights=True)
            n = len(tokens[b])
            torch.testing.assert_close(batch.last_hidden_state[b, :n], one.last_hidden_state[0])
            for (g1, w1), (g2, w2) in zip(batch.sentence(b), one.sentence(0), strict=True):
                assert g1 == g2
                torch.testing.assert_close(w1, w2)
    e = model.embed(texts)
    torch.testing.assert_close(e[0], model.embed(texts[0]))


def test_attention_weights_are_a_softmax_over_incoming_edges():
    model = tiny_bert()
    ids, tokens = model.tokenize("he left the roses by the bank")
    out = model(ids, causal_graph(len(tokens)), need_weights=True)
    for g, w in out.sentence(0):
        assert w.shape == (g.num_edges, 2)
        sums = torch.zeros(g.num_nodes, 2).index_add_(0, g.dst, w)  # (N, H)
        torch.testing.assert_close(sums, torch.ones_like(sums))


def test_layer_with_context_attends_across_a_cross_graph():
    model = tiny_bert()
    layer = model.layers[1]
    x, ctx = torch.randn(3, 32), torch.randn(5, 32)
    n_src = torch.arange(5)
    cross = TokenGraph(
        torch.stack([n_src.repeat(3), torch.arange(3).repeat_interleave(5)]), 3, num_src_nodes=5
    )  # every target reads every context token
    with torch.no_grad():
        out, w = layer(x, cross, context=ctx, need_weights=True)
        # The same computation as self-attention over [x; ctx] where x reads only ctx.
        both = torch.cat([x, ctx])
        self_graph = TokenGraph(cross.edge_index + torch.tensor([[3], [0]]), 8)
        ref, ref_w = layer(both, self_graph, need_weights=True)
    torch.testing.assert_close(out, ref[:3])
    torch.testing.assert_close(w, ref_w)
    assert w.shape == (15, 2)
    with pytest.raises(ValueError, match="3 targets and 4 sources"):
        layer(x, cross, context=ctx[:4])


def test_gradients_flow_to_the_weights():
    # A random projection of the output: the plain sum would pass through the
    # final LayerNorm, whose output sum does not depend on its input.
    model = tiny_bert().eval()
    ids, tokens = model.tokenize("the bank")
    out = model(ids, causal_graph(len(tokens))).last_hidden_state
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
    (out * probe).sum().backward()
    assert model.layers[0].query.weight.grad.abs().sum() > 0
    assert model.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_tiny_bert_is_deterministic():
    a, b = tiny_bert(seed=3), tiny_bert(seed=3)
    ids, _ = a.tokenize("the bank")
    torch.testing.assert_close(a(ids).last_hidden_state, b(ids).last_hidden_state, rtol=0, atol=0)
    assert not torch.equal(a.layers[0].query.weight, tiny_bert(seed=4).layers[0].query.weight)


# ------------------------------------------------------------------ bad input
def test_bad_text_is_refused():
    model = tiny_bert()
    with pytest.raises(ValueError, match="empty"):
        model.tokenize("   ")
    with pytest.raises(ValueError, match="empty"):
        model.tokenize([])
    with pytest.raises(ValueError, match="positions, more than the model's 128"):
        model.tokenize("the " * 200)
    with pytest.raises(TypeError, match="text_or_texts"):
        model.tokenize(42)
    with pytest.raises(ValueError, match="no tokenizer"):
        BertModel(BertConfig(hidden_size=8, num_attention_heads=2)).tokenize("a")


def test_bad_ids_and_graphs_are_refused():
    model = tiny_bert()
    ids, tokens = model.tokenize("the bank")
    n = len(tokens)
    with pytest.raises(TypeError, match="LongTensor"):
        model(ids.float())
    with pytest.raises(ValueError, match=r"shape \(B, N\)"):
        model(ids[0])
    with pytest.raises(ValueError, match="more than the model's 128"):
        model(torch.ones(1, 129, dtype=torch.long))
    with pytest.raises(ValueError, match=r"must lie in \[0, "):
        model(torch.full((1, 3), 10**6))
    with pytest.raises(ValueError, match="prefix"):
        model(ids, attention_mask=torch.tensor([[False, True, True, True]]))
    with pytest.raises(ValueError, match="shape of input_ids"):
        model(ids, attention_mask=torch.ones(1, n + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match=f"over the input's {n} positions"):
        model(ids, causal_graph(n + 1))
    with pytest.raises(ValueError, match="over the input's"):
        model(ids, TokenGraph([[0], [1]], n, num_src_nodes=n + 2))
    with pytest.raises(ValueError, match="one graph per layer"):
        model(ids, [None])
    with pytest.raises(TypeError, match="graph must be None"):
        model(ids, "causal")
    with pytest.raises(ValueError, match="builder called with n=4"):
        model(ids, lambda m: causal_graph(m + 1))
    with pytest.raises(ValueError, match="need_weights=True"):
        model(ids).sentence(0)
    with pytest.raises(ValueError, match=r"b must be in \[0, 1\)"):
        model(ids, need_weights=True).sentence(1)


def test_bad_checkpoints_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_bert(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_bert(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="model_type must be 'bert'"):
        load_bert(tmp_path)
    with pytest.raises(ValueError, match="divisible"):
        BertConfig(hidden_size=10, num_attention_heads=3)
    with pytest.raises(TypeError, match="hidden_size must be a number"):
        BertConfig(hidden_size="384")


def test_checkpoint_with_wrong_weights_is_refused(tmp_path):
    from safetensors.torch import save_file

    model = tiny_bert()
    cfg = {k: getattr(model.config, k) for k in ("vocab_size", "max_position_embeddings")}
    cfg.update(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(
        {k: v for k, v in state.items() if "ffn_out" not in k}, tmp_path / "model.safetensors"
    )
    with pytest.raises(ValueError, match="missing"):
        load_bert(tmp_path)
    state["layers.0.query.weight"] = torch.zeros(3, 3)
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        load_bert(tmp_path)
    del state["layers.0.query.weight"]
    state["encoder.layer.0.attention.self.query.weight"] = model.layers[0].query.weight.detach()
    state["pooler.dense.weight"] = torch.zeros(32, 32)  # ignored, as BertModel has no pooler
    save_file(state, tmp_path / "model.safetensors")
    loaded = load_bert(tmp_path)
    ids, _ = model.tokenize("the bank")  # no tokenizer.json: the loaded model has none
    assert loaded.tokenizer is None
    torch.testing.assert_close(loaded(ids).last_hidden_state, model(ids).last_hidden_state)


# ---------------------------------------------------------------------- drift
def test_drift_matches_a_hand_computation_and_is_one_on_the_reference():
    model = tiny_bert()
    texts = ["the cat sat on the mat", "the bank"]
    d = measure_drift(model, texts, Pattern("causal"))
    ids, tokens = model.tokenize(texts)
    with torch.no_grad():
        full, causal = model(ids), model(ids, lambda n: causal_graph(n))
    for b, toks in enumerate(tokens):
        n = len(toks)
        want = torch.nn.functional.cosine_similarity(
            full.last_hidden_state[b, :n], causal.last_hidden_state[b, :n], dim=-1
        )
        torch.testing.assert_close(d.token_cosine[b], want)
        assert d.density[b].item() == pytest.approx((n + 1) / (2 * n))
    want = torch.nn.functional.cosine_similarity(
        model.embed(texts), model.embed(texts, causal_graph)
    )
    torch.testing.assert_close(d.sentence_cosine, want)
    assert d.label == "causal" and d.summary()["token_cosine_min"] < 1
    same = measure_drift(model, texts, Pattern("causal"), reference=Pattern("causal"))
    torch.testing.assert_close(same.sentence_cosine, torch.ones(2))
    custom = measure_drift(model, texts[0], lambda n: window_and_specials(n, 1), label="mine")
    assert custom.label == "mine" and custom.density[0] < 1


def test_pattern_names_are_checked():
    with pytest.raises(ValueError, match="valid names: .*sliding_window"):
        Pattern("slidingwindow")
    with pytest.raises(ValueError, match="bad parameters"):
        Pattern("sliding_window", {"width": 2})(5)


def test_drift_command_prints_a_table(capsys, monkeypatch):
    graphs = {k: DRIFT_GRAPHS[k] for k in ("causal", "full", "star")}  # a quick subset
    monkeypatch.setattr(drift_module, "DRIFT_GRAPHS", graphs)
    monkeypatch.setattr(drift_module, "DRIFT_TEXTS", DRIFT_TEXTS[:2])
    assert drift_main(["--tiny"]) == 0
    out = capsys.readouterr().out
    assert "built-in tiny random BERT, 2 texts" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r.split(" | ")[0] for r in rows] == ["| graph", "| full", "| causal", "| star"]
    assert rows[1].startswith("| full | 1.000 | 1.000 |")  # least drift first


@needs_minilm
def test_minilm_drifts_less_with_wider_windows_and_global_specials(minilm):
    texts = list(DRIFT_TEXTS[:2])
    cos = {
        w: measure_drift(minilm, texts, Pattern("sliding_window", {"window": w, "causal": False}))
        .sentence_cosine.mean()
        .item()
        for w in (2, 4, 8)
    }
    assert cos[2] < cos[4] < cos[8] < 1
    specials = measure_drift(minilm, texts, window_and_specials).sentence_cosine.mean().item()
    assert specials > cos[4]  # same window, plus [CLS]/[SEP] as globals


@needs_minilm
def test_docs_examples_run():
    text = (Path(__file__).resolve().parents[1] / "docs" / "pretrained.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    for k, block in enumerate(blocks):
        exec(compile(block, f"docs/pretrained.md block {k}", "exec"), namespace)
    assert [g.num_edges for g, _ in namespace["mixed"].attentions] == [100] + [44] * 5
    assert namespace["e"].shape == (2, 384)
