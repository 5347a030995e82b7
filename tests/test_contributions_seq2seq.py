"""Contributions of ``GraphSeq2Seq`` against a dense re-implementation written out here.

The reference recomputes every encoder layer, decoder self-attention and
decoder cross-attention from the model's parameters with dense ``(B, H, N, M)``
attention matrices (padding masked as the model masks it) and applies each
paper's formula to the terms, independently of :mod:`graphattn.flow`.
"""

import pytest
import torch
import torch.nn.functional as F
from dense_contrib import dense_attention, ln_share, to_dense

from graphattn import GraphSeq2Seq, TokenGraph, patterns
from graphattn.flow import (
    METHODS,
    contributions,
    cross_rollout,
    run_model,
    split_cross_layers,
)

ACT = {"relu": F.relu, "gelu": F.gelu}
SRC = torch.tensor([[3, 4, 5, 6, 7], [3, 8, 4, 0, 0]])  # second source padded
TGT = torch.tensor([[1, 6, 7, 9], [1, 5, 0, 0]])  # second target padded


def model_of(norm_first, sparse=False):
    torch.manual_seed(5)
    graphs = {}
    if sparse:
        graphs = {"encoder_graph": ("sliding_window", {"window": 1}),
                  "cross_graph": ("cross_window", {"window": 1})}
    model = GraphSeq2Seq(10, 12, 8, 2, num_encoder_layers=2, num_decoder_layers=2,
                         dim_feedforward=16, activation="gelu", norm_first=norm_first,
                         **graphs).double().eval()
    with torch.no_grad():  # norms that differ from each other, so mixing two up shows
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model


# ----------------------------------------------------------------- dense reference
def ffn(layer, u):
    h = ACT[layer.activation](u @ layer.linear1.weight.T + layer.linear1.bias)
    return h @ layer.linear2.weight.T + layer.linear2.bias


def dense_block(rec, zero=None):
    """One block densely: ``A, T, z`` and ``u`` (after the first norm), ``w``, ``y``, norms."""
    layer, kind, x, kv, mask = rec["layer"], rec["kind"], rec["x"], rec["kv"], rec["mask"]
    pre = layer.norm_first
    attn = layer.multihead_attn if kind == "cross" else layer.self_attn
    first = layer.norm2 if kind == "cross" else layer.norm1
    query = first(x) if pre else x
    A, T = dense_attention(attn, query, query if kind != "cross" else kv, mask, zero)
    z = x + T.sum(2) + attn.out_proj.bias
    u = z if pre else first(z)
    if kind == "self":
        return A, T, z, u, u, u, (None if pre else first), None
    second, ffn_in = (layer.norm3, u) if kind == "cross" else (layer.norm2, u)
    w = u + ffn(layer, second(ffn_in) if pre else ffn_in)
    y = w if pre else second(w)
    return A, T, z, u, w, y, (None if pre else first), (None if pre else second)


def dense_records(model, src, tgt):
    """Every block's inputs and ``out`` (:func:`dense_block`), chained as the model chains them,
    and the score of ``"grad_attention"``."""
    c = model.config
    n, m = tgt.shape[1], src.shape[1]
    enc_g, dec_g, cross_g = model.graphs(n, m)
    sv, tv = src != c.pad_id, tgt != c.pad_id
    x = model.src_emb(src) + model.src_pos(torch.arange(m))
    recs = []
    for layer, g in zip(model.encoder.layers, enc_g, strict=True):
        recs.append({"layer": layer, "kind": "enc", "x": x, "kv": None,
                     "mask": g.to_dense_mask() & sv[:, None, :]})
        recs[-1]["out"] = dense_block(recs[-1])
        x = recs[-1]["out"][5]
    memory = model.encoder.norm(x)
    x = model.tgt_emb(tgt) + model.tgt_pos(torch.arange(n))
    for layer, g, cg in zip(model.decoder.layers, dec_g, cross_g, strict=True):
        recs.append({"layer": layer, "kind": "self", "x": x, "kv": None,
                     "mask": g.to_dense_mask() & tv[:, None, :]})
        recs[-1]["out"] = dense_block(recs[-1])
        x = recs[-1]["out"][5]
        recs.append({"layer": layer, "kind": "cross", "x": x, "kv": memory,
                     "mask": cg.to_dense_mask() & sv[:, None, :]})
        recs[-1]["out"] = dense_block(recs[-1])
        x = recs[-1]["out"][5]
    logp = model.lm_head(model.decoder.norm(x)).log_softmax(-1)
    return recs, (logp.amax(-1) * tv).sum()


