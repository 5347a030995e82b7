"""Per-edge contributions of one attention block: ALTI, GlobEnc and Value Zeroing.

Each function takes an :class:`~graphattn.flow.blocks.AttentionBlock` and
returns ``(graph, c (B, E))``: ``c[b, e] >= 0`` is the share of target
``dst[e]``'s output that came from source ``src[e]``; every target with an
entry has shares summing to 1. With ``normalize=False`` they return the
scores before that division instead (ALTI's L1 gains, GlobEnc's norms,
Value Zeroing's distances; 0 on the edges a target does not attend through),
the input of the papers' own compositions (``attention_rollout(...,
normalize=False)``). ALTI and GlobEnc count the residual ``x_i`` as a
contribution of token ``i`` to itself: on a self graph without the edge
``i -> i`` the returned graph is the layer's graph plus self loops (the self
entry then holds the residual alone); on a cross graph the decoder's own
stream is not a source, so its term is left out and the shares are over the
encoder tokens only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from graphattn._validate import check_bool
from graphattn.flow.blocks import TERM_ELEMENTS, AttentionBlock, attend, live_edges
from graphattn.graph import TokenGraph

__all__ = [
    "alti",
    "attention_shares",
    "cosine_distance",
    "finish_scores",
    "globenc",
    "grad_attention_shares",
    "normalize_per_target",
    "value_zeroing",
]


def _check_shares(graph: object, c: object, live: object) -> None:
    """The arguments of :func:`normalize_per_target`: a graph, ``c (B, E)``, ``live (B, E)``."""
    if not isinstance(graph, TokenGraph):
        raise TypeError(f"graph must be a TokenGraph, got {type(graph).__name__}")
    for name, value in (("c", c), ("live", live)):
        if name == "live" and value is None:
            continue
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a tensor (B, E), got {type(value).__name__}")
        if value.dim() != 2 or value.shape[1] != graph.num_edges:
            raise ValueError(
                f"{name} must have shape (B, E) with E = graph.num_edges = {graph.num_edges}, "
                f"got {tuple(value.shape)}"
            )
    if live is not None and live.dtype != torch.bool:
        raise TypeError(f"live must be a bool tensor, got {live.dtype}")


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
    _check_shares(graph, c, live)
    live = torch.ones_like(c, dtype=torch.bool) if live is None else live.to(c.device)
    c = torch.where(live, c, torch.zeros_like(c))  # (B, E)
    dst = graph.dst.to(c.device)  # (E,)
    total = c.new_zeros(c.shape[0], graph.num_nodes).index_add_(1, dst, c)  # (B, N)
    count = c.new_zeros(c.shape[0], graph.num_nodes).index_add_(1, dst, live.to(c.dtype))
    uniform = live / count.clamp(min=1)[:, dst]  # (B, E)
    safe = torch.where(total > 0, total, torch.ones_like(total))  # (B, N)
    shares = torch.where(total[:, dst] > 0, c / safe[:, dst], uniform)  # (B, E)
    return shares.masked_fill(~torch.isfinite(total)[:, dst], math.nan)  # NaN or inf read


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - cos(a, b)`` over the last dimension, accurate when ``a`` is close to ``b``.

    ``1 - cosine_similarity`` cancels: in float32 it carries an absolute error
    of about 1e-7, as large as the distances of a target that a source barely
    moves. Here the angle comes from the part of ``a - b`` orthogonal to
    ``b``, ``theta = atan2(||(a - b)_perp||, <a, b / ||b||>)``, and
    ``1 - cos = 2 sin^2(theta / 2)``, with no cancellation. A zero vector is
    at distance 1 from anything (cosine 0, as ``cosine_similarity`` has it).

    Examples
    --------
    >>> a = torch.tensor([[1.0, 0.0], [1.0, 1e-4]])
    >>> b = torch.tensor([[0.0, 2.0], [1.0, 0.0]])
    >>> cosine_distance(a, b)  # 1 - cos: 1 and 5e-9, which float32 1 - cos rounds to 0
    tensor([1.0000e+00, 5.0000e-09])
    """
    norm_b = b.norm(dim=-1, keepdim=True)  # (..., 1)
    unit_b = b / torch.where(norm_b > 0, norm_b, torch.ones_like(norm_b))  # (..., C)
    delta = a - b  # (..., C) exact for nearby a, b
    along = (delta * unit_b).sum(-1, keepdim=True)  # (..., 1)
    across = (delta - along * unit_b).norm(dim=-1)  # (...,) the part orthogonal to b
    theta = torch.atan2(across, (a * unit_b).sum(-1))  # (...,) the angle in [0, pi]
    zero = (norm_b.squeeze(-1) == 0) | (a == 0).all(-1)  # (...,)
    return torch.where(zero, torch.ones_like(theta), 2 * torch.sin(theta / 2) ** 2)


