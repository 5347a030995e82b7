"""Contributions of Hugging Face encoder-decoder models (T5, BART, Marian) on graphattn.

Registered as a :func:`graphattn.flow.register_adapter` adapter when
``graphattn.hf`` is imported, for ``"value_zeroing"``, ``"grad_attention"``,
``"attention"`` and ``"attnlrp"`` (T5 and BART: :mod:`graphattn.hf.lrp_seq2seq`).
The layers come in call order, as for a ``GraphSeq2Seq``: the encoder's
self layers, then per decoder layer its
self layer and its cross layer (encoder tokens -> decoder tokens), so
:func:`graphattn.flow.split_cross_layers` reads them into
:func:`graphattn.flow.cross_rollout`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from graphattn.flow.blocks import live_edges
from graphattn.flow.decompose import (
    attention_shares,
    finish_scores,
    grad_attention_shares,
)
from graphattn.graph import TokenGraph
from graphattn.hf.contrib import _check_ids, _score, _valid
from graphattn.hf.edits import edit_attention
from graphattn.hf.lrp_seq2seq import hf_seq2seq_attnlrp
from graphattn.hf.record import RecordedCall, record
from graphattn.hf.registry import ATTENTION_NAME
from graphattn.hf.zeroing import zeroed_distances, zeroed_rows

__all__ = ["METHODS", "hf_seq2seq_contributions", "is_graphattn_seq2seq"]

METHODS = ("value_zeroing", "grad_attention", "attention", "attnlrp")
_KEYS = ("input_ids", "attention_mask", "decoder_input_ids")


def is_graphattn_seq2seq(model: Any) -> bool:
    """A transformers encoder-decoder model whose attention runs on graphattn."""
    config = getattr(model, "config", None)
    impl = getattr(config, "_attn_implementation", None)
    return impl == ATTENTION_NAME and bool(getattr(config, "is_encoder_decoder", False))


def _inputs(model: Any, batch: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The model's keyword inputs, checked, and the real encoder tokens ``(B, M)`` bool."""
    if not isinstance(batch, Mapping):
        raise TypeError(
            "an encoder-decoder model takes a mapping with 'input_ids' (B, M) and "
            f"'decoder_input_ids' (B, N), optionally 'attention_mask'; got {type(batch).__name__}"
        )
    inputs = {k: v for k, v in batch.items() if v is not None}  # None: absent
    if set(inputs) - set(_KEYS) or not {"input_ids", "decoder_input_ids"} <= set(inputs):
        raise ValueError(
            f"an encoder-decoder input mapping needs 'input_ids' and 'decoder_input_ids' and may "
            f"hold 'attention_mask'; got the keys {sorted(inputs)}"
        )
    ids = _check_ids(model, inputs["input_ids"])
    dec = _check_ids(model, inputs["decoder_input_ids"])
    if dec.shape[0] != ids.shape[0]:
        raise ValueError(
            f"decoder_input_ids has {dec.shape[0]} rows, input_ids {ids.shape[0]}; they must match"
        )
    if "attention_mask" not in inputs:
        return inputs, torch.ones(ids.shape, dtype=torch.bool)
    return inputs, _valid(inputs["attention_mask"], ids.shape)


def _forward(model: Any, inputs: dict, graph: Any, **kw: Any):
    return model(**inputs, token_graph=graph, use_cache=False, **kw)


def _calls(model: Any, inputs: dict, graph: Any) -> list[RecordedCall]:
    with torch.no_grad(), record() as rec:
        _forward(model, inputs, graph)
    return rec.calls


def _grad_attention(model: Any, inputs: dict, graph: Any, normalize: bool) -> list:
    """Chefer et al. through every self and cross call: ``mean_h (d score / d w * w)^+``."""
    with torch.enable_grad(), edit_attention(explicit=True), record() as rec:
        out = _forward(model, inputs, graph)
        real = torch.ones(inputs["decoder_input_ids"].shape, dtype=torch.bool)  # (B, N)
        score = _score(out, real)
    weights = [c.weights for c in rec.calls]
    grads = torch.autograd.grad(score, weights, allow_unused=True)
    return [(c, grad_attention_shares(c.graph, w, d, normalize))
            for c, w, d in zip(rec.calls, weights, grads, strict=True)]


def _zero_call(site: int, k0: int, size: int):
    """In the ``site``-th attention call of a forward, copy ``r`` of each example zeroes
    source ``k0 + r - 1`` (:func:`~graphattn.hf.zeroing.zeroed_rows`).

    Calls are counted in the order the model makes them (encoder, then per
    decoder layer its self and its cross call), the same in every forward.
    """
    seen = [0]  # attention calls made so far in this forward

    def zero(_layer: int | None, rows: int, m: int) -> torch.Tensor:
        hit = seen[0] == site
        seen[0] += 1
        return zeroed_rows(rows, m, k0, size) if hit else torch.zeros(rows, m, dtype=torch.bool)

    return zero


