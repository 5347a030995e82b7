"""Contributions of Hugging Face models on ``attn_implementation="graphattn"``.

Registered as a :func:`graphattn.flow.register_adapter` adapter when
``graphattn.hf`` is imported, so :func:`graphattn.flow.contributions` takes
such a model for ``"value_zeroing"``, ``"grad_attention"`` and
``"attention"``, and, for the families whose layers :mod:`graphattn.hf.blocks`
reads (BERT, RoBERTa, GPT-2, Llama, Mistral, Qwen2), ``"alti"`` and
``"globenc"``: their blocks go through :mod:`graphattn.flow.decompose`.
Decoder-only and encoder-only models; ``input_ids (B, N)`` or a tokenizer's
batch with its ``attention_mask`` (padded on either side; padded targets get 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from graphattn._validate import check_token_ids
from graphattn.flow.blocks import live_edges
from graphattn.flow.decompose import (
    alti,
    attention_shares,
    finish_scores,
    globenc,
    grad_attention_shares,
    value_zeroing,
)
from graphattn.graph import TokenGraph
from graphattn.hf.blocks import UnreadableBlocks, hf_blocks, reads_blocks
from graphattn.hf.edits import edit_attention
from graphattn.hf.lrp import hf_attnlrp
from graphattn.hf.record import record
from graphattn.hf.registry import ATTENTION_NAME
from graphattn.hf.zeroing import zeroed_distances, zeroed_rows

__all__ = ["METHODS", "hf_contributions", "is_graphattn_model", "is_transformers_model"]

METHODS = ("alti", "globenc", "value_zeroing", "grad_attention", "attention", "attnlrp")


def is_graphattn_model(model: Any) -> bool:
    """A transformers model whose attention runs on graphattn (encoder-decoders excluded)."""
    config = getattr(model, "config", None)
    impl = getattr(config, "_attn_implementation", None)
    return impl == ATTENTION_NAME and not getattr(config, "is_encoder_decoder", False)


def is_transformers_model(model: Any) -> bool:
    """Any transformers model: :func:`hf_contributions` takes it or says why not."""
    return isinstance(model, torch.nn.Module) and hasattr(model, "set_attn_implementation")


def _refuse_model(model: Any) -> None:
    """A ValueError, naming the class and the supported methods, for a model not served."""
    name, config, offered = type(model).__name__, model.config, ", ".join(METHODS)
    impl = getattr(config, "_attn_implementation", None)
    if impl != ATTENTION_NAME:
        raise ValueError(
            f"{name} runs attn_implementation={impl!r}; flow.contributions offers the methods "
            f"{offered} for models on graphattn: switch with graphattn.hf.attach(model) first"
        )


def _check_ids(model: Any, input_ids: Any) -> torch.Tensor:
    """``input_ids``: integer ``(B, N)``, ``B >= 1``, ids within the model's vocabulary."""
    config = model.config
    vocab = getattr(config, "vocab_size", None) or 2**62
    max_len = getattr(config, "max_position_embeddings", None) or getattr(
        config, "n_positions", None
    )
    return check_token_ids(input_ids, "input_ids", vocab, max_len or 2**62, vocab_name="vocab_size")


# the keys of a mapping ``input_ids``, all handed to the model
_INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")


def _check_companion(key: str, value: Any, shape: torch.Size) -> None:
    """``token_type_ids`` / ``position_ids``: an integer tensor of the ids' shape ``(B, N)``."""
    if not isinstance(value, torch.Tensor) or value.dtype.is_floating_point or value.is_complex():
        raise TypeError(f"{key} must be an integer tensor (B, N), got {_describe(value)}")
    if value.shape != shape:
        raise ValueError(f"{key} has shape {tuple(value.shape)}, input_ids {tuple(shape)}")


def _describe(value: Any) -> str:
    return f"{value.dtype} tensor" if isinstance(value, torch.Tensor) else type(value).__name__