def finish_scores(
    graph: TokenGraph, c: torch.Tensor, live: torch.Tensor, normalize: bool
) -> torch.Tensor:
    """Raw scores ``c (B, E)`` per target: :func:`normalize_per_target`, or (``normalize=False``)
    kept as they are, 0 on the edges that are not ``live (B, E)``."""
    if check_bool(normalize, "normalize"):
        return normalize_per_target(graph, c, live)
    return torch.where(live.to(c.device), c, torch.zeros_like(c))


def attention_shares(
    graph: TokenGraph, weights: torch.Tensor, normalize: bool = True
) -> torch.Tensor:
    """Raw attention: the head mean of ``weights (B, E, H)``, normalized over the live edges."""
    return finish_scores(graph, weights.mean(-1), live_edges(weights), normalize)


def grad_attention_shares(
    graph: TokenGraph, weights: torch.Tensor, grad: torch.Tensor | None, normalize: bool = True
) -> torch.Tensor:
    """Chefer et al. (2021): ``mean_h max(0, grad * weights)``, normalized over the live edges.

    ``grad (B, E, H)`` is the gradient of the explained score with respect to
    ``weights`` (None: the score does not depend on them, all zero).
    """
    grad = torch.zeros_like(weights) if grad is None else grad
    c = (grad * weights).clamp(min=0).mean(-1).detach()  # (B, E)
    return finish_scores(graph, c, live_edges(weights), normalize)


def _entries(block: AttentionBlock) -> tuple[TokenGraph, torch.Tensor, torch.Tensor | None]:
    """The graph with a self entry per target (a self graph lacking some gets self loops).

    Returns that graph, the index in it of each of the block's edges ``(E,)``
    and of each target's self entry ``(N,)`` (None for a cross graph, whose
    targets have no residual entry).
    """
    g = block.graph
    if g.is_cross:
        return g, torch.arange(g.num_edges), None
    full = g.add_self_loops()
    return full, _positions(full, g), torch.nonzero(full.src == full.dst).squeeze(1)


def _full_live(block: AttentionBlock, entries) -> torch.Tensor:
    """Live entries ``(B, E')``: the block's live edges, and every self entry (the residual)."""
    full, pos, loops = entries
    live = block.live()  # (B, E)
    out = live.new_zeros(live.shape[0], full.num_edges)
    out[:, pos.to(live.device)] = live
    if loops is not None:
        out[:, loops.to(live.device)] = True
    return out


