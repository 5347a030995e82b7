"""The ``"reference"`` backend: plain, readable edge-wise attention; the oracle of the others.

Every edge ``j -> i`` gets ``score = <q_i, k_j> * scale (+ bias)``, the scores
are softmax-normalized over each target's incoming edges and the target sums
its sources' values. All ``(B, E, H, D)`` intermediates are materialized and
autograd differentiates the plain operations, so it is simple rather than fast.
"""

from __future__ import annotations

import torch

from graphattn.backends.base import (
    AttentionRequest,
    accumulation_dtype,
    dropout_keep,
    edges_on,
    register_backend,
    segment_softmax,
)
from graphattn.graph import TokenGraph

__all__ = ["reference_attention"]


def reference_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    graph: TokenGraph,
    *,
    scale: float,
    bias: torch.Tensor | None,
    return_weights: bool,
    dropout_p: float,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Kernel of the ``"reference"`` backend (contract in :mod:`graphattn.backends.base`).

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> q = k = torch.zeros(1, 2, 1, 4)
    >>> v = torch.arange(2.0).view(1, 2, 1, 1)
    >>> out, w = reference_attention(q, k, v, g, scale=0.5, bias=None, return_weights=True,
    ...                              dropout_p=0.0, generator=None)
    >>> out.flatten().tolist(), w.flatten().tolist()
    ([0.0, 0.5], [1.0, 0.5, 0.5])
    """
    acc = accumulation_dtype(q.dtype)
    b, n, h, _ = q.shape
    src, dst = edges_on(graph, q.device)  # (E,)
    score = (q[:, dst].to(acc) * k[:, src].to(acc)).sum(-1) * scale  # (B, E, H)
    if bias is not None:
        score = score + bias  # (B, E, H)
    weights = segment_softmax(score, dst, n)  # (B, E, H)
    p = weights
    if dropout_p > 0:
        keep = dropout_keep(tuple(weights.shape), dropout_p, generator, q.device)  # (B, E, H)
        p = weights * keep.to(weights.dtype) / (1.0 - dropout_p)
    message = p.unsqueeze(-1) * v[:, src].to(acc)  # (B, E, H, Dv)
    out = message.new_zeros(b, n, h, v.shape[-1]).index_add(1, dst, message)  # (B, N, H, Dv)
    return out.to(q.dtype), (weights if return_weights else None)


def _supports(request: AttentionRequest) -> str | None:
    """The reference backend runs every request."""
    return None


register_backend("reference", reference_attention, _supports)
