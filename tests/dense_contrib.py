"""Dense reference pieces shared by the contribution tests (written out, not from graphattn)."""

import math

import torch


def dense_attention(attn, xq, xkv, mask, zero=None):
    """A GraphAttention densely: weights ``A (B, H, N, M)`` and per-pair terms ``T (B, N, M, C)``.

    ``mask (N, M)`` or ``(B, N, M)``; ``zero``: a source whose value vector is zeroed.
    """
    B, N, C = xq.shape
    M = xkv.shape[1]
    H = attn.num_heads
    D = C // H
    wq, wk, wv = attn.in_proj_weight.chunk(3)
    bq, bk, bv = attn.in_proj_bias.chunk(3)
    q = (xq @ wq.T + bq).view(B, N, H, D)
    k = (xkv @ wk.T + bk).view(B, M, H, D)
    v = (xkv @ wv.T + bv).view(B, M, H, D)
    scores = torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(D)
    mask = mask.expand(B, N, M)[:, None]  # (B, 1, N, M)
    A = scores.masked_fill(~mask, -math.inf).softmax(-1).nan_to_num(0.0)  # empty rows -> 0
    vo = torch.stack(
        [v[:, :, h] @ attn.out_proj.weight[:, h * D : (h + 1) * D].T for h in range(H)], 1
    )  # (B, H, M, C)
    if zero is not None:
        vo = vo.clone()
        vo[:, :, zero] = 0
    return A, torch.einsum("bhij,bhjc->bijc", A, vo)


def ln_share(norm, terms, total):
    """LayerNorm spread over summands ``terms (B, N, M, C)`` of ``total (B, N, C)``."""
    sigma = torch.sqrt(total.var(-1, unbiased=False) + norm.eps)[..., None, None]  # (B, N, 1, 1)
    return norm.weight * (terms - terms.mean(-1, keepdim=True)) / sigma


def rownorm(c):
    return c / c.sum(-1, keepdim=True)


def to_dense(graph, c):
    out = torch.zeros(c.shape[0], graph.num_nodes, graph.num_src_nodes, dtype=c.dtype)
    out[:, graph.dst, graph.src] = c
    return out
