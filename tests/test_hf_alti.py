"""ALTI and GlobEnc of transformers models on graphattn, against the eager models written out.

Every reference here is computed from the eager model's own weights and
outputs (dense attention from ``output_attentions=True``, values written out
from the weight matrices, the formulas of docs/flow.md), never from
graphattn.flow. Norm weights and every bias are randomized so that a norm
taken for another or a bias left out shows.
"""

import copy

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers as tf  # noqa: E402
from hf_tiny import FAMILIES, VOCAB, assert_each_as_alone, padded, tiny  # noqa: E402

from graphattn import TokenGraph, patterns  # noqa: E402
from graphattn.flow import contributions  # noqa: E402
from graphattn.hf.blocks import hf_blocks  # noqa: E402

LLAMA_LIKE = ("llama", "mistral", "qwen2")
TOL = {"atol": 1e-6, "rtol": 1e-5}  # eager attention takes its softmax in float32


def _config(family):
    if family == "roberta":
        config = tf.RobertaConfig(
            num_hidden_layers=2, hidden_size=32, intermediate_size=64,
            num_attention_heads=4, vocab_size=VOCAB, pad_token_id=1,
        )  # fmt: skip
        return tf.RobertaModel, config
    cls, config = FAMILIES[family]()
    if family == "llama":
        config.attention_bias = True  # biases on v_proj and o_proj
    return cls, config


def _randomize(model, seed):
    """Norm weights around 1 and every bias around 0, drawn from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            norm = "norm" in name.lower() or "ln_" in name
            if name.endswith("bias") or (norm and name.endswith("weight")):
                noise = 0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype)
                p.copy_((1.0 if not name.endswith("bias") else 0.0) + noise)


def pair(family, seed=0):
    """The family's tiny model on graphattn and the same weights on eager, float64."""
    import graphattn.hf  # noqa: F401

    cls, config = _config(family)
    torch.manual_seed(seed)
    model = cls._from_config(copy.deepcopy(config), attn_implementation="graphattn")
    model = model.double().eval()
    _randomize(model, seed)
    eager = cls._from_config(copy.deepcopy(config), attn_implementation="eager")
    eager = eager.double().eval()
    eager.load_state_dict(model.state_dict())
    return model, eager


def _layers(model, family):
    base = model.base_model
    if family in ("bert", "roberta"):
        return base.encoder.layer
    return base.h if family == "gpt2" else base.layers


def _final_norm(model, family):
    """The norm a model applies to its last hidden state (identity for BERT)."""
    base = model.base_model
    if family in ("bert", "roberta"):
        return lambda y: y
    return base.ln_f if family == "gpt2" else base.norm


def _ids(b=2, n=6, seed=3):
    return torch.randint(3, VOCAB, (b, n), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- the dense reference


def _ln(norm, x):
    return F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)


def _rms(norm, x):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon) * norm.weight


