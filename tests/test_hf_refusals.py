"""The small refusals of graphattn.hf: ids, indices, lengths, labels, dense attentions."""

import pytest
import torch

pytest.importorskip("transformers", reason="hf extra not installed")

from hf_tiny import VOCAB, inputs, tiny  # noqa: E402

import graphattn.hf  # noqa: E402
from graphattn import GraphLM, patterns  # noqa: E402
from graphattn.flow import contributions  # noqa: E402


# ------------------------------------------------------------ contributions
@pytest.mark.parametrize("ids, error, match", [
    (torch.tensor([[3, VOCAB]]), ValueError, r"input_ids holds ids outside \[0, vocab_size=100\)"),
    (torch.tensor([[-1, 3]]), ValueError, r"outside \[0, vocab_size=100\): min -1"),
    (torch.zeros(0, 4, dtype=torch.long), ValueError, r"with B >= 1 .*got \(0, 4\)"),
    (torch.ones(1, 4), TypeError, r"must be an integer tensor \(B, N\), got torch.float32"),
])
def test_contributions_refuse_bad_ids_naming_them(ids, error, match):
    model = tiny("gpt2")
    for method in ("attention", "value_zeroing"):
        with pytest.raises(error, match=match):
            contributions(model, ids, method)


def test_contributions_take_int32_ids():
    model = tiny("gpt2")
    ids = inputs("gpt2", pad=0)["input_ids"][:1]
    for (g, c), (g32, c32) in zip(contributions(model, ids, "alti"),
                                  contributions(model, ids.int(), "alti"), strict=True):
        assert g == g32
        torch.testing.assert_close(c, c32)


def test_contributions_on_an_encoder_decoder_name_the_class_and_what_is_offered():
    model = tiny("t5")
    batch = inputs("t5", pad=0)
    batch = {"input_ids": batch["input_ids"], "decoder_input_ids": batch["input_ids"][:, :3]}
    with pytest.raises(ValueError, match=r"'alti' is not available for T5ForConditionalGeneration;"
                       r" its integration offers \('value_zeroing', 'grad_attention'"):
        contributions(model, batch, "alti")


def test_contributions_on_a_model_off_graphattn_say_how_to_switch():
    model = tiny("gpt2", attn="eager")
    with pytest.raises(ValueError, match=r"GPT2LMHeadModel runs attn_implementation='eager'; "
                       r"flow.contributions offers the methods alti, .*"
                       r"graphattn.hf.attach\(model\)"):
        contributions(model, inputs("gpt2", pad=0)["input_ids"], "alti")


def test_contributions_of_an_unknown_model_name_it_and_the_methods():
    with pytest.raises(TypeError, match="model must be .*, got Linear; contributions offers "
                       "the methods alti, globenc"):
        contributions(torch.nn.Linear(2, 2), torch.zeros(1, 2, dtype=torch.long), "alti")
    lm = GraphLM(20, 8, 2, 1, max_len=8)
    g, c = contributions(lm, torch.randint(20, (1, 4)), "alti")[0]  # own models: unchanged
    assert torch.allclose(c.sum(1), torch.tensor([4.0]))


# ------------------------------------------------------------ indices, lengths
def test_recording_layers_and_token_labels_refuse_an_example_out_of_range():
    model = tiny("gpt2")
    batch = inputs("gpt2", pad=0)
    with torch.no_grad(), graphattn.hf.record() as rec:
        model(**batch)
    assert len(rec.layers(-2)) == 2
    with pytest.raises(ValueError, match="example must be an index into the recorded batch of 2, "
                       "got 10"):
        rec.layers(10)

    class Chars:
        def convert_ids_to_tokens(self, ids):
            return [str(i) for i in ids]

    with pytest.raises(ValueError, match="example must be an index into the batch of 2, got 5"):
        graphattn.hf.token_labels(Chars(), batch, example=5)
    with pytest.raises(TypeError, match="example must be an int"):
        graphattn.hf.token_labels(Chars(), batch, example=0.5)


def test_perplexity_refuses_a_fractional_max_length():
    model = tiny("gpt2")
    with pytest.raises(TypeError, match="max_length must be an int, got float 2.5"):
        graphattn.hf.perplexity(model, None, torch.arange(3, 12), {"full": None}, max_length=2.5)
    with pytest.raises(ValueError, match="max_length must be >= 2, got 1"):
        graphattn.hf.perplexity(model, None, torch.arange(3, 12), {"full": None}, max_length=1)


def test_label_layers_refuses_a_string_for_labels():
    layers = [(patterns.causal(3), torch.ones(6, 2))]
    with pytest.raises(TypeError, match="tokens must be a sequence of labels.*the string 'abc'"):
        graphattn.hf.label_layers(layers, "abc")
    assert graphattn.hf.label_layers(layers, list("abc"))[0][0].tokens == ["a", "b", "c"]


# ------------------------------------------------------ layers_from_attentions
def test_layers_from_attentions_refuses_nan_weights():
    a = torch.full((1, 2, 3, 3), 1 / 3)
    a[0, 1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match=r"attentions\[0\] holds NaN or infinite weights"):
        graphattn.hf.layers_from_attentions([a])


def test_layers_from_attentions_refuses_a_mask_of_another_shape():
    a = torch.full((2, 2, 3, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 4\), but attentions\[0\] "
                       r"covers a batch of 2 and 3 keys: it must be \(2, 3\)"):
        graphattn.hf.layers_from_attentions([a], attention_mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"\(B, M\) tensor .* got \(6,\)"):
        graphattn.hf.layers_from_attentions([a], attention_mask=torch.ones(6))
    layers = graphattn.hf.layers_from_attentions([a], attention_mask=torch.tensor([[1, 1, 0]] * 2))
    assert layers[0][0].num_edges == 4  # tokens 0 and 1 read each other; token 2 is padding
