"""Shared pieces of the AttnLRP tests: the rules put in by hand, and model edits.

:func:`hand_rules` puts the AttnLRP rules into graphattn's own models' ordinary
forward (``GraphLM.forward``, ``GraphSeq2Seq.forward``, not the contribution
blocks): every LayerNorm on the identity rule, the activations on the identity
rule, ``graph_attention`` called with the gradients of queries and keys divided
by 4 and of values by 2 (the rule functions themselves are checked against
lxt's in tests/test_attnlrp_lxt.py). ``seen``, if given, collects the queries
and keys of every call as they reach the division, first call first.
"""

import torch

import graphattn.nn.attention as nn_attention
import graphattn.nn.layers as nn_layers
from graphattn.flow.lrp_rules import divide_gradient, identity_rule, layer_norm


def hand_rules(monkeypatch, seen=None):
    monkeypatch.setattr(torch.nn.LayerNorm, "forward", layer_norm)
    for name, fn in list(nn_layers.ACTIVATIONS.items()):
        monkeypatch.setitem(nn_layers.ACTIVATIONS, name, lambda x, fn=fn: identity_rule(fn, x))
    plain = nn_attention.graph_attention

    def divided(q, k, v, *args, **kw):
        if seen is not None:
            seen.append((q, k))
        return plain(divide_gradient(q, 4), divide_gradient(k, 4), divide_gradient(v, 2),
                     *args, **kw)  # fmt: skip

    monkeypatch.setattr(nn_attention, "graph_attention", divided)


def zero_biases_and_scores(model, qk_weights):
    """Biases 0 (nobody absorbs relevance) and query/key weights 0 (scores 0: the softmax
    passes nothing on), so a layer keeps all relevance but the half of its messages' that
    went into the weights."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
        for w, rows in qk_weights(model):
            w[rows] = 0.0


def random_biases(model, seed=0):
    """Every bias parameter drawn from N(0, 0.5^2): each absorbs relevance."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def sharpen_scores(model, qk_weights, factor):
    """Query and key weights times ``factor``: scores far from 0 (tiny models start near it)."""
    with torch.no_grad():
        for w, rows in qk_weights(model):
            w[rows] *= factor


def own_qk(model):
    """Query and key rows of every GraphAttention's packed in-projection."""
    out = []
    for m in model.modules():
        if isinstance(m, nn_attention.GraphAttention):
            c = m.in_proj_weight.shape[1]
            out.append((m.in_proj_weight, slice(0, 2 * c)))
    return out


def hf_qk(model):
    """Each family's query and key weights, with the rows that produce them."""
    out = []
    for m in model.modules():
        name = type(m).__name__
        if name == "GPT2Attention":
            c = m.embed_dim
            out.append((m.c_attn.weight, (slice(None), slice(0, 2 * c))))  # Conv1D: (C, 3C)
        elif hasattr(m, "q_proj") and hasattr(m, "k_proj"):
            out += [(m.q_proj.weight, slice(None)), (m.k_proj.weight, slice(None))]
        elif hasattr(m, "query") and hasattr(m, "key"):
            out += [(m.query.weight, slice(None)), (m.key.weight, slice(None))]
        elif name == "T5Attention":
            out += [(m.q.weight, slice(None)), (m.k.weight, slice(None))]
    return out
