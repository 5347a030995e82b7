"""A T5/BART recording goes straight into flow.split_cross_layers and flow.cross_rollout."""

import pytest
import torch

pytest.importorskip("transformers", reason="hf extra not installed")

from hf_tiny import inputs, tiny  # noqa: E402

import graphattn.hf  # noqa: E402
from graphattn import flow, patterns  # noqa: E402


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_recorded_layers_split_into_encoder_decoder_and_cross(family):
    model = tiny(family)
    batch = inputs(family, pad=2)  # 7 encoder tokens (example 1: 2 padded), 5 decoder tokens
    with torch.no_grad(), graphattn.hf.record() as rec:
        model(**batch, decoder_graph=lambda n: patterns.sliding_window(n, 2))
    for example in (0, 1):
        enc, dec, cross = flow.split_cross_layers(rec.layers(example))
        # the same lists assembled by hand from the calls' kinds
        assert [g for g, _ in enc] == [g for g, _ in rec.layers(example, decoder=False)]
        by_hand = (
            rec.layers(example, decoder=False),
            rec.layers(example, decoder=True, cross=False),
            rec.layers(example, cross=True),
        )
        for got, want in zip((enc, dec, cross), by_hand, strict=True):
            assert len(got) == len(want) == 2
            for (g, w), (g2, w2) in zip(got, want, strict=True):
                assert g == g2 and torch.equal(w, w2) and w.shape == (g.num_edges, 4)
        rel = flow.cross_rollout(enc, dec, cross)
        assert rel.cross.shape == (5, 7) and rel.encoder.shape == (7, 7)
    padded = flow.cross_rollout(*flow.split_cross_layers(rec.layers(1))).cross
    assert torch.all(padded[:, 5:] == 0)  # example 1's padded encoder tokens are nobody's source


def test_batched_weights_still_pick_their_example_and_one_example_refuses_b():
    model = tiny("t5")
    with torch.no_grad(), graphattn.hf.record() as rec:
        model(**inputs("t5", pad=0))
    batched = [(c.graph, c.weights) for c in rec.calls]  # (B, E, H) each, in call order
    for b in (0, 1):
        got = flow.split_cross_layers(batched, b)
        want = flow.split_cross_layers(rec.layers(b))
        for part, part2 in zip(got, want, strict=True):
            assert all(torch.equal(w, w2) for (_, w), (_, w2) in zip(part, part2, strict=True))
    with pytest.raises(ValueError, match=r"example=1 picks from a batch, but layers hold one"):
        flow.split_cross_layers(rec.layers(0), 1)


def test_layers_of_a_decoder_only_recording_are_its_self_attention_calls():
    model = tiny("gpt2")
    with torch.no_grad(), graphattn.hf.record() as rec:
        model(**inputs("gpt2", pad=0))
    assert [g for g, _ in rec.layers(0)] == [g for g, _ in rec.self_attention]
    assert rec.layers(0, cross=True) == []


def test_a_recording_of_generate_is_refused_naming_one_forward():
    model = tiny("t5")
    batch = inputs("t5", pad=0)
    batch.pop("decoder_input_ids")
    with torch.no_grad(), graphattn.hf.record() as rec:
        model.generate(**batch, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    with pytest.raises(ValueError, match=r"generate makes one forward per new token\): record "
                       r"one forward, with the decoder's tokens as decoder_input_ids"):
        flow.split_cross_layers(rec.layers(0))
