"""The strongest paths of information through the layers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from graphattn.flow._layers import (
    LayerMatrix,
    check_dropped,
    check_options,
    check_self_layers,
    check_targets,
    layer_operator,
    merged_entries,
)
from graphattn.flow.batch import per_example
from graphattn.flow.prune import segment_top_k

__all__ = ["FlowPath", "top_paths"]


class FlowPath(NamedTuple):
    """One path through the layered graph: ``tokens[l]`` is the token after ``l`` layers.

    ``labels`` holds the same path as the graph's token labels (None when the
    graph has none).
    """

    tokens: tuple[int, ...]  # (L + 1,): tokens[0] the input, tokens[-1] the output
    strength: float  # product of the layer weights A_l[tokens[l], tokens[l - 1]]
    labels: tuple[str, ...] | None = None  # (L + 1,): the labels of tokens, if any


@per_example(list)
def top_paths(
    layers: Sequence[Any],
    target: int | str,
    source: int | str,
    k: int = 5,
    *,
    residual: float = 0.5,
    head_reduce: str = "mean",
    dropped: Sequence[Any] | None = None,
) -> list[FlowPath] | list[list[FlowPath]]:
    """The ``k`` strongest paths from input ``source`` to output ``target``.

    A path visits one token per layer, ``source = t_0, t_1, ..., t_L = target``,
    along edges of :func:`flow_graph` (attention edges and the residual
    self-edges); its strength is the product ``prod_l A_l[t_l, t_{l-1}]`` of
    the residual-adjusted, row-normalized weights. The rollout entry
    ``R[target, source]`` is the sum of the strengths of *all* such paths.

    A k-best dynamic program over the layers keeps the ``k`` best partial
    paths of every node (exact on a layered DAG), vectorized over the edges:
    ``O(L * nnz * k)`` memory and ``O(L * nnz * k * log(nnz * k))`` time,
    never an ``N x N`` intermediate.

    Parameters
    ----------
    layers : sequence of (TokenGraph, Tensor)
        ``(graph, weights)`` per layer, self graphs over the same tokens.
    target : int or str
        Output token: its position, or its label if that label is unique.
    source : int or str
        Input token: its position, or its label if that label is unique.
    k : int
        Number of paths to return (fewer if fewer paths exist).
    residual : float
        Weight of the identity (residual connection), in [0, 1].
    head_reduce : {"mean", "max", "min"}
        How heads are combined per edge.
    dropped : sequence of Tensor or None, optional
        Per layer, the weight of every target's pruned edges (see
        :func:`attention_rollout`): the strengths of the kept paths are then
        those of the unpruned layers.

    Returns
    -------
    list of FlowPath, or one such list per example
        Strongest first; paths of zero strength are left out. Each carries
        the positions and, where the graph has labels, the labels. Batched
        weights (see :mod:`graphattn.flow.batch`) give a list per example.

    Raises
    ------
    TypeError, ValueError
        For malformed layers or options, tokens out of range or ``k < 1``.

    Examples
    --------
    >>> from graphattn.graph import TokenGraph
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> w = torch.tensor([1.0, 0.5, 0.5])
    >>> top_paths([(g, w), (g, w)], target=1, source=0, k=3)  # doctest: +NORMALIZE_WHITESPACE
    [FlowPath(tokens=(0, 0, 1), strength=0.25, labels=None),
     FlowPath(tokens=(0, 1, 1), strength=0.1875, labels=None)]
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["hi", "there"])
    >>> top_paths([(g, w), (g, w)], target="there", source="hi", k=1)[0].labels
    ('hi', 'hi', 'there')
    """
    checked = check_self_layers(layers)
    residual = check_options(residual, head_reduce)
    lost = check_dropped(dropped, checked, head_reduce)
    n, labels = checked[0].graph.num_nodes, checked[0].graph.tokens
    target = int(check_targets(_position(target, labels, "target"), n, "target")[0])
    source = int(check_targets(_position(source, labels, "source"), n, "source")[0])
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    score = torch.full((n, k), -torch.inf, dtype=torch.float64)  # (N, k) best log-strengths
    score[source, 0] = 0.0
    back = []  # per layer: (src of the edge taken, rank of the partial path it extends)
    for layer, d in zip(checked, lost, strict=True):
        op = layer_operator(layer, residual, head_reduce, torch.float64, d)
        score, edge_src, rank = _best_extensions(score, merged_entries(op))
        back.append((edge_src, rank))
    paths = _trace_back(score, back, target)
    if labels is None:
        return paths
    return [p._replace(labels=tuple(labels[t] for t in p.tokens)) for p in paths]


def _position(token: int | str, labels: list[str] | None, arg: str) -> int:
    """``token`` itself, or the position of the one token labelled ``token``; never a list."""
    if not isinstance(token, str):
        if isinstance(token, (Sequence, dict)) or (isinstance(token, torch.Tensor) and token.dim()):
            raise TypeError(f"{arg} must be one token, a position or a label, got {token!r:.80}")
        return token
    found = [k for k, t in enumerate(labels or []) if t == token]
    if len(found) != 1:
        where = f"at positions {found}" if found else "in the graph's labels"
        raise ValueError(
            f"{arg}={token!r} must name exactly one token; found {len(found)} {where} "
            "(give its position instead)"
        )
    return found[0]


def _best_extensions(
    score: torch.Tensor, m: LayerMatrix
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One layer of the k-best program: every node's ``k`` best extended partial paths.

    ``score (N, k)`` holds the log-strengths of every node's best partial paths
    so far; each entry ``A[i, j]`` of the layer matrix extends the paths of
    ``j`` to ``i``. Returns the new ``score (N, k)`` and, per node and rank,
    the source of the edge taken and the rank of the path it extends. The
    candidates are ranked per row by a segment top-k: memory ``O(nnz * k)``.
    """
    n, k = score.shape
    row, col = m.row.cpu(), m.col.cpu()  # (nnz,) sorted by row
    cand = (score[col] + m.val.detach().cpu().log().unsqueeze(1)).reshape(-1)  # (nnz * k,)
    indptr = torch.zeros(n + 1, dtype=torch.long)
    indptr[1:] = torch.cumsum(torch.bincount(row, minlength=n), 0) * k  # (N + 1,) of cand
    best, at = segment_top_k(indptr, cand, k)  # (N, k) candidate indices, -1 where none
    found = at >= 0
    edge_src = torch.where(found, col[at.clamp_min(0) // k], 0)  # (N, k)
    return best, edge_src, torch.where(found, at % k, 0)


def _trace_back(
    score: torch.Tensor, back: list[tuple[torch.Tensor, torch.Tensor]], target: int
) -> list[FlowPath]:
    """The paths ending at ``target``, strongest first, followed back through the layers."""
    paths = []
    for r in range(score.shape[1]):
        strength = float(score[target, r])
        if strength == -torch.inf:
            break
        tokens, node, rr = [target], target, r
        for edge_src, rank in reversed(back):
            node, rr = int(edge_src[node, rr]), int(rank[node, rr])
            tokens.append(node)
        paths.append(FlowPath(tuple(reversed(tokens)), math.exp(strength)))
    return paths
