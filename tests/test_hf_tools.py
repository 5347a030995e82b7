"""graphattn.hf.attach, layers_from_attentions and token labels."""

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="hf extra not installed")

from hf_tiny import inputs, tiny  # noqa: E402

import graphattn.hf  # noqa: E402
from graphattn import flow, patterns  # noqa: E402


def tiny_bloom():
    config = transformers.BloomConfig(n_layer=1, hidden_size=32, n_head=4, vocab_size=100)
    return transformers.BloomForCausalLM(config).eval()


def tiny_deberta():
    config = transformers.DebertaV2Config(
        num_hidden_layers=1,
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=4,
        vocab_size=100,
    )
    return transformers.DebertaV2Model(config).eval()


@pytest.mark.parametrize(
    "build, attention",
    [(tiny_bloom, "BloomAttention"), (tiny_deberta, "DisentangledSelfAttention")],
)
def test_attach_refuses_models_that_compute_attention_themselves(build, attention):
    model = build()
    name = type(model).__name__
    with pytest.raises(
        ValueError,
        match=rf"{name} computes attention itself \({attention}\).*layers_from_attentions",
    ):
        graphattn.hf.attach(model)
    with pytest.raises(TypeError, match="PreTrainedModel"):
        graphattn.hf.attach(torch.nn.Linear(2, 2))


def test_attach_switches_the_model_and_checks_every_layer_received_the_graph():
    model = graphattn.hf.attach(tiny("gpt2", "eager"))
    assert model.config._attn_implementation == "graphattn"
    batch = inputs("gpt2", pad=0)
    with torch.no_grad():
        model(**batch, token_graph=patterns.causal(7))
        model(**batch)  # no graph: nothing to check
        block = model.transformer.h[1]
        forward = block.forward
        block.forward = lambda *a, **k: forward(
            *a, **{x: y for x, y in k.items() if x != "token_graph"}
        )
        with pytest.raises(
            ValueError,
            match=r"never reached 1 attention module.*transformer.h.1.attn \(GPT2Attention\)",
        ):
            model(**batch, token_graph=patterns.causal(7))
        block.forward = forward
        model(**batch, token_graph=patterns.causal(7))  # the tracker of the failed call is gone
    assert graphattn.hf.attach(model) is model  # hooks are installed once


def test_layers_from_attentions_match_recorded_weights():
    batch = inputs("llama", pad=2)
    with torch.no_grad():
        ref = tiny("llama", "eager")(**batch, output_attentions=True)
        with graphattn.hf.record() as rec:
            tiny("llama")(**batch)
    layers = graphattn.hf.layers_from_attentions(
        ref.attentions, attention_mask=batch["attention_mask"]
    )
    assert len(layers) == len(rec.self_attention) == 2
    for (g, w), (g2, w2) in zip(layers, rec.self_attention, strict=True):
        assert g == g2 == patterns.causal(7)
        real = batch["attention_mask"].bool()[:, g.dst, None]  # (B, E, 1): real queries
        torch.testing.assert_close(w * real, w2 * real, atol=1e-6, rtol=1e-5)
        assert torch.all(w[~real.expand_as(w)] == 0)  # padded queries get no edges
    rollout = flow.attention_rollout([(g, w[1]) for g, w in layers])
    assert rollout is not None
    with pytest.raises(TypeError, match="out.attentions"):
        graphattn.hf.layers_from_attentions(ref.attentions[0])
    with pytest.raises(ValueError, match=r"attentions\[0\] must be a float tensor \(B, H, N, M\)"):
        graphattn.hf.layers_from_attentions([torch.ones(2, 3)])


def test_cross_layers_from_attentions():
    batch = inputs("bart", pad=2)
    with torch.no_grad():
        ref = tiny("bart", "eager")(**batch, output_attentions=True)
    layers = graphattn.hf.layers_from_attentions(
        ref.cross_attentions, attention_mask=batch["attention_mask"]
    )
    g, w = layers[0]
    assert g.is_cross and (g.num_nodes, g.num_src_nodes) == (5, 7)
    assert torch.all(w[1][g.src >= 5] == 0)  # padded encoder tokens of example 1


def test_token_labels_and_labelled_layers():
    class Chars:
        def convert_ids_to_tokens(self, ids):
            return [f"t{i}" for i in ids]

    batch = inputs("gpt2", pad=0)
    labels = graphattn.hf.token_labels(Chars(), batch, example=1)
    assert labels == [f"t{i}" for i in batch["input_ids"][1].tolist()]
    with torch.no_grad(), graphattn.hf.record() as rec:
        tiny("gpt2")(**batch)
    layers = graphattn.hf.label_layers(rec.layers(1), labels)
    assert layers[0][0].tokens == labels and layers[0][1].shape == (28, 4)
    with pytest.raises(ValueError, match=r"input_ids must be \(B, N\) or \(N,\)"):
        graphattn.hf.token_labels(Chars(), torch.zeros(1, 1, 2, dtype=torch.long))
