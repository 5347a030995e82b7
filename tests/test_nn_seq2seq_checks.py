"""GraphSeq2Seq refuses what it cannot do well, before any work, naming the argument."""

import pytest
import torch

from graphattn.nn import GraphLM, GraphSeq2Seq

PAD, BOS, EOS = 0, 1, 2


def small_model(**kw) -> GraphSeq2Seq:
    args = {"num_encoder_layers": 1, "num_decoder_layers": 1, "dim_feedforward": 16}
    return GraphSeq2Seq(11, 13, 8, 2, **(args | kw)).eval()


@pytest.mark.parametrize("special", ["bos_id", "eos_id"])
def test_pad_id_equal_to_bos_or_eos_is_refused(special):
    with pytest.raises(ValueError, match=f"pad_id must differ from {special}, got both 5"):
        small_model(pad_id=5, **{special: 5})


@pytest.mark.parametrize("value", [True, 1.0, "1"])
def test_num_beams_must_be_a_positive_int(value):
    src = torch.randint(3, 11, (1, 4))
    with pytest.raises(TypeError, match="num_beams must be an int"):
        small_model().generate(src, max_new_tokens=2, num_beams=value)


def test_use_cache_must_be_a_bool():
    src = torch.randint(3, 11, (1, 4))
    with pytest.raises(TypeError, match="use_cache must be a bool, got str"):
        small_model().generate(src, max_new_tokens=2, use_cache="no")


def test_a_batch_of_zero_is_refused_naming_the_ids():
    model = small_model()
    src, tgt = torch.zeros(0, 4, dtype=torch.long), torch.zeros(0, 3, dtype=torch.long)
    for call in (lambda: model(src, tgt), lambda: model.loss(src, tgt),
                 lambda: model.generate(src, max_new_tokens=2)):  # fmt: skip
        with pytest.raises(ValueError, match=r"must have shape \(B, N\) with B >= 1 .* \(0, "):
            call()
    lm = GraphLM(10, 8, 1, 2, max_len=16, dim_feedforward=16)
    with pytest.raises(ValueError, match=r"idx must have shape \(B, N\) with B >= 1"):
        lm(torch.zeros(0, 4, dtype=torch.long))


def test_loss_of_a_one_token_target_names_its_shape():
    src = torch.randint(3, 11, (2, 4))
    with pytest.raises(ValueError, match=r"tgt must hold at least 2 tokens .* got shape \(2, 1\)"):
        small_model().loss(src, torch.full((2, 1), BOS))


def test_loss_on_an_all_padding_batch_is_refused_not_nan():
    src = torch.randint(3, 11, (2, 4))
    tgt = torch.tensor([[BOS, PAD, PAD], [BOS, PAD, PAD]])
    with pytest.raises(ValueError, match=r"tgt\[:, 1:\] holds only pad_id=0"):
        small_model().loss(src, tgt)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"cross_graph": "causal"}, "cross_graph of layer 0 must name a cross pattern"),
        ({"cross_graph": ("sliding_window", {"window": 2})}, "must name a cross pattern"),
        ({"decoder_graph": "cross"}, "decoder_graph of layer 0 must name a self pattern"),
        ({"encoder_graph": ("cross_window", {"window": 2})}, "encoder_graph of layer 0 must"),
    ],
)
def test_a_pattern_of_the_wrong_kind_is_refused_in_the_constructor(kw, message):
    with pytest.raises(ValueError, match=message):
        small_model(**kw)
