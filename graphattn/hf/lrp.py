"""AttnLRP of Hugging Face models on ``attn_implementation="graphattn"``.

:func:`hf_attnlrp` applies the rules of ``lxt``'s model maps
(``lxt.efficient.models``) to the model's own modules for the duration of
one forward and backward pass, then reads relevance as Input x Gradient
(see :mod:`graphattn.flow.lrp`):

- every ``LayerNorm``, ``*RMSNorm`` and ``T5LayerNorm``: the identity rule
  (the scale is a constant of the backward pass);
- the feed-forward activation (BERT's intermediate, pooler and prediction
  head, GPT-2's MLP, T5's ``DenseReluDense``, BART's ``activation_fn``): the
  identity rule; a gated MLP (Llama, Mistral, Qwen2, T5 v1.1's gated FFN):
  the identity rule on ``act(gate)``, the uniform rule on ``act(gate) * up``;
- dropout: none;
- attention: queries and keys with their gradient divided by 4, values by 2
  (:func:`graphattn.hf.edits.attnlrp_inputs`), the output computed from the
  weights so that the relevance of each edge's message can be read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from graphattn.flow.lrp import (
    Relevance,
    explained_score,
    input_x_gradient,
    layer_shares,
    leaf_output,
    patched,
)
from graphattn.flow.lrp_rules import divide_gradient, identity_rule, layer_norm, rms_norm
from graphattn.hf.edits import edit_attention
from graphattn.hf.record import record

__all__ = ["FAMILIES", "hf_attnlrp", "lrp_modules"]

#: The ``config.model_type`` values whose modules :func:`lrp_modules` knows.
FAMILIES = ("bert", "roberta", "gpt2", "llama", "mistral", "qwen2", "t5", "bart")


def _rms(self, x):
    return rms_norm(self.weight, self.variance_epsilon, x)


def _gated_mlp(self, x):
    gate = identity_rule(self.act_fn, self.gate_proj(x))
    return self.down_proj(divide_gradient(gate * self.up_proj(x), 2))


def _gpt2_mlp(self, x):
    return self.c_proj(identity_rule(self.act, self.c_fc(x)))


def _t5_ffn(self, x):  # T5's DenseReluDense (its dropout is patched out)
    return self.wo(identity_rule(self.act, self.wi(x)))


def _t5_gated_ffn(self, x):  # T5 v1.1's gated FFN
    gate = identity_rule(self.act, self.wi_0(x))
    return self.wo(divide_gradient(gate * self.wi_1(x), 2))


def _activation(self, x):  # an activation module called inline (BART's activation_fn)
    return identity_rule(lambda t: type(self).forward(self, t), x)


def _intermediate(self, x):  # BERT's intermediate layer
    return identity_rule(self.intermediate_act_fn, self.dense(x))


def _head_transform(self, x):  # BERT's prediction head transform
    return self.LayerNorm(identity_rule(self.transform_act_fn, self.dense(x)))


def _pooler(self, x):  # BERT's pooler: the first token, dense, tanh
    return identity_rule(self.activation, self.dense(x[:, 0]))


def _no_dropout(self, x):
    return x


def _rule_of(m: nn.Module):
    """The patched forward of module ``m``, or None (kept as it is)."""
    name = type(m).__name__
    if isinstance(m, nn.LayerNorm):
        return layer_norm
    if isinstance(m, nn.Dropout):
        return _no_dropout
    if name.endswith("RMSNorm") or name == "T5LayerNorm":
        return _rms
    if all(hasattr(m, a) for a in ("gate_proj", "up_proj", "down_proj", "act_fn")):
        return _gated_mlp
    if name == "GPT2MLP":
        return _gpt2_mlp
    if name == "T5DenseActDense":
        return _t5_ffn
    if name == "T5DenseGatedActDense":
        return _t5_gated_ffn
    if hasattr(m, "intermediate_act_fn"):
        return _intermediate
    if hasattr(m, "transform_act_fn"):
        return _head_transform
    if name.endswith("Pooler"):
        return _pooler
    return None


@contextmanager
def lrp_modules(model: nn.Module) -> Iterator[None]:
    """The AttnLRP rules on ``model``'s modules and graphattn attention, inside the block.

    Raises
    ------
    ValueError
        If ``model.config.model_type`` is not in :data:`FAMILIES` (naming the
        class and the methods that take it).
    """
    kind = getattr(getattr(model, "config", None), "model_type", None)
    if kind not in FAMILIES:
        raise ValueError(
            f"method 'attnlrp' is not available for {type(model).__name__} (model_type "
            f"{kind!r}): its rules are written for the families {FAMILIES}; the methods "
            "'value_zeroing', 'grad_attention' and 'attention' take any model on graphattn"
        )
    with ExitStack() as stack:
        for m in model.modules():
            rule = _rule_of(m)
            if rule is not None:
                stack.enter_context(patched(m, rule))
            act = getattr(m, "activation_fn", None)  # BART's layers call it inline
            if isinstance(act, nn.Module):
                stack.enter_context(patched(act, _activation))
        stack.enter_context(edit_attention(explicit=True, lrp=True))
        yield


def hf_attnlrp(model: Any, inputs: dict, graph: Any, valid: torch.Tensor) -> Relevance:
    """AttnLRP of a transformers model on checked ``inputs`` with real tokens ``valid (B, N)``.

    The explained score: with ``logits``, the predicted token's (class's)
    logit at every real position, summed; otherwise ``sum_i ||h_i||`` of the
    last hidden state over the real tokens. Edges into padded targets get 0.
    """
    store: list[torch.Tensor] = []
    leaf = leaf_output(model.get_input_embeddings(), store)
    with torch.enable_grad(), lrp_modules(model), leaf, record() as rec:
        out = model(**inputs, token_graph=graph, output_hidden_states=True)
        logits = getattr(out, "logits", None)
        main = out.last_hidden_state if logits is None else logits
        score = explained_score(main, logits is not None, valid)
    hidden = list(out.hidden_states)  # L + 1 of (B, N, C)
    layers = rec.self_attention
    weights = [w for _, w in layers]
    grads = torch.autograd.grad(
        score.sum(), [store[0], *hidden, *weights], allow_unused=True
    )
    rel = [input_x_gradient(t, g) for t, g in zip([store[0], *hidden], grads, strict=False)]
    edges, shares = [], []
    for (g, w), gw in zip(layers, grads[len(hidden) + 1 :], strict=True):
        real = valid.to(w.device)[:, g.dst.to(w.device)]  # (B, E) edges into real targets
        r = torch.where(real, input_x_gradient(w, gw), torch.zeros(()))  # (B, E)
        edges.append(r)
        shares.append((g, layer_shares(g, r, w) * real))
    return Relevance(shares, edges, torch.stack(rel[1:], 1), rel[0], score.detach())
