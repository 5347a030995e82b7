"""AttnLRP of graphattn's own models and of Hugging Face models: references and conservation.

The own-model reference runs the models' ordinary forward with the rules put
in by hand (tests/lrp_checks.py).
"""

import pytest
import torch
from lrp_checks import hand_rules, hf_qk, own_qk, zero_biases_and_scores

from graphattn import GraphLM, GraphTransformer, patterns
from graphattn.flow import attention_rollout, block_contributions, contributions, run_model


def _lm():
    torch.manual_seed(0)
    lm = GraphLM(30, 16, 4, 2, pattern=("sliding_window", {"window": 3}), max_len=12)
    return lm.eval()  # pre-LN, GELU


def _encoder(norm_first):
    torch.manual_seed(1)
    model = GraphTransformer(8, 2, 2, 16, activation="gelu", norm_first=norm_first,
                             dropout=0.0, final_norm=norm_first)  # fmt: skip
    return model.eval()


def test_graphlm_token_relevance_equals_the_forward_with_the_rules(monkeypatch):
    lm, ids = _lm(), torch.randint(30, (2, 9))
    got = contributions(lm, ids, "attnlrp")
    hand_rules(monkeypatch)
    store = []
    hook = lm.tok_emb.register_forward_hook(
        lambda m, a, out: store.append(out.detach().requires_grad_()) or store[-1]
    )
    logits = lm(ids).logits  # (B, N, V)
    hook.remove()
    score = logits.gather(-1, logits.argmax(-1, keepdim=True)).sum()
    want = (store[0] * torch.autograd.grad(score, store[0])[0]).sum(-1)  # (B, N)
    torch.testing.assert_close(got.tokens, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.score.sum(), score.detach())


@pytest.mark.parametrize("norm_first", [False, True])
def test_graph_transformer_edge_relevance_is_the_message_relevance(monkeypatch, norm_first):
    model = _encoder(norm_first)
    g, x = patterns.get("causal", 5), torch.randn(1, 5, 8)
    got = contributions(model, x, "attnlrp", graph=g)
    # R_e = sum_h alpha_eh V[j, h] . dS/d(attention output of i), from the first layer's block
    with torch.enable_grad():
        xs = x.clone().requires_grad_()
        block = run_model(model, xs, g).blocks[0]
    hand_rules(monkeypatch)
    a = None

    def keep(module, args, out):
        nonlocal a
        a = out[0]
        return out

    hook = model.layers[0].self_attn.register_forward_hook(keep)
    y = model(x, g).last_hidden_state  # (1, N, C)
    hook.remove()
    score = (y * (y / y.norm(dim=-1, keepdim=True)).detach()).sum()
    ga = torch.autograd.grad(score, a)[0]  # (1, N, C) at the attention output after W_O
    v = block.values[:, g.src]  # (1, E, H, C)
    want = (block.weights * (v * ga[:, g.dst, None]).sum(-1)).sum(-1)  # (1, E)
    torch.testing.assert_close(got.edges[0], want.detach(), atol=1e-5, rtol=1e-4)


def _assert_conserved(rel, real=None):
    """stream[l] - stream[l + 1] = -1/2 sum_e R_e for every layer; the output keeps the score."""
    stream = rel.stream if real is None else rel.stream * real[:, None]
    drop = stream[:, :-1].sum(-1) - stream[:, 1:].sum(-1)  # (B, L)
    lost = -0.5 * torch.stack([r.sum(-1) for r in rel.edges], 1)  # (B, L)
    torch.testing.assert_close(drop, lost, atol=1e-4, rtol=1e-4)
    assert lost.abs().max() > 1e-3  # the messages carry relevance


def test_conservation_on_graphlm():
    lm = _lm()
    zero_biases_and_scores(lm, own_qk)
    rel = contributions(lm, torch.randint(30, (2, 9)), "attnlrp")
    _assert_conserved(rel)
    torch.testing.assert_close(rel.stream[:, -1].sum(-1), rel.score, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("norm_first", [False, True])
def test_conservation_on_graph_transformer(norm_first):
    model = _encoder(norm_first)
    zero_biases_and_scores(model, own_qk)
    rel = contributions(model, torch.randn(2, 5, 8), "attnlrp", graph=patterns.get("full", 5))
    _assert_conserved(rel)
    torch.testing.assert_close(rel.stream[:, -1].sum(-1), rel.score, atol=1e-4, rtol=1e-4)


def test_layers_are_shares_that_rollout_takes():
    lm = _lm()
    rel = contributions(lm, torch.randint(30, (1, 9)), "attnlrp")
    for (g, c), r in zip(rel, rel.edges, strict=True):
        assert c.shape == r.shape == (1, g.num_edges)
        assert torch.all(c >= 0)
        sums = torch.zeros(9).index_add_(0, g.dst, c[0])
        torch.testing.assert_close(sums, torch.ones(9))
        assert torch.all((r[0] <= 0) | (c[0] > 0))  # a positive relevance has a share
    roll = attention_rollout([(g, c[0]) for g, c in rel], residual=0.5)
    torch.testing.assert_close(roll.sum(1), torch.ones(9))


def test_attnlrp_refuses_what_it_cannot_explain():
    model = GraphTransformer(8, 2, 1, 16, dropout=0.0)
    block = run_model(model, torch.randn(1, 3, 8), patterns.get("causal", 3)).blocks[0]
    with pytest.raises(ValueError, match="whole model"):
        block_contributions(block, "attnlrp")


# ---- Hugging Face families -------------------------------------------------------------


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama", "qwen2"])
def test_conservation_on_hf_families(family):
    pytest.importorskip("transformers")
    from hf_tiny import inputs, tiny

    model = tiny(family)
    zero_biases_and_scores(model, hf_qk)
    batch = inputs(family, n=7, pad=2)
    rel = contributions(model, batch, "attnlrp")
    _assert_conserved(rel, batch["attention_mask"])


def test_hf_refuses_a_family_without_rules():
    pytest.importorskip("transformers")
    from hf_tiny import inputs, tiny

    with pytest.raises(ValueError, match="Gemma2ForCausalLM.*'gemma2'.*'value_zeroing'"):
        contributions(tiny("gemma2"), inputs("gemma2"), "attnlrp")