def _valid(mask: Any, shape: torch.Size) -> torch.Tensor:
    """The real tokens ``(B, N)`` bool of a checked 0/1 ``attention_mask``."""
    if not isinstance(mask, torch.Tensor) or mask.dtype.is_floating_point or mask.is_complex():
        raise TypeError(f"attention_mask must be a bool or integer tensor, got {_describe(mask)}")
    if mask.shape != shape:
        raise ValueError(
            f"attention_mask has shape {tuple(mask.shape)}, input_ids {tuple(shape)}; "
            "they must be equal (B, N)"
        )
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("attention_mask must hold only 0 (padding) and 1 (real token)")
    valid = mask.bool()  # (B, N)
    empty = (~valid.any(1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"attention_mask rows {empty} have no real token: nothing to explain")
    return valid


def _model_inputs(model: Any, input_ids: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The model's keyword inputs, checked, and the real tokens ``(B, N)`` bool."""
    if not isinstance(input_ids, Mapping):
        inputs = {"input_ids": _check_ids(model, input_ids)}
        return inputs, torch.ones(inputs["input_ids"].shape, dtype=torch.bool)
    inputs = {k: v for k, v in input_ids.items() if v is not None}  # None: absent
    if set(inputs) - set(_INPUT_KEYS) or "input_ids" not in inputs:
        raise ValueError(
            f"an input mapping needs 'input_ids' and may hold {_INPUT_KEYS[1:]}; got the keys "
            f"{sorted(inputs)} (leave out the others, e.g. labels or pixel_values)"
        )
    ids = _check_ids(model, inputs["input_ids"])
    for key in ("token_type_ids", "position_ids"):
        if key in inputs:
            _check_companion(key, inputs[key], ids.shape)
    if "attention_mask" not in inputs:
        return inputs, torch.ones(ids.shape, dtype=torch.bool)
    return inputs, _valid(inputs["attention_mask"], ids.shape)


def _forward(model: Any, inputs: dict, graph: Any, **kw: Any):
    return model(**inputs, token_graph=graph, **kw)


def _score(out: Any, valid: torch.Tensor) -> torch.Tensor:
    """The score ``"grad_attention"`` explains, read from the real tokens ``valid (B, N)`` only.

    With logits: the log-probability of the predicted token, summed over the
    real tokens (of the predicted class, for a classifier's ``(B, K)``).
    Otherwise half the squared norm of each example's mean output over its
    real tokens, summed over the examples; not half ``||h_i||^2`` per token:
    the model's last norm (BERT's LayerNorm, a decoder's final norm) fixes
    each token's length (``C var / (var + eps)`` with weight 1 and bias 0),
    and the gradient of that is ``eps``'s and round-off, while the mean of
    the tokens moves with their directions.
    """
    logits = getattr(out, "logits", None)
    if logits is not None:
        predicted = logits.log_softmax(-1).amax(-1)  # (B, N), a classifier's (B,)
        if predicted.dim() == 1:
            return predicted.sum()
        return predicted[valid.to(predicted.device)].sum()
    h = out.last_hidden_state  # (B, N, C)
    real = valid.to(h.device)[..., None]  # (B, N, 1)
    pooled = h.masked_fill(~real, 0.0).sum(1) / real.sum(1).to(h.dtype)  # (B, C)
    return 0.5 * pooled.pow(2).sum()


def _attention(model: Any, inputs: dict, graph: Any, normalize: bool) -> list:
    with torch.no_grad(), record() as rec:
        _forward(model, inputs, graph)
    return [(g, attention_shares(g, w, normalize)) for g, w in rec.self_attention]


def _grad_attention(
    model: Any, inputs: dict, graph: Any, valid: torch.Tensor, normalize: bool
) -> list:
    """Chefer et al.: ``mean_h (d score / d w * w)^+``, the output computed from the weights."""
    with torch.enable_grad(), edit_attention(explicit=True), record() as rec:
        score = _score(_forward(model, inputs, graph), valid)
    weights = [w for _, w in rec.self_attention]
    grads = torch.autograd.grad(score, weights, allow_unused=True)
    return [(g, grad_attention_shares(g, w, d, normalize))
            for (g, w), d in zip(rec.self_attention, grads, strict=True)]


def _zero_rule(layer: int, k0: int, size: int):
    """In layer ``layer``, copy ``r`` of each example zeroes source ``k0 + r - 1`` (see
    :func:`~graphattn.hf.zeroing.zeroed_rows`); the other layers are left intact."""

    def zero(call_layer: int | None, rows: int, m: int) -> torch.Tensor:
        if call_layer is None:
            raise ValueError("value zeroing needs attention modules with a layer_idx")
        if call_layer == layer:
            return zeroed_rows(rows, m, k0, size)
        return torch.zeros(rows, m, dtype=torch.bool)  # (rows, M)

    return zero


def _value_zeroing_copies(model: Any, inputs: dict, graph: Any, normalize: bool) -> list:
    """Mohebbi et al. by copies of the input, a chunk of sources per batched pass."""
    with torch.no_grad(), record() as rec:
        _forward(model, inputs, graph)
    n = inputs["input_ids"].shape[1]
    result = []
    for layer, (g, w) in enumerate(rec.self_attention):

        def run(copies: dict, k0: int, size: int, layer: int = layer) -> torch.Tensor:
            with torch.no_grad(), edit_attention(zero=_zero_rule(layer, k0, size)):
                out = _forward(model, copies, graph, output_hidden_states=True)
            return out.hidden_states[layer + 1]  # (B (1 + S), N, C)

        dist = zeroed_distances(run, inputs, n)  # (B, k source, i target)
        c = dist[:, g.src, g.dst].clamp(min=0)  # (B, E)
        result.append((g, finish_scores(g, c, live_edges(w), normalize)))
    return result


def _value_zeroing(model: Any, inputs: dict, graph: Any, normalize: bool) -> list:
    """Mohebbi et al.: each edge's target recomputed from its block, or by copies of the input.

    The copies run the model itself: they serve every model whose blocks are
    not read, or do not reproduce its layers (a layer changed by a hook, a
    model in training mode).
    """
    if reads_blocks(model):
        try:
            return _decomposed(model, inputs, graph, _value_zeroing_rule, normalize, True)
        except UnreadableBlocks:
            pass
    return _value_zeroing_copies(model, inputs, graph, normalize)


def _value_zeroing_rule(block: Any, normalize: bool) -> tuple[TokenGraph, torch.Tensor]:
    return value_zeroing(block, normalize=normalize)


def _decomposed(
    model: Any, inputs: dict, graph: Any, rule: Any, normalize: bool, final_norm: bool = False
) -> list:
    """ALTI, GlobEnc or Value Zeroing (``rule``) of every block :func:`hf_blocks` reads."""
    rest = {k: v for k, v in inputs.items() if k != "input_ids"}
    with torch.no_grad():
        blocks = hf_blocks(model, inputs["input_ids"], graph, final_norm=final_norm, **rest)
        return [rule(block, normalize) for block in blocks]


def _real_targets(graph: TokenGraph, c: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``c (B, E)`` with every edge into a padded target set to 0."""
    real = valid.to(c.device)[:, graph.dst.to(c.device)]  # (B, E)
    return torch.where(real, c, torch.zeros_like(c))


def hf_contributions(
    model: Any, input_ids: Any, method: str, graph: Any = None, *, normalize: bool = True
) -> list[tuple[TokenGraph, torch.Tensor]]:
    """:func:`graphattn.flow.contributions` of a transformers model on graphattn.

    ``"value_zeroing"`` compares each layer's output (``hidden_states[l + 1]``;
    where a model applies its final norm to the last entry, that norm is
    included) with the source's value vector zeroed inside graph attention.
    For the families :func:`graphattn.hf.blocks.hf_blocks` reads (in float32
    or float64), each edge's target is recomputed from its layer's block, a
    chunk of targets at a time, after one forward; for the others (and where
    the blocks do not reproduce the layers, e.g. in training mode), the model
    runs per layer on copies of the input, copy ``k`` zeroing source ``k``,
    a chunk of sources per batched pass (:mod:`graphattn.hf.zeroing`).
    ``"grad_attention"`` differentiates the log-probability of the predicted
    token summed over the real tokens (a language model; of the predicted
    class for a classifier), or half the squared norm of the mean of the last
    hidden state over each example's real tokens, summed over the examples
    (the length of each token's own output is fixed by the model's last
    norm). ``"alti"`` and ``"globenc"`` apply
    :func:`graphattn.flow.decompose.alti` and ``globenc`` to the blocks that
    :func:`graphattn.hf.blocks.hf_blocks` reads from the model's modules (a
    ValueError for a family it does not know).

    Parameters
    ----------
    model : transformers model on ``attn_implementation="graphattn"``
        Decoder-only or encoder-only.
    input_ids : LongTensor ``(B, N)`` or mapping
        Token ids, or a mapping such as a tokenizer's ``BatchEncoding``
        (``tokenizer(texts, padding=True, return_tensors="pt")``) holding
        ``"input_ids"`` and optionally ``"attention_mask"`` (``(B, N)``, 0/1,
        bool or integer; every row with a real token), ``"token_type_ids"``
        and ``"position_ids"`` (integer ``(B, N)``); these are passed to the
        model as given (a None value counts as absent), any other key is
        refused. With left padding, a model with absolute positions (GPT-2)
        needs ``position_ids`` that count real tokens only, as ``generate``
        builds them, to see each text as it would alone.
    method : {"alti", "globenc", "value_zeroing", "grad_attention", "attention"}
    graph : optional
        The model's ``token_graph`` argument.
    normalize : bool
        False: the scores before the division by each target's sum (see
        :func:`graphattn.flow.contributions`).

    Returns
    -------
    list of ``(TokenGraph, Tensor (B, E))``
        One per layer. With padding, an edge leaving a padded token has no
        weight and gets 0; every edge into a padded token is set to 0 too
        (its row means nothing), so a real token's shares sum to 1, a padded
        token's to 0, and each example's entries on its real tokens are those
        of the example run alone (with the same positions).

    Raises
    ------
    TypeError, ValueError
        For ids, a mask or a mapping as above that they are not, naming the
        problem; a ValueError for a family ALTI and GlobEnc do not know, an
        encoder-decoder model or a model not on graphattn (naming the class
        and the methods offered).
    """
    _refuse_model(model)
    inputs, valid = _model_inputs(model, input_ids)
    if method == "attnlrp":
        return hf_attnlrp(model, inputs, graph, valid)
    if method in ("alti", "globenc"):
        rule = alti if method == "alti" else globenc
        layers = _decomposed(model, inputs, graph, rule, normalize)
    elif method == "attention":
        layers = _attention(model, inputs, graph, normalize)
    elif method == "grad_attention":
        layers = _grad_attention(model, inputs, graph, valid, normalize)
    else:
        layers = _value_zeroing(model, inputs, graph, normalize)
    return [(g, _real_targets(g, c, valid)) for g, c in layers]
