"""Attention variants: a score per edge and a normalizer over each target's incoming edges.

Graph attention is two choices. A **score function** gives every edge
``j -> i`` a number per head from the target's query ``q_i``, the source's key
``k_j``, the edge's indices and optional edge features; a **normalizer** turns
the scores of each target's incoming edges into weights. The output is
``out_i = sum_j w_ij v_j``. Scaled dot-product attention is

    score(q_i, k_j, edges) = <q_i, k_j> * edges.scale,   normalize = softmax

and a new variant is a few lines (see ``examples/variants.py`` for GAT-style
additive attention). :func:`variant_attention` runs any variant on the edge
path with plain autograd, in runs of whole targets whose ``(B, E_run, H, D)``
gathers fit a budget (recomputed in the backward when there are several); a
built-in may carry a ``fast`` implementation (dot-product attention uses
:func:`graphattn.graph_attention` and its backends).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from graphattn._validate import check_bool, check_number, check_positive_int
from graphattn.backends.base import accumulation_dtype, edges_on, segment_softmax
from graphattn.backends.edge import edge_chunks
from graphattn.backends.front import AttentionInputs
from graphattn.functional import graph_attention
from graphattn.graph import TokenGraph

__all__ = [
    "CHUNK_ELEMENTS",
    "COSINE",
    "DOT_PRODUCT",
    "LINEAR",
    "SIGMOID",
    "AttentionVariant",
    "Edges",
    "cosine",
    "dot_product_score",
    "elu_feature_map",
    "linear",
    "linear_score",
    "sigmoid",
    "sigmoid_attention",
    "softmax",
    "variant_attention",
]


@dataclass(frozen=True)
class Edges:
    """What a score function knows about the edges besides ``q_i`` and ``k_j``."""

    src: torch.Tensor  # (E,) source j of every edge
    dst: torch.Tensor  # (E,) target i of every edge
    num_targets: int  # N
    scale: float  # the score scale, 1/sqrt(D) unless given
    attr: torch.Tensor | None = None  # (E, F) or (B, E, F) edge features, or None

    def in_degree(self) -> torch.Tensor:
        """Incoming edges of each edge's target, ``(E,)``.

        Examples
        --------
        >>> Edges(torch.tensor([0, 1, 0]), torch.tensor([0, 0, 1]), 2, 1.0).in_degree().tolist()
        [2, 2, 1]
        """
        return torch.bincount(self.dst, minlength=self.num_targets)[self.dst]


# Elements of the largest per-run gather (B, E_run, H, max(D, Dv)) of variant_attention.
CHUNK_ELEMENTS = 2**22

ScoreFn = Callable[[torch.Tensor, torch.Tensor, Edges], torch.Tensor]
Normalizer = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


# ------------------------------------------------------------- normalizers
def softmax(score: torch.Tensor, dst: torch.Tensor, num_targets: int) -> torch.Tensor:
    """Softmax over each target's incoming edges (``-inf`` scores get weight 0).

    Examples
    --------
    >>> softmax(torch.tensor([[[0.0], [0.0], [1.0]]]), torch.tensor([0, 0, 1]), 2).flatten()
    tensor([0.5000, 0.5000, 1.0000])
    """
    return segment_softmax(score, dst, num_targets)


def sigmoid(score: torch.Tensor, dst: torch.Tensor, num_targets: int) -> torch.Tensor:
    """Independent ``sigmoid(score)`` per edge: weights need not sum to 1.

    Examples
    --------
    >>> sigmoid(torch.tensor([[[0.0], [0.0]]]), torch.tensor([0, 0]), 1).flatten()
    tensor([0.5000, 0.5000])
    """
    return torch.sigmoid(score)


def linear(score: torch.Tensor, dst: torch.Tensor, num_targets: int) -> torch.Tensor:
    """``score / sum of the target's scores`` for non-negative scores (0 where the sum is 0).

    Examples
    --------
    >>> linear(torch.tensor([[[1.0], [3.0], [2.0]]]), torch.tensor([0, 0, 1]), 2).flatten()
    tensor([0.2500, 0.7500, 1.0000])
    """
    b, _, h = score.shape
    idx = dst.view(1, -1, 1).expand_as(score)  # (B, E, H)
    total = score.new_zeros(b, num_targets, h).scatter_add(1, idx, score)  # (B, N, H)
    denom = total.gather(1, idx)  # (B, E, H)
    safe = torch.where(denom > 0, denom, 1.0)  # no division by ~0, also in the gradient
    return torch.where(denom > 0, score / safe, 0.0)


# --------------------------------------------------------- score functions
def dot_product_score(q_i: torch.Tensor, k_j: torch.Tensor, edges: Edges) -> torch.Tensor:
    """``<q_i, k_j> * scale`` per edge and head, ``(B, E, H)``.

    Examples
    --------
    >>> edges = Edges(torch.tensor([0]), torch.tensor([0]), 1, 0.5)
    >>> dot_product_score(torch.ones(1, 1, 1, 4), torch.ones(1, 1, 1, 4), edges).tolist()
    [[[2.0]]]
    """
    return (q_i * k_j).sum(-1) * edges.scale


def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """The positive feature map ``elu(x) + 1`` of linear attention (Katharopoulos et al.).

    Examples
    --------
    >>> elu_feature_map(torch.tensor([-1e9, 0.0, 2.0])).tolist()
    [0.0, 1.0, 3.0]
    """
    return F.elu(x) + 1.0


def linear_score(q_i: torch.Tensor, k_j: torch.Tensor, edges: Edges) -> torch.Tensor:
    """``<phi(q_i), phi(k_j)>`` with ``phi = elu + 1``: positive, for the linear normalizer.

    Examples
    --------
    >>> edges = Edges(torch.tensor([0]), torch.tensor([0]), 1, 0.5)
    >>> linear_score(torch.zeros(1, 1, 1, 4), torch.ones(1, 1, 1, 4), edges).tolist()
    [[[8.0]]]
    """
    return (elu_feature_map(q_i) * elu_feature_map(k_j)).sum(-1)


@dataclass(frozen=True)
class AttentionVariant:
    """An attention variant: a score function and a normalizer (see the module docstring).

    Examples
    --------
    >>> neg_distance = AttentionVariant(
    ...     "neg_distance", lambda q_i, k_j, edges: -(q_i - k_j).norm(dim=-1))
    >>> g = TokenGraph([[0, 1], [1, 1]])
    >>> q = k = v = torch.ones(2, 1, 3)
    >>> variant_attention(q, k, v, g, neg_distance).tolist()
    [[[0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0]]]
    """

    name: str  # shown in repr, plots and experiment tables
    score: ScoreFn  # score(q_i (B,E,H,D), k_j (B,E,H,D), edges) -> (B, E, H)
    normalize: Normalizer = softmax  # normalize(score, dst, N) -> weights (B, E, H)
    fast: Callable[..., object] | None = None  # same result via a faster path, no edge_attr


def _cosine_score(tau: float) -> ScoreFn:
    def score(q_i: torch.Tensor, k_j: torch.Tensor, edges: Edges) -> torch.Tensor:
        return F.cosine_similarity(q_i, k_j, dim=-1) * tau  # (B, E, H)

    return score


def cosine(tau: float = 10.0) -> AttentionVariant:
    """Cosine attention: ``tau * cos(q_i, k_j)`` with softmax (Swin Transformer v2).

    Examples
    --------
    >>> cosine(5.0).name
    'cosine(tau=5.0)'
    """
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not tau > 0:
        raise ValueError(f"tau must be a positive number, got {tau!r}")
    return AttentionVariant(f"cosine(tau={tau})", _cosine_score(float(tau)), softmax)


def _sigmoid_score(offset: float | None) -> ScoreFn:
    def score(q_i: torch.Tensor, k_j: torch.Tensor, edges: Edges) -> torch.Tensor:
        s = dot_product_score(q_i, k_j, edges)  # (B, E, H)
        if offset is None:
            return s - edges.in_degree().to(s.dtype).log().view(1, -1, 1)
        return s + offset

    return score


def sigmoid_attention(offset: float | None = None) -> AttentionVariant:
    """Sigmoid attention: ``sigmoid(<q_i, k_j> * scale + b)`` per edge, no normalization.

    ``b`` defaults to ``-log(in-degree of i)`` (Ramapuram et al., 2024), which
    keeps each target's total weight near 1 at initialization.

    Examples
    --------
    >>> sigmoid_attention(0.0).name
    'sigmoid(b=0.0)'
    """
    if offset is not None:
        check_number(offset, "offset")
    name = "sigmoid(b=-log n)" if offset is None else f"sigmoid(b={offset})"
    return AttentionVariant(name, _sigmoid_score(offset), sigmoid)


def _dot_product_fast(q, k, v, graph, *, scale, return_weights):
    return graph_attention(q, k, v, graph, scale=scale, return_weights=return_weights)


DOT_PRODUCT = AttentionVariant("dot_product", dot_product_score, softmax, _dot_product_fast)
COSINE = cosine()
SIGMOID = sigmoid_attention()
LINEAR = AttentionVariant("linear(elu+1)", linear_score, linear)


def _variant_chunk(q, k, v, attr, src, dst, t_lo, t_hi, variant, scale, n):
    """Output ``(B, Nc, H, Dv)`` and weights ``(B, Ec, H)`` of the whole targets ``t_lo:t_hi``."""
    acc = accumulation_dtype(q.dtype)
    h = q.shape[2]
    edges = Edges(src, dst, n, scale, attr)
    score = variant.score(q[:, dst].to(acc), k[:, src].to(acc), edges)  # (B, Ec, H)
    expected = (src.numel(), h)
    if not isinstance(score, torch.Tensor) or score.dim() != 3 or score.shape[-2:] != expected:
        got = tuple(score.shape) if isinstance(score, torch.Tensor) else type(score).__name__
        raise ValueError(f"variant {variant.name!r}: score must return (B, E, H), got {got}")
    local = dst - t_lo  # (Ec,) target within the chunk
    weights = variant.normalize(score.to(acc), local, t_hi - t_lo)  # (B, Ec, H)
    message = weights.unsqueeze(-1) * v[:, src].to(acc)  # (B, Ec, H, Dv)
    out = message.new_zeros(q.shape[0], t_hi - t_lo, h, v.shape[-1])
    return out.index_add(1, local, message), weights  # (B, Nc, H, Dv), (B, Ec, H)


def variant_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    graph: TokenGraph,
    variant: AttentionVariant,
    *,
    edge_attr: torch.Tensor | None = None,
    scale: float | None = None,
    return_weights: bool = False,
    chunk_elements: int = CHUNK_ELEMENTS,
):
    """Attention along the edges of ``graph`` with any :class:`AttentionVariant`.

    The targets are processed in runs whose ``(B, E_run, H, D)`` gathers hold
    at most ``chunk_elements`` elements; with several runs each one is
    recomputed in the backward (activation checkpointing), so memory stays
    bounded by one run.

    Parameters
    ----------
    q, k, v : Tensor
        As in :func:`graphattn.graph_attention`: ``(N, H, D)`` or ``(B, N, H, D)``
        queries, ``(M, H_kv, D)`` keys and ``(M, H_kv, Dv)`` values, node-major
        (tokens before heads; head-major input must be transposed first).
    graph : TokenGraph
        Who attends to whom.
    variant : AttentionVariant
        Score function and normalizer.
    edge_attr : Tensor, optional
        Edge features ``(E, F)`` or ``(B, E, F)`` in ``graph.edge_index`` order,
        passed to the score function as ``edges.attr``.
    scale : float, optional
        Passed to the score function as ``edges.scale`` (default ``1/sqrt(D)``).
    return_weights : bool
        Also return the weights ``(E, H)`` or ``(B, E, H)``.
    chunk_elements : int
        Budget of the per-run gathers (a run always holds whole targets).

    Returns
    -------
    out : Tensor, shape (N, H, Dv) or (B, N, H, Dv)
        In ``q``'s dtype; targets without incoming edges get zeros.
    weights : Tensor, only with ``return_weights``
        The normalized weights, float32 (float64 for float64 inputs).

    Raises
    ------
    TypeError
        If ``variant`` is not an :class:`AttentionVariant`, ``graph`` is not a
        single TokenGraph, or a tensor has the wrong type.
    ValueError
        If shapes do not match, or the score function returns a wrong shape.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> q = k = torch.zeros(2, 1, 4)
    >>> v = torch.tensor([[[1.0]], [[3.0]]])
    >>> variant_attention(q, k, v, g, DOT_PRODUCT).flatten().tolist()
    [1.0, 2.0]
    >>> variant_attention(q, k, v, g, SIGMOID).flatten().tolist()  # sigmoid(-log 2) = 1/3
    [0.5, 1.333]
    """
    _check_variant(graph, variant)
    inputs = AttentionInputs.of(q, k, v, graph)  # (B, *, H | H_kv, D)
    _check_edge_attr(edge_attr, graph.num_edges)
    if scale is not None:
        check_number(scale, "scale")
    check_bool(return_weights, "return_weights")
    check_positive_int(chunk_elements, "chunk_elements")
    scale = inputs.scale_or_default(scale)
    if variant.fast is not None and edge_attr is None:
        return variant.fast(q, k, v, graph, scale=scale, return_weights=return_weights)
    k, v = inputs.expanded()  # (B, M, H, D), (B, M, H, Dv)
    out, weights = _run_chunks(inputs.q, k, v, graph, variant, edge_attr, scale, chunk_elements)
    out, weights = inputs.finish(out, weights)  # (.., N, H, Dv), (.., E, H)
    return (out, weights) if return_weights else out


def _check_variant(graph, variant) -> None:
    """Check the variant and the single graph of :func:`variant_attention`."""
    if not isinstance(variant, AttentionVariant):
        raise TypeError(f"variant must be an AttentionVariant, got {type(variant).__name__}")
    if not isinstance(graph, TokenGraph):
        raise TypeError(f"graph must be a single TokenGraph, got {type(graph).__name__}")


def _check_edge_attr(edge_attr, e: int) -> None:
    """Check the edge features ``(E, F)`` or ``(B, E, F)`` of :func:`variant_attention`."""
    if edge_attr is None:
        return
    if not isinstance(edge_attr, torch.Tensor):
        raise TypeError(f"edge_attr must be a tensor, got {type(edge_attr).__name__}")
    if edge_attr.dim() not in (2, 3) or edge_attr.shape[-2] != e:
        raise ValueError(
            f"edge_attr must have shape (E, F) or (B, E, F) with E={e}, "
            f"got {tuple(edge_attr.shape)}"
        )


def _run_chunks(q, k, v, graph, variant, edge_attr, scale: float, chunk_elements: int):
    """Output ``(B, N, H, Dv)`` and weights ``(B, E, H)`` over runs of whole targets.

    A run's gathers hold at most ``chunk_elements`` elements; with several
    runs each one is recomputed in the backward (activation checkpointing).
    """
    b, n, h, d = q.shape
    dv, acc = v.shape[-1], accumulation_dtype(q.dtype)
    src, dst = edges_on(graph, q.device)  # (E,)
    runs = edge_chunks(graph, max(1, chunk_elements // (b * h * max(d, dv))))
    outs, weights = [], []
    for t_lo, t_hi, e_lo, e_hi in runs:
        if e_lo == e_hi and graph.num_edges:  # targets without incoming edges
            outs.append(q.new_zeros(b, t_hi - t_lo, h, dv, dtype=acc))
            continue
        attr = None if edge_attr is None else edge_attr[..., e_lo:e_hi, :]  # (.., Ec, F)
        args = (q, k, v, attr, src[e_lo:e_hi], dst[e_lo:e_hi], t_lo, t_hi, variant, scale, n)
        if len(runs) > 1 and torch.is_grad_enabled():
            out_c, w_c = checkpoint(_variant_chunk, *args, use_reentrant=False)
        else:
            out_c, w_c = _variant_chunk(*args)
        outs.append(out_c)
        weights.append(w_c)
    out = torch.cat(outs, 1).to(q.dtype)  # (B, N, H, Dv)
    weights = torch.cat(weights, 1) if weights else q.new_zeros(b, 0, h, dtype=acc)  # (B, E, H)
    return out, weights