def shares(c, live):
    """Per-target shares over live entries; all-zero rows: equal over live entries."""
    c = c * live
    total = c.sum(-1, keepdim=True)
    uniform = live / live.sum(-1, keepdim=True).clamp(min=1)
    return torch.where(total > 0, c / torch.where(total > 0, total, 1), uniform)


def terms_and_live(rec, A, T):
    """Terms with the residual on the self entry (not for a cross block) and live entries."""
    live = (A != 0).any(1)  # (B, N, M)
    if rec["kind"] == "cross":
        return T, live
    eye = torch.eye(T.shape[1], dtype=torch.bool)
    return T + torch.diag_embed(rec["x"].transpose(1, 2)).permute(0, 2, 3, 1), live | eye


def dense_alti(rec):
    A, T, z, u, w, y, n1, n2 = dense_block(rec)
    terms, live = terms_and_live(rec, A, T)
    if n1 is not None:
        terms = ln_share(n1, terms, z)
    u = u[:, :, None]
    return shares((u.abs().sum(-1) - (u - terms).abs().sum(-1)).clamp(min=0), live)


def dense_globenc(rec):
    A, T, z, u, w, y, n1, n2 = dense_block(rec)
    terms, live = terms_and_live(rec, A, T)
    if n1 is not None:
        terms = ln_share(n1, terms, z)
    if n2 is not None:
        terms = ln_share(n2, terms, w)
    return shares(terms.norm(dim=-1), live)


def dense_value_zeroing(rec):
    A, _, _, _, _, y, _, _ = dense_block(rec)
    c = torch.stack([1 - F.cosine_similarity(dense_block(rec, zero=j)[5], y, dim=-1)
                     for j in range(A.shape[-1])], -1)  # (B, N, M)
    return shares(c.clamp(min=0), (A != 0).any(1))


DENSE = {"alti": dense_alti, "globenc": dense_globenc, "value_zeroing": dense_value_zeroing}


