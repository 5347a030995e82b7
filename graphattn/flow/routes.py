"""Information-flow routes (Ferrando & Voita 2024) on token graphs.

The layered flow graph has a node ``(l, i)`` for token ``i`` after ``l``
layers (``l = 0``: the inputs). Layer ``l`` feeds node ``(l + 1, i)`` from
the nodes ``(l, j)`` through its attention edges ``j -> i`` and from
``(l, i)`` through the residual stream; every node's incoming shares sum to
1. The *route* of a target is the part of that graph that carries at least
``threshold`` of some node's input, built top-down: start from the target in
the last row, keep each incoming edge of a kept node whose share is at least
``threshold``, and keep its source. :func:`route_scores` gives, per input
token, the largest threshold at which it is still on the route.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from graphattn.flow._layers import (
    LayerOperator,
    check_head_reduce,
    check_options,
    check_self_layers,
    check_targets,
    compute_dtype,
    layer_operator,
)
from graphattn.flow.batch import per_example
from graphattn.graph import TokenGraph

__all__ = ["RouteLayer", "Routes", "route_scores", "routes"]


@dataclass(frozen=True)
class RouteLayer:
    """The edges of one layer that a route keeps.

    Attributes
    ----------
    graph : TokenGraph
        The kept attention edges ``j -> i`` (source ``(l, j)``, target
        ``(l + 1, i)``), a subgraph of the layer's graph over its ``N``
        tokens, with its token labels.
    weights : Tensor ``(E_kept,)``
        The share of its target's input each kept edge carries, in
        ``graph.edge_index`` order.
    residual : LongTensor ``(R,)``
        The tokens ``i`` whose residual edge ``(l, i) -> (l + 1, i)`` is kept.
    residual_weights : Tensor ``(R,)``
        Their shares.
    """

    graph: TokenGraph
    weights: torch.Tensor
    residual: torch.Tensor
    residual_weights: torch.Tensor


@dataclass(frozen=True)
class Routes:
    """The route of one target through ``L`` layers: what :func:`routes` returns.

    Attributes
    ----------
    target : int
        The token whose last-layer node the route ends in.
    threshold : float
        The smallest share an edge kept.
    layers : list of RouteLayer
        One per layer, first layer first.
    nodes : list of LongTensor
        ``L + 1`` rows: the tokens on the route after ``l`` layers, sorted
        (``nodes[0]``: the input tokens the route reaches; ``nodes[-1]``:
        the target).
    """

    target: int
    threshold: float
    layers: list[RouteLayer]
    nodes: list[torch.Tensor]

    @property
    def num_edges(self) -> int:
        """Attention and residual edges on the route."""
        return sum(l.graph.num_edges + l.residual.numel() for l in self.layers)


def _check_target(target: Any, n: int) -> int:
    if isinstance(target, bool) or not isinstance(target, numbers.Integral):
        raise TypeError(f"target must be one int token position, got {type(target).__name__}")
    return int(check_targets(int(target), n, "target")[0])


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a number in (0, 1], got {type(threshold).__name__}")
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    return float(threshold)


def _operators(
    layers: Any, residual: float | None, head_reduce: str
) -> list[tuple[LayerOperator, torch.Tensor]]:
    """Each layer's shares: ``(op, is_residual (E,))``, checked.

    ``residual=None``: the layer's own entries, rows normalized, self entries
    counted as the residual. A number: rollout's ``residual * I + (1 -
    residual) * W``, the identity share (``op.diag``) the residual.
    """
    checked = check_self_layers(layers)
    if residual is None:
        check_head_reduce(head_reduce)
    else:
        residual = check_options(residual, head_reduce)
    dtype = compute_dtype(checked)
    out = []
    for layer in checked:
        op = layer_operator(layer, residual or 0.0, head_reduce, dtype)
        src, dst = layer.graph.src.to(op.edge.device), layer.graph.dst.to(op.edge.device)
        is_res = (src == dst) if residual is None else torch.zeros_like(src, dtype=torch.bool)
        out.append((op, is_res))
    return out


def _residual_shares(op: LayerOperator, is_res: torch.Tensor) -> torch.Tensor:
    """``(N,)``: the residual share of every target (self entries, or the identity part)."""
    dst = op.graph.dst.to(op.edge.device)
    res = op.diag.clone()  # (N,)
    return res.index_add_(0, dst[is_res], op.edge[is_res])


def _route_layer(
    op: LayerOperator, is_res: torch.Tensor, active: torch.Tensor, threshold: float
) -> tuple[RouteLayer, torch.Tensor]:
    """The kept edges into the ``active (N,)`` bool targets, and the active sources below."""
    g = op.graph
    dev = op.edge.device
    src, dst = g.src.to(dev), g.dst.to(dev)  # (E,)
    keep = active[dst] & ~is_res & (op.edge >= threshold)  # (E,) attention edges kept
    res = _residual_shares(op, is_res)  # (N,)
    keep_res = active & (res >= threshold)  # (N,)
    kept = TokenGraph(g.edge_index[:, keep.cpu()], g.num_nodes, tokens=g.tokens)
    tokens = keep_res.nonzero().squeeze(1)  # (R,)
    below = torch.zeros_like(active).index_fill_(0, src[keep], True) | keep_res  # (N,)
    return RouteLayer(kept, op.edge[keep], tokens, res[tokens]), below


@per_example(list)
def routes(
    layers: Sequence[Any],
    target: int,
    threshold: float = 0.04,
    *,
    residual: float | None = None,
    head_reduce: str = "mean",
) -> Routes | list[Routes]:
    """The information-flow route of ``target`` (Ferrando & Voita 2024).

    Every node ``(l + 1, i)`` of the layered flow graph gets its input from
    ``(l, j)`` through the attention edges ``j -> i`` of layer ``l`` and from
    ``(l, i)`` through the residual, with shares that sum to 1 (each target's
    row of the layer normalized, as in :func:`attention_rollout`). Starting
    from ``(L, target)``, each kept node keeps its incoming edges whose share
    is at least ``threshold``, and their sources; the rest of the graph is
    dropped. Residual edges are kept apart from attention edges.

    Parameters
    ----------
    layers : sequence of (TokenGraph, Tensor)
        One ``(graph, weights)`` pair per layer, first layer first, weights
        ``(E,)`` or ``(E, H)``: a ``contributions`` output (any method) or
        raw attention weights; batched weights ``(B, E)`` or ``(B, E, H)``
        give one route per example (:mod:`graphattn.flow.batch`).
    target : int
        The token whose last-layer node the route explains.
    threshold : float
        The smallest share of its target's input an edge must carry, in
        (0, 1] (Ferrando & Voita use 0.04 on their largest models).
    residual : float or None
        None (default): the layers already count the residual in their self
        entries, as ALTI and GlobEnc contributions do; each self entry
        ``i -> i`` is then the residual edge. A number in [0, 1]: the layer
        is rollout's ``residual * I + (1 - residual) * W`` (raw weights, Value
        Zeroing, gradient x attention), the identity share is the residual
        edge and self entries are attention edges.
    head_reduce : {"mean", "max", "min"}
        How heads are combined per edge (see :func:`aggregate_heads`).

    Returns
    -------
    Routes or list of Routes
        The kept edges of every layer and the tokens on the route per row;
        a list with one per example for batched layers.

    Raises
    ------
    TypeError, ValueError
        For malformed layers (as :func:`attention_rollout`), a target out of
        range, a threshold outside (0, 1], a residual outside [0, 1] or an
        unknown ``head_reduce``.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])  # 0 -> 0, 0 -> 1, 1 -> 1
    >>> w = torch.tensor([1.0, 0.3, 0.7])       # token 1: 0.3 from 0, 0.7 residual
    >>> r = routes([(g, w), (g, w)], target=1, threshold=0.5)
    >>> [row.tolist() for row in r.nodes], r.layers[1].residual.tolist()
    ([[1], [1], [1]], [1])
    >>> r = routes([(g, w), (g, w)], target=1, threshold=0.2)
    >>> [row.tolist() for row in r.nodes], r.layers[0].graph.edge_index.tolist()
    ([[0, 1], [0, 1], [1]], [[0], [1]])
    """
    ops = _operators(layers, residual, head_reduce)
    n = ops[0][0].graph.num_nodes
    t = _check_target(target, n)
    threshold = _check_threshold(threshold)
    device = ops[0][0].edge.device
    active = torch.zeros(n, dtype=torch.bool, device=device)
    active[t] = True
    kept, nodes = [], [active.nonzero().squeeze(1).cpu()]
    for op, is_res in reversed(ops):
        layer, active = _route_layer(op, is_res, active, threshold)
        kept.append(layer)
        nodes.append(active.nonzero().squeeze(1).cpu())
    return Routes(t, threshold, kept[::-1], nodes[::-1])


@per_example(torch.stack)
def route_scores(
    layers: Sequence[Any],
    target: int,
    *,
    residual: float | None = None,
    head_reduce: str = "mean",
) -> torch.Tensor:
    """The largest threshold at which each input token is on the route of ``target``.

    ``score[j] = max over paths from (0, j) to (L, target) of the smallest
    share on the path`` (a widest path): ``j`` is in ``routes(layers,
    target, tau).nodes[0]`` exactly when ``score[j] >= tau > 0``. Arguments
    as :func:`routes`.

    Returns
    -------
    Tensor ``(N,)``, or ``(B, N)`` for batched layers
        In [0, 1]; 0 for a token no path reaches.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> w = torch.tensor([1.0, 0.3, 0.7])
    >>> route_scores([(g, w), (g, w)], target=1)
    tensor([0.3000, 0.7000])
    """
    ops = _operators(layers, residual, head_reduce)
    n = ops[0][0].graph.num_nodes
    t = _check_target(target, n)
    best = torch.zeros(n, dtype=ops[0][0].edge.dtype, device=ops[0][0].edge.device)
    best[t] = 1.0  # (N,) the widest bottleneck from each node of the current row up
    for op, is_res in reversed(ops):
        src, dst = op.graph.src.to(best.device), op.graph.dst.to(best.device)  # (E,)
        through = torch.minimum(op.edge, best[dst])  # (E,) via attention edge j -> i
        through = torch.where(is_res, torch.zeros_like(through), through)
        res = torch.minimum(_residual_shares(op, is_res), best)  # (N,) via the residual
        best = res.scatter_reduce(0, src, through, reduce="amax")  # (N,)
    return best
