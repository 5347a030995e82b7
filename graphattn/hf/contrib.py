"""Contributions of Hugging Face models on ``attn_implementation="graphattn"``.

Registered with :func:`graphattn.flow.register_contributions` when
``graphattn.hf`` is imported, so :func:`graphattn.flow.contributions` takes
such a model for ``"value_zeroing"``, ``"grad_attention"`` and
``"attention"``, and, for the families whose layers :mod:`graphattn.hf.blocks`
reads (BERT, RoBERTa, GPT-2, Llama, Mistral, Qwen2), ``"alti"`` and
``"globenc"``: their blocks go through :mod:`graphattn.flow.decompose`.
Decoder-only and encoder-only models; ``input_ids (B, N)`` without padding.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from graphattn.flow import normalize_per_target
from graphattn.flow.decompose import alti, globenc
from graphattn.graph import TokenGraph
from graphattn.hf.blocks import hf_blocks
from graphattn.hf.edits import edit_attention
from graphattn.hf.record import record
from graphattn.hf.registry import ATTENTION_NAME

__all__ = ["METHODS", "hf_contributions", "is_graphattn_model"]

METHODS = ("alti", "globenc", "value_zeroing", "grad_attention", "attention")


def is_graphattn_model(model: Any) -> bool:
    """A transformers model whose attention runs on graphattn (encoder-decoders excluded)."""
    config = getattr(model, "config", None)
    impl = getattr(config, "_attn_implementation", None)
    return impl == ATTENTION_NAME and not getattr(config, "is_encoder_decoder", False)


def _check_ids(input_ids: Any) -> torch.Tensor:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype != torch.long:
        raise TypeError(f"input_ids must be a LongTensor (B, N), got {type(input_ids).__name__}")
    if input_ids.dim() != 2 or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids must have shape (B, N), got {tuple(input_ids.shape)}")
    return input_ids


def _forward(model: Any, ids: torch.Tensor, graph: Any, **kw: Any):
    return model(input_ids=ids, token_graph=graph, **kw)


def _score(out: Any) -> torch.Tensor:
    """Log-probability of the predicted token summed over positions, else half ``||h||^2``."""
    logits = getattr(out, "logits", None)
    if logits is not None:
        return logits.log_softmax(-1).amax(-1).sum()
    return 0.5 * out.last_hidden_state.pow(2).sum()


def _live(weights: torch.Tensor) -> torch.Tensor:
    """Edges with a nonzero weight in some head, ``(B, E)`` from ``(B, E, H)``."""
    return (weights != 0).any(-1)


def _attention(model: Any, ids: torch.Tensor, graph: Any) -> list:
    with torch.no_grad(), record() as rec:
        _forward(model, ids, graph)
    return [(g, normalize_per_target(g, w.mean(-1), _live(w))) for g, w in rec.self_attention]


def _grad_attention(model: Any, ids: torch.Tensor, graph: Any) -> list:
    """Chefer et al.: ``mean_h (d score / d w * w)^+``, the output computed from the weights."""
    with torch.enable_grad(), edit_attention(explicit=True), record() as rec:
        score = _score(_forward(model, ids, graph))
    weights = [w for _, w in rec.self_attention]
    grads = torch.autograd.grad(score, weights, allow_unused=True)
    out = []
    for (g, w), d in zip(rec.self_attention, grads, strict=True):
        d = torch.zeros_like(w) if d is None else d
        c = (d * w).clamp(min=0).mean(-1).detach()  # (B, E)
        out.append((g, normalize_per_target(g, c, _live(w))))
    return out


def _zero_rule(layer: int, copies: int):
    """In layer ``layer``, input copy ``r`` zeroes source ``r % copies - 1`` (copy 0: none)."""

    def zero(call_layer: int | None, rows: int, m: int) -> torch.Tensor:
        if call_layer is None:
            raise ValueError("value zeroing needs attention modules with a layer_idx")
        drop = torch.zeros(rows, m, dtype=torch.bool)  # (rows, M)
        if call_layer == layer:
            k = torch.arange(rows) % copies - 1  # (rows,) the source each copy zeroes
            hit = k >= 0
            drop[hit.nonzero().squeeze(1), k[hit]] = True
        return drop

    return zero


def _value_zeroing(model: Any, ids: torch.Tensor, graph: Any) -> list:
    """Mohebbi et al.: one batched pass per layer, copy ``k + 1`` zeroing source ``k``'s value."""
    with torch.no_grad(), record() as rec:
        _forward(model, ids, graph)
    b, n = ids.shape
    copies = n + 1
    many = ids.repeat_interleave(copies, 0)  # (B * (N+1), N)
    result = []
    for layer, (g, w) in enumerate(rec.self_attention):
        with torch.no_grad(), edit_attention(zero=_zero_rule(layer, copies)):
            out = _forward(model, many, graph, output_hidden_states=True)
        h = out.hidden_states[layer + 1].unflatten(0, (b, copies))  # (B, N+1, N, C)
        dist = 1 - F.cosine_similarity(h[:, 1:], h[:, :1], dim=-1)  # (B, k source, i target)
        c = dist[:, g.src, g.dst].clamp(min=0)  # (B, E)
        result.append((g, normalize_per_target(g, c, _live(w))))
    return result


def hf_contributions(
    model: Any, input_ids: Any, method: str, graph: Any = None
) -> list[tuple[TokenGraph, torch.Tensor]]:
    """:func:`graphattn.flow.contributions` of a transformers model on graphattn.

    ``"value_zeroing"`` compares each layer's output (``hidden_states[l + 1]``;
    where a model applies its final norm to the last entry, that norm is
    included) with the source's value vector zeroed inside graph attention:
    one batched pass per layer over ``N + 1`` copies of the input, not ``N``
    passes. ``"grad_attention"`` differentiates the summed log-probability of
    the predicted tokens (a language model) or half the squared norm of the
    last hidden state. ``"alti"`` and ``"globenc"`` apply
    :func:`graphattn.flow.decompose.alti` and ``globenc`` to the blocks that
    :func:`graphattn.hf.blocks.hf_blocks` reads from the model's modules (a
    ValueError for a family it does not know). ``graph`` is the model's
    ``token_graph`` argument.
    """
    ids = _check_ids(input_ids)
    if method in ("alti", "globenc"):
        rule = alti if method == "alti" else globenc
        with torch.no_grad():
            return [rule(block) for block in hf_blocks(model, ids, graph)]
    if method == "attention":
        return _attention(model, ids, graph)
    if method == "grad_attention":
        return _grad_attention(model, ids, graph)
    return _value_zeroing(model, ids, graph)
