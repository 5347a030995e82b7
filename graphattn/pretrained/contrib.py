"""The BERT port's layers as :class:`graphattn.flow.AttentionBlock` terms.

:func:`bert_run` is what :meth:`BertModel.contribution_run` does, so
:func:`graphattn.flow.contributions` works on a :class:`BertModel` (post-LN
blocks: ``norm(x + attn(x))``, then ``norm(x + ffn(x))``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from graphattn.flow import AttentionBlock, ContributionRun
from graphattn.flow.lrp_rules import activation
from graphattn.functional import graph_attention
from graphattn.graph import TokenGraph

if TYPE_CHECKING:
    from graphattn.pretrained.bert import BertLayer, BertModel

__all__ = ["bert_layer_block", "bert_run"]


def bert_layer_block(layer: BertLayer, x: torch.Tensor, graph: TokenGraph) -> AttentionBlock:
    """The :class:`AttentionBlock` of one BERT layer on ``x (B, N, C)`` along ``graph``."""
    B, N, C = x.shape
    H, D = layer.num_heads, layer.head_dim
    q = layer.query(x).view(B, N, H, D)  # (B, N, H, D)
    k = layer.key(x).view(B, N, H, D)  # (B, N, H, D)
    v = layer.value(x).view(B, N, H, D)  # (B, N, H, D)
    _, weights = graph_attention(q, k, v, graph, scale=1.0 / math.sqrt(D), return_weights=True)
    w_o = layer.attn_out.weight.view(C, H, D)  # (C, H, D)

    def ffn(u: torch.Tensor) -> torch.Tensor:
        return layer.ffn_out(activation(F.gelu, layer.ffn_in(u)))  # (..., C)

    return AttentionBlock(
        graph=graph,
        weights=weights,  # (B, E, H)
        values=torch.einsum("bmhd,chd->bmhc", v, w_o),  # (B, N, H, C)
        residual=x,
        out_bias=layer.attn_out.bias,
        norm1=layer.attn_norm,
        ffn=ffn,
        norm2=layer.ffn_norm,
    )


def bert_run(model: BertModel, input_ids: Any, graph: Any = None) -> ContributionRun:
    """Run ``model`` block by block on ``input_ids (B, N)``.

    Every text of the batch must have the same real length (one graph serves
    them all). The score explained by ``"grad_attention"`` is half the
    squared norm of the sentence embedding before L2 normalization (the mean
    of the real tokens' outputs).

    Raises
    ------
    ValueError
        If the texts have different lengths, or as :meth:`BertModel.forward`.
    """
    mask, lengths = model.check_ids(input_ids, None)
    if int(lengths.min()) != int(lengths.max()):
        raise ValueError(
            "input_ids must hold texts of one length for contributions (one graph per layer), "
            f"got lengths {lengths.tolist()}; pass the texts one at a time"
        )
    graphs = model.layer_graphs(graph, input_ids[:1], lengths[:1])  # one text's graphs
    x = model.embeddings(input_ids)  # (B, N, C)
    blocks = []
    for layer, g in zip(model.layers, graphs, strict=True):
        blocks.append(bert_layer_block(layer, x, g))
        x = blocks[-1].output()  # (B, N, C)
    m = mask.unsqueeze(-1).to(x.dtype)  # (B, N, 1)
    pooled = (x * m).sum(1) / m.sum(1)  # (B, C)
    return ContributionRun(blocks, 0.5 * pooled.pow(2).sum())
