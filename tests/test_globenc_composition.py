"""GlobEnc's two compositions: rows renormalized (the default) and its authors' raw product.

The authors' definition, written out from their code's definitions
(mohsenfayyaz/GlobEnc): per layer the matrix ``N_l[i, j]`` of the norms
``||LN2-share(LN1-share(sum_h A_hij f_h(x_j) + [i = j] x_i))||_2``, with no
row normalization, composed as ``J_0 = N_0``, ``J_l = N_l J_{l-1}``.
"""

import copy

import pytest
import torch
from dense_contrib import ln_share, rownorm, to_dense
from minilm_available import needs_minilm

from graphattn import GraphTransformer, patterns
from graphattn.flow import METHODS, attention_rollout, contributions
from graphattn.pretrained import load_minilm, minilm_dir


def authors_norms(hf, ids) -> torch.Tensor:
    """``N (L, N, N)``: each layer's GlobEnc norms from a transformers BertModel (eager)."""
    out = hf(ids, output_hidden_states=True, output_attentions=True)
    norms = []
    for l, layer in enumerate(hf.encoder.layer):
        x, A = out.hidden_states[l], out.attentions[l]  # (1, N, C), (1, H, N, N)
        n, c = x.shape[1:]
        h = A.shape[1]
        att = layer.attention
        v = att.self.value(x).view(1, n, h, c // h)  # (1, N, H, D)
        w_o = att.output.dense.weight.view(c, h, c // h)  # (C, H, D)
        fx = torch.einsum("bjhd,chd->bhjc", v, w_o)  # (1, H, N, C)
        terms = torch.einsum("bhij,bhjc->bijc", A, fx)  # (1, N, N, C)
        z = x + terms.sum(2) + att.output.dense.bias  # LN1's input
        terms = terms + torch.diag_embed(x.transpose(1, 2)).permute(0, 2, 3, 1)  # + x_i at (i, i)
        u = att.output.LayerNorm(z)
        w = u + layer.output.dense(layer.intermediate(u))  # LN2's input
        t = ln_share(layer.output.LayerNorm, ln_share(att.output.LayerNorm, terms, z), w)
        norms.append(t.norm(dim=-1)[0])
    return torch.stack(norms)  # (L, N, N)


def authors_rollout(norms: torch.Tensor) -> torch.Tensor:
    joint = norms[0]
    for layer in norms[1:]:
        joint = layer @ joint
    return joint


def test_raw_scores_are_the_shares_times_their_row_sums():
    torch.manual_seed(0)
    model = GraphTransformer(8, 2, 2, 16, dropout=0.0).double().eval()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    g = patterns.get("causal", 5)
    for method in METHODS:
        shares = contributions(model, x, method, g)
        raw = contributions(model, x, method, g, normalize=False)
        for (g1, c), (g2, r) in zip(shares, raw, strict=True):
            assert g1.num_edges == g2.num_edges
            total = torch.zeros(2, 5, dtype=r.dtype).index_add_(1, g2.dst, r)  # (B, N)
            torch.testing.assert_close(r / total[:, g2.dst], c)


def test_globenc_paper_composition_of_a_bert_equals_the_authors_definition():
    pytest.importorskip("transformers")
    from hf_tiny import tiny

    model, eager = tiny("bert").double(), tiny("bert", "eager").double()
    ids = torch.randint(3, 100, (1, 6))
    with torch.no_grad():
        norms = authors_norms(eager, ids)  # (L, N, N)
        layers = [(g, c[0]) for g, c in contributions(model, ids, "globenc", normalize=False)]
    for (g, c), n in zip(layers, norms, strict=True):
        torch.testing.assert_close(to_dense(g, c[None])[0], n)
    torch.testing.assert_close(
        attention_rollout(layers, residual=0.0, normalize=False), authors_rollout(norms)
    )


@needs_minilm
def test_globenc_both_compositions_of_minilm_in_float32_are_the_authors_within_1e_4():
    tf = pytest.importorskip("transformers")
    hf = tf.BertModel.from_pretrained(str(minilm_dir()), attn_implementation="eager")
    model = load_minilm().eval()
    ids, _ = model.tokenize("Why, how now, Dromio! where run'st thou so fast?")
    with torch.no_grad():
        norms = authors_norms(copy.deepcopy(hf).double().eval(), ids)  # (L, N, N) float64
        raw = [(g, c[0]) for g, c in contributions(model, ids, "globenc", normalize=False)]
        shares = [(g, c[0]) for g, c in contributions(model, ids, "globenc")]
    paper = attention_rollout(raw, residual=0.0, normalize=False).double()
    torch.testing.assert_close(paper, authors_rollout(norms), rtol=1e-4, atol=0.0)
    default = attention_rollout(shares, residual=0.0).double()
    torch.testing.assert_close(default, authors_rollout(rownorm(norms)), rtol=0.0, atol=1e-4)
    cls_paper, cls_default = paper[0] / paper[0].sum(), default[0]
    assert (cls_paper - cls_default).abs().max() > 1e-2  # the two compositions differ


def test_normalize_must_be_a_bool():
    model = GraphTransformer(8, 2, 1, 16, dropout=0.0).eval()
    x = torch.randn(1, 3, 8)
    with pytest.raises(TypeError, match="normalize must be a bool, got int"):
        contributions(model, x, "globenc", patterns.get("full", 3), normalize=1)
    g, c = contributions(model, x, "globenc", patterns.get("full", 3))[0]
    with pytest.raises(TypeError, match="normalize must be a bool, got str"):
        attention_rollout([(g, c[0])], normalize="no")
