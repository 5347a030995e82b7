"""``GraphSeq2Seq`` as a :class:`~graphattn.flow.blocks.ContributionModel` run.

A decoder layer holds two attentions, so it becomes two blocks: its
self-attention (with its residual and, post-LN, ``norm1``; no feed-forward
network) and its cross-attention (queries from the decoder stream, values
from the encoder's memory, residual the decoder stream, then ``norm2``, the
feed-forward network and ``norm3``). :func:`seq2seq_run` returns the encoder's
blocks first, then per decoder layer its self block and its cross block: the
order :func:`split_cross_layers` reads to call
:func:`~graphattn.flow.cross_rollout`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from graphattn._validate import check_int, check_token_ids
from graphattn.flow.batch import check_example, check_pairs, layers_batch
from graphattn.flow.blocks import ContributionRun
from graphattn.flow.nn_models import layer_block, sublayer_block
from graphattn.graph import TokenGraph
from graphattn.nn import GraphSeq2Seq, padding_bias

__all__ = ["seq2seq_run", "split_cross_layers"]

Layer = tuple[TokenGraph, torch.Tensor]


def _as_cross(graph: TokenGraph) -> TokenGraph:
    """A cross-layer graph flagged as cross (a square one may come unflagged)."""
    if graph.is_cross:
        return graph
    return TokenGraph(graph.edge_index, graph.num_nodes, num_src_nodes=graph.num_src_nodes,
                      cross=True)


def _per_layer(spec: object, count: int, what: str) -> list[TokenGraph]:
    if isinstance(spec, TokenGraph):
        return [spec] * count
    if isinstance(spec, Sequence) and len(spec) == count:
        if all(isinstance(g, TokenGraph) for g in spec):
            return list(spec)
    raise TypeError(f"{what} must be a TokenGraph or a list of {count} TokenGraphs, "
                    f"got {type(spec).__name__}")


def _graphs(model: GraphSeq2Seq, graph: object, n: int, m: int) -> list[list[TokenGraph]]:
    """Encoder, decoder self and cross graphs: ``graph`` (a triple) or the model's own."""
    own = model.graphs(n, m)
    if graph is None:
        enc, dec, cross = own
    elif isinstance(graph, (tuple, list)) and len(graph) == 3:
        enc, dec, cross = (
            _per_layer(spec, len(layers), what)
            for spec, layers, what in zip(graph, own, ("encoder", "decoder self", "cross"),
                                          strict=True)
        )
    else:
        raise TypeError("graph of a GraphSeq2Seq must be None or a triple (encoder, decoder "
                        f"self, cross) of graphs or per-layer lists, got {type(graph).__name__}")
    for gs, rows, cols, what in ((enc, m, m, "encoder"), (dec, n, n, "decoder self"),
                                 (cross, n, m, "cross")):
        for k, g in enumerate(gs):
            if (g.num_nodes, g.num_src_nodes) != (rows, cols) or (what != "cross" and g.is_cross):
                raise ValueError(f"{what} graph of layer {k} must have {rows} targets and "
                                 f"{cols} sources, got {g!r}")
    return [enc, dec, [_as_cross(g) for g in cross]]


def _check_inputs(model: GraphSeq2Seq, inputs: object) -> tuple[torch.Tensor, torch.Tensor]:
    """``inputs`` is ``(src (B, M), tgt (B, N))``, both id tensors of one batch size."""
    if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
        raise TypeError("inputs of a GraphSeq2Seq must be a pair (src ids (B, M), tgt ids "
                        f"(B, N)), got {type(inputs).__name__}")
    src, tgt = inputs
    c = model.config
    check_token_ids(src, "src", c.src_vocab_size, c.max_len)
    check_token_ids(tgt, "tgt", c.tgt_vocab_size, c.max_len)
    if src.shape[0] != tgt.shape[0]:
        raise ValueError(f"src and tgt must have the same batch size, got {src.shape[0]} "
                         f"and {tgt.shape[0]}")
    return src, tgt


def _bias(graph: TokenGraph, valid: torch.Tensor, heads: int, x: torch.Tensor):
    """Padding bias of ``graph`` for sources ``valid (B, M)``; None without padding."""
    return None if bool(valid.all()) else padding_bias(graph, valid, heads, dtype=x.dtype)


