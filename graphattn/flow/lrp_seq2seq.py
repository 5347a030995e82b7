"""AttnLRP of encoder-decoders: relevance through self and cross edges to both inputs.

:func:`seq2seq_attnlrp` runs a ``GraphSeq2Seq`` under the rules of
:mod:`graphattn.flow.lrp_rules`, as :func:`~graphattn.flow.lrp.attnlrp` runs
a decoder-only model, and reads Input x Gradient of the explained score (the
predicted token's logit at every real decoder position, summed) at

- every edge of every layer, in the layout of the other encoder-decoder
  methods: the encoder's layers, then per decoder layer its self layer and
  its cross layer (encoder tokens -> decoder tokens), so that
  :func:`~graphattn.flow.split_cross_layers` and
  :func:`~graphattn.flow.cross_rollout` take them;
- the encoder stream and the decoder stream entering each layer, and the
  last layer's output of each;
- the source and the target word embeddings (the input-token relevance).

:func:`seq2seq_relevance` gathers these from the tensors of any
encoder-decoder run; the Hugging Face integration (T5, BART) calls it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch

from graphattn.flow.lrp import (
    Relevance,
    explained_score,
    input_x_gradient,
    layer_shares,
    leaf_output,
    own_rules,
)
from graphattn.flow.lrp_rules import KEY_QUERY_FACTOR
from graphattn.flow.nn_seq2seq import seq2seq_run
from graphattn.graph import TokenGraph
from graphattn.nn import GraphSeq2Seq

__all__ = ["Seq2SeqRelevance", "seq2seq_attnlrp", "seq2seq_relevance"]


class Seq2SeqRelevance(Relevance):
    """:class:`~graphattn.flow.lrp.Relevance` of an encoder-decoder.

    The layers (and ``edges``) are the encoder's, then per decoder layer its
    self layer and its cross layer. ``tokens (B, N)`` and ``stream
    (B, L_dec + 1, N)`` are the decoder's (its input tokens, the stream
    entering each decoder layer and the last decoder layer's output);
    ``score (B,)`` as there.

    Attributes
    ----------
    source_tokens : Tensor ``(B, M)``
        Relevance of each source token's word embedding.
    source_stream : Tensor ``(B, L_enc + 1, M)``
        Relevance of the encoder stream entering each encoder layer and, last,
        of the encoder's output (the memory every cross-attention reads, before
        the encoder's final norm in a ``GraphSeq2Seq``; a Hugging Face model's
        ``encoder_hidden_states``).
    """

    def __init__(self, layers, edges, streams, tokens, score) -> None:
        super().__init__(layers, edges, streams[1], tokens[1], score)
        self.source_stream, self.source_tokens = streams[0], tokens[0]


def seq2seq_relevance(
    score: torch.Tensor,
    embeddings: tuple[torch.Tensor, torch.Tensor],
    streams: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]],
    layers: Sequence[tuple[TokenGraph, torch.Tensor]],
    factor: float = 1.0,
    real: Sequence[torch.Tensor | None] | None = None,
) -> Seq2SeqRelevance:
    """Input x Gradient of ``score (B,)``, computed under the rules, at every tensor of a run.

    Parameters
    ----------
    score : Tensor ``(B,)``
    embeddings : pair of Tensors
        The source ``(B, M, C)`` and target ``(B, N, C)`` word embeddings, leaves.
    streams : pair of lists of Tensors
        The encoder's ``(B, M, C)`` and the decoder's ``(B, N, C)`` streams.
    layers : list of ``(TokenGraph, weights (B, E, H))``
        Every attention in call order, the weights connected to ``score``.
    factor : float
        What the gradient of the weights was divided by (the own blocks divide
        it by :data:`~graphattn.flow.lrp_rules.KEY_QUERY_FACTOR`, Hugging Face
        attention divides queries and keys instead: 1).
    real : list of Tensors ``(B, N_l)`` bool or None, optional
        Per layer, its real targets; the edges into the others get 0.
    """
    tensors = [*embeddings, *streams[0], *streams[1]]
    weights = [w for _, w in layers]
    grads = torch.autograd.grad(score.sum(), tensors + weights, allow_unused=True)
    rel = [input_x_gradient(t, g) for t, g in zip(tensors, grads, strict=False)]
    edges, shares = [], []
    for k, ((g, w), gw) in enumerate(zip(layers, grads[len(tensors) :], strict=True)):
        r = factor * input_x_gradient(w, gw)  # (B, E)
        keep = None if real is None or real[k] is None else real[k].to(r.device)[:, g.dst]
        r = r if keep is None else torch.where(keep, r, torch.zeros((), dtype=r.dtype))
        edges.append(r)
        c = layer_shares(g, r, w)  # (B, E)
        shares.append((g, c if keep is None else c * keep))
    n_enc = len(streams[0])
    return Seq2SeqRelevance(
        shares,
        edges,
        (torch.stack(rel[2 : 2 + n_enc], 1), torch.stack(rel[2 + n_enc :], 1)),
        (rel[0], rel[1]),
        score.detach(),
    )


@contextmanager
def _encoder_output(model: GraphSeq2Seq, store: list) -> Any:
    """Keep the input of the encoder's final norm (the encoder's last output) in ``store``."""
    handle = model.encoder.norm.register_forward_pre_hook(lambda _m, args: store.append(args[0]))
    try:
        yield
    finally:
        handle.remove()


def seq2seq_attnlrp(model: GraphSeq2Seq, inputs: Any, graph: Any = None) -> Seq2SeqRelevance:
    """AttnLRP of a ``GraphSeq2Seq`` on ``inputs = (src (B, M), tgt (B, N))``.

    The explained score: the logit of the predicted next token at every real
    (not ``pad_id``) decoder position, summed. ``graph`` as for
    :func:`~graphattn.flow.nn_seq2seq.seq2seq_run`.

    Raises
    ------
    TypeError, ValueError
        On inputs or graphs :func:`~graphattn.flow.nn_seq2seq.seq2seq_run` refuses.

    Examples
    --------
    >>> from graphattn import GraphSeq2Seq
    >>> from graphattn.flow import contributions, cross_rollout, split_cross_layers
    >>> model = GraphSeq2Seq(9, 9, 8, 2, num_encoder_layers=1, num_decoder_layers=2).eval()
    >>> rel = contributions(model, (torch.tensor([[3, 4, 5]]), torch.tensor([[1, 6]])), "attnlrp")
    >>> len(rel), rel.source_tokens.shape, rel.tokens.shape, rel.stream.shape
    (5, torch.Size([1, 3]), torch.Size([1, 2]), torch.Size([1, 3, 2]))
    >>> cross_rollout(*split_cross_layers(rel)).cross.shape
    torch.Size([2, 3])
    """
    src_store: list[torch.Tensor] = []
    tgt_store: list[torch.Tensor] = []
    enc_out: list[torch.Tensor] = []
    with torch.enable_grad(), ExitStack() as stack:
        for ctx in (
            own_rules(model),
            leaf_output(model.src_emb, src_store),
            leaf_output(model.tgt_emb, tgt_store),
            _encoder_output(model, enc_out),
        ):
            stack.enter_context(ctx)
        run = seq2seq_run(model, inputs, graph)
        last = run.blocks[-1].output()  # (B, N, C) the decoder's output
        real = inputs[1] != model.config.pad_id  # (B, N)
        score = explained_score(model.lm_head(model.decoder.norm(last)), True, real)
    n_enc = len(model.encoder.layers)
    enc, dec = run.blocks[:n_enc], run.blocks[n_enc:]
    streams = ([b.residual for b in enc] + enc_out, [b.residual for b in dec[::2]] + [last])
    layers = [(b.graph, b.weights) for b in run.blocks]
    return seq2seq_relevance(score, (src_store[0], tgt_store[0]), streams, layers, KEY_QUERY_FACTOR)
