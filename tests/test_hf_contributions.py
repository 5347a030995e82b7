"""graphattn.hf contributions against brute force on eager transformers models."""

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers as tf  # noqa: E402
from hf_tiny import FAMILIES, assert_each_as_alone, padded, tiny  # noqa: E402

from graphattn.flow import contributions  # noqa: E402


def on_edges(g, dense):
    return dense[:, g.dst, g.src]  # (B, E)


def normalized(g, c):
    total = torch.zeros(c.shape[0], g.num_nodes, dtype=c.dtype).index_add_(1, g.dst, c)
    uniform = 1.0 / g.in_degree().to(c.dtype)[g.dst]
    return torch.where(total[:, g.dst] > 0, c / total[:, g.dst].clamp(min=1e-300), uniform)


def _value_output(eager, family, layer):
    """The module whose output holds layer ``layer``'s value vectors, and their columns."""
    if family == "gpt2":
        attn = eager.transformer.h[layer].attn
        c = attn.c_proj.weight.shape[1]
        return attn.c_attn, slice(2 * c, 3 * c)  # c_attn holds q, k, v
    if family == "bert":
        return eager.encoder.layer[layer].attention.self.value, slice(None)
    return eager.model.layers[layer].self_attn.v_proj, slice(None)


# block families (gpt2, llama, bert; qwen2 with its per-layer window) and the copies path (gemma2)
@pytest.mark.parametrize("family", ["llama", "gpt2", "bert", "qwen2", "gemma2"])
def test_value_zeroing_equals_zeroing_each_value_in_the_eager_model(family):
    model = tiny(family).double()
    eager = tiny(family, "eager").double()
    ids = torch.randint(3, 100, (2, 5))
    got = contributions(model, ids, "value_zeroing")
    with torch.no_grad():
        intact = eager(input_ids=ids, output_hidden_states=True).hidden_states
    for layer, (g, c) in enumerate(got):
        dist = torch.zeros(2, 5, 5, dtype=torch.float64)  # (B, target i, source k)
        module, cols = _value_output(eager, family, layer)
        for k in range(5):

            def hook(module, args, out, k=k, cols=cols):
                out = out.clone()
                out[:, k, cols] = 0  # source k's value vector, every head
                return out

            handle = module.register_forward_hook(hook)
            with torch.no_grad():
                h = eager(input_ids=ids, output_hidden_states=True).hidden_states[layer + 1]
            handle.remove()
            dist[:, :, k] = 1 - F.cosine_similarity(h, intact[layer + 1], dim=-1)
        expected = normalized(g, on_edges(g, dist).clamp(min=0))
        torch.testing.assert_close(c, expected, atol=1e-6, rtol=1e-5)  # float32 softmax


@pytest.mark.parametrize("family", ["gpt2", "llama", "bert", "mistral"])
def test_value_zeroing_from_blocks_equals_the_copies_of_the_input(family, monkeypatch):
    from graphattn.hf import contrib

    model = tiny(family).double()
    batch = padded(family, "left" if family == "gpt2" else "right")
    blocks = [contributions(model, batch, "value_zeroing", normalize=n) for n in (True, False)]
    monkeypatch.setattr(contrib, "reads_blocks", lambda model: False)
    copies = [contributions(model, batch, "value_zeroing", normalize=n) for n in (True, False)]
    for one, other in zip(blocks, copies, strict=True):  # shares, then the raw distances
        for (g, c), (g1, c1) in zip(one, other, strict=True):
            assert g == g1
            torch.testing.assert_close(c, c1, atol=1e-9, rtol=1e-7)


def test_a_layer_its_block_does_not_reproduce_runs_value_zeroing_on_copies(monkeypatch):
    from graphattn.hf import contrib

    model = tiny("llama").double()
    ids = torch.randint(3, 100, (2, 5))
    handle = model.model.layers[1].register_forward_hook(lambda m, a, out: out + 1.0)
    try:
        with pytest.raises(ValueError, match="layer 1 .* do not reproduce"):
            contributions(model, ids, "alti")
        got = contributions(model, ids, "value_zeroing")  # the model as it runs, hook included
        monkeypatch.setattr(contrib, "reads_blocks", lambda model: False)
        copies = contributions(model, ids, "value_zeroing")
    finally:
        handle.remove()
    for (g, c), (g1, c1) in zip(got, copies, strict=True):
        assert g == g1 and torch.equal(c, c1)
    monkeypatch.undo()
    intact = contributions(model, ids, "value_zeroing")  # the hook changed the shares
    moved = [float((c - c1).abs().max()) for (_, c), (_, c1) in zip(got, intact, strict=True)]
    assert max(moved) > 1e-3


