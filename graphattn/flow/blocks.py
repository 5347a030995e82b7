"""The decomposition terms of one attention block: what contribution methods read.

A model that wants :func:`graphattn.flow.contributions` implements
:class:`ContributionModel`: it runs itself on an input and returns, per layer,
an :class:`AttentionBlock` holding the terms of that layer's update

    z_i = x_i + sum_{e = (j -> i)} sum_h alpha_eh * V[j, h] + b_O      (residual + attention)
    u_i = norm1(z_i)            (post-LN; u_i = z_i for pre-LN)
    w_i = u_i + ffn(u_i)        (ffn includes the pre-LN norm2 where there is one)
    y_i = norm2(w_i)            (post-LN; y_i = w_i for pre-LN)

where ``V[j, h]`` is source ``j``'s value vector of head ``h`` already passed
through that head's slice of the output projection (and, in a pre-LN block,
computed from ``norm1(x_j)``). A model that does not implement the protocol
registers an adapter instead (:mod:`graphattn.flow.adapters`): graphattn's
own models (``GraphTransformer``, ``GraphLM``, ``GraphSeq2Seq``) are run by
:mod:`graphattn.flow.nn_models` and :mod:`graphattn.flow.nn_seq2seq`, the
pretrained BERT port by :mod:`graphattn.pretrained.contrib`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from graphattn.flow.lrp_rules import attention_rule
from graphattn.graph import TokenGraph

__all__ = [
    "TERM_ELEMENTS",
    "AttentionBlock",
    "ContributionModel",
    "ContributionRun",
    "attend",
    "live_edges",
]

TERM_ELEMENTS = 2**24  # values gathered at once by AttentionBlock.edge_terms (64 MiB in float32)


@dataclass
class AttentionBlock:
    """The terms of one attention layer, for a batch of ``B`` inputs.

    Attributes
    ----------
    graph : TokenGraph
        The layer's graph: ``N`` targets, ``M`` sources (``M = N`` unless cross).
    weights : Tensor ``(B, E, H)``
        Attention probabilities in ``graph.edge_index`` order.
    values : Tensor ``(B, M, H, C)``
        Every source's value vector per head after the output projection.
    residual : Tensor ``(B, N, C)``
        The stream ``x_i`` the attention output is added to.
    out_bias : Tensor ``(C,)`` or None
        Bias of the output projection.
    norm1 : nn.LayerNorm or None
        Post-LN: the norm after ``x + attention``; None in a pre-LN block.
    ffn : callable ``(..., C) -> (..., C)``
        The feed-forward branch on the stream (with its pre-LN norm, if any).
    norm2 : nn.LayerNorm or None
        Post-LN: the norm after ``u + ffn(u)``; None in a pre-LN block.
    """

    graph: TokenGraph
    weights: torch.Tensor
    values: torch.Tensor
    residual: torch.Tensor
    out_bias: torch.Tensor | None
    norm1: nn.LayerNorm | None
    ffn: Callable[[torch.Tensor], torch.Tensor]
    norm2: nn.LayerNorm | None

    def __post_init__(self) -> None:
        # Edge terms gather values and weights edge by edge: rows must be
        # contiguous (an einsum's permuted output made the gather 5x slower).
        self.weights = self.weights.contiguous()
        self.values = self.values.contiguous()

    def edge_terms(self, lo: int = 0, hi: int | None = None) -> torch.Tensor:
        """``a_e = sum_h alpha_eh V[src_e, h]`` of edges ``lo:hi``, what each adds to its target.

        Returns ``(B, hi - lo, C)`` (all edges by default), slice by slice of
        about :data:`TERM_ELEMENTS` values, so no ``(B, E, H, C)`` tensor is
        built. A slice whose edges fill at least half of the block of targets
        and sources they span (a window's band, a causal triangle) is
        computed as one batched product per source over that block, which
        reads each value row once; a sparser slice gathers the value rows of
        its edges (``H`` rows of ``C`` per edge, memory-bound).
        """
        weights, values = attention_rule(self.weights, self.values)  # AttnLRP's, when on
        hi = self.graph.num_edges if hi is None else hi
        b, _, h, c = values.shape
        src, dst = self.graph.src.to(values.device), self.graph.dst.to(values.device)  # (E,)
        out = values.new_empty(b, hi - lo, c)  # (B, e, C)
        for a, z in _slices(src, dst, lo, hi, max(1, TERM_ELEMENTS // (b * c))):
            s, t, s0, t0 = _block(src, dst, a, z)  # s, t (e',) relative to s0, t0
            if _dense_enough(s, t):
                dense = weights.new_zeros(b, int(s.max()) + 1, int(t[-1]) + 1, h)  # (B, S, T, H)
                dense[:, s, t] = weights[:, a:z]
                terms = dense @ values[:, s0 : s0 + dense.shape[1]]  # (B, S, T, C)
                out[:, a - lo : z - lo] = terms[:, s, t]
            else:
                v = values[:, s0 + s]  # (B, e', H, C)
                out[:, a - lo : z - lo] = (weights[:, a:z].unsqueeze(-1) * v).sum(-2)
        return out

    def live(self) -> torch.Tensor:
        """The edges each target attends through, ``(B, E)`` bool: a nonzero weight in some head.

        An edge the attention removed (e.g. one leaving padding, by a
        ``-inf`` bias) carries nothing and is nobody's contribution.
        """
        return live_edges(self.weights)

    def attention_output(self, terms: torch.Tensor | None = None) -> torch.Tensor:
        """``h_i = sum_{e into i} a_e + b_O``, ``(B, N, C)``: from ``terms``, or slice by slice.

        Without ``terms``, a dense-enough slice (as in :meth:`edge_terms`) with
        finite values is one ``(T, S H) @ (S H, C)`` product over its block; a
        sparser one, or one reading a non-finite value (which the block's
        zeros would spread to every target), sums its edge terms.
        """
        if terms is not None:
            return attend(self.graph, terms, self.out_bias)
        weights, values = attention_rule(self.weights, self.values)  # AttnLRP's, when on
        b, _, h, c = values.shape
        out = values.new_zeros(b, self.graph.num_nodes, c)  # (B, N, C)
        src, dst = self.graph.src.to(out.device), self.graph.dst.to(out.device)  # (E,)
        for a, z in _slices(src, dst, 0, self.graph.num_edges, max(1, TERM_ELEMENTS // (b * c))):
            s, t, s0, t0 = _block(src, dst, a, z)  # s, t (e',) relative to s0, t0
            sn, tn = int(s.max()) + 1, int(t[-1]) + 1
            v = values[:, s0 : s0 + sn].flatten(1, 2)  # (B, S H, C)
            if _dense_enough(s, t) and bool(torch.isfinite(v).all()):  # 0 * nan off the graph
                dense = weights.new_zeros(b, tn, sn, h)  # (B, T, S, H) zero off the graph
                dense[:, t, s] = weights[:, a:z]
                out[:, t0 : t0 + tn] += dense.flatten(2) @ v
            else:
                out.index_add_(1, t0 + t, self.edge_terms(a, z))
        return out if self.out_bias is None else out + self.out_bias

    def finish(self, z: torch.Tensor) -> torch.Tensor:
        """The rest of the layer after ``z = x + attention``: ``y`` from ``z``, token-wise."""
        u = z if self.norm1 is None else self.norm1(z)
        w = u + self.ffn(u)
        return w if self.norm2 is None else self.norm2(w)

    def output(self) -> torch.Tensor:
        """The layer's output ``y (B, N, C)`` computed from the terms."""
        return self.finish(self.residual + self.attention_output())


def live_edges(weights: torch.Tensor) -> torch.Tensor:
    """Edges with a nonzero weight in some head, ``(B, E)`` bool from ``weights (B, E, H)``."""
    return (weights != 0).any(-1)


def _slices(src: torch.Tensor, dst: torch.Tensor, lo: int, hi: int, step: int):
    """Edge ranges ``(a, z)`` covering ``lo:hi``: ``step`` edges each, cut at a target's start.

    Cutting at targets keeps a slice's block of targets by sources compact
    (a range that ends inside a row would span that row's whole source range
    for one edge).
    """
    a = lo
    while a < hi:
        z = min(a + step, hi)
        if z < hi and dst[z] == dst[z - 1]:
            first = int(torch.searchsorted(dst, dst[z - 1]))  # where that target's edges start
            z = first if first > a else z
        yield a, z
        a = z


def _block(src: torch.Tensor, dst: torch.Tensor, a: int, z: int):
    """Edges ``a:z`` relative to the block they span: ``(s (e,), t (e,), s0, t0)``."""
    s, t = src[a:z], dst[a:z]
    s0, t0 = int(s.min()), int(t[0])
    return s - s0, t - t0, s0, t0


def _dense_enough(s: torch.Tensor, t: torch.Tensor) -> bool:
    """Whether edges ``(s, t)`` (relative, ``t`` sorted) fill half of their ``S x T`` block."""
    return (int(s.max()) + 1) * (int(t[-1]) + 1) <= 2 * s.numel()


def attend(graph: TokenGraph, terms: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Sum per-edge vectors ``terms (B, E, C)`` into their targets: ``(B, N, C)`` (+ ``bias``)."""
    b, _, c = terms.shape
    dst = graph.dst.to(terms.device)  # (E,)
    out = terms.new_zeros(b, graph.num_nodes, c).index_add_(1, dst, terms)  # (B, N, C)
    return out if bias is None else out + bias


@dataclass
class ContributionRun:
    """What a :class:`ContributionModel` returns for one input.

    Attributes
    ----------
    blocks : list of AttentionBlock
        One per layer, first layer first. The later layers must be computed
        from the earlier blocks' :meth:`AttentionBlock.output` so that
        gradients flow through every block's ``weights``.
    score : Tensor, a scalar
        The model's output that ``"grad_attention"`` explains (see the model).
    """

    blocks: list[AttentionBlock]
    score: torch.Tensor


@runtime_checkable
class ContributionModel(Protocol):
    """A model that exposes its layers' decomposition terms.

    ``contribution_run(inputs, graph=None) -> ContributionRun`` runs the model
    on ``inputs`` (token ids, or features for a model that takes them) with
    attention along ``graph`` (``None``: the model's own graphs) in evaluation
    mode (no dropout), keeping autograd on when it is enabled.
    """

    def contribution_run(self, inputs: Any, graph: Any = None) -> ContributionRun: ...
