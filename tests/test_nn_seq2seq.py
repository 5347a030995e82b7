"""GraphSeq2Seq against torch.nn.Transformer, its graphs, padding, weights and generation."""

import copy

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from graphattn import TokenGraph, patterns
from graphattn.flow import cross_rollout
from graphattn.nn import (
    GraphAttention,
    GraphSeq2Seq,
    GraphSeq2SeqConfig,
    LayerKVCache,
    rows_graph,
)

PAD, BOS, EOS = 0, 1, 2


def perturb(module: nn.Module, gen: torch.Generator) -> None:
    """Random non-default values everywhere (layer norms start at 1/0, biases at 0)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3 + (p == 1))


def padded_batch(gen, vocab, lengths, width):
    """Ids in [3, vocab) with PAD after each row's length."""
    ids = torch.randint(3, vocab, (len(lengths), width), generator=gen)
    for b, n in enumerate(lengths):
        ids[b, n:] = PAD
    return ids


def small_model(**kw) -> GraphSeq2Seq:
    args = {"num_encoder_layers": 2, "num_decoder_layers": 2, "dim_feedforward": 24}
    return GraphSeq2Seq(11, 13, 8, 2, **(args | kw)).eval()


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.parametrize(("norm_first", "activation"), [(False, "relu"), (True, "gelu")])
def test_matches_torch_transformer_with_padding(norm_first, activation):
    """Full graphs + padding: the same logits and gradients as nn.Transformer."""
    gen = torch.Generator().manual_seed(0)
    dt = torch.float64
    ref = nn.Transformer(
        8, 2, 2, 3, 24, dropout=0.0, activation=activation, batch_first=True,
        norm_first=norm_first, dtype=dt,
    )
    perturb(ref, gen)
    model = small_model(num_decoder_layers=3, activation=activation, norm_first=norm_first)
    model = model.to(dt)
    missing, unexpected = model.load_state_dict(ref.state_dict(), strict=False)
    assert not unexpected
    assert sorted(missing) == sorted(
        f"{m}.weight" for m in ("src_emb", "tgt_emb", "src_pos", "tgt_pos", "lm_head")
    )
    perturb(model.lm_head, gen)
    side = copy.deepcopy(model)  # embeddings and head for the reference path

    src = padded_batch(gen, 11, [6, 4, 5], 6)
    tgt = padded_batch(gen, 13, [5, 5, 3], 5)
    tgt[:, 0] = BOS
    n, m = tgt.shape[1], src.shape[1]
    src_x = side.src_emb(src) + side.src_pos(torch.arange(m))
    tgt_x = side.tgt_emb(tgt) + side.tgt_pos(torch.arange(n))
    causal = patterns.get("causal", n)
    out_ref = ref(
        src_x, tgt_x, tgt_mask=~causal.to_dense_mask(), src_key_padding_mask=src == PAD,
        tgt_key_padding_mask=tgt == PAD, memory_key_padding_mask=src == PAD,
    )
    expected = side.lm_head(out_ref)
    got = model(src, tgt).logits
    valid = tgt != PAD
    assert_close(got[valid], expected[valid])

    g = torch.randn(expected.shape, generator=gen, dtype=dt)
    (expected * g)[valid].sum().backward()
    (got * g)[valid].sum().backward()
    ref_params = dict(side.named_parameters()) | dict(ref.named_parameters())
    for name, p in model.named_parameters():
        assert_close(p.grad, ref_params[name].grad, msg=f"gradient of {name}")


def test_padding_equals_running_alone():
    """Padding on both sides changes nothing at the real tokens (graphs not width-dependent)."""
    gen = torch.Generator().manual_seed(1)
    model = small_model(decoder_graph=("sliding_window", {"window": 2, "causal": True}))
    perturb(model, gen)
    src = padded_batch(gen, 11, [7, 4], 7)
    tgt = padded_batch(gen, 13, [3, 6], 6)
    together = model(src, tgt).logits
    for b, (ms, nt) in enumerate([(7, 3), (4, 6)]):
        alone = model(src[b : b + 1, :ms], tgt[b : b + 1, :nt]).logits
        assert_close(together[b, :nt], alone[0], atol=1e-5, rtol=1e-5)


