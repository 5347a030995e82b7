"""Contribution methods against dense re-implementations written out here.

Every reference below recomputes the layers from the models' parameters with
dense ``(B, N, N)`` attention matrices and applies each paper's formula
directly, independently of :mod:`graphattn.flow.decompose`.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from dense_contrib import dense_attention, ln_share, rownorm, to_dense

from graphattn import GraphLM, GraphTransformer, TokenGraph, patterns
from graphattn.flow import (
    METHODS,
    AttentionBlock,
    attention_rollout,
    block_contributions,
    contributions,
    cross_rollout,
    run_model,
)
from graphattn.pretrained import tiny_bert

ACT = {"relu": F.relu, "gelu": F.gelu}


# ----------------------------------------------------------------- dense reference
def dense_layer(layer, x, mask, zero=None):
    """One GraphTransformerLayer, densely: attention A (B,H,N,N), per-pair terms T (B,N,N,C)."""
    s = layer.norm1(x) if layer.norm_first else x
    A, T = dense_attention(layer.self_attn, s, s, mask, zero)
    z = x + T.sum(2) + layer.self_attn.out_proj.bias
    return A, T, z


def dense_parts(layer, z):
    """u = norm1(z) (post-LN), w = u + ffn(u), y = norm2(w) (post-LN)."""
    u = z if layer.norm_first else layer.norm1(z)
    f_in = layer.norm2(u) if layer.norm_first else u
    ffn = ACT[layer.activation](f_in @ layer.linear1.weight.T + layer.linear1.bias)
    w = u + ffn @ layer.linear2.weight.T + layer.linear2.bias
    y = w if layer.norm_first else layer.norm2(w)
    return u, w, y


def dense_alti(layer, x, mask):
    A, T, z = dense_layer(layer, x, mask)
    terms = T + torch.diag_embed(x.transpose(1, 2)).permute(0, 2, 3, 1)  # + x_i on (i, i)
    y = z
    if not layer.norm_first:
        terms, y = ln_share(layer.norm1, terms, z), layer.norm1(z)
    y = y[:, :, None]  # (B, N, 1, C)
    c = (y.abs().sum(-1) - (y - terms).abs().sum(-1)).clamp(min=0)
    return rownorm(c)


def dense_globenc(layer, x, mask):
    A, T, z = dense_layer(layer, x, mask)
    terms = T + torch.diag_embed(x.transpose(1, 2)).permute(0, 2, 3, 1)
    if not layer.norm_first:
        u, w, _ = dense_parts(layer, z)
        terms = ln_share(layer.norm2, ln_share(layer.norm1, terms, z), w)
    return rownorm(terms.norm(dim=-1))


def dense_value_zeroing(layer, x, mask):
    _, _, z = dense_layer(layer, x, mask)
    y = dense_parts(layer, z)[2]
    N = x.shape[1]
    c = torch.zeros(x.shape[0], N, N, dtype=x.dtype)
    for j in range(N):
        y_off = dense_parts(layer, dense_layer(layer, x, mask, zero=j)[2])[2]
        c[:, :, j] = 1 - F.cosine_similarity(y_off, y, dim=-1)
    return rownorm(c.clamp(min=0) * mask)


# ----------------------------------------------------------------- fixtures
def encoder(norm_first):
    torch.manual_seed(0)
    return GraphTransformer(
        8, 2, 2, 16, dropout=0.0, activation="gelu", norm_first=norm_first
    ).double().eval()


def random_graph(n, p=0.45, seed=1):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, n, generator=gen) < p
    mask.fill_diagonal_(False)  # no self loops: the residual needs a self entry of its own
    mask[2] = False  # a target with no incoming edge
    return TokenGraph.from_dense_mask(mask)


GRAPHS = {"full": lambda n: patterns.get("full", n), "sparse": random_graph}
DENSE = {"alti": dense_alti, "globenc": dense_globenc, "value_zeroing": dense_value_zeroing}


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-LN", "pre-LN"])
@pytest.mark.parametrize("graph_kind", list(GRAPHS))
@pytest.mark.parametrize("method", list(DENSE))
def test_block_methods_equal_dense_formulas(method, graph_kind, norm_first):
    model = encoder(norm_first)
    n = 6
    graph = GRAPHS[graph_kind](n)
    x = torch.randn(2, n, 8, dtype=torch.float64)
    layers = contributions(model, x, method, graph)
    mask = graph.to_dense_mask()
    xs = x
    for layer, (g, c) in zip(model.layers, layers, strict=True):
        expected = DENSE[method](layer, xs, mask)
        got = to_dense(g, c)
        torch.testing.assert_close(got, expected.nan_to_num(0.0), atol=1e-10, rtol=1e-8)
        xs = layer(xs, graph)[0]


@pytest.mark.parametrize("method", METHODS)
def test_sparse_graph_shares_lie_on_edges_and_sum_to_one(method):
    model = encoder(False)
    graph = random_graph(7, seed=3)
    x = torch.randn(3, 7, 8, dtype=torch.float64)
    for g, c in contributions(model, x, method, graph):
        residual_methods = method in ("alti", "globenc")
        assert g == (graph.add_self_loops() if residual_methods else graph)
        assert c.shape == (3, g.num_edges) and bool((c >= 0).all())
        sums = torch.zeros(3, 7, dtype=c.dtype).index_add_(1, g.dst, c)
        has_edges = g.in_degree() > 0
        torch.testing.assert_close(sums[:, has_edges], torch.ones_like(sums[:, has_edges]))
        assert bool((sums[:, ~has_edges] == 0).all())


def test_blocks_reproduce_the_models_outputs():
    for norm_first in (False, True):
        model = encoder(norm_first)
        x = torch.randn(2, 5, 8, dtype=torch.float64)
        graph = random_graph(5)
        run = run_model(model, x, graph)
        torch.testing.assert_close(run.blocks[-1].output(), model(x, graph).last_hidden_state)
    lm = GraphLM(30, 8, 2, 2, max_len=8).double()
    ids = torch.randint(30, (2, 6))
    run = run_model(lm, ids)
    logits = lm.lm_head(lm.norm(run.blocks[-1].output()))
    torch.testing.assert_close(logits, lm(ids).logits)


def dense_grad_attention_lm(lm, ids):
    """Chefer et al.: mean_h (dscore/dA * A)^+ with A of every layer computed densely."""
    n = ids.shape[1]
    mask = torch.ones(n, n, dtype=torch.bool).tril()
    x = lm.tok_emb(ids) + lm.pos_emb(torch.arange(n))
    attns = []
    for layer in lm.layers:
        A, T, z = dense_layer(layer, x, mask)
        attns.append(A)
        x = dense_parts(layer, z)[2]
    score = lm.lm_head(lm.norm(x)).log_softmax(-1).amax(-1).sum()
    grads = torch.autograd.grad(score, attns)
    out = []
    for g, a in zip(grads, attns, strict=True):
        c = (g * a).clamp(min=0).mean(1)  # (B, N, N)
        uniform = mask / mask.sum(-1, keepdim=True)  # documented: all-zero rows share equally
        out.append(torch.where(c.sum(-1, keepdim=True) > 0, rownorm(c), uniform))
    return out


def test_grad_attention_equals_dense_autograd_on_a_pre_ln_lm():
    torch.manual_seed(2)
    lm = GraphLM(30, 8, 2, 2, max_len=8, activation="gelu").double()
    ids = torch.randint(30, (2, 6))
    expected = dense_grad_attention_lm(lm, ids)
    for (g, c), e in zip(contributions(lm, ids, "grad_attention"), expected, strict=True):
        torch.testing.assert_close(to_dense(g, c), e * g.to_dense_mask(), atol=1e-10, rtol=1e-8)


def dense_grad_attention_encoder(model, x, graph):
    """Chefer et al. on a GraphTransformer: its score is half the mean output's squared norm."""
    mask = graph.to_dense_mask()  # (N, N)
    attns = []
    for layer in model.layers:
        A, _, z = dense_layer(layer, x, mask)
        attns.append(A)
        x = dense_parts(layer, z)[2]
    y = x if model.norm is None else model.norm(x)  # (B, N, C)
    grads = torch.autograd.grad(0.5 * y.mean(1).pow(2).sum(), attns)
    out = []
    for g, a in zip(grads, attns, strict=True):
        c = (g * a).clamp(min=0).mean(1)  # (B, N, N)
        uniform = mask / mask.sum(-1, keepdim=True).clamp(min=1)
        out.append(torch.where(c.sum(-1, keepdim=True) > 0, rownorm(c), uniform))
    return out


