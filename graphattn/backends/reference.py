"""The ``"reference"`` backend: plain, readable edge-wise attention; the oracle of the others.

Every edge ``j -> i`` gets ``score = <q_i, k_j> * scale (+ bias)``, the scores
are softmax-normalized over each target's incoming edges and the target sums
its sources' values. All ``(B, E, H, D)`` intermediates are materialized and
autograd differentiates the plain operations, so it is simple rather than fast.
Non-finite inputs go through :func:`~graphattn.backends.base.contain_nonfinite`
like every backend's, so the arithmetic always sees finite ones.
"""

from __future__ import annotations

import torch

from graphattn.backends.base import (
    AttentionRequest,
    KernelCall,
    accumulation_dtype,
    contain_nonfinite,
    dropout_keep,
    edges_on,
    register_backend,
    segment_softmax,
)

__all__ = ["reference_attention"]


def reference_attention(call: KernelCall) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Kernel of the ``"reference"`` backend (contract in :mod:`graphattn.backends.base`).

    Examples
    --------
    >>> from graphattn import TokenGraph
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> q = k = torch.zeros(1, 2, 1, 4)
    >>> v = torch.arange(2.0).view(1, 2, 1, 1)
    >>> out, w = reference_attention(KernelCall(q, k, v, g, scale=0.5, return_weights=True))
    >>> out.flatten().tolist(), w.flatten().tolist()
    ([0.0, 0.5], [1.0, 0.5, 0.5])
    """
    return contain_nonfinite(call, _edgewise)


def _edgewise(call: KernelCall) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The reference kernel proper: plain edge-wise arithmetic on finite inputs."""
    q, k, v = call.q, call.k, call.v
    acc = accumulation_dtype(q.dtype)
    b, n, h, _ = q.shape
    src, dst = edges_on(call.graph, q.device)  # (E,)
    score = (q[:, dst].to(acc) * k[:, src].to(acc)).sum(-1) * call.scale  # (B, E, H)
    if call.bias is not None:
        score = score + call.bias  # (B, E, H)
    weights = segment_softmax(score, dst, n)  # (B, E, H)
    p = weights
    if call.dropout_p > 0:
        keep = dropout_keep(tuple(weights.shape), call.dropout_p, call.generator, q.device)
        p = weights * keep.to(weights.dtype) / (1.0 - call.dropout_p)  # (B, E, H)
    message = p.unsqueeze(-1) * v[:, src].to(acc)  # (B, E, H, Dv)
    out = message.new_zeros(b, n, h, v.shape[-1]).index_add(1, dst, message)  # (B, N, H, Dv)
    return out.to(q.dtype), (weights if call.return_weights else None)


def _supports(request: AttentionRequest) -> str | None:
    """The reference backend runs every request."""
    return None


register_backend("reference", reference_attention, _supports)
