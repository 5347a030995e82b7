"""AttnLRP of Hugging Face encoder-decoders (T5, BART) on ``attn_implementation="graphattn"``.

:func:`hf_seq2seq_attnlrp` runs the model once under the rules of
:func:`graphattn.hf.lrp.lrp_modules` (self- and cross-attention calls alike
divide the gradients of their queries, keys and values), with the encoder's
and the decoder's word embeddings as leaves, and hands the tensors to
:func:`graphattn.flow.lrp_seq2seq.seq2seq_relevance`: the layers come in call
order (encoder self layers, then per decoder layer its self and its cross
layer), the layout of the other encoder-decoder methods.
"""

from __future__ import annotations

from typing import Any

import torch

from graphattn.flow.lrp import explained_score, leaf_output
from graphattn.flow.lrp_seq2seq import Seq2SeqRelevance, seq2seq_relevance
from graphattn.hf.lrp import lrp_modules
from graphattn.hf.record import record

__all__ = ["hf_seq2seq_attnlrp"]


def hf_seq2seq_attnlrp(
    model: Any, inputs: dict, graph: Any, valid: torch.Tensor
) -> Seq2SeqRelevance:
    """AttnLRP of a transformers encoder-decoder on checked ``inputs``.

    ``inputs`` holds ``input_ids (B, M)``, ``decoder_input_ids (B, N)`` and
    optionally ``attention_mask``; ``valid (B, M)`` marks the real encoder
    tokens (edges into the others get 0). The explained score: with
    ``logits``, the predicted token's logit at every decoder position,
    summed; otherwise ``sum_i ||h_i||`` of the decoder's last hidden state.
    The streams are ``encoder_hidden_states`` and ``decoder_hidden_states``
    (whose last entries are after the final norm where the model has one).

    Raises
    ------
    ValueError
        If ``model.config.model_type`` has no rules (:data:`graphattn.hf.lrp.FAMILIES`).
    """
    src: list[torch.Tensor] = []
    tgt: list[torch.Tensor] = []
    enc_emb = leaf_output(model.get_encoder().get_input_embeddings(), src)
    dec_emb = leaf_output(model.get_decoder().get_input_embeddings(), tgt)
    with torch.enable_grad(), lrp_modules(model), enc_emb, dec_emb, record() as rec:
        out = model(**inputs, token_graph=graph, use_cache=False, output_hidden_states=True)
        logits = getattr(out, "logits", None)
        main = out.last_hidden_state if logits is None else logits
        score = explained_score(main, logits is not None)
    streams = (list(out.encoder_hidden_states), list(out.decoder_hidden_states))
    layers = [(c.graph, c.weights) for c in rec.calls]
    real = [None if c.decoder else valid for c in rec.calls]  # encoder targets may be padding
    return seq2seq_relevance(score, (src[0], tgt[0]), streams, layers, real=real)