def _layer_outputs(calls: list[RecordedCall]) -> list[tuple[str, int]]:
    """For every call, the hidden states that hold its layer's output and their index."""
    out, enc, dec = [], 0, 0
    for c in calls:
        if not c.decoder:
            enc += 1
            out.append(("encoder_hidden_states", enc))
        else:
            dec += 0 if c.cross else 1  # a decoder layer: its self call, then its cross call
            out.append(("decoder_hidden_states", dec))
    return out


def _value_zeroing(model: Any, inputs: dict, graph: Any, normalize: bool) -> list:
    """Mohebbi et al.: per call, batched passes over copies of the input, copy ``k``
    zeroing source ``k``'s value in that call (:mod:`graphattn.hf.zeroing`); distances
    of that layer's output."""
    calls = _calls(model, inputs, graph)
    result = []
    for site, (c, (key, idx)) in enumerate(zip(calls, _layer_outputs(calls), strict=True)):
        g = c.graph

        def run(copies: dict, k0: int, size: int, site: int = site, key=key, idx=idx):
            with torch.no_grad(), edit_attention(zero=_zero_call(site, k0, size)):
                out = _forward(model, copies, graph, output_hidden_states=True)
            return getattr(out, key)[idx]  # (B (1 + S), N, C)

        dist = zeroed_distances(run, inputs, g.num_src_nodes)  # (B, k source, i target)
        c_edges = dist[:, g.src, g.dst].clamp(min=0)  # (B, E)
        result.append((c, finish_scores(g, c_edges, live_edges(c.weights), normalize)))
    return result


def hf_seq2seq_contributions(
    model: Any, input_ids: Any, method: str, graph: Any = None, *, normalize: bool = True
) -> list[tuple[TokenGraph, torch.Tensor]]:
    """:func:`graphattn.flow.contributions` of a transformers encoder-decoder on graphattn.

    ``"value_zeroing"`` zeroes one source's value vector in one attention
    call (an encoder self-attention, a decoder self-attention or a
    cross-attention, whose sources are the encoder tokens) and compares
    that layer's output (``encoder_hidden_states[l + 1]`` or
    ``decoder_hidden_states[l + 1]``: for a decoder layer, after its self
    attention, cross-attention and FFN) with the intact one, ``1 - cos``:
    per call, batched passes over copies of the input, copy ``k`` zeroing
    source ``k``, as many sources per pass as
    :data:`graphattn.hf.zeroing.COPY_TOKENS` tokens hold (never all ``M + 1``
    copies at once).
    ``"grad_attention"`` differentiates the summed log-probability of the
    predicted token at every decoder position with respect to the weights of
    every call, self and cross. ``"attnlrp"`` (T5, BART) is AttnLRP through
    every self and cross edge, a
    :class:`~graphattn.flow.lrp_seq2seq.Seq2SeqRelevance` (see
    :func:`graphattn.hf.lrp_seq2seq.hf_seq2seq_attnlrp`).

    Parameters
    ----------
    model : transformers encoder-decoder model on ``attn_implementation="graphattn"``
    input_ids : mapping
        ``"input_ids" (B, M)``, ``"decoder_input_ids" (B, N)`` and optionally
        the encoder's ``"attention_mask" (B, M)`` (0/1); edges from padded
        encoder tokens get 0, and so do the rows of padded encoder targets.
    method : {"value_zeroing", "grad_attention", "attention", "attnlrp"}
    graph : optional
        The model's ``token_graph`` argument.
    normalize : bool
        False: the scores before the division by each target's sum.

    Returns
    -------
    list of ``(TokenGraph, Tensor (B, E))``
        The encoder layers, then per decoder layer its self layer and its
        cross layer (a cross graph, ``M`` encoder sources, ``N`` targets).

    Raises
    ------
    TypeError, ValueError
        For inputs as above that they are not, naming the problem; a
        ValueError for ``"attnlrp"`` on a family without its rules (naming
        the class and the methods that take it).
    """
    inputs, valid = _inputs(model, input_ids)
    if method == "attnlrp":
        return hf_seq2seq_attnlrp(model, inputs, graph, valid)
    if method == "grad_attention":
        layers = _grad_attention(model, inputs, graph, normalize)
    elif method == "attention":
        layers = [(c, attention_shares(c.graph, c.weights, normalize))
                  for c in _calls(model, inputs, graph)]
    else:
        layers = _value_zeroing(model, inputs, graph, normalize)
    out = []
    for call, c in layers:  # an encoder layer's padded targets: rows of 0
        if not call.decoder:
            real = valid.to(c.device)[:, call.graph.dst.to(c.device)]  # (B, E)
            c = torch.where(real, c, torch.zeros_like(c))
        out.append((call.graph, c))
    return out
