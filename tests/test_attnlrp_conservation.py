"""AttnLRP conservation with real scores and non-zero biases, layer by layer.

With the rules, every step passes relevance on exactly (Input x Gradient of a
linear map, of the identity rule, of a product with the uniform rule) except
two: a bias ``b`` keeps ``b . dS/db``, and the softmax turns the weights' half
of the messages' relevance, ``1/2 sum_e R_e``, into what reaches the queries
and keys, ``R_qk = sum q . dS/dq + k . dS/dk`` (``= 1/2 sum_e (s_e - b_e)
dS/ds_e`` with ``b_e`` the score's bias). So in every layer ``l``

    sum stream[l + 1] - sum stream[l] = sum_{biases b of l} b . dS/db + 1/2 sum_e R_e - R_qk

(docs/flow.md). ``stream`` and ``R_e`` come from ``contributions(..., "attnlrp")``;
the bias terms and ``R_qk`` from a second backward pass under the same rules,
with the queries and keys caught where the rules divide their gradients. In
float64, so that only lxt's epsilon (1e-10 in the identity rule) is left.
"""

import re

import pytest
import torch
from lrp_checks import hand_rules, hf_qk, own_qk, random_biases, sharpen_scores

from graphattn import GraphLM, GraphTransformer, patterns
from graphattn.flow import contributions

TOL = {"atol": 1e-7, "rtol": 1e-7}


def _layer_of(name: str, last: int) -> int | None:
    """The layer a bias belongs to: its index in the name; a final norm (in the last
    hidden state of GPT-2) the last layer's; the embeddings' and the heads' none."""
    found = re.search(r"\.(\d+)\.", f".{name}")
    if found:
        return int(found.group(1))
    return last if re.search(r"(^|\.)ln_f\.", name) else None


def _terms(model, score, seen, layers):
    """Per layer (summed over the batch): the biases' ``b . dS/db`` and ``R_qk``."""
    named = [(n, p) for n, p in model.named_parameters() if n.endswith("bias")]
    qk = [t for pair in seen for t in pair]
    grads = torch.autograd.grad(score, [p for _, p in named] + qk, allow_unused=True)
    bias = torch.zeros(layers, dtype=torch.float64)
    for (name, p), g in zip(named, grads, strict=False):
        layer = _layer_of(name, layers - 1)
        if layer is not None and g is not None:
            bias[layer] += (p * g).sum()
    r_qk = [(t * g).sum() for t, g in zip(qk, grads[len(named) :], strict=True)]
    return bias, torch.stack(r_qk).view(layers, 2).sum(1)


def _assert_conserved(rel, bias, r_qk, real=None, biased=True):
    stream = rel.stream if real is None else rel.stream * real[:, None]
    gain = (stream[:, 1:] - stream[:, :-1]).sum((0, 2))  # (L,)
    half = 0.5 * torch.stack([r.sum() for r in rel.edges])  # (L,)
    torch.testing.assert_close(gain, bias + half - r_qk, **TOL)
    assert r_qk.abs().max() > 1e-5  # the softmax passes relevance on, 100 x TOL
    assert not biased or bias.abs().min() > 1e-2  # and the biases keep some


def _lm():
    torch.manual_seed(0)
    lm = GraphLM(30, 16, 4, 2, pattern=("sliding_window", {"window": 3}), max_len=12)
    return lm.double().eval()


def test_graphlm_conserves_up_to_biases_and_the_softmax(monkeypatch):
    lm, ids = _lm(), torch.randint(30, (2, 9))
    random_biases(lm)
    sharpen_scores(lm, own_qk, 3.0)
    rel = contributions(lm, ids, "attnlrp")
    seen = []
    hand_rules(monkeypatch, seen)
    logits = lm(ids).logits  # (B, N, V)
    score = logits.gather(-1, logits.argmax(-1, keepdim=True)).sum()
    _assert_conserved(rel, *_terms(lm, score, seen, len(rel.edges)))


@pytest.mark.parametrize("norm_first", [False, True])
def test_graph_transformer_conserves_up_to_biases_and_the_softmax(monkeypatch, norm_first):
    torch.manual_seed(1)
    model = GraphTransformer(8, 2, 2, 16, activation="gelu", norm_first=norm_first,
                             dropout=0.0, final_norm=norm_first)  # fmt: skip
    model = model.double().eval()
    random_biases(model)
    sharpen_scores(model, own_qk, 3.0)
    g, x = patterns.get("full", 5), torch.randn(2, 5, 8, dtype=torch.float64)
    rel = contributions(model, x, "attnlrp", graph=g)
    seen = []
    hand_rules(monkeypatch, seen)
    y = model(x, g).last_hidden_state  # (B, N, C)
    score = (y * (y / y.norm(dim=-1, keepdim=True)).detach()).sum()
    _assert_conserved(rel, *_terms(model, score, seen, len(rel.edges)))


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama", "qwen2"])
def test_hf_families_conserve_up_to_biases_and_the_softmax(monkeypatch, family):
    pytest.importorskip("transformers")
    from hf_tiny import inputs, tiny

    import graphattn.hf.attention as hf_attention
    from graphattn.flow.lrp import explained_score
    from graphattn.hf.lrp import lrp_modules

    model = tiny(family).double()
    random_biases(model)  # Llama has none
    sharpen_scores(model, hf_qk, 30.0)
    batch = inputs(family, n=7, pad=2)
    rel = contributions(model, batch, "attnlrp")
    seen = []
    divide = hf_attention.attnlrp_inputs

    def caught(q, k, v):
        seen.append((q, k))
        return divide(q, k, v)

    monkeypatch.setattr(hf_attention, "attnlrp_inputs", caught)
    real = batch["attention_mask"].bool()
    with lrp_modules(model):
        out = model(**batch)
        main = getattr(out, "logits", None)
        logits = main is not None
        score = explained_score(main if logits else out.last_hidden_state, logits, real).sum()
    terms = _terms(model, score, seen, len(rel.edges))
    _assert_conserved(rel, *terms, real, biased=family != "llama")