@pytest.mark.parametrize("norm_first", [False, True])
def test_grad_attention_of_an_encoder_explains_its_mean_output(norm_first):
    # post-LN layers, or pre-LN ones and a final norm, fix each output's length: its gradient is
    # eps's; the mean over the tokens is explained instead
    torch.manual_seed(0)
    model = GraphTransformer(
        8, 2, 2, 16, dropout=0.0, activation="gelu", norm_first=norm_first, final_norm=norm_first
    ).double().eval()
    graph = random_graph(6)
    x = torch.randn(2, 6, 8, dtype=torch.float64)
    expected = dense_grad_attention_encoder(model, x, graph)
    for (g, c), e in zip(contributions(model, x, "grad_attention", graph), expected, strict=True):
        torch.testing.assert_close(to_dense(g, c), e * g.to_dense_mask(), atol=1e-10, rtol=1e-8)


def test_attention_is_the_head_mean_of_the_weights():
    model = encoder(True)
    graph = random_graph(6)
    x = torch.randn(1, 6, 8, dtype=torch.float64)
    out = model(x, graph, need_weights=True)
    for (g, c), (_, w) in zip(contributions(model, x, "attention", graph), out.layers, strict=True):
        assert g is graph
        torch.testing.assert_close(c, w.mean(-1))