def _per_head(v, w_out, heads):
    """``v (B, N, H_kv, D)`` through ``w_out (C, H * D)``: ``(B, H, N, C)``; head h reads h // g."""
    d = v.shape[-1]
    group = heads // v.shape[2]
    return torch.stack(
        [v[:, :, h // group] @ w_out[:, h * d : (h + 1) * d].T for h in range(heads)], 1
    )


def dense_layer(layer, family, x, heads):
    """Values ``(B, H, N, C)``, output bias and the rest of the layer, written out."""
    c = x.shape[-1]
    if family in ("bert", "roberta"):
        sa, so = layer.attention.self, layer.attention.output
        v = (x @ sa.value.weight.T + sa.value.bias).unflatten(-1, (heads, -1))
        inter, out = layer.intermediate.dense, layer.output.dense

        def ffn(u):
            return F.gelu(u @ inter.weight.T + inter.bias) @ out.weight.T + out.bias

        vals = _per_head(v, so.dense.weight, heads)
        return vals, so.dense.bias, so.LayerNorm, ffn, layer.output.LayerNorm
    if family == "gpt2":
        attn = layer.attn
        n = _ln(layer.ln_1, x)
        v = (n @ attn.c_attn.weight[:, 2 * c :] + attn.c_attn.bias[2 * c :]).unflatten(
            -1, (heads, -1)
        )
        return _per_head(v, attn.c_proj.weight.T, heads), attn.c_proj.bias, None, None, None
    attn = layer.self_attn
    n = _rms(layer.input_layernorm, x)
    v = n @ attn.v_proj.weight.T
    if attn.v_proj.bias is not None:
        v = v + attn.v_proj.bias
    v = v.unflatten(-1, (-1, attn.head_dim))  # (B, N, H_kv, D)
    return _per_head(v, attn.o_proj.weight, heads), attn.o_proj.bias, None, None, None


def _share(norm, terms, total):
    """LayerNorm spread over ``terms (B, N, M, C)`` of ``total (B, N, C)``."""
    sigma = torch.sqrt(total.var(-1, unbiased=False) + norm.eps)[..., None, None]
    return norm.weight * (terms - terms.mean(-1, keepdim=True)) / sigma


def dense_alti_globenc(layer, family, x, attn, heads):
    """Dense ALTI and GlobEnc ``(B, N, N)`` (rows normalized) of one layer."""
    vals, bias, norm1, ffn, norm2 = dense_layer(layer, family, x, heads)
    terms = torch.einsum("bhij,bhjc->bijc", attn, vals)  # (B, N, M, C)
    z = x + terms.sum(2) + (0 if bias is None else bias)  # (B, N, C)
    eye = torch.eye(x.shape[1], dtype=x.dtype)
    terms = terms + eye[None, :, :, None] * x[:, :, None, :]  # residual on the self entry
    if norm1 is None:  # pre-LN: y = z, GlobEnc = ||terms||_2
        alti = (z.abs().sum(-1)[..., None] - (z[:, :, None] - terms).abs().sum(-1)).clamp(min=0)
        glob = terms.norm(dim=-1)
    else:
        y, t1 = _ln(norm1, z), _share(norm1, terms, z)
        alti = (y.abs().sum(-1)[..., None] - (y[:, :, None] - t1).abs().sum(-1)).clamp(min=0)
        glob = _share(norm2, t1, y + ffn(y)).norm(dim=-1)
    mask = attn.sum(1) > 0  # (B, N, M) the attended pairs
    mask = mask | eye.bool()
    return _rownorm(alti * mask, mask), _rownorm(glob * mask, mask)


def _rownorm(c, mask):
    """Rows divided by their sums; an all-zero row gets equal shares over ``mask`` (the docs)."""
    total = c.sum(-1, keepdim=True)
    uniform = mask / mask.sum(-1, keepdim=True)
    return torch.where(total > 0, c / torch.where(total > 0, total, 1.0), uniform)


def on_edges(g, dense):
    return dense[:, g.dst, g.src]  # (B, E)


def _check_layers(got, expected, n):
    assert len(got) == len(expected)
    for (g, c), e in zip(got, expected, strict=True):
        torch.testing.assert_close(c, on_edges(g, e), **TOL)
        dense = torch.zeros(c.shape[0], n, n, dtype=c.dtype)
        dense[:, g.dst, g.src] = c
        torch.testing.assert_close(e * (dense == 0), torch.zeros_like(e), **TOL)  # nothing lost
        sums = torch.zeros(c.shape[0], n, dtype=c.dtype).index_add_(1, g.dst, c)
        torch.testing.assert_close(sums, torch.ones_like(sums))  # shares sum to 1


# ---------------------------------------------------------------- the tests

ALL = ("bert", "roberta", "gpt2", "llama", "mistral", "qwen2")


@pytest.mark.parametrize("final_norm", [False, True])  # True: the last block ends on ln_f / norm
@pytest.mark.parametrize("family", ALL)
def test_blocks_reproduce_the_eager_model(family, final_norm):
    model, eager = pair(family)
    ids = _ids()
    with torch.no_grad():
        hidden = eager(input_ids=ids, output_hidden_states=True).hidden_states
        blocks = list(hf_blocks(model, ids, final_norm=final_norm))
    assert len(blocks) == len(hidden) - 1
    for l, block in enumerate(blocks):
        torch.testing.assert_close(block.residual, hidden[l], **TOL)
        y = block.output()
        if l == len(blocks) - 1 and not final_norm:
            y = _final_norm(eager, family)(y)
        torch.testing.assert_close(y, hidden[l + 1], **TOL)


@pytest.mark.parametrize("family", ALL)
def test_alti_and_globenc_equal_the_dense_formulas(family):
    model, eager = pair(family, seed=1)
    ids = _ids(seed=4)
    with torch.no_grad():
        out = eager(input_ids=ids, output_hidden_states=True, output_attentions=True)
        heads = out.attentions[0].shape[1]
        refs = [
            dense_alti_globenc(layer, family, out.hidden_states[l], out.attentions[l], heads)
            for l, layer in enumerate(_layers(eager, family))
        ]
    n = ids.shape[1]
    _check_layers(contributions(model, ids, "alti"), [r[0] for r in refs], n)
    _check_layers(contributions(model, ids, "globenc"), [r[1] for r in refs], n)


def _gpt2_window_attention(eager, x, mask):
    """GPT-2's attention weights ``(B, H, N, N)`` restricted to ``mask (N, N)``, written out."""
    outs = []
    for layer in eager.transformer.h:
        attn = layer.attn
        c = x.shape[-1]
        qkv = _ln(layer.ln_1, x) @ attn.c_attn.weight + attn.c_attn.bias
        q, k = (t.unflatten(-1, (attn.num_heads, -1)) for t in (qkv[..., :c], qkv[..., c : 2 * c]))
        scores = torch.einsum("bihd,bjhd->bhij", q, k) * attn.head_dim**-0.5
        a = scores.masked_fill(~mask, float("-inf")).softmax(-1).nan_to_num(0.0)  # (B, H, N, N)
        outs.append(a)
        x = _gpt2_layer(layer, x, a)
    return outs


def _gpt2_layer(layer, x, a):
    heads = a.shape[1]
    vals, bias, *_ = dense_layer(layer, "gpt2", x, heads)
    z = x + torch.einsum("bhij,bhjc->bic", a, vals) + bias
    return z + layer.mlp(layer.ln_2(z))


def _two_back(n):
    """i reads i - 1 and i - 2 but not itself; token 0 reads nothing."""
    dst = torch.tensor([i for i in range(n) for j in (i - 2, i - 1) if j >= 0])
    src = torch.tensor([j for i in range(n) for j in (i - 2, i - 1) if j >= 0])
    return TokenGraph(torch.stack([src, dst]), n)


@pytest.mark.parametrize("make", [lambda n: patterns.sliding_window(n, 2), _two_back])
def test_sparse_graphs_against_the_dense_formulas(make):
    model, eager = pair("gpt2", seed=2)
    ids = _ids(n=7, seed=5)
    n = ids.shape[1]
    g = make(n)  # a window of 2 (i reads i - 1 and i), or no self edges
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[g.dst, g.src] = True
    with torch.no_grad():
        hidden = eager(input_ids=ids, output_hidden_states=True).hidden_states
        attns = _gpt2_window_attention(eager, hidden[0], mask)
        xs, refs = [hidden[0]], []
        for layer, a in zip(eager.transformer.h, attns, strict=True):
            refs.append(dense_alti_globenc(layer, "gpt2", xs[-1], a, a.shape[1]))
            xs.append(_gpt2_layer(layer, xs[-1], a))
    alti = contributions(model, ids, "alti", graph=g)
    with_self = g.add_self_loops()
    assert all(torch.equal(lg.edge_index, with_self.edge_index) for lg, _ in alti)
    _check_layers(alti, [r[0] for r in refs], n)
    _check_layers(contributions(model, ids, "globenc", graph=g), [r[1] for r in refs], n)


def test_unsupported_families_are_refused_naming_the_supported_ones():
    model = tiny("gemma2")
    ids = torch.randint(3, 100, (1, 4))
    for method in ("alti", "globenc"):
        with pytest.raises(ValueError, match="bert.*gpt2.*llama.*'gemma2'"):
            contributions(model, ids, method)


@pytest.mark.parametrize(
    "family, side", [("bert", "right"), ("roberta", "right"), ("gpt2", "left"), ("llama", "left")]
)
def test_a_padded_batch_gives_each_example_its_alti_and_globenc_alone(family, side):
    model, _ = pair(family)
    batch = padded(family, side)
    for method in ("alti", "globenc"):
        assert_each_as_alone(model, batch, method, atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_float32_models_give_the_float64_shares(family):
    model, _ = pair(family)
    ids = _ids()
    for method in ("alti", "globenc"):
        wide = contributions(model, ids, method)
        narrow = contributions(copy.deepcopy(model).float(), ids, method)
        for (g, c), (g32, c32) in zip(wide, narrow, strict=True):
            assert torch.equal(g.edge_index, g32.edge_index) and c32.dtype == torch.float32
            torch.testing.assert_close(c32.double(), c, atol=1e-4, rtol=1e-3)


def test_training_mode_half_precision_and_an_unreproduced_layer_are_refused():
    model, _ = pair("llama")
    ids = _ids(b=1, n=4)
    with pytest.raises(ValueError, match="training mode"):
        contributions(model.train(), ids, "alti")
    model.eval()
    with pytest.raises(TypeError, match="final_norm must be a bool"):
        hf_blocks(model, ids, final_norm=1)
    with pytest.raises(ValueError, match="bfloat16; call model.float"):
        contributions(copy.deepcopy(model).bfloat16(), ids, "alti")
    handle = model.model.layers[1].register_forward_hook(lambda m, a, out: out + 1.0)
    try:
        with pytest.raises(ValueError, match="layer 1 .* do not reproduce"):
            contributions(model, ids, "globenc")
    finally:
        handle.remove()
