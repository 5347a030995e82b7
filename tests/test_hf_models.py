"""graphattn.hf on tiny random models: no token_graph reproduces attn_implementation="eager".

Values, per-edge weights and gradients are compared in float32 for GPT-2, Llama
(grouped-query heads), Qwen2 and Mistral (their own sliding windows), BERT, T5
(relative position bias; encoder, decoder and cross-attention), BART and Marian.
"""

import pytest
import torch

pytest.importorskip("transformers", reason="hf extra not installed")

from hf_tiny import DECODERS, ENCODER_DECODERS, FAMILIES, inputs, main_output, tiny  # noqa: E402

import graphattn.hf  # noqa: E402

ATOL = 1e-5


def run(model, batch, **extra):
    with graphattn.hf.record() as rec:
        out = model(**batch, **extra)
    return out, rec


def eager_attentions(out, family):
    """Eager ``output_attentions`` as (self calls in call order, cross calls)."""
    if family in ENCODER_DECODERS:
        return list(out.encoder_attentions) + list(out.decoder_attentions), list(
            out.cross_attentions
        )
    return list(out.attentions), []


def query_rows(family, batch, calls):
    """Per self call: which queries (B, N) are real tokens (rows compared with eager)."""
    enc = batch["attention_mask"].bool()
    if family not in ENCODER_DECODERS:
        return [enc] * calls
    dec = torch.ones_like(batch["decoder_input_ids"], dtype=torch.bool)
    return [enc] * (calls // 2) + [dec] * (calls // 2)


def assert_weights_match(pairs, dense, rows):
    assert len(pairs) == len(dense) > 0
    for (g, w), ref, real in zip(pairs, dense, rows, strict=True):
        b, h = ref.shape[:2]
        assert w.shape == (b, g.num_edges, h)
        want = ref[:, :, g.dst, g.src].transpose(1, 2)  # (B, E, H)
        keep = real[:, g.dst, None]  # (B, E, 1): rows of real queries
        assert ((w - want).abs() * keep).max().item() < 1e-6
        # every nonzero eager weight of a real query lies on an edge of the graph
        covered = torch.zeros_like(ref)
        covered[:, :, g.dst, g.src] = ref[:, :, g.dst, g.src]
        assert ((ref - covered).abs() * real[:, None, :, None]).max().item() < 1e-6


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_no_token_graph_equals_eager(family):
    batch = inputs(family)
    eager, ours = tiny(family, "eager"), tiny(family)
    with torch.no_grad():
        ref = eager(**batch, output_attentions=True)
        out, rec = run(ours, batch)
    real = batch["attention_mask"].bool()
    if family in ENCODER_DECODERS:
        real = torch.ones_like(batch["decoder_input_ids"], dtype=torch.bool)
        enc = (out.encoder_last_hidden_state - ref.encoder_last_hidden_state)[
            batch["attention_mask"].bool()
        ]
        assert enc.abs().max().item() < ATOL
    diff = (main_output(out) - main_output(ref))[real]  # real tokens (padded rows are garbage)
    assert diff.abs().max().item() < ATOL
    self_ref, cross_ref = eager_attentions(ref, family)
    assert_weights_match(rec.self_attention, self_ref, query_rows(family, batch, len(self_ref)))
    if family in ENCODER_DECODERS:
        dec = torch.ones_like(batch["decoder_input_ids"], dtype=torch.bool)
        assert_weights_match(rec.cross_attention, cross_ref, [dec] * len(cross_ref))
    else:
        assert rec.cross_attention == []


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2", "gemma2", "bert", "t5", "bart"])
def test_gradients_equal_eager(family):
    batch = inputs(family)
    grads = []
    for attn in ("eager", "graphattn"):
        model = tiny(family, attn)
        embeds = model.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_()
        args = {k: v for k, v in batch.items() if k != "input_ids"}
        out = main_output(model(inputs_embeds=embeds, **args))
        real = (
            args["attention_mask"] if family not in ENCODER_DECODERS else torch.ones(out.shape[:2])
        )
        weight = torch.linspace(-1, 1, out.shape[-1])
        ((out * weight).sum(-1) * real).sum().backward()
        grads.append([embeds.grad] + [p.grad for p in model.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 5
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", ["llama", "mistral"])
def test_left_padding_equals_eager(family):
    batch = inputs(family, n=8, pad=3, side="left")
    batch["position_ids"] = (batch["attention_mask"].cumsum(-1) - 1).clamp_min(0)
    with torch.no_grad():
        ref = tiny(family, "eager")(**batch)
        out = tiny(family)(**batch)
    real = batch["attention_mask"].bool()
    assert (out.logits - ref.logits)[real].abs().max().item() < ATOL


def test_dropout_in_training_mode_runs_and_is_random():
    model = tiny("bert")
    for module in model.modules():  # only attention dropout stays on
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    for layer in model.encoder.layer:
        layer.attention.self.dropout.p = 0.5
    batch = inputs("bert", pad=0)
    model.eval()
    with torch.no_grad():
        clean = model(**batch).last_hidden_state
    model.train()
    torch.manual_seed(0)
    noisy = model(**batch).last_hidden_state
    noisy.sum().backward()
    assert (noisy - clean).abs().max().item() > 1e-3
    assert model.embeddings.word_embeddings.weight.grad is not None


def test_decoder_families_are_listed():
    assert set(DECODERS) | set(ENCODER_DECODERS) | {"bert"} == set(FAMILIES)


def test_output_attentions_gives_dense_weights_like_eager():
    batch = inputs("llama")
    with torch.no_grad():
        ref = tiny("llama", "eager")(**batch, output_attentions=True).attentions
        out = tiny("llama")(**batch, output_attentions=True).attentions
    real = batch["attention_mask"].bool()[:, None, :, None]  # (B, 1, N, 1): real queries
    for a, b in zip(ref, out, strict=True):
        assert a.shape == b.shape
        assert ((a - b).abs() * real).max().item() < 1e-6


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_an_additive_float_mask_becomes_a_per_edge_bias(family):
    """A prepared 4D mask with ALiBi-like values: blocked entries drop edges, the rest add."""
    batch = inputs(family, pad=0)
    n = batch["input_ids"].shape[1]
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    alibi = -0.5 * (i - j).abs().float()  # (N, N)
    blocked = (i - j).abs() > 2
    if family == "llama":
        blocked |= j > i
    mask = alibi.masked_fill(blocked, torch.finfo(torch.float32).min)[None, None].expand(2, 1, n, n)
    batch["attention_mask"] = mask
    with torch.no_grad():
        ref = main_output(tiny(family, "eager")(**batch))
        with graphattn.hf.record() as rec:
            out = main_output(tiny(family)(**batch))
    assert (out - ref).abs().max().item() < ATOL
    g, _ = rec.self_attention[0]
    assert g.num_edges == int((~blocked).sum())