def test_cross_graph_block_drops_the_residual_term():
    """A hand-made cross block: ALTI and GlobEnc over the encoder tokens only."""
    torch.manual_seed(4)
    N, M, C, H = 3, 4, 6, 2
    mask = torch.rand(N, M) < 0.7
    mask[:, 0] = True
    graph = TokenGraph.from_dense_mask(mask)
    scores = torch.randn(1, graph.num_edges, H, dtype=torch.float64)
    A = torch.zeros(1, H, N, M, dtype=torch.float64)
    A[0, :, graph.dst, graph.src] = scores[0].T
    A = A.masked_fill(~mask, -math.inf).softmax(-1)
    weights = A[:, :, graph.dst, graph.src].permute(0, 2, 1)  # (1, E, H)
    values = torch.randn(1, M, H, C, dtype=torch.float64)
    norm1 = torch.nn.LayerNorm(C).double()
    norm2 = torch.nn.LayerNorm(C).double()
    with torch.no_grad():
        norm1.weight.uniform_(0.5, 1.5)
        norm2.weight.uniform_(0.5, 1.5)
    lin = torch.nn.Linear(C, C).double()
    residual = torch.randn(1, N, C, dtype=torch.float64)
    block = AttentionBlock(graph, weights, values, residual, None, norm1, lin, norm2)
    T = torch.einsum("bhij,bjhc->bijc", A, values)  # (1, N, M, C)
    z = residual + T.sum(2)
    y = norm1(z)[:, :, None]
    terms = ln_share(norm1, T, z)
    alti = rownorm((y.abs().sum(-1) - (y - terms).abs().sum(-1)).clamp(min=0)) * mask
    u = norm1(z)
    glob = rownorm(ln_share(norm2, terms, u + lin(u)).norm(dim=-1)) * mask
    with torch.no_grad():
        for method, expected in (("alti", alti), ("globenc", glob)):
            g, c = block_contributions(block, method)
            assert g is graph
            torch.testing.assert_close(to_dense(g, c), expected)
        enc = patterns.get("full", M)
        dec = patterns.get("causal", N)
        _, c = block_contributions(block, "alti")
        rel = cross_rollout([(enc, torch.full((M * M,), 1.0 / M))], [(dec, torch.ones(6) / 2)],
                            [(graph, c[0])])
        assert rel.cross.shape == (N, M)


def test_bert_contributions_follow_its_forward():
    model = tiny_bert().eval()
    ids, _ = model.tokenize(["the bank", "a cat"])
    run = model.contribution_run(ids)
    torch.testing.assert_close(run.blocks[-1].output(), model(ids).last_hidden_state)
    causal = lambda n: patterns.get("causal", n)  # noqa: E731
    for method in METHODS:
        layers = contributions(model, ids, method, causal)
        assert len(layers) == model.config.num_hidden_layers
        g, c = layers[-1]
        sums = torch.zeros(2, g.num_nodes).index_add_(1, g.dst, c)
        torch.testing.assert_close(sums, torch.ones_like(sums))
    assert attention_rollout([(g, c[0]) for g, c in layers], residual=0.0).shape == (4, 4)


def test_bert_dense_alti_and_value_zeroing_on_its_own_graph():
    """Post-LN BERT layers against the dense formulas, written out from the BERT parameters."""
    model = tiny_bert().double().eval()
    ids, _ = model.tokenize("the river bank")
    x = model.embeddings(ids)
    layer = model.layers[0]
    n = ids.shape[1]
    B, N, C = x.shape
    H, D = layer.num_heads, layer.head_dim
    q = layer.query(x).view(B, N, H, D)
    k = layer.key(x).view(B, N, H, D)
    v = layer.value(x).view(B, N, H, D)
    A = (torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(D)).softmax(-1)
    vo = torch.stack([v[:, :, h] @ layer.attn_out.weight[:, h * D : (h + 1) * D].T
                      for h in range(H)], 1)
    T = torch.einsum("bhij,bhjc->bijc", A, vo)
    z = x + T.sum(2) + layer.attn_out.bias
    terms = ln_share(layer.attn_norm, T + torch.diag_embed(x.transpose(1, 2)).permute(0, 2, 3, 1),
                     z)
    y = layer.attn_norm(z)[:, :, None]
    expected = rownorm((y.abs().sum(-1) - (y - terms).abs().sum(-1)).clamp(min=0))
    g, c = contributions(model, ids, "alti")[0]
    assert g.num_edges == n * n
    torch.testing.assert_close(to_dense(g, c), expected)


def test_errors_name_the_argument():
    model = encoder(False)
    x = torch.randn(1, 4, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match="method must be one of"):
        contributions(model, x, "rollout", patterns.get("full", 4))
    with pytest.raises(TypeError, match="model must be"):
        contributions(torch.nn.Linear(2, 2), x, "alti")
    with pytest.raises(ValueError, match="graph is required"):
        contributions(model, x, "alti")
    with pytest.raises(ValueError, match="one length"):
        bert = tiny_bert()
        contributions(bert, bert.tokenize(["the bank", "a"])[0], "alti")
