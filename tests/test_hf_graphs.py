"""graphattn.hf with a token graph: reach, padding per example, graph forms, errors."""

import pytest
import torch

pytest.importorskip("transformers", reason="hf extra not installed")

from hf_tiny import inputs, main_output, tiny  # noqa: E402

import graphattn.hf  # noqa: E402
from graphattn import analysis, graph_attention, patterns  # noqa: E402
from graphattn.hf import attention  # noqa: E402


def encode(model, family, ids, graph):
    if family == "t5":
        return model.encoder(input_ids=ids, encoder_graph=graph).last_hidden_state
    return main_output(model(input_ids=ids, token_graph=graph))


@pytest.mark.parametrize(
    "family, graph",
    [
        ("gpt2", patterns.sliding_window(10, 2)),
        ("llama", patterns.attention_sink(10, sinks=1, window=2)),
        ("bert", patterns.sliding_window(10, 1, causal=False)),
        ("t5", patterns.sliding_window(10, 1, causal=False)),
    ],
)
def test_outputs_depend_exactly_on_the_tokens_in_reach(family, graph):
    model = tiny(family)
    layers = 2
    reach = analysis.reach(graph, layers)
    ids = torch.randint(3, 90, (1, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = encode(model, family, ids, graph)
        for target in (3, 9):
            seen = set(reach.src[reach.dst == target].tolist())
            for source in range(10):
                if source == target:
                    continue
                other = ids.clone()
                other[0, source] = (other[0, source] + 1) % 90 + 3
                moved = (encode(model, family, other, graph) - base)[0, target]
                if source in seen:
                    assert moved.abs().max().item() > 1e-4, (target, source)
                else:
                    assert moved.abs().max().item() < 1e-6, (target, source)


def test_a_full_graph_lets_the_first_token_read_the_last():
    model = tiny("gpt2")
    ids = torch.randint(3, 90, (1, 6), generator=torch.Generator().manual_seed(0))
    other = ids.clone()
    other[0, -1] = 5 if int(ids[0, -1]) != 5 else 6
    with torch.no_grad():
        causal = [model(input_ids=x).logits[0, 0] for x in (ids, other)]
        full = [model(input_ids=x, token_graph=patterns.full(6)).logits[0, 0] for x in (ids, other)]
    assert torch.equal(causal[0], causal[1])
    assert (full[0] - full[1]).abs().max().item() > 1e-4


@pytest.mark.parametrize("family, side", [("llama", "right"), ("llama", "left"), ("bert", "right")])
def test_padding_is_removed_per_example(family, side):
    model = tiny(family)
    n, pad = 8, 3
    batch = inputs(family, n=n, pad=pad, side=side)
    batch["position_ids"] = (batch["attention_mask"].cumsum(-1) - 1).clamp_min(0)
    graph = patterns.sliding_window(n, 2, causal=family != "bert")
    with torch.no_grad(), graphattn.hf.record() as rec:
        out = main_output(model(**batch, token_graph=graph))
        real = slice(0, n - pad) if side == "right" else slice(pad, n)
        alone = main_output(
            model(
                input_ids=batch["input_ids"][1:, real],
                token_graph=lambda k: graph.subgraph(range(k)),
            )
        )
    torch.testing.assert_close(out[1, real], alone[0], atol=1e-5, rtol=1e-5)
    valid = batch["attention_mask"].bool()
    for g, w in rec.self_attention[:2]:
        assert g == graph
        assert w.shape == (2, g.num_edges, 4)
        assert torch.all(w[~valid[:, g.src]] == 0)  # (B, E): padded keys carry no weight
        sums = torch.zeros(2, n, 4).index_add_(1, g.dst, w)  # (B, N, H)
        assert torch.allclose(sums[valid], torch.ones(()))


def test_graph_forms_agree_and_lists_apply_per_layer():
    model = tiny("llama")
    batch = inputs("llama", pad=0)
    window = patterns.sliding_window(7, 2)
    with torch.no_grad():
        fixed = model(**batch, token_graph=window).logits
        built = model(**batch, token_graph=lambda n: patterns.sliding_window(n, 2)).logits
        with graphattn.hf.record() as rec:
            model(**batch, token_graph=[window, patterns.causal(7)])
    assert torch.equal(fixed, built)
    assert [g for g, _ in rec.self_attention] == [window, patterns.causal(7)]
    assert [c.layer for c in rec.calls] == [0, 1]


def test_encoder_decoder_graphs_apply_to_every_call():
    model = tiny("t5")
    batch = inputs("t5", pad=0)  # 7 encoder tokens, 5 decoder tokens
    window = lambda n: patterns.sliding_window(n, 1)  # noqa: E731
    cross = lambda n, m: patterns.cross_window(n, m, 1)  # noqa: E731
    with torch.no_grad(), graphattn.hf.record() as rec:
        model(**batch, encoder_graph=window, decoder_graph=window, cross_graph=cross)
    sizes = [g.num_nodes for g, _ in rec.self_attention]
    assert sizes == [7, 7, 5, 5]  # encoder layers, then decoder layers
    assert [g for g, _ in rec.cross_attention] == [patterns.cross_window(5, 7, 1)] * 2
    assert [c.decoder for c in rec.calls if not c.cross] == [False, False, True, True]
    layers = rec.layers(0, decoder=True, cross=False)
    assert len(layers) == 2 and layers[0][1].shape == (window(5).num_edges, 4)


# ------------------------------------------------------------------ errors
def test_a_graph_of_the_wrong_size_names_the_layer_and_the_sizes():
    model = tiny("gpt2")
    batch = inputs("gpt2", pad=0)
    with pytest.raises(ValueError, match=r"token_graph has 5 nodes .*layer 0 \(GPT2Attention"):
        model(**batch, token_graph=patterns.causal(5))
    with pytest.raises(ValueError, match="token 0 reads token 7, a token not in the sequence"):
        model(**batch, token_graph=patterns.full(9))
    with pytest.raises(TypeError, match="token_graph must be a TokenGraph.*got str"):
        model(**batch, token_graph="causal")
    with pytest.raises(TypeError, match="got NoneType"):
        model(**batch, token_graph=lambda n: None)
    with pytest.raises(ValueError, match="token_graph has 6 nodes .* sequence of 7 tokens"):
        model(**batch, token_graph=lambda n: patterns.causal(n - 1))


def test_a_fixed_graph_must_fit_its_stack():
    model = tiny("bart")
    batch = inputs("bart", pad=0)  # 7 encoder tokens, 5 decoder tokens
    with pytest.raises(ValueError, match=r"decoder_graph has 4 nodes but layer 0 \(BartAttention"):
        model(**batch, decoder_graph=patterns.causal(4))
    model(**batch, encoder_graph=patterns.full(7), decoder_graph=patterns.causal(9))


def test_a_per_layer_list_must_have_one_graph_per_layer():
    model = tiny("gpt2")
    batch = inputs("gpt2", pad=0)
    with pytest.raises(ValueError, match=r"one graph per layer \(2 layers\), got 3"):
        model(**batch, token_graph=[patterns.causal(7)] * 3)


@pytest.mark.parametrize("family", ["gpt2", "bert"])
def test_cross_graph_needs_cross_attention(family):
    model = tiny(family)
    with pytest.raises(ValueError, match="cross_graph was given.*without cross-attention"):
        model(**inputs(family, pad=0), cross_graph=patterns.cross(7, 7))


def test_a_cross_graph_must_fit_the_encoder():
    model = tiny("t5")
    with pytest.raises(ValueError, match=r"cross_graph has M=4 sources but layer 0 \(T5Attention"):
        model(**inputs("t5", pad=0), cross_graph=patterns.cross(5, 4))


def test_the_models_own_graph_is_built_once_per_mask_not_per_forward():
    """The causal graph read from the mask is the same object in every forward (plans persist)."""
    model = tiny("gpt2")
    ids = torch.randint(3, 90, (1, 6), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        with graphattn.hf.record() as first:
            model(input_ids=ids)
        with graphattn.hf.record() as second:
            model(input_ids=ids[:, :5])
            model(input_ids=ids)
    graphs = [g for g, _ in first.self_attention]
    assert graphs[0] is graphs[1]  # one graph per forward, shared by the layers
    assert second.self_attention[2][0] is graphs[0]  # and kept for the next forward
    assert second.self_attention[0][0].num_nodes == 5
    assert torch.equal(graphs[0].to_dense_mask(), patterns.causal(6).to_dense_mask())


@pytest.mark.parametrize(
    "family, side", [("llama", "left"), ("llama", "right"), ("bert", "right"), ("t5", "right")]
)
def test_padded_examples_on_graphs_of_their_own_equal_eager(family, side, monkeypatch):
    monkeypatch.setattr(attention, "PER_EXAMPLE_EDGES", 0)  # every padded call, per example
    biases = []

    def spy(q, k, v, graph, **kwargs):
        biases.append((q.shape[0], kwargs.get("bias") is None))
        return graph_attention(q, k, v, graph, **kwargs)

    monkeypatch.setattr(attention, "graph_attention", spy)
    batch = inputs(family, n=8, pad=3, side=side)
    with torch.no_grad():
        ref = tiny(family, "eager")(**batch, output_attentions=True)
        out = tiny(family)(**batch, output_attentions=True)
    assert any(size == 1 for size, _ in biases)  # padded calls run per example
    if family != "t5":  # T5's relative position bias stays a bias
        assert all(none for _, none in biases)  # padding is no bias any more
    real = batch["attention_mask"].bool()  # (B, N)
    rows = real if family != "t5" else torch.ones_like(batch["decoder_input_ids"], dtype=bool)
    torch.testing.assert_close(main_output(out)[rows], main_output(ref)[rows], atol=1e-5, rtol=1e-4)
    name = "encoder_attentions" if family == "t5" else "attentions"
    for ours, theirs in zip(getattr(out, name), getattr(ref, name), strict=True):
        ours, theirs = ours.transpose(1, 2)[real], theirs.transpose(1, 2)[real]  # (rows, H, M)
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