def seq2seq_run(model: GraphSeq2Seq, inputs: object, graph: object = None) -> ContributionRun:
    """Run a ``GraphSeq2Seq`` teacher-forced on ``inputs = (src (B, M), tgt (B, N))``.

    Padding (``pad_id``) is masked as in the model's forward. The blocks are
    the encoder layers', then per decoder layer its self block and its cross
    block; the score explained by ``"grad_attention"`` is the sum over the
    real target positions of the log-probability of the predicted next token.

    Parameters
    ----------
    model : GraphSeq2Seq
    inputs : pair of Tensors
        Source ids ``(B, M)`` and decoder input ids ``(B, N)``.
    graph : triple, optional
        ``(encoder, decoder self, cross)``, each a TokenGraph for every layer
        or a list of one per layer; default the model's own graphs.

    Raises
    ------
    TypeError, ValueError
        On inputs the model would reject or graphs of the wrong sizes.
    """
    src, tgt = _check_inputs(model, inputs)
    enc_graphs, dec_graphs, cross_graphs = _graphs(model, graph, tgt.shape[1], src.shape[1])
    heads, pad = model.config.num_heads, model.config.pad_id
    src_valid, tgt_valid = src != pad, tgt != pad  # (B, M), (B, N)
    x = model.src_emb(src) + model.src_pos(torch.arange(src.shape[1], device=src.device))
    blocks = []
    for layer, g in zip(model.encoder.layers, enc_graphs, strict=True):
        blocks.append(layer_block(layer, x, g, _bias(g, src_valid, heads, x)))
        x = blocks[-1].output()  # (B, M, C)
    memory = model.encoder.norm(x)  # (B, M, C)
    x = model.tgt_emb(tgt) + model.tgt_pos(torch.arange(tgt.shape[1], device=tgt.device))
    for layer, g, cg in zip(model.decoder.layers, dec_graphs, cross_graphs, strict=True):
        # self-attention: residual and norm1, no FFN of its own
        blocks.append(sublayer_block(layer, layer.self_attn, x, g, _bias(g, tgt_valid, heads, x),
                                     layer.norm1, None))
        x = blocks[-1].output()  # (B, N, C)
        # cross-attention on the memory: residual and norm2, then the FFN and norm3
        blocks.append(sublayer_block(layer, layer.multihead_attn, x, cg,
                                     _bias(cg, src_valid, heads, x), layer.norm2, layer.norm3,
                                     memory))
        x = blocks[-1].output()  # (B, N, C)
    logp = model.lm_head(model.decoder.norm(x)).log_softmax(-1)  # (B, N, V)
    return ContributionRun(blocks, (logp.amax(-1) * tgt_valid).sum())


def split_cross_layers(
    layers: Sequence[Layer], example: int | None = None, *, b: int | None = None
) -> tuple[list[Layer], list[Layer], list[Layer]]:
    """Encoder, decoder self and decoder cross layers of one example.

    ``layers`` is what :func:`~graphattn.flow.contributions` returns for an
    encoder-decoder model: encoder layers, then per decoder layer its self
    layer and its cross layer (a cross graph). The result is in the order of
    :func:`~graphattn.flow.cross_rollout`'s arguments.

    Parameters
    ----------
    layers : sequence of (TokenGraph, Tensor)
        Weights ``(B, E)``/``(B, E, H)`` of a batch, or ``(E,)``/``(E, H)``
        of one example (as ``graphattn.hf.Recording.layers(example)`` gives
        them).
    example : int, optional
        The example of a batch, as in :mod:`graphattn.plot`: may be left out
        for a batch of one or for one example's layers.
    b : int, optional
        Deprecated name of ``example``.

    Raises
    ------
    ValueError
        If ``layers`` does not end in decoder (self, cross) pairs after the
        encoder layers, ``example`` is out of range, or it is left out for a
        batch of more than one.

    Examples
    --------
    >>> from graphattn import GraphSeq2Seq
    >>> from graphattn.flow import contributions, cross_rollout
    >>> model = GraphSeq2Seq(9, 9, 8, 2, num_encoder_layers=1, num_decoder_layers=2).eval()
    >>> layers = contributions(model, (torch.tensor([[3, 4, 5]]), torch.tensor([[1, 6]])))
    >>> enc, dec, cross = split_cross_layers(layers)
    >>> len(enc), len(dec), len(cross)
    (1, 2, 2)
    >>> cross_rollout(enc, dec, cross).cross.shape
    torch.Size([2, 3])
    """
    check_pairs(layers)
    if b is not None:
        b = check_int(b, "b")
        warnings.warn(
            "split_cross_layers(b=...) is deprecated; pass example=", DeprecationWarning, 2
        )
        example = b if example is None else example
    crosses = [k for k, (g, _) in enumerate(layers) if g.is_cross]
    n_enc = crosses[0] - 1 if crosses else -1
    pairs = [n_enc + 2 * i + 1 for i in range(len(crosses))]
    if not crosses or n_enc < 0 or crosses != pairs or crosses[-1] != len(layers) - 1:
        raise ValueError(
            "layers must be encoder layers followed by decoder (self, cross) pairs; the cross "
            f"graphs are at positions {crosses} of {len(layers)}. A recording of several "
            "forwards holds their calls one after another (generate makes one forward per new "
            "token): record one forward, with the decoder's tokens as decoder_input_ids"
        )
    index = check_example(example, layers_batch(list(layers)))  # flow's one batch rule
    picked = [(g, c if index is None else c[index]) for g, c in layers]
    return picked[:n_enc], picked[n_enc::2], picked[n_enc + 1 :: 2]
