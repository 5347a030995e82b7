"""Per-edge contributions of one attention block: ALTI, GlobEnc and Value Zeroing.

Each function takes an :class:`~graphattn.flow.blocks.AttentionBlock` and
returns ``(graph, c (B, E))``: ``c[b, e] >= 0`` is the share of target
``dst[e]``'s output that came from source ``src[e]``; every target with an
entry has shares summing to 1. ALTI and GlobEnc count the residual ``x_i`` as a
contribution of token ``i`` to itself: on a self graph without the edge
``i -> i`` the returned graph is the layer's graph plus self loops (the self
entry then holds the residual alone); on a cross graph the decoder's own
stream is not a source, so its term is left out and the shares are over the
encoder tokens only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from graphattn.flow.blocks import AttentionBlock, attend, live_edges
from graphattn.graph import TokenGraph

__all__ = [
    "alti",
    "attention_shares",
    "globenc",
    "grad_attention_shares",
    "normalize_per_target",
    "value_zeroing",
]


def normalize_per_target(
    graph: TokenGraph, c: torch.Tensor, live: torch.Tensor | None = None
) -> torch.Tensor:
    """``c (B, E)`` divided by its sum over each target's edges.

    ``live (B, E)``, a bool mask, marks the edges a target attends through
    (a nonzero weight in some head; :meth:`AttentionBlock.live`): the others,
    e.g. the edges leaving padding, get 0. A target whose live entries are all
    zero gets equal shares over its live edges (over all its edges when
    ``live`` is None); a target with no live edge gets zeros. A target with a
    non-finite live entry (a NaN in the layer's output there) gets NaN shares
    on all its edges, never plausible numbers.

    Examples
    --------
    >>> from graphattn import patterns
    >>> g = patterns.get("full", 2)  # edges 0->0, 1->0, 0->1, 1->1
    >>> normalize_per_target(g, torch.tensor([[1.0, 3.0, 0.0, 0.0]]))
    tensor([[0.2500, 0.7500, 0.5000, 0.5000]])
    >>> live = torch.tensor([[True, True, True, False]])  # source 1 is padding for target 1
    >>> normalize_per_target(g, torch.tensor([[1.0, 3.0, 0.0, 0.0]]), live)
    tensor([[0.2500, 0.7500, 1.0000, 0.0000]])
    >>> normalize_per_target(g, torch.tensor([[1.0, math.nan, 2.0, 2.0]]))  # target 0 read a NaN
    tensor([[   nan,    nan, 0.5000, 0.5000]])
    """
    live = torch.ones_like(c, dtype=torch.bool) if live is None else live.to(c.device)
    c = torch.where(live, c, torch.zeros_like(c))  # (B, E)
    dst = graph.dst.to(c.device)  # (E,)
    total = c.new_zeros(c.shape[0], graph.num_nodes).index_add_(1, dst, c)  # (B, N)
    count = c.new_zeros(c.shape[0], graph.num_nodes).index_add_(1, dst, live.to(c.dtype))
    uniform = live / count.clamp(min=1)[:, dst]  # (B, E)
    safe = torch.where(total > 0, total, torch.ones_like(total))  # (B, N)
    shares = torch.where(total[:, dst] > 0, c / safe[:, dst], uniform)  # (B, E)
    return shares.masked_fill(~torch.isfinite(total)[:, dst], math.nan)  # NaN or inf read


def attention_shares(graph: TokenGraph, weights: torch.Tensor) -> torch.Tensor:
    """Raw attention: the head mean of ``weights (B, E, H)``, normalized over the live edges."""
    return normalize_per_target(graph, weights.mean(-1), live_edges(weights))


def grad_attention_shares(
    graph: TokenGraph, weights: torch.Tensor, grad: torch.Tensor | None
) -> torch.Tensor:
    """Chefer et al. (2021): ``mean_h max(0, grad * weights)``, normalized over the live edges.

    ``grad (B, E, H)`` is the gradient of the explained score with respect to
    ``weights`` (None: the score does not depend on them, all zero).
    """
    grad = torch.zeros_like(weights) if grad is None else grad
    c = (grad * weights).clamp(min=0).mean(-1).detach()  # (B, E)
    return normalize_per_target(graph, c, live_edges(weights))


def _with_residual(block: AttentionBlock) -> tuple[TokenGraph, torch.Tensor, torch.Tensor]:
    """The terms ``t_e`` of every edge, with the residual ``x_i`` added on the self edge.

    Returns the graph (plus self loops on a self graph lacking some), its
    ``terms (B, E', C)`` and its live edges ``(B, E')`` (every self entry
    is live: it holds the residual).
    """
    g = block.graph
    terms, live = block.edge_terms(), block.live()  # (B, E, C), (B, E)
    if g.is_cross:
        return g, terms, live
    full = g.add_self_loops()
    pos = _positions(full, g)  # (E,) where each old edge sits in the new order
    out = terms.new_zeros(terms.shape[0], full.num_edges, terms.shape[2])
    out[:, pos] = terms  # (B, E', C)
    loops = torch.nonzero(full.src == full.dst).squeeze(1).to(terms.device)  # (N,), by target
    out[:, loops] += block.residual  # the self entry of target i gets x_i
    full_live = live.new_zeros(live.shape[0], full.num_edges)
    full_live[:, pos] = live
    full_live[:, loops] = True
    return full, out, full_live


def _positions(full: TokenGraph, sub: TokenGraph) -> torch.Tensor:
    """Index in ``full``'s edge order of each edge of ``sub`` (a subgraph of it)."""
    m = full.num_src_nodes
    keys = full.dst * m + full.src  # (E',) sorted: canonical order
    return torch.searchsorted(keys, sub.dst * m + sub.src)  # (E,)


def _norm_terms(norm: nn.LayerNorm, terms: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """LayerNorm spread over its summands: ``g * (t - mean(t)) / sigma(total)`` per term.

    ``sum_e`` of the result plus ``norm.bias`` equals ``norm(total)`` when
    ``total = sum_e terms`` (the bias is nobody's contribution).
    ``terms (B, E, C)`` and ``total (B, E, C)`` (the sum each term belongs to).
    """
    var = total.var(-1, unbiased=False, keepdim=True)  # (B, E, 1)
    out = (terms - terms.mean(-1, keepdim=True)) / torch.sqrt(var + norm.eps)
    return out if norm.weight is None else out * norm.weight


def _after_norm1(
    block: AttentionBlock,
) -> tuple[TokenGraph, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-edge terms (residual as the self term) and the stream after the first norm.

    Returns the graph with self loops, its terms ``(B, E', C)`` spread over
    ``norm1`` where the block has one, the stream ``z (B, N, C)`` (after
    ``norm1``), the edges' targets ``dst (E',)`` and the live edges ``(B, E')``.
    """
    graph, terms, live = _with_residual(block)  # (B, E', C), (B, E')
    dst = graph.dst.to(terms.device)
    z = block.residual + block.attention_output()  # (B, N, C)
    if block.norm1 is not None:
        terms = _norm_terms(block.norm1, terms, z[:, dst])
        z = block.norm1(z)
    return graph, terms, z, dst, live


def alti(block: AttentionBlock) -> tuple[TokenGraph, torch.Tensor]:
    """ALTI (Ferrando et al. 2022) of one block.

    The block's output before the feed-forward network, ``y_i = norm1(z_i)``
    (post-LN) or ``y_i = z_i`` (pre-LN), is split into one term per source,
    ``T_i(x_j) = norm1-share(a_ij + [i = j] x_i)``, and
    ``c_ij = max(0, ||y_i||_1 - ||y_i - T_i(x_j)||_1)``, normalized over ``j``.
    Includes the residual and the first layer norm (and, in a pre-LN block,
    the pre-attention norm through the values); the output bias and the
    norm's bias are part of ``y_i`` but nobody's term; excludes the FFN.
    """
    graph, terms, z, dst, live = _after_norm1(block)  # terms (B, E', C), z (B, N, C)
    y = z[:, dst]  # (B, E', C) the output of each entry's target
    c = (y.abs().sum(-1) - (y - terms).abs().sum(-1)).clamp(min=0)  # (B, E')
    return graph, normalize_per_target(graph, c, live)


def globenc(block: AttentionBlock) -> tuple[TokenGraph, torch.Tensor]:
    """GlobEnc (Modarressi et al. 2022) of one block.

    ``c_ij = ||norm2-share(norm1-share(a_ij + [i = j] x_i))||_2``, normalized
    over ``j``: the terms pass through the residual and norm of the attention
    and through the second residual and norm, where the FFN output counts only
    in the second norm's scale (the FFN itself is skipped). In a pre-LN block
    the stream has no norm, so ``c_ij = ||a_ij + [i = j] x_i||_2``.
    """
    graph, terms, z, dst, live = _after_norm1(block)  # terms (B, E', C), z (B, N, C)
    if block.norm2 is not None:
        w = z + block.ffn(z)  # (B, N, C) the input of the second norm
        terms = _norm_terms(block.norm2, terms, w[:, dst])
    return graph, normalize_per_target(graph, terms.norm(dim=-1), live)


def value_zeroing(block: AttentionBlock, chunk: int = 4096) -> tuple[TokenGraph, torch.Tensor]:
    """Value Zeroing (Mohebbi et al. 2023) of one block.

    For every edge ``e = j -> i``: the layer output ``y_i^{-j}`` with source
    ``j``'s value vector zeroed for target ``i`` (weights, residual and the
    rest of the layer unchanged), and ``c_ij = 1 - cos(y_i^{-j}, y_i)``,
    normalized over ``j``. Includes residuals, both norms and the FFN. Only
    the edges' own targets are recomputed, token-wise, ``chunk`` edges at a
    time: no extra pass over the whole model.
    """
    g = block.graph
    terms = block.edge_terms()  # (B, E, C)
    z = block.residual + attend(g, terms, block.out_bias)  # (B, N, C)
    y = block.finish(z)  # (B, N, C)
    dst = g.dst.to(terms.device)  # (E,)
    parts = []
    for lo in range(0, g.num_edges, chunk):
        d = dst[lo : lo + chunk]
        y_off = block.finish(z[:, d] - terms[:, lo : lo + chunk])  # (B, e, C)
        parts.append(1.0 - F.cosine_similarity(y_off, y[:, d], dim=-1))  # (B, e)
    c = torch.cat(parts, 1) if parts else terms.new_zeros(terms.shape[0], 0)  # (B, E)
    return g, normalize_per_target(g, c.clamp(min=0), block.live())