def test_per_layer_graphs_and_weights():
    window = lambda n, m: patterns.get("cross_window", n, n_src=m, window=1)  # noqa: E731
    model = small_model(
        encoder_graph=["full", ("sliding_window", {"window": 2})],
        decoder_graph=["causal", ("sliding_window", {"window": 2, "causal": True})],
        cross_graph=["cross", window],
    )
    src, tgt = torch.randint(3, 11, (2, 5)), torch.randint(3, 13, (2, 4))
    out = model(src, tgt, need_weights=True)
    enc, dec, cross = model.graphs(4, 5)
    assert [g for g, _ in out.encoder_layers] == enc
    assert [g for g, _ in out.decoder_cross_layers] == cross
    assert cross[1].num_edges == 4 and cross[0].num_edges == 20
    for graphs, layers in ((enc, out.encoder_layers), (dec, out.decoder_self_layers),
                           (cross, out.decoder_cross_layers)):
        for g, (_, w) in zip(graphs, layers, strict=True):
            assert w.shape == (2, g.num_edges, 2)
            sums = torch.zeros(2, g.num_nodes, 2).index_add_(1, g.dst, w)
            assert_close(sums, torch.ones_like(sums))  # softmax over each target's edges
    rel = cross_rollout(*out.sequence_layers(1))
    assert rel.cross.shape == (4, 5)
    assert model(src, tgt).encoder_layers is None


def test_fixed_graph_and_config_round_trip():
    fixed = TokenGraph.from_dense_mask(torch.eye(3, 4, dtype=torch.bool), cross=True)
    model = small_model(cross_graph=fixed)
    out = model(torch.randint(3, 11, (1, 4)), torch.randint(3, 13, (1, 3)), need_weights=True)
    assert out.decoder_cross_layers[0][0] is fixed
    again = GraphSeq2Seq.from_config(model.config)
    assert again.config == model.config
    assert sorted(again.state_dict()) == sorted(model.state_dict())


@pytest.mark.parametrize("cross_graph", ["cross", ("cross_window", {"window": 2})])
def test_generate_cache_beam_and_greedy(cross_graph):
    gen = torch.Generator().manual_seed(2)
    model = small_model(cross_graph=cross_graph, eos_id=EOS)
    perturb(model, gen)
    src = padded_batch(gen, 11, [6, 3, 5], 6)
    greedy = model.generate(src, max_new_tokens=7)
    assert_close(greedy, model.generate(src, max_new_tokens=7, use_cache=False))
    assert_close(greedy, model.generate(src, max_new_tokens=7, num_beams=1))
    beams = model.generate(src, max_new_tokens=7, num_beams=3)
    assert_close(beams, model.generate(src, max_new_tokens=7, num_beams=3, use_cache=False))
    assert greedy.shape[0] == 3 and greedy.shape[1] <= 7


def test_greedy_is_argmax_of_teacher_forcing():
    """With prefix-free graphs (causal, full cross) generate agrees with forward."""
    gen = torch.Generator().manual_seed(3)
    model = small_model()
    perturb(model, gen)
    src = padded_batch(gen, 11, [5, 2], 5)
    out = model.generate(src, max_new_tokens=6)
    for b in range(2):
        seq = torch.cat([torch.tensor([BOS]), out[b]])
        stop = (seq == EOS).nonzero()
        end = int(stop[0]) if len(stop) else len(seq) - 1
        logits = model(src[b : b + 1], seq[None, :end]).logits[0]
        assert torch.equal(logits.argmax(-1), seq[1 : end + 1])


def test_generate_rejects_non_causal_decoder_graph_and_bad_sizes():
    model = small_model(decoder_graph="full")
    src = torch.randint(3, 11, (1, 4))
    assert model(src, torch.randint(3, 13, (1, 3))).logits.shape == (1, 3, 13)
    with pytest.raises(ValueError, match="generate needs causal decoder graphs"):
        model.generate(src, max_new_tokens=3)
    model = small_model(max_len=8)
    with pytest.raises(ValueError, match="max_new_tokens \\+ 1 must be <= max_len=8"):
        model.generate(src, max_new_tokens=8)
    with pytest.raises(ValueError, match="max_new_tokens must be positive"):
        model.generate(src, max_new_tokens=0)