def _edge_chunks(block: AttentionBlock, targets_per_edge: int = 1):
    """The block's edges chunk by chunk of consecutive targets: no ``(B, E, C)`` tensor is whole.

    Yields ``(t0, t1, o0, o1, a, z)``: targets ``t0:t1``, their incoming
    edges ``o0:o1``, the edges' terms ``a (B, e, C)`` and the targets' stream
    ``z = x + attention output (B, T, C)``. A chunk holds about
    :data:`~graphattn.flow.blocks.TERM_ELEMENTS` term values, counting
    ``targets_per_edge`` extra entries per target.
    """
    g, n = block.graph, block.graph.num_nodes
    b, c = block.residual.shape[0], block.residual.shape[-1]
    ptr = torch.searchsorted(g.dst, torch.arange(n + 1))  # (N + 1,) CSR pointers
    cost = ptr + targets_per_edge * torch.arange(n + 1)  # entries before each target
    budget, t0 = max(1, TERM_ELEMENTS // (b * c)), 0
    while t0 < n:
        t1 = int(torch.searchsorted(cost, cost[t0] + budget, right=True)) - 1
        t1 = min(n, max(t1, t0 + 1))
        o0, o1 = int(ptr[t0]), int(ptr[t1])
        a = block.edge_terms(o0, o1)  # (B, e, C)
        part = TokenGraph(torch.stack([g.src[o0:o1], g.dst[o0:o1] - t0]), t1 - t0,
                          num_src_nodes=g.num_src_nodes, cross=True)  # fmt: skip
        yield t0, t1, o0, o1, a, block.residual[:, t0:t1] + attend(part, a, block.out_bias)
        t0 = t1


def _target_chunks(block: AttentionBlock, entries):
    """:func:`_edge_chunks` as entries: the residual ``x_i`` on the self entry of target ``i``.

    Yields ``(terms (B, e', C), z (B, T, C), dst (e',))``, each entry's
    target counted in the chunk, chunk after chunk in entry order.
    """
    full, pos, loops = entries
    ptr_f = torch.searchsorted(full.dst, torch.arange(block.graph.num_nodes + 1)).tolist()
    for t0, t1, o0, o1, a, z in _edge_chunks(block, 0 if loops is None else 1):
        f0, f1, dev = ptr_f[t0], ptr_f[t1], a.device
        terms = a.new_zeros(a.shape[0], f1 - f0, a.shape[2])  # (B, e', C)
        terms[:, (pos[o0:o1] - f0).to(dev)] = a
        if loops is not None:
            terms[:, (loops[t0:t1] - f0).to(dev)] += block.residual[:, t0:t1]
        yield terms, z, (full.dst[f0:f1] - t0).to(dev)


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


def _after_norm1(block: AttentionBlock):
    """Per chunk of targets: the entries' terms spread over ``norm1``, the stream after it.

    Yields ``(terms (B, e', C), z (B, T, C), dst (e',))`` as
    :func:`_target_chunks`, with ``norm1`` applied where the block has one.
    """
    for terms, z, dst in _target_chunks(block, _entries(block)):
        if block.norm1 is not None:
            terms = _norm_terms(block.norm1, terms, z[:, dst])
            z = block.norm1(z)
        yield terms, z, dst


def _scores(block: AttentionBlock, score, normalize: bool) -> tuple[TokenGraph, torch.Tensor]:
    """``score(terms, z, dst) -> (B, e')`` over every target chunk, finished per target."""
    entries = _entries(block)
    parts = [score(terms, z, dst) for terms, z, dst in _after_norm1(block)]
    c = torch.cat(parts, 1)  # (B, E')
    return entries[0], finish_scores(entries[0], c, _full_live(block, entries), normalize)


def alti(block: AttentionBlock, normalize: bool = True) -> tuple[TokenGraph, torch.Tensor]:
    """ALTI (Ferrando et al. 2022) of one block.

    The block's output before the feed-forward network, ``y_i = norm1(z_i)``
    (post-LN) or ``y_i = z_i`` (pre-LN), is split into one term per source,
    ``T_i(x_j) = norm1-share(a_ij + [i = j] x_i)``, and
    ``c_ij = max(0, ||y_i||_1 - ||y_i - T_i(x_j)||_1)``, normalized over ``j``.
    Includes the residual and the first layer norm (and, in a pre-LN block,
    the pre-attention norm through the values); the output bias and the
    norm's bias are part of ``y_i`` but nobody's term; excludes the FFN.
    """

    def score(terms, z, dst):  # terms (B, e', C), z (B, T, C)
        y = z[:, dst]  # (B, e', C) the output of each entry's target
        return (y.abs().sum(-1) - (y - terms).abs().sum(-1)).clamp(min=0)  # (B, e')

    return _scores(block, score, normalize)


def globenc(block: AttentionBlock, normalize: bool = True) -> tuple[TokenGraph, torch.Tensor]:
    """GlobEnc (Modarressi et al. 2022) of one block.

    ``c_ij = ||norm2-share(norm1-share(a_ij + [i = j] x_i))||_2``, normalized
    over ``j``: the terms pass through the residual and norm of the attention
    and through the second residual and norm, where the FFN output counts only
    in the second norm's scale (the FFN itself is skipped). In a pre-LN block
    the stream has no norm, so ``c_ij = ||a_ij + [i = j] x_i||_2``.
    """

    def score(terms, z, dst):  # terms (B, e', C), z (B, T, C)
        if block.norm2 is not None:
            w = z + block.ffn(z)  # (B, T, C) the input of the second norm
            terms = _norm_terms(block.norm2, terms, w[:, dst])
        return terms.norm(dim=-1)  # (B, e')

    return _scores(block, score, normalize)


def value_zeroing(
    block: AttentionBlock, chunk: int = 4096, normalize: bool = True
) -> tuple[TokenGraph, torch.Tensor]:
    """Value Zeroing (Mohebbi et al. 2023) of one block.

    For every edge ``e = j -> i``: the layer output ``y_i^{-j}`` with source
    ``j``'s value vector zeroed for target ``i`` (weights, residual and the
    rest of the layer unchanged), and ``c_ij = 1 - cos(y_i^{-j}, y_i)``
    (by :func:`cosine_distance`, exact in float32 where a source barely moves
    its target), normalized over ``j``. Includes residuals, both norms and the FFN. Only
    the edges' own targets are recomputed, token-wise, ``chunk`` edges at a
    time, chunk of targets after chunk (no ``(B, E, C)`` tensor is whole):
    no extra pass over the whole model.
    """
    g, parts = block.graph, []
    for t0, _, o0, o1, a, z in _edge_chunks(block):  # a (B, e, C), z (B, T, C)
        y = block.finish(z)  # (B, T, C)
        dst = (g.dst[o0:o1] - t0).to(a.device)  # (e,)
        for lo in range(0, o1 - o0, chunk):
            d = dst[lo : lo + chunk]
            y_off = block.finish(z[:, d] - a[:, lo : lo + chunk])  # (B, e', C)
            parts.append(cosine_distance(y_off, y[:, d]))  # (B, e')
    c = torch.cat(parts, 1) if parts else block.residual.new_zeros(block.residual.shape[0], 0)
    return g, finish_scores(g, c.clamp(min=0), block.live(), normalize)