def test_the_copies_of_the_input_go_a_few_sources_per_pass(monkeypatch):
    from graphattn.hf import contrib, zeroing

    model = tiny("gemma2").double()  # a family the blocks do not read: the copies path
    ids = torch.randint(3, 100, (2, 7))
    whole = contributions(model, ids, "value_zeroing")  # 16 copies of 14 tokens in one pass
    rows = []
    real = contrib.zeroed_rows
    monkeypatch.setattr(contrib, "zeroed_rows", lambda r, *a: rows.append(r) or real(r, *a))
    monkeypatch.setattr(zeroing, "COPY_TOKENS", 3 * 14)  # the intact copy and 2 sources
    for (g, c), (g1, c1) in zip(whole, contributions(model, ids, "value_zeroing"), strict=True):
        assert g == g1
        torch.testing.assert_close(c, c1, atol=1e-12, rtol=1e-10)
    assert max(rows) == 2 * 3  # never more than 3 copies of the batch in one pass
    assert len(rows) == 2 * 4  # 7 sources in passes of 2, in each of the 2 layers


def explained(out):
    """The score of grad_attention: log-probabilities, else half the mean output's norm^2."""
    if hasattr(out, "logits"):
        return out.logits.log_softmax(-1).amax(-1).sum()
    return 0.5 * out.last_hidden_state.mean(1).pow(2).sum()


@pytest.mark.parametrize("family", ["llama", "gpt2", "bert"])
def test_grad_attention_equals_the_eager_attentions_gradient(family):
    model = tiny(family).double()
    eager = tiny(family, "eager").double()
    ids = torch.randint(3, 100, (1, 6))
    out = eager(input_ids=ids, output_attentions=True)
    score = explained(out)
    grads = torch.autograd.grad(score, out.attentions)
    got = contributions(model, ids, "grad_attention")
    assert len(got) == len(grads)
    for (g, c), a, d in zip(got, out.attentions, grads, strict=True):
        expected = normalized(g, on_edges(g, (d * a).clamp(min=0).mean(1)))
        # eager attention takes its softmax in float32 even for a float64 model
        torch.testing.assert_close(c, expected.detach(), atol=1e-6, rtol=1e-5)


def test_a_bare_models_last_norm_fixes_each_tokens_length_not_their_mean():
    # BERT's last LayerNorm (weight 1, bias 0): ||h_i||^2 = C var / (var + eps), so the gradient
    # of sum_i ||h_i||^2 / 2 is eps's (1e-12) and round-off, and shares of it changed with the
    # batch around an example; the mean of the outputs is what grad_attention explains
    eager = tiny("bert", "eager").double()
    out = eager(input_ids=torch.randint(3, 100, (2, 6)), output_attentions=True)
    h = out.last_hidden_state  # (B, N, C)
    torch.testing.assert_close(h.pow(2).sum(-1), torch.full((2, 6), 32.0, dtype=h.dtype))
    each = torch.autograd.grad(0.5 * h.pow(2).sum(), out.attentions, retain_graph=True)
    mean = torch.autograd.grad(explained(out), out.attentions)
    assert max(float(d.abs().max()) for d in each) < 1e-9
    assert min(float(d.abs().max()) for d in mean) > 1e-3


def classifier(attn):
    import graphattn.hf  # noqa: F401  (registers "graphattn")

    _, config = FAMILIES["bert"]()  # num_labels 2
    torch.manual_seed(0)
    return tf.BertForSequenceClassification._from_config(config, attn_implementation=attn).eval()


def test_a_classifier_explains_the_log_probability_of_its_predicted_class():
    model, eager = classifier("graphattn").double(), classifier("eager").double()
    ids = torch.randint(3, 100, (2, 6))
    out = eager(input_ids=ids, output_attentions=True)  # logits (B, K)
    grads = torch.autograd.grad(explained(out), out.attentions)
    got = contributions(model, ids, "grad_attention")
    for (g, c), a, d in zip(got, out.attentions, grads, strict=True):
        expected = normalized(g, on_edges(g, (d * a).clamp(min=0).mean(1)))
        torch.testing.assert_close(c, expected.detach(), atol=1e-6, rtol=1e-5)
    assert_each_as_alone(model, padded("bert", "right"), "grad_attention", atol=1e-9, rtol=1e-7)


