"""graphattn's own models as :class:`~graphattn.flow.blocks.ContributionModel` runs.

:func:`layer_block` reads a :class:`~graphattn.nn.GraphTransformerLayer`
(pre-LN or post-LN) on an input into an
:class:`~graphattn.flow.blocks.AttentionBlock` (through :func:`sublayer_block`,
which also reads each attention of a decoder layer); :func:`model_run` runs a
:class:`~graphattn.nn.GraphTransformer` or :class:`~graphattn.nn.GraphLM`
layer by layer through its blocks. Dropout is not applied (evaluation mode).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from graphattn._validate import check_token_ids
from graphattn.backends.front import repeat_kv_heads
from graphattn.flow.blocks import AttentionBlock, ContributionRun
from graphattn.flow.lrp_rules import activation
from graphattn.graph import TokenGraph
from graphattn.nn import (
    GraphAttention,
    GraphDecoderLayer,
    GraphLM,
    GraphTransformer,
    GraphTransformerLayer,
)
from graphattn.nn.layers import ACTIVATIONS

__all__ = ["layer_block", "model_run", "output_values", "sublayer_block"]


def output_values(attn: GraphAttention, source: torch.Tensor) -> torch.Tensor:
    """Per-head value vectors after the output projection: ``(B, M, H, C)`` from ``(B, M, C)``.

    ``V[b, j, h] = W_O[:, h] (W_V^h source[b, j] + b_V^h)``; grouped key/value
    heads are shared by their query heads as in :func:`graph_attention`.
    """
    h, d = attn.num_heads, attn.head_dim
    kv = attn.num_kv_heads * d
    if attn.in_proj_weight is not None:
        w_v = attn.in_proj_weight[-kv:]  # (H_kv*D, C)
    else:
        w_v = attn.v_proj_weight
    b_v = None if attn.in_proj_bias is None else attn.in_proj_bias[-kv:]
    v = F.linear(source, w_v, b_v).unflatten(-1, (attn.num_kv_heads, d))  # (B, M, H_kv, D)
    v = repeat_kv_heads(v, h)  # (B, M, H, D)
    w_o = attn.out_proj.weight.unflatten(1, (h, d))  # (C, H, D)
    return torch.einsum("bmhd,chd->bmhc", v, w_o)  # (B, M, H, C)


def _no_ffn(u: torch.Tensor) -> torch.Tensor:
    """An attention followed by no feed-forward network (a decoder's self-attention)."""
    return torch.zeros_like(u)


def sublayer_block(
    layer: GraphTransformerLayer | GraphDecoderLayer,
    attn: GraphAttention,
    x: torch.Tensor,
    graph: TokenGraph,
    bias: torch.Tensor | None,
    norm: nn.LayerNorm,
    ffn_norm: nn.LayerNorm | None,
    memory: torch.Tensor | None = None,
) -> AttentionBlock:
    """One attention of ``layer`` with its residual, norm and the FFN after it, if any.

    ``attn`` reads ``norm(x)`` (pre-LN) or ``x (B, N, C)`` (post-LN, then
    ``norm`` follows the residual); its sources are the same tokens, or
    ``memory (B, M, C)`` for a cross-attention. ``ffn_norm`` is the norm of
    the layer's feed-forward network that comes next (before it in pre-LN,
    after its residual in post-LN), None where no FFN follows. ``bias
    (B, E, H)``, if given, is added to the scores (e.g. a
    :func:`~graphattn.nn.padding_bias`).
    """
    pre = layer.norm_first
    query = norm(x) if pre else x  # (B, N, C) what the attention reads
    source = query if memory is None else memory  # (B, M, C)
    _, weights = attn(query, graph, context=memory, bias=bias, need_weights=True)  # (B, E, H)
    act = ACTIVATIONS[layer.activation]

    def ffn(u: torch.Tensor) -> torch.Tensor:
        u = ffn_norm(u) if pre else u
        return layer.linear2(activation(act, layer.linear1(u)))  # (..., C)

    return AttentionBlock(
        graph=graph,
        weights=weights,
        values=output_values(attn, source),
        residual=x,
        out_bias=attn.out_proj.bias,
        norm1=None if pre else norm,
        ffn=_no_ffn if ffn_norm is None else ffn,
        norm2=None if pre or ffn_norm is None else ffn_norm,
    )


def layer_block(
    layer: GraphTransformerLayer,
    x: torch.Tensor,
    graph: TokenGraph,
    bias: torch.Tensor | None = None,
) -> AttentionBlock:
    """The :class:`AttentionBlock` of ``layer`` on ``x (B, N, C)`` along ``graph``.

    ``bias (B, E, H)``, if given, is added to the attention scores (e.g. a
    :func:`~graphattn.nn.padding_bias`).
    """
    return sublayer_block(layer, layer.self_attn, x, graph, bias, layer.norm1, layer.norm2)


def _graphs(model: GraphTransformer | GraphLM, graph: object, n: int) -> list[TokenGraph]:
    """One graph per layer: ``graph`` (one or a list) or, for a GraphLM, its own patterns."""
    if graph is None:
        if isinstance(model, GraphLM):
            return model.graphs(n)
        raise ValueError("graph is required for a GraphTransformer (it has no graphs of its own)")
    if isinstance(graph, TokenGraph):
        return [graph] * len(model.layers)
    if isinstance(graph, Sequence) and len(graph) == len(model.layers):
        if all(isinstance(g, TokenGraph) for g in graph):
            return list(graph)
    raise TypeError(
        f"graph must be None, a TokenGraph or a list of {len(model.layers)} TokenGraphs, "
        f"got {type(graph).__name__}"
    )


def model_run(
    model: GraphTransformer | GraphLM, inputs: torch.Tensor, graph: object = None
) -> ContributionRun:
    """Run a ``GraphTransformer`` (features ``(B, N, C)``) or ``GraphLM`` (ids ``(B, N)``).

    The score explained by ``"grad_attention"``: for a ``GraphLM`` the sum over
    positions of the log-probability of the predicted next token; for a
    ``GraphTransformer`` half the squared norm of its output's mean over the
    tokens (per example, summed), not of each token's output: a post-LN
    layer's or the final norm fixes that length (``C var / (var + eps)``
    with weight 1 and bias 0), whose gradient is ``eps``'s and round-off.
    """
    if isinstance(model, GraphLM):
        check_token_ids(inputs, "inputs", model.config.vocab_size, model.config.max_len)
        pos = torch.arange(inputs.shape[1], device=inputs.device)  # (N,)
        x = model.tok_emb(inputs) + model.pos_emb(pos)  # (B, N, C)
    else:
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3:
            raise ValueError(
                "inputs of a GraphTransformer must be features (B, N, C), got "
                f"{getattr(inputs, 'shape', type(inputs).__name__)}"
            )
        x = inputs
    blocks = []
    for layer, g in zip(model.layers, _graphs(model, graph, x.shape[1]), strict=True):
        blocks.append(layer_block(layer, x, g))
        x = blocks[-1].output()  # (B, N, C)
    if isinstance(model, GraphLM):
        logp = model.lm_head(model.norm(x)).log_softmax(-1)  # (B, N, V)
        return ContributionRun(blocks, logp.amax(-1).sum())
    x = x if model.norm is None else model.norm(x)
    return ContributionRun(blocks, 0.5 * x.mean(1).pow(2).sum())  # x.mean(1): (B, C)
