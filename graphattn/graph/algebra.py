"""New graphs from old: set algebra, reversal, self loops, subgraphs, batches.

The functions back :class:`TokenGraph`'s operators ``|``, ``&``, ``-`` and its
methods ``reverse``, ``add_self_loops``, ``remove_self_loops``, ``subgraph``,
``permute``, ``batch`` and ``unbatch``. Every result is built by the class of
its input (``type(graph)``, or ``cls`` for :func:`batch`).

Examples
--------
>>> from graphattn.graph import TokenGraph
>>> a, b = TokenGraph([[0], [1]]), TokenGraph([[1], [1]], 2)
>>> union(a, b).edge_index.tolist()
[[0, 1], [1, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from graphattn.graph.core import TokenGraph

__all__ = [
    "add_self_loops",
    "batch",
    "combined_name",
    "difference",
    "intersection",
    "permute",
    "remove_self_loops",
    "reverse",
    "subgraph",
    "unbatch",
    "union",
    "with_edges",
]


def with_edges(graph: TokenGraph, edge_index: Any, **changes: Any) -> TokenGraph:
    """A graph with ``graph``'s sizes, labels and name but other edges (``changes`` override)."""
    kwargs = dict(
        num_nodes=graph.num_nodes,
        num_src_nodes=graph.num_src_nodes,
        tokens=graph.tokens,
        src_tokens=graph.src_tokens if graph.is_cross else None,
        name=graph.name,
        cross=graph.is_cross,
    )
    kwargs.update(changes)
    return type(graph)(edge_index, **kwargs)


# ------------------------------------------------------------ set algebra
def _check_compatible(graph: TokenGraph, other: Any, op: str) -> None:
    if not isinstance(other, type(graph)):
        raise TypeError(f"{op} needs two TokenGraphs, got {type(other).__name__}")
    mine = (graph.num_nodes, graph.num_src_nodes, graph.is_cross)
    theirs = (other.num_nodes, other.num_src_nodes, other.is_cross)
    if mine != theirs:
        raise ValueError(f"{op} needs graphs of the same sizes (N, M, cross): {mine} vs {theirs}")


def _keys(graph: TokenGraph) -> torch.Tensor:
    return graph.dst * graph.num_src_nodes + graph.src  # (E,) sorted


def combined_name(graph: TokenGraph, other: TokenGraph, op: str) -> str | None:
    """The name of ``graph op other``: ``"a | b"``, ``"(a | b) & c"``; None if neither is named.

    An unnamed operand is written ``?``; an operand whose name holds another
    operator (or, right of ``-``, any operator) is put in parentheses.

    Examples
    --------
    >>> from graphattn.graph import TokenGraph
    >>> a, b = TokenGraph([[0], [0]], name="a | b"), TokenGraph([[0], [0]], name="c")
    >>> combined_name(a, b, "&"), combined_name(b, a, "-"), combined_name(a, b, "|")
    ('(a | b) & c', 'c - (a | b)', 'a | b | c')
    """
    if graph.name is None and other.name is None:
        return None
    others = [f" {o} " for o in "|&-" if o != op]
    left, right = graph.name or "?", other.name or "?"
    left = f"({left})" if any(o in left for o in others) else left
    right_ops = [*others, " - "] if op == "-" else others
    right = f"({right})" if any(o in right for o in right_ops) else right
    return f"{left} {op} {right}"


