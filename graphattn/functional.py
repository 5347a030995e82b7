"""Functional attention on token graphs: ``graph_attention``.

Temporary plain implementation that fixes the public signature; the full core
(validation, backends, variants, memory-saving autograd) replaces its body.
"""

from __future__ import annotations

import math

import torch

from graphattn.graph import TokenGraph

__all__ = ["graph_attention"]


def graph_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    graph: TokenGraph,
    *,
    scale: float | None = None,
    bias: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    return_weights: bool = False,
    backend: str = "auto",
    generator: torch.Generator | None = None,
):
    """Multi-head attention along the edges of ``graph`` (see DESIGN.md).

    ``q (N, H, D)`` or ``(B, N, H, D)``, ``k (M, H, D)``, ``v (M, H, Dv)``;
    returns ``out (N, H, Dv)`` and, with ``return_weights``, ``weights (E, H)``.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> q = k = v = torch.ones(2, 1, 4)
    >>> graph_attention(q, k, v, g).shape
    torch.Size([2, 1, 4])
    """
    squeeze = q.dim() == 3
    if squeeze:
        q, k, v = q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    src, dst = graph.src.to(q.device), graph.dst.to(q.device)  # (E,)
    score = (q[:, dst] * k[:, src]).sum(-1).float() * scale  # (B, E, H)
    if bias is not None:
        score = score + bias
    n = graph.num_nodes
    idx = dst.view(1, -1, 1).expand_as(score)
    smax = torch.full((q.shape[0], n, q.shape[2]), -math.inf, device=q.device)
    smax = smax.scatter_reduce(1, idx, score, "amax", include_self=True)
    p = torch.exp(score - smax.gather(1, idx).nan_to_num(neginf=0.0))  # (B, E, H)
    denom = torch.zeros_like(smax).scatter_add(1, idx, p)
    w = p / denom.gather(1, idx).clamp_min(torch.finfo(p.dtype).tiny)  # (B, E, H)
    out = torch.zeros(q.shape[0], n, q.shape[2], v.shape[-1], dtype=w.dtype, device=q.device)
    out.index_add_(1, dst, w.unsqueeze(-1) * v[:, src].to(w.dtype))  # (B, N, H, Dv)
    out, w = out.to(q.dtype), w
    if squeeze:
        out, w = out[0], w[0]
    return (out, w) if return_weights else out