def test_attention_is_the_head_mean_of_the_eager_weights():
    model = tiny("gpt2")
    ids = torch.randint(3, 100, (1, 4))
    eager_w = tiny("gpt2", "eager")(input_ids=ids, output_attentions=True).attentions
    for (g, c), a in zip(contributions(model, ids, "attention"), eager_w, strict=True):
        torch.testing.assert_close(c, on_edges(g, a.mean(1)))


# ---------------------------------------------------------------- padded batches

PADDED = [("bert", "right"), ("llama", "right"), ("llama", "left"), ("gpt2", "left")]


@pytest.mark.parametrize("family, side", PADDED)
@pytest.mark.parametrize("method", ["value_zeroing", "grad_attention", "attention"])
def test_a_padded_batch_gives_each_example_its_contributions_alone(family, side, method):
    model = tiny(family).double()
    assert_each_as_alone(model, padded(family, side), method, atol=1e-9, rtol=1e-7)


def test_a_batch_encoding_passes_token_type_ids_and_equals_the_dict():
    model = tiny("bert").double()
    batch = padded("bert", "right")
    encoding = tf.BatchEncoding({**batch, "token_type_ids": torch.zeros_like(batch["input_ids"])})
    for method in ("value_zeroing", "grad_attention", "attention"):
        plain = contributions(model, batch, method)
        for (g, c), (g1, c1) in zip(plain, contributions(model, encoding, method), strict=True):
            assert g == g1 and torch.equal(c, c1)
    encoding["token_type_ids"][:, 2:] = 1  # a second segment: the model sees it
    _, c = contributions(model, encoding, "attention")[0]
    assert (c - plain[0][1]).abs().max() > 1e-4


def test_a_tensor_a_mapping_without_mask_and_a_bool_mask_agree():
    model = tiny("gpt2")
    ids = torch.randint(3, 100, (2, 5))
    for method in ("value_zeroing", "attention"):
        a = contributions(model, ids, method)
        b = contributions(model, {"input_ids": ids, "attention_mask": None}, method)
        assert all(torch.equal(c, c1) for (_, c), (_, c1) in zip(a, b, strict=True))
    batch = padded("gpt2", "right")
    as_bool = {**batch, "attention_mask": batch["attention_mask"].bool()}
    ints, bools = (contributions(model, x, "alti") for x in (batch, as_bool))
    assert all(torch.equal(c, c1) for (_, c), (_, c1) in zip(ints, bools, strict=True))


def _bad_inputs():
    ids, mask = torch.randint(3, 100, (2, 4)), torch.ones(2, 4, dtype=torch.long)
    empty = mask.clone()
    empty[1] = 0
    return [
        ({"attention_mask": mask}, ValueError, "needs 'input_ids'"),
        ({"input_ids": None, "attention_mask": mask}, ValueError, "needs 'input_ids'"),
        ({"input_ids": ids, "labels": ids}, ValueError, "'labels'"),
        ({"input_ids": ids.float()}, TypeError, r"input_ids must be an integer .* torch.float32"),
        ({"input_ids": ids, "attention_mask": mask.float()}, TypeError, "bool or integer"),
        ({"input_ids": ids, "attention_mask": mask[:, :3]}, ValueError, r"shape \(2, 3\)"),
        ({"input_ids": ids, "attention_mask": 2 * mask}, ValueError, "only 0 .* and 1"),
        ({"input_ids": ids, "attention_mask": empty}, ValueError, r"rows \[1\] .* no real token"),
        ({"input_ids": ids, "position_ids": ids[:1]}, ValueError, "position_ids has shape"),
        ({"input_ids": ids, "token_type_ids": mask.double()}, TypeError, "token_type_ids"),
    ]


@pytest.mark.parametrize("bad, error, match", _bad_inputs())
def test_bad_input_mappings_are_refused_naming_the_problem(bad, error, match):
    model = tiny("gpt2")
    for method in ("alti", "value_zeroing", "grad_attention", "attention"):
        with pytest.raises(error, match=match):
            contributions(model, bad, method)