# ----------------------------------------------------------------- tests
@pytest.mark.parametrize("sparse", [False, True], ids=["full", "sparse"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-LN", "pre-LN"])
def test_blocks_reproduce_the_models_logits(norm_first, sparse):
    model = model_of(norm_first, sparse)
    run = run_model(model, (SRC, TGT))
    assert len(run.blocks) == 2 + 2 * 2
    logits = model.lm_head(model.decoder.norm(run.blocks[-1].output()))
    torch.testing.assert_close(logits, model(SRC, TGT).logits)


@pytest.mark.parametrize("sparse", [False, True], ids=["full", "sparse"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-LN", "pre-LN"])
@pytest.mark.parametrize("method", list(DENSE))
def test_block_methods_equal_dense_formulas(method, norm_first, sparse):
    model = model_of(norm_first, sparse)
    recs, _ = dense_records(model, SRC, TGT)
    layers = contributions(model, (SRC, TGT), method)
    assert [g.is_cross for g, _ in layers] == [False, False, False, True, False, True]
    for rec, (g, c) in zip(recs, layers, strict=True):
        expected = DENSE[method](rec)
        torch.testing.assert_close(to_dense(g, c), expected, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-LN", "pre-LN"])
def test_grad_attention_equals_dense_autograd(norm_first):
    model = model_of(norm_first, sparse=True)
    recs, score = dense_records(model, SRC, TGT)
    attns = [rec["out"][0] for rec in recs]  # the weights the score was computed from
    grads = torch.autograd.grad(score, attns)
    layers = contributions(model, (SRC, TGT), "grad_attention")
    for (g, c), A, d in zip(layers, attns, grads, strict=True):
        expected = shares((d * A).clamp(min=0).mean(1), (A != 0).any(1))
        torch.testing.assert_close(to_dense(g, c), expected, atol=1e-7, rtol=1e-6)


def test_attention_layers_compose_like_the_models_own_weights():
    model = model_of(False, sparse=True)
    layers = contributions(model, (SRC, TGT), "attention")
    out = model(SRC, TGT, need_weights=True)
    for b in (0, 1):
        got = cross_rollout(*split_cross_layers(layers, b))
        expected = cross_rollout(*out.sequence_layers(b))
        for name in ("cross", "decoder", "encoder"):
            torch.testing.assert_close(getattr(got, name), getattr(expected, name))
    rel = cross_rollout(*split_cross_layers(contributions(model, (SRC, TGT), "alti"), 1))
    assert bool((rel.cross[:, 3:] == 0).all())  # padded sources carry nothing


@pytest.mark.parametrize("method", [m for m in METHODS if m != "attnlrp"])  # no seq2seq AttnLRP
def test_given_graphs_are_used_and_a_square_cross_graph_stays_cross(method):
    model = model_of(True)
    src, tgt = SRC[:1, :4].expand(2, 4), TGT[:1].expand(2, 4)  # no padding
    diagonal = TokenGraph(torch.arange(4).repeat(2, 1), 4, num_src_nodes=4)  # not flagged cross
    enc = [patterns.get("full", 4), patterns.get("sliding_window", 4, window=1)]
    layers = contributions(model, (src, tgt), method, (enc, patterns.get("causal", 4), diagonal))
    assert [g.num_nodes for g, _ in layers] == [4] * 6
    for k in (3, 5):
        g, c = layers[k]
        assert g.is_cross and g.num_edges == 4  # no residual self entry added
        torch.testing.assert_close(c, torch.ones_like(c))  # one source each: share 1
    assert layers[1][0] == enc[1] and layers[2][0] == patterns.get("causal", 4)


def test_errors_name_the_problem():
    model = model_of(False)
    with pytest.raises(TypeError, match="pair"):
        contributions(model, SRC, "alti")
    with pytest.raises(ValueError, match="same batch size"):
        contributions(model, (SRC, TGT[:1]), "alti")
    with pytest.raises(ValueError, match="tgt holds ids outside"):
        contributions(model, (SRC, TGT + 20), "alti")
    with pytest.raises(TypeError, match="triple"):
        contributions(model, (SRC, TGT), "alti", patterns.get("full", 5))
    with pytest.raises(ValueError, match="cross graph of layer 0"):
        contributions(model, (SRC, TGT), "alti", (patterns.get("full", 5),
                                                 patterns.get("causal", 4),
                                                 patterns.get("cross", 4, n_src=3)))
    layers = contributions(model, (SRC, TGT), "alti")
    with pytest.raises(ValueError, match="decoder \\(self, cross\\) pairs"):
        split_cross_layers(layers[:-1])
    with pytest.raises(ValueError, match="decoder \\(self, cross\\) pairs"):
        split_cross_layers(layers[:2])
    with pytest.raises(ValueError, match=r"example must be in \[-2, 2\)"):
        split_cross_layers(layers, example=2)
    with pytest.raises(ValueError, match="batch of 2 examples; pass example="):
        split_cross_layers(layers)  # a batch of two: no silent pick of the first
    with pytest.warns(DeprecationWarning, match="example="):
        old = split_cross_layers(layers, b=1)
    new = split_cross_layers(layers, example=1)
    pairs = [(a, b) for x, y in zip(old, new, strict=True) for a, b in zip(x, y, strict=True)]
    assert all(torch.equal(a[1], b[1]) for a, b in pairs)
