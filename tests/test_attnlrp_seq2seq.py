"""AttnLRP of encoder-decoders: GraphSeq2Seq against its forward with the rules put in by
hand, conservation through self and cross edges, the layout cross_rollout reads, refusals.

T5 and BART against lxt's rules are in tests/test_attnlrp_lxt.py.
"""

import pytest
import torch
from lrp_checks import hand_rules, hf_qk, own_qk, zero_biases_and_scores

from graphattn import GraphSeq2Seq
from graphattn.flow import contributions, cross_rollout, split_cross_layers

SRC = torch.tensor([[5, 6, 7, 8, 9, 3], [4, 9, 3, 7, 0, 0]])  # the second padded (pad_id 0)
TGT = torch.tensor([[1, 5, 8, 4], [1, 6, 3, 0]])


def _model(norm_first, dtype=torch.float32):
    torch.manual_seed(2)
    model = GraphSeq2Seq(12, 10, 16, 2, num_encoder_layers=2, num_decoder_layers=2,
                         activation="gelu", norm_first=norm_first)  # fmt: skip
    return model.to(dtype).eval()


def _leaves(model, store):
    """Forward hooks making both word embeddings' outputs leaves, kept in ``store``."""

    def keep(name):
        def hook(_m, _a, out):
            store[name] = out.detach().requires_grad_()
            return store[name]

        return hook

    return [model.src_emb.register_forward_hook(keep("src")),
            model.tgt_emb.register_forward_hook(keep("tgt"))]  # fmt: skip


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("norm_first", [False, True])
def test_token_relevance_equals_the_forward_with_the_rules(monkeypatch, norm_first, dtype, tol):
    model = _model(norm_first, dtype)
    got = contributions(model, (SRC, TGT), "attnlrp")
    hand_rules(monkeypatch)
    store = {}
    hooks = _leaves(model, store)
    logits = model(SRC, TGT).logits  # (B, N, V)
    for h in hooks:
        h.remove()
    top = logits.gather(-1, logits.argmax(-1, keepdim=True)).squeeze(-1)  # (B, N)
    score = (top * (TGT != 0)).sum()
    g_src, g_tgt = torch.autograd.grad(score, [store["src"], store["tgt"]])
    close = {"atol": tol, "rtol": tol}
    torch.testing.assert_close(got.source_tokens, (store["src"] * g_src).sum(-1), **close)
    torch.testing.assert_close(got.tokens, (store["tgt"] * g_tgt).sum(-1), **close)
    torch.testing.assert_close(got.score.sum(), score.detach(), **close)
    assert got.source_tokens.abs().sum() > 0 and got.tokens.abs().sum() > 0
    assert torch.all(got.source_tokens[1, 4:] == 0)  # padding: no relevance


def _assert_conserved(rel, n_enc, real_src=None, tol=1e-4):
    """Zero biases and scores: each self layer keeps its stream's relevance less half its
    messages'; a cross layer's messages leave the decoder stream, half of them reach the
    memory (the encoder's output); the decoder's output holds the score."""
    enc, dec = rel.edges[:n_enc], rel.edges[n_enc:]
    src = rel.source_stream if real_src is None else rel.source_stream * real_src[:, None]
    tol = {"atol": tol, "rtol": tol}
    drop = src[:, :-1].sum(-1) - src[:, 1:].sum(-1)  # (B, L_enc)
    torch.testing.assert_close(drop, -0.5 * torch.stack([r.sum(-1) for r in enc], 1), **tol)
    drop = rel.stream[:, :-1].sum(-1) - rel.stream[:, 1:].sum(-1)  # (B, L_dec)
    lost = [-0.5 * s.sum(-1) - c.sum(-1) for s, c in zip(dec[::2], dec[1::2], strict=True)]
    torch.testing.assert_close(drop, torch.stack(lost, 1), **tol)
    memory = 0.5 * sum(c.sum(-1) for c in dec[1::2])  # (B,)
    torch.testing.assert_close(src[:, -1].sum(-1), memory, **tol)
    assert memory.abs().min() > 1e-5  # the cross edges carry relevance


@pytest.mark.parametrize("norm_first", [False, True])
def test_conservation_on_graph_seq2seq(norm_first):
    model = _model(norm_first)
    zero_biases_and_scores(model, own_qk)
    rel = contributions(model, (SRC, TGT), "attnlrp")
    _assert_conserved(rel, 2)


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_conservation_on_hf_encoder_decoders(family):
    pytest.importorskip("transformers")
    from hf_tiny import inputs, tiny

    model = tiny(family).double()  # float64: BART's small initial weights move little
    zero_biases_and_scores(model, hf_qk)
    batch = inputs(family, n=7, pad=2)
    rel = contributions(model, batch, "attnlrp")
    _assert_conserved(rel, 2, batch["attention_mask"], tol=1e-6)  # lxt's epsilon 1e-10
    torch.testing.assert_close(rel.stream[:, -1].sum(-1), rel.score, atol=1e-6, rtol=1e-6)


def _check_layout(rel, m, n):
    enc, dec, cross = split_cross_layers(rel)
    assert len(dec) == len(cross) == 2 and all(g.is_cross for g, _ in cross)
    for g, c in enc + dec + cross:  # shares of one example, 1 per target with an edge
        sums = torch.zeros(g.num_nodes, dtype=c.dtype).index_add_(0, g.dst, c)
        assert torch.all((sums - 1).abs() < 1e-5)
    assert cross_rollout(enc, dec, cross).cross.shape == (n, m)
    b = len(rel.score)
    assert rel.source_tokens.shape == (b, m) and rel.tokens.shape == (b, n)
    assert rel.source_stream.shape == (b, len(enc) + 1, m) and rel.stream.shape == (b, 3, n)


def test_layout_goes_into_cross_rollout():
    rel = contributions(_model(False), (SRC[:1], TGT[:1]), "attnlrp")
    assert len(rel) == len(rel.edges) == 6
    _check_layout(rel, 6, 4)
    # the same layout as the other encoder-decoder methods
    vz = contributions(_model(False), (SRC[:1], TGT[:1]), "value_zeroing")
    assert [g for g, _ in rel] == [g for g, _ in vz]


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_hf_layout_goes_into_cross_rollout(family):
    pytest.importorskip("transformers")
    from hf_tiny import inputs, tiny

    model, batch = tiny(family), inputs(family, n=7, pad=0)
    one = {k: v[:1] for k, v in batch.items()}
    rel = contributions(model, one, "attnlrp")
    _check_layout(rel, 7, 5)
    att = contributions(model, one, "attention")
    assert [g for g, _ in rel] == [g for g, _ in att]


def test_hf_refuses_an_encoder_decoder_without_rules():
    pytest.importorskip("transformers")
    from hf_tiny import inputs, tiny

    with pytest.raises(ValueError, match="MarianMTModel.*'marian'.*'value_zeroing'"):
        contributions(tiny("marian"), inputs("marian"), "attnlrp")