def test_errors():
    with pytest.raises(ValueError, match="cross_graph: pattern 'nope' is unknown"):
        small_model(cross_graph="nope")
    with pytest.raises(ValueError, match="decoder_graph as a list needs 2 entries"):
        small_model(decoder_graph=["causal"])
    with pytest.raises(TypeError, match="encoder_graph must be a pattern name"):
        small_model(encoder_graph=3)
    with pytest.raises(ValueError, match="eos_id"):
        small_model(eos_id=13)
    with pytest.raises(TypeError, match="config must be a GraphSeq2SeqConfig"):
        GraphSeq2Seq.from_config({"d_model": 8})
    model = small_model(cross_graph=TokenGraph.from_dense_mask(torch.ones(3, 4, dtype=torch.bool)))
    src, tgt = torch.randint(3, 11, (1, 5)), torch.randint(3, 13, (1, 3))
    with pytest.raises(ValueError, match="cross_graph of layer 0 must be N=3, M=5"):
        model(src, tgt)
    model = small_model(encoder_graph=lambda n: patterns.cross(n, n))
    with pytest.raises(ValueError, match="encoder_graph of layer 0 must be a self graph over 5"):
        model(src, tgt)
    model = small_model()
    with pytest.raises(ValueError, match="src holds ids outside \\[0, 11\\)"):
        model(torch.full((1, 3), 11), tgt)
    with pytest.raises(TypeError, match="tgt must be an integer tensor"):
        model(src, tgt.float())
    with pytest.raises(ValueError, match="tgt must have shape \\(B, N\\)"):
        model(src, tgt[0])
    with pytest.raises(ValueError, match="same batch size, got 1 and 2"):
        model(src, tgt.expand(2, -1))
    with pytest.raises(ValueError, match="no weights were returned"):
        model(src, tgt).sequence_layers()


def test_loss_ignores_padding():
    model = small_model()
    src = torch.randint(3, 11, (2, 4))
    tgt = torch.tensor([[BOS, 5, 6, EOS, PAD], [BOS, 7, EOS, PAD, PAD]])
    loss = model.loss(src, tgt)
    logits = model(src, tgt[:, :-1]).logits
    logp = logits.log_softmax(-1)
    picks = [logp[0, 0, 5], logp[0, 1, 6], logp[0, 2, EOS], logp[1, 0, 7], logp[1, 1, EOS]]
    assert_close(loss, -torch.stack(picks).mean())


def test_attend_equals_forward_and_rows_graph():
    attn = GraphAttention(8, 2).eval()
    x, src = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    g = patterns.get("cross_window", 3, n_src=5, window=2)
    expected, w = attn(x, g, context=src, need_weights=True)
    got, w2 = attn.attend(x, g, attn.project_kv(src), need_weights=True)
    assert_close(got, expected)
    assert_close(w2, w)
    with pytest.raises(ValueError, match="needs x with N tokens and kv of shape"):
        attn.attend(x, g, attn.project_kv(src[:, :4]))
    with pytest.raises(ValueError, match="source must have shape"):
        attn.project_kv(torch.randn(5, 7))
    causal = patterns.get("causal", 5)
    row = rows_graph(causal, 3, 4, 4)
    assert row.is_cross and row.edge_index.tolist() == [[0, 1, 2, 3], [0, 0, 0, 0]]
    prefix = rows_graph(causal, 0, 3, 3)
    assert not prefix.is_cross and prefix == patterns.get("causal", 3)


def test_layer_cache_reorder():
    cache = LayerKVCache()
    k = torch.arange(6.0).reshape(3, 1, 1, 2)
    cache.append(k, k + 1)
    cache.append(k, k)
    assert cache.self_kv[0].shape == (3, 2, 1, 2)
    cache.reorder(torch.tensor([2, 2]))
    assert cache.self_kv[0][:, 0, 0].tolist() == [[4.0, 5.0], [4.0, 5.0]]


def test_config_defaults():
    cfg = GraphSeq2SeqConfig(src_vocab_size=5, tgt_vocab_size=6, d_model=8, num_heads=2)
    assert (cfg.pad_id, cfg.bos_id, cfg.eos_id) == (PAD, BOS, EOS)
