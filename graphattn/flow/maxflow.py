"""The layered flow graph and max-flow attention flow (Abnar & Zuidema, 2020)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import networkx as nx
import torch
from networkx.algorithms.flow import build_residual_network, preflow_push

from graphattn._validate import check_bool
from graphattn.flow._layers import (
    Layer,
    check_dropped,
    check_options,
    check_self_layers,
    check_targets,
    layer_operator,
    merged_entries,
)
from graphattn.flow.batch import per_example

__all__ = ["attention_flow", "flow_graph"]


def _check_prune(prune: Any) -> float:
    if isinstance(prune, bool) or not isinstance(prune, numbers.Real):
        raise TypeError(f"prune must be a number >= 0, got {type(prune).__name__}")
    if not 0.0 <= float(prune) < 1.0:
        raise ValueError(f"prune must be in [0, 1), got {prune}")
    return float(prune)


@per_example(list)
def flow_graph(
    layers: Sequence[Any],
    *,
    residual: float = 0.5,
    head_reduce: str = "mean",
    prune: float = 0.0,
    dropped: Sequence[Any] | None = None,
) -> nx.DiGraph | list[nx.DiGraph]:
    """The layered DAG of information flow as a ``networkx.DiGraph``.

    Nodes are ``(l, t)``: token ``t`` after ``l`` layers (``l = 0`` are the
    inputs, ``l = L`` the outputs), with attributes ``layer``, ``token`` and,
    where the graph has labels, ``label``. For every nonzero entry of the
    residual-adjusted, row-normalized layer matrix
    ``A_l = residual * I + (1 - residual) * W_l`` (see
    :func:`attention_rollout`) there is an edge ``(l - 1, j) -> (l, i)`` with
    ``weight = capacity = A_l[i, j]``. Information flows along the edges,
    from inputs to outputs, so any networkx algorithm (max flow, shortest
    paths on ``-log(weight)``, centrality) applies directly.

    Parameters
    ----------
    layers : sequence of (TokenGraph, Tensor)
        ``(graph, weights)`` per layer, self graphs over the same tokens.
    residual : float
        Weight of the identity (residual connection), in [0, 1].
    head_reduce : {"mean", "max", "min"}
        How heads are combined per edge.
    prune : float
        Edges with weight below ``prune`` are left out (the remaining weights
        are not renormalized). 0 keeps every edge.
    dropped : sequence of Tensor or None, optional
        Per layer, the weight of every target's pruned edges (see
        :func:`attention_rollout`): the kept edges then carry their unpruned
        weights.

    Returns
    -------
    networkx.DiGraph, or one per example
        ``(L + 1) * N`` nodes and one edge per nonzero (unpruned) entry; a
        list of graphs for batched weights (see :mod:`graphattn.flow.batch`).

    Raises
    ------
    TypeError, ValueError
        For malformed layers or options (see :func:`attention_rollout`), or
        ``prune`` outside [0, 1).

    Examples
    --------
    >>> from graphattn.graph import TokenGraph
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["a", "b"])
    >>> G = flow_graph([(g, torch.tensor([1.0, 0.5, 0.5]))])
    >>> sorted(G.edges(data="weight"))
    [((0, 0), (1, 0), 1.0), ((0, 0), (1, 1), 0.25), ((0, 1), (1, 1), 0.75)]
    >>> G.nodes[(1, 1)]
    {'layer': 1, 'token': 1, 'label': 'b'}
    """
    checked = check_self_layers(layers)
    residual = check_options(residual, head_reduce)
    entries = _entries(checked, residual, head_reduce, _check_prune(prune), dropped)
    return _layered_graph(checked, entries, residual, head_reduce)


Entries = list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # per layer (row, col, val)


def _entries(
    checked: list[Layer], residual: float, head_reduce: str, prune: float, dropped: Any
) -> Entries:
    """Per layer, the nonzero entries ``(row, col, val)`` of ``A_l`` at or above ``prune``."""
    lost = check_dropped(dropped, checked, head_reduce)
    out = []
    for layer, d in zip(checked, lost, strict=True):
        m = merged_entries(layer_operator(layer, residual, head_reduce, torch.float64, d))
        keep = m.val >= prune if prune > 0 else m.val > 0  # (nnz,)
        out.append((m.row[keep], m.col[keep], m.val[keep]))
    return out


def _ancestors(entries: Entries, rows: torch.Tensor, n: int) -> list[torch.Tensor]:
    """Per level ``0..L``, the tokens ``(N,)`` (bool) from which a target is reached."""
    need = torch.zeros(n, dtype=torch.bool)
    need[rows] = True
    out = [need]
    for row, col, _ in reversed(entries):
        below = torch.zeros(n, dtype=torch.bool)
        below[col[need[row]]] = True  # sources of the entries into needed tokens
        out.append(below)
        need = below
    return out[::-1]


def _layered_graph(
    checked: list[Layer],
    entries: Entries,
    residual: float,
    head_reduce: str,
    need: list[torch.Tensor] | None = None,
) -> nx.DiGraph:
    """The flow graph of validated layers: all nodes, or those marked in ``need``."""
    n = checked[0].graph.num_nodes
    G = nx.DiGraph(residual=residual, head_reduce=head_reduce, num_layers=len(checked))
    for l in range(len(checked) + 1):
        labels = checked[max(l - 1, 0)].graph.tokens
        tokens = range(n) if need is None else need[l].nonzero().squeeze(1).tolist()
        for t in tokens:
            attrs = {"layer": l, "token": t}
            if labels is not None:
                attrs["label"] = labels[t]
            G.add_node((l, t), **attrs)
    for l, (row, col, val) in enumerate(entries, start=1):
        if need is not None:
            into = need[l][row]  # (nnz,) entries into needed tokens
            row, col, val = row[into], col[into], val[into]
        G.add_edges_from(
            ((l - 1, j), (l, i), {"weight": v, "capacity": v})
            for i, j, v in zip(row.tolist(), col.tolist(), val.tolist(), strict=True)
        )
    return G


@per_example(torch.stack)
def attention_flow(
    layers: Sequence[Any],
    targets: Any,
    *,
    residual: float = 0.5,
    head_reduce: str = "mean",
    prune: float = 0.0,
    normalize: bool = True,
    dropped: Sequence[Any] | None = None,
) -> torch.Tensor:
    """Attention flow: the max flow from every input token to each target output token.

    The capacities are the edge weights of :func:`flow_graph`, i.e. the
    residual-adjusted, row-normalized attention ``A_l``. ``F[t, j]`` is the
    value of a maximum flow from node ``(0, j)`` to ``(L, targets[t])``
    (Abnar & Zuidema 2020). With ``normalize`` every row is divided by its
    sum, so rows sum to 1 as in rollout.

    Only the flow *values* are unique: a maximum flow can usually be routed
    in many ways, so no per-edge flow is returned. Cost: one max-flow
    problem per (target, input) pair, ``T * N`` problems on the sub-DAG of
    the target's ancestors (at most ``(L + 1) * N`` nodes and ``L * (E + N)``
    edges), each solved by networkx's preflow-push in pure Python
    (``O(V^2 sqrt(E))`` worst case). Only the targets' ancestors are built,
    so memory is linear in the edges that reach a target; time is what
    limits it to tens of tokens over a few layers, or a few hundred on
    layers pruned to their strongest edges (``dropped``). ``prune`` drops
    weak edges first to speed it up, at the price of slightly smaller flows.

    Parameters
    ----------
    layers : sequence of (TokenGraph, Tensor)
        ``(graph, weights)`` per layer, self graphs over the same tokens.
    targets : int, sequence of int or LongTensor
        Output tokens whose flows to compute.
    residual : float
        Weight of the identity (residual connection), in [0, 1].
    head_reduce : {"mean", "max", "min"}
        How heads are combined per edge.
    prune : float
        Leave out edges with weight below this before solving (0 keeps all).
    normalize : bool
        Divide every row by its sum (rows with zero flow stay zero).
    dropped : sequence of Tensor or None, optional
        Per layer, the weight of every target's pruned edges (see
        :func:`attention_rollout`): the capacities of the kept edges are
        then their unpruned values.

    Returns
    -------
    Tensor, shape (T, N) or (B, T, N), float64
        ``F[t, j]``, the flow from input ``j`` to output ``targets[t]``; one
        stacked result per example for batched weights.

    Raises
    ------
    TypeError, ValueError
        For malformed layers, options or targets (see :func:`attention_rollout`).

    Examples
    --------
    >>> from graphattn.graph import TokenGraph
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> w = torch.tensor([1.0, 0.5, 0.5])
    >>> attention_flow([(g, w), (g, w)], [1], normalize=False)
    tensor([[0.5000, 0.7500]], dtype=torch.float64)
    """
    normalize = check_bool(normalize, "normalize")
    checked = check_self_layers(layers)
    residual = check_options(residual, head_reduce)
    entries = _entries(checked, residual, head_reduce, _check_prune(prune), dropped)
    n = checked[0].graph.num_nodes
    rows = check_targets(targets, n)
    G = _layered_graph(checked, entries, residual, head_reduce, _ancestors(entries, rows, n))
    out = torch.stack([_flows_into(G, (len(checked), i), n) for i in rows.tolist()])  # (T, N)
    if normalize:
        total = out.sum(1, keepdim=True)  # (T, 1)
        out = out / torch.where(total > 0, total, torch.ones_like(total))
    return out


def _flows_into(G: nx.DiGraph, sink: tuple[int, int], n: int) -> torch.Tensor:
    """The max-flow value from every input node ``(0, j)`` to ``sink`` in ``G``: ``(N,)`` float64.

    Solved on the sub-DAG of the sink's ancestors; inputs that do not feed it get 0.
    """
    feeding = nx.ancestors(G, sink) | {sink}
    H = G.subgraph(feeding)
    R = build_residual_network(H, "capacity")  # reused (and reset) by every solve
    out = torch.zeros(n, dtype=torch.float64)  # (N,)
    for j in range(n):
        if (0, j) in feeding:
            preflow_push(H, (0, j), sink, residual=R, value_only=True)
            out[j] = R.graph["flow_value"]
    return out
