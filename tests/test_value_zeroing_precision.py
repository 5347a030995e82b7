"""Value Zeroing in float32 equals float64: the cosine distance does not cancel."""

import copy

import pytest
import torch
import torch.nn.functional as F
from minilm_available import needs_minilm

from graphattn.flow import contributions
from graphattn.flow.decompose import cosine_distance
from graphattn.pretrained import load_minilm, minilm_dir

TEXTS = ["He left the roses by the bank.", "Why, how now, Dromio! where run'st thou so fast?"]




def test_cosine_distance_of_near_vectors_in_float32_equals_float64():
    gen = torch.Generator().manual_seed(0)
    b = torch.randn(200, 384, dtype=torch.float64, generator=gen)
    scale = torch.logspace(-6, 0, 200, dtype=torch.float64)[:, None]  # (200, 1)
    a = b + scale * torch.randn(200, 384, dtype=torch.float64, generator=gen)
    a32, b32 = a.float(), b.float()
    exact = 1 - F.cosine_similarity(a32.double(), b32.double(), dim=-1)  # of the float32 inputs
    got = cosine_distance(a32, b32).double()
    torch.testing.assert_close(got, exact, rtol=1e-4, atol=1e-12)
    naive = 1 - F.cosine_similarity(a32, b32, dim=-1)
    assert (naive.double() - exact).abs().max() > 1e-8  # what cancellation costs


def test_cosine_distance_of_zero_vectors_and_opposite_ones():
    a = torch.tensor([[0.0, 0.0], [1.0, 2.0], [0.0, 0.0], [1.0, 2.0], [3.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [-2.0, -4.0], [3.0, 1.0]])
    want = 1 - F.cosine_similarity(a, b, dim=-1)  # 1, 1, 1, 2, 0
    torch.testing.assert_close(cosine_distance(a, b), want)


def _max_share_gap(model, ids) -> float:
    low = contributions(model, ids, "value_zeroing")
    high = contributions(copy.deepcopy(model).double(), ids, "value_zeroing")
    assert len(low) == len(high) == 6
    pairs = zip(low, high, strict=True)
    return max(float((c.double() - c64).abs().max()) for (_, c), (_, c64) in pairs)


@needs_minilm
def test_value_zeroing_of_minilm_in_float32_is_float64_within_1e_4():
    model = load_minilm().eval()
    for text in TEXTS:
        ids, _ = model.tokenize(text)
        assert _max_share_gap(model, ids) < 1e-4  # 1 - cosine_similarity: up to 4e-2


@needs_minilm
def test_hf_value_zeroing_of_minilm_in_float32_is_float64_within_1e_4():
    tf = pytest.importorskip("transformers")
    import graphattn.hf  # noqa: F401  (registers "graphattn")

    model = tf.BertModel.from_pretrained(str(minilm_dir()), attn_implementation="graphattn")
    ids, _ = load_minilm().tokenize(TEXTS[1])
    assert _max_share_gap(model.eval(), ids) < 1e-4