def _from_keys(graph: TokenGraph, keys: torch.Tensor, name: str | None) -> TokenGraph:
    m = graph.num_src_nodes
    return with_edges(graph, torch.stack([keys % m, keys // m]), name=name)  # (2, E)


def union(graph: TokenGraph, other: TokenGraph) -> TokenGraph:
    """Edges of either graph (``graph | other``), named ``"a | b"``."""
    _check_compatible(graph, other, "|")
    keys = torch.cat([_keys(graph), _keys(other)])
    return _from_keys(graph, keys, combined_name(graph, other, "|"))


def intersection(graph: TokenGraph, other: TokenGraph) -> TokenGraph:
    """Edges of both graphs (``graph & other``), named ``"a & b"``."""
    _check_compatible(graph, other, "&")
    keys = _keys(graph)
    return _from_keys(graph, keys[torch.isin(keys, _keys(other))], combined_name(graph, other, "&"))


def difference(graph: TokenGraph, other: TokenGraph) -> TokenGraph:
    """Edges of ``graph`` that are not in ``other`` (``graph - other``), named ``"a - b"``."""
    _check_compatible(graph, other, "-")
    keys = _keys(graph)
    return _from_keys(
        graph, keys[~torch.isin(keys, _keys(other))], combined_name(graph, other, "-")
    )


# ------------------------------------------------------------ edge maps
def _require_self(graph: TokenGraph, op: str) -> None:
    if graph.is_cross:
        raise ValueError(f"{op} is defined for self graphs only, got a cross graph")


def reverse(graph: TokenGraph) -> TokenGraph:
    """Every edge flipped; see :meth:`TokenGraph.reverse`."""
    _require_self(graph, "reverse()")
    return with_edges(graph, graph.edge_index.flip(0))


def add_self_loops(graph: TokenGraph) -> TokenGraph:
    """``graph`` plus every edge ``i -> i``; see :meth:`TokenGraph.add_self_loops`."""
    _require_self(graph, "add_self_loops()")
    loops = torch.arange(graph.num_nodes).expand(2, -1)  # (2, N)
    return with_edges(graph, torch.cat([graph.edge_index, loops], 1))


def remove_self_loops(graph: TokenGraph) -> TokenGraph:
    """``graph`` without its edges ``i -> i``; see :meth:`TokenGraph.remove_self_loops`."""
    keep = graph.src != graph.dst  # (E,)
    if graph.is_cross:
        keep = torch.ones_like(keep)
    return with_edges(graph, graph.edge_index[:, keep])


# ------------------------------------------------------------ node maps
def _node_selection(nodes: Any, n: int, arg: str) -> torch.Tensor:
    """``nodes`` (indices or a ``bool (n,)`` mask) as distinct indices ``(k,)`` in ``[0, n)``."""
    idx = torch.as_tensor(nodes)
    if idx.dtype == torch.bool:
        if idx.shape != (n,):
            raise ValueError(f"{arg} as a bool mask must have shape ({n},), got {tuple(idx.shape)}")
        idx = idx.nonzero().flatten()
    if idx.is_floating_point() or idx.dim() != 1:
        raise ValueError(f"{arg} must be a 1-d sequence of node indices or a bool mask")
    idx = idx.long()
    if idx.numel() == 0:
        raise ValueError(f"{arg} selects no node")
    if int(idx.min()) < 0 or int(idx.max()) >= n:
        raise ValueError(f"{arg} holds an index outside [0, {n})")
    if torch.unique(idx).numel() != idx.numel():
        raise ValueError(f"{arg} repeats a node")
    return idx


def _relabel(idx: torch.Tensor, n: int) -> torch.Tensor:
    """``(n,)`` map from old node to its position in ``idx``, ``-1`` where dropped."""
    new = torch.full((n,), -1, dtype=torch.long)
    new[idx] = torch.arange(idx.numel())
    return new


def _pick(labels: list[str] | None, idx: torch.Tensor) -> list[str] | None:
    return None if labels is None else [labels[k] for k in idx.tolist()]


def subgraph(graph: TokenGraph, nodes: Any, src_nodes: Any = None) -> TokenGraph:
    """The graph induced by ``nodes``; see :meth:`TokenGraph.subgraph`."""
    dst_idx = _node_selection(nodes, graph.num_nodes, "nodes")  # (k,)
    if graph.is_cross:
        src_idx = (
            torch.arange(graph.num_src_nodes)
            if src_nodes is None
            else _node_selection(src_nodes, graph.num_src_nodes, "src_nodes")
        )
    elif src_nodes is not None:
        raise ValueError("src_nodes is only for cross graphs")
    else:
        src_idx = dst_idx
    new_dst = _relabel(dst_idx, graph.num_nodes)[graph.dst]  # (E,)
    new_src = _relabel(src_idx, graph.num_src_nodes)[graph.src]  # (E,)
    keep = (new_dst >= 0) & (new_src >= 0)  # (E,)
    return type(graph)(
        torch.stack([new_src[keep], new_dst[keep]]),
        dst_idx.numel(),
        num_src_nodes=src_idx.numel() if graph.is_cross else None,
        tokens=_pick(graph.tokens, dst_idx),
        src_tokens=_pick(graph.src_tokens, src_idx) if graph.is_cross else None,
        name=graph.name,
        cross=graph.is_cross,
    )


def permute(graph: TokenGraph, perm: Any, src_perm: Any = None) -> TokenGraph:
    """Nodes reordered, new ``k`` = old ``perm[k]``; see :meth:`TokenGraph.permute`."""
    perm_t = _node_selection(perm, graph.num_nodes, "perm")
    if perm_t.numel() != graph.num_nodes:
        raise ValueError(f"perm must list all {graph.num_nodes} nodes, got {perm_t.numel()}")
    sub = subgraph(graph, perm_t, src_perm)
    if graph.is_cross and src_perm is not None and sub.num_src_nodes != graph.num_src_nodes:
        raise ValueError(f"src_perm must list all {graph.num_src_nodes} source nodes")
    return sub


# ------------------------------------------------------------ batches
def _joined_labels(graphs: Sequence[TokenGraph], attr: str) -> list[str] | None:
    parts = [getattr(g, attr) for g in graphs]
    return None if any(p is None for p in parts) else [t for p in parts for t in p]


def batch(
    cls: type[TokenGraph], graphs: Sequence[TokenGraph]
) -> tuple[TokenGraph, torch.Tensor, torch.Tensor]:
    """The block-diagonal ``cls`` graph of ``graphs`` and its offsets ``ptr, src_ptr (B + 1,)``.

    See :meth:`TokenGraph.batch`, which stores the offsets on the result.
    """
    graphs = list(graphs)
    if not graphs or not all(isinstance(g, cls) for g in graphs):
        raise TypeError("batch needs a non-empty sequence of TokenGraphs")
    cross = {g.is_cross for g in graphs}
    if len(cross) != 1:
        raise ValueError("batch cannot mix cross and self graphs")
    (cross,) = cross
    ptr = torch.tensor([0] + [g.num_nodes for g in graphs]).cumsum(0)  # (B + 1,)
    src_ptr = torch.tensor([0] + [g.num_src_nodes for g in graphs]).cumsum(0)  # (B + 1,)
    shifts = torch.stack([src_ptr[:-1], ptr[:-1]])  # (2, B) offset of each member
    ei = torch.cat([g.edge_index + shifts[:, k, None] for k, g in enumerate(graphs)], 1)
    joined = cls(
        ei,  # (2, E_total)
        int(ptr[-1]),
        num_src_nodes=int(src_ptr[-1]) if cross else None,
        tokens=_joined_labels(graphs, "tokens"),
        src_tokens=_joined_labels(graphs, "src_tokens") if cross else None,
        cross=cross,
    )
    return joined, ptr, src_ptr


def unbatch(graph: TokenGraph) -> list[TokenGraph]:
    """The members of a graph made by :func:`batch`; see :meth:`TokenGraph.unbatch`."""
    ptr, src_ptr = graph.ptr, graph.src_ptr
    if ptr is None:
        raise ValueError("unbatch() needs a graph made by TokenGraph.batch")
    cut = lambda labels, a, b: None if labels is None else labels[a:b]  # noqa: E731
    src_labels = graph.src_tokens if graph.is_cross else None
    out = []
    for k in range(ptr.numel() - 1):
        lo, hi = int(ptr[k]), int(ptr[k + 1])
        slo, shi = int(src_ptr[k]), int(src_ptr[k + 1])
        sel = (graph.dst >= lo) & (graph.dst < hi)  # (E,) edges into member k
        member = type(graph)(
            graph.edge_index[:, sel] - torch.tensor([[slo], [lo]]),  # (2, E_k)
            hi - lo,
            num_src_nodes=shi - slo if graph.is_cross else None,
            tokens=cut(graph.tokens, lo, hi),
            src_tokens=cut(src_labels, slo, shi),
            cross=graph.is_cross,
        )
        out.append(member)
    return out
