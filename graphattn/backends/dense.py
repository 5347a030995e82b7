"""The ``"dense"`` backend: PyTorch's scaled dot-product attention with the graph's mask.

Good for small or dense graphs, where the ``(N, M)`` mask is cheap. Targets
without a usable edge are given a harmless all-true mask row (so no ``NaN``
appears, in values or gradients) and their output is then set to exactly zero.
With a bias or ``return_weights`` the scores are formed explicitly in the
accumulation dtype, since SDPA returns no weights. Full and causal graphs need
no mask at all (:func:`mask_structure`): SDPA then runs its fused kernels, whose
memory does not grow with ``N * M``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from graphattn.backends.base import (
    PLANS,
    AttentionRequest,
    KernelCall,
    accumulation_dtype,
    contain_nonfinite,
    edges_on,
    register_backend,
)
from graphattn.graph import TokenGraph

__all__ = ["MAX_ELEMENTS", "MAX_MASK_ELEMENTS", "dense_attention", "mask_structure"]

# Largest B * H * N * M score matrix formed explicitly (with a bias or returned weights).
MAX_ELEMENTS = 2**24
# Largest N * M mask handed to scaled_dot_product_attention otherwise.
MAX_MASK_ELEMENTS = 2**26


def _mask_on(graph: TokenGraph, device: torch.device) -> torch.Tensor:
    """The graph's bool mask ``(N, M)`` on ``device``, cached while the graph lives."""
    key = ("dense_mask", str(device))
    return PLANS.get(graph, key, lambda: graph.to_dense_mask().to(device))


def mask_structure(graph: TokenGraph) -> str:
    """``"full"``, ``"causal"`` or ``"general"``: whether SDPA needs the graph's mask.

    ``"causal"`` means a self graph whose edges are exactly ``j <= i``, which
    SDPA runs with ``is_causal=True``. Cached with the graph's plans.

    Examples
    --------
    >>> from graphattn import patterns
    >>> [mask_structure(patterns.get(p, 6)) for p in ("full", "causal")]
    ['full', 'causal']
    >>> mask_structure(patterns.sliding_window(6, 2))
    'general'
    """

    def build() -> str:
        n, m, e = graph.num_nodes, graph.num_src_nodes, graph.num_edges
        if e == n * m:
            return "full"
        if not graph.is_cross and e == n * (n + 1) // 2 and bool((graph.src <= graph.dst).all()):
            return "causal"  # n(n+1)/2 distinct edges with j <= i are all of them
        return "general"

    return PLANS.get(graph, "mask_structure", build)


def dense_attention(call: KernelCall) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Kernel of the ``"dense"`` backend (contract in :mod:`graphattn.backends.base`).

    Raises
    ------
    ValueError
        If ``dropout_p > 0``: SDPA's dropout cannot follow a seeded per-edge mask.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> q = k = torch.zeros(1, 2, 1, 4)
    >>> v = torch.arange(2.0).view(1, 2, 1, 1)
    >>> out, _ = dense_attention(KernelCall(q, k, v, g, scale=0.5))
    >>> out.flatten().tolist()
    [0.0, 0.5]
    """
    if call.dropout_p > 0:
        raise ValueError(f"the dense backend has no dropout, got dropout_p={call.dropout_p}")
    return contain_nonfinite(call, _dense)


def _dense(call: KernelCall) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The dense kernel proper, on the whole ``N x M`` score matrix."""
    acc = accumulation_dtype(call.q.dtype)
    qt, kt, vt = (t.transpose(1, 2).to(acc) for t in (call.q, call.k, call.v))  # (B, H, *, D)
    if call.bias is None and not call.return_weights:
        out = _sdpa(qt, kt, vt, call.graph, call.scale)  # (B, N, H, Dv)
        return out.to(call.q.dtype), None
    return _explicit_scores(qt, kt, vt, call)


def _sdpa(qt, kt, vt, graph: TokenGraph, scale: float) -> torch.Tensor:
    """SDPA on ``(B, H, L, D)`` operands with the graph's mask (none if full or causal).

    Returns ``out (B, N, H, Dv)``; targets without an edge get zeros.
    """
    structure = mask_structure(graph)
    if structure != "general":
        causal = structure == "causal"
        out = F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal, scale=scale)
        return out.transpose(1, 2)  # (B, N, H, Dv)
    mask = _mask_on(graph, qt.device)  # (N, M)
    valid = mask.any(1)  # (N,)
    safe = mask | ~valid.unsqueeze(1)  # (N, M) empty rows attend everywhere, zeroed below
    out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=safe, scale=scale)
    return out.transpose(1, 2) * valid.view(1, -1, 1, 1)  # (B, N, H, Dv)


def _explicit_scores(qt, kt, vt, call: KernelCall) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The ``(B, H, N, M)`` scores formed explicitly, with the bias and for the weights."""
    b, h, n, _ = qt.shape
    m = kt.shape[2]
    src, dst = edges_on(call.graph, qt.device)  # (E,)
    score_bias = qt.new_full((b, h, n * m), -math.inf)  # (B, H, N*M)
    edge_bias = 0.0 if call.bias is None else call.bias.transpose(1, 2)  # (B, H, E)
    score_bias[:, :, dst * m + src] = edge_bias
    score_bias = score_bias.view(b, h, n, m)  # (B, H, N, M)
    valid = (score_bias > -math.inf).any(-1, keepdim=True)  # (B, H, N, 1)
    score_bias = score_bias.masked_fill(~valid, 0.0)  # empty rows: finite, zeroed below
    score = torch.matmul(qt, kt.transpose(-1, -2)) * call.scale + score_bias  # (B, H, N, M)
    probs = torch.softmax(score, -1) * valid  # (B, H, N, M)
    out = torch.matmul(probs, vt).transpose(1, 2)  # (B, N, H, Dv)
    weights = None
    if call.return_weights:
        weights = probs[:, :, dst, src].transpose(1, 2)  # (B, E, H)
    return out.to(call.q.dtype), weights


def _supports(request: AttentionRequest) -> str | None:
    """Refuse dropout, and score matrices or masks above the limits of this module."""
    if request.dropout > 0:
        return "dense has no seeded per-edge dropout (dropout_p > 0)"
    cells = request.graph.num_nodes * request.graph.num_src_nodes
    if request.has_bias or request.return_weights:
        size = request.batch * request.num_heads * cells
        if size > MAX_ELEMENTS:
            return f"B*H*N*M = {size} scores exceed the dense limit of {MAX_ELEMENTS}"
    elif cells > MAX_MASK_ELEMENTS and mask_structure(request.graph) == "general":
        return f"the N*M = {cells} mask exceeds the dense limit of {MAX_MASK_ELEMENTS}"
    return None


register_backend("dense", dense_attention, _supports)
