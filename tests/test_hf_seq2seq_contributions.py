"""graphattn.hf contributions of encoder-decoder models against the eager models written out.

Value Zeroing: the eager model run once per source with that source's value
projection zeroed (a forward hook) in one self or cross attention, and the
layer's output compared. Gradient x attention: the gradient of the summed
log-probability of the predicted tokens with respect to the eager attentions.
"""

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from hf_tiny import tiny  # noqa: E402

from graphattn.flow import contributions, cross_rollout, split_cross_layers  # noqa: E402

FAMILIES = ["t5", "bart"]


def value_modules(model, family):
    """Per layer in call order: (value projection, hidden-state key, its index)."""
    if family == "t5":
        enc, dec = model.encoder.block, model.decoder.block
        out = [(b.layer[0].SelfAttention.v, "encoder_hidden_states", l + 1)
               for l, b in enumerate(enc)]
        for l, b in enumerate(dec):
            out.append((b.layer[0].SelfAttention.v, "decoder_hidden_states", l + 1))
            out.append((b.layer[1].EncDecAttention.v, "decoder_hidden_states", l + 1))
        return out
    enc, dec = model.model.encoder.layers, model.model.decoder.layers
    out = [(m.self_attn.v_proj, "encoder_hidden_states", l + 1) for l, m in enumerate(enc)]
    for l, m in enumerate(dec):
        out.append((m.self_attn.v_proj, "decoder_hidden_states", l + 1))
        out.append((m.encoder_attn.v_proj, "decoder_hidden_states", l + 1))
    return out


def batch(n_src=6, n_tgt=4, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return {"input_ids": torch.randint(3, 100, (2, n_src), generator=gen),
            "decoder_input_ids": torch.randint(3, 100, (2, n_tgt), generator=gen)}


def normalized(g, c):
    total = torch.zeros(c.shape[0], g.num_nodes, dtype=c.dtype).index_add_(1, g.dst, c)
    return c / total[:, g.dst]


@pytest.mark.parametrize("copy_tokens", [None, 60])  # 60: 2 sources per pass of 3 copies
@pytest.mark.parametrize("family", FAMILIES)
def test_value_zeroing_equals_zeroing_each_value_in_the_eager_model(
    family, copy_tokens, monkeypatch
):
    from graphattn.hf import zeroing

    if copy_tokens is not None:  # a copy of the batch holds 2 x (6 + 4) = 20 tokens
        monkeypatch.setattr(zeroing, "COPY_TOKENS", copy_tokens)
    model, eager = tiny(family).double(), tiny(family, "eager").double()
    inputs = batch()
    got = contributions(model, inputs, "value_zeroing")
    sites = value_modules(eager, family)
    assert len(got) == len(sites) == 6
    with torch.no_grad():
        intact = eager(**inputs, output_hidden_states=True, use_cache=False)
    for (g, c), (proj, key, idx) in zip(got, sites, strict=True):
        m = g.num_src_nodes
        dist = torch.zeros(2, g.num_nodes, m, dtype=torch.float64)  # (B, target, source)
        for k in range(m):

            def hook(module, args, out, k=k):
                out = out.clone()
                out[:, k] = 0  # source k's value vector, every head
                return out

            handle = proj.register_forward_hook(hook)
            with torch.no_grad():
                h = getattr(eager(**inputs, output_hidden_states=True, use_cache=False), key)[idx]
            handle.remove()
            dist[:, :, k] = 1 - F.cosine_similarity(h, getattr(intact, key)[idx], dim=-1)
        expected = normalized(g, dist[:, g.dst, g.src].clamp(min=0))
        torch.testing.assert_close(c, expected, atol=1e-6, rtol=1e-5)
    assert [g.is_cross for g, _ in got] == [False, False, False, True, False, True]


@pytest.mark.parametrize("family", FAMILIES)
def test_grad_attention_equals_the_eager_attentions_gradient(family):
    model, eager = tiny(family).double(), tiny(family, "eager").double()
    inputs = batch()
    out = eager(**inputs, output_attentions=True, use_cache=False)
    score = out.logits.log_softmax(-1).amax(-1).sum()
    attns = [*out.encoder_attentions]
    for self_a, cross_a in zip(out.decoder_attentions, out.cross_attentions, strict=True):
        attns += [self_a, cross_a]
    grads = torch.autograd.grad(score, attns)
    got = contributions(model, inputs, "grad_attention")
    assert len(got) == len(attns) == 6
    for (g, c), a, d in zip(got, attns, grads, strict=True):
        expected = normalized(g, (d * a).clamp(min=0).mean(1)[:, g.dst, g.src])
        torch.testing.assert_close(c, expected.detach(), atol=1e-6, rtol=1e-5)


def test_layers_compose_in_cross_rollout_and_padding_gets_zero():
    model = tiny("bart")
    inputs = batch()
    inputs["attention_mask"] = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    layers = contributions(model, inputs, "attention")
    relevance = cross_rollout(*split_cross_layers(layers, example=1))
    assert relevance.cross.shape == (4, 6)
    for g, c in layers:
        assert torch.all(c[1, g.src >= 4] == 0)  # edges from padded encoder tokens
        if not g.is_cross:
            continue
        sums = torch.zeros(2, g.num_nodes).index_add_(1, g.dst, c)
        torch.testing.assert_close(sums, torch.ones_like(sums))
    enc = layers[0]
    assert torch.all(enc[1][1, enc[0].dst >= 4] == 0)  # rows of padded encoder targets


def test_encoder_decoder_inputs_are_checked():
    model = tiny("t5")
    with pytest.raises(TypeError, match="takes a mapping with 'input_ids'"):
        contributions(model, torch.randint(3, 100, (1, 5)), "value_zeroing")
    with pytest.raises(ValueError, match="needs 'input_ids' and 'decoder_input_ids'"):
        contributions(model, {"input_ids": torch.randint(3, 100, (1, 5))}, "attention")
    with pytest.raises(ValueError, match="decoder_input_ids has 2 rows, input_ids 1"):
        contributions(model, {"input_ids": torch.randint(3, 100, (1, 5)),
                              "decoder_input_ids": torch.randint(3, 100, (2, 3))}, "attention")
    with pytest.raises(ValueError, match="method 'alti' is not available"):
        contributions(model, batch(), "alti")
