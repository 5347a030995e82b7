"""Conversions of a token graph: dense masks and matrices, and networkx graphs.

The functions back the methods :meth:`TokenGraph.to_dense_mask`,
:meth:`TokenGraph.to_dense`, :meth:`TokenGraph.from_dense_mask`,
:meth:`TokenGraph.to_networkx` and
:meth:`TokenGraph.from_networkx`; a builder takes the class to construct as
``cls``. The dense mask follows ``scaled_dot_product_attention``:
``mask[i, j]`` is True iff edge ``j -> i`` (True = may attend).

Examples
--------
>>> from graphattn.graph import TokenGraph
>>> g = from_dense_mask(TokenGraph, torch.tensor([[True, False], [True, True]]))
>>> to_dense_mask(g).int().tolist()
[[1, 0], [1, 1]]
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import networkx as nx
import torch

from graphattn._validate import check_allocation

if TYPE_CHECKING:
    from graphattn.graph.core import TokenGraph

__all__ = [
    "DEFAULT_MAX_DENSE",
    "edge_attr_from_networkx",
    "from_dense_mask",
    "from_networkx",
    "to_dense",
    "to_dense_mask",
    "to_networkx",
]

DTYPES_KEY = "graphattn_dtypes"  # G.graph entry: the torch dtype of each edge attribute
DEFAULT_MAX_DENSE = 2**31  # elements of a dense (N, M) mask before we refuse


def to_dense_mask(graph: TokenGraph, *, max_elements: int = DEFAULT_MAX_DENSE) -> torch.Tensor:
    """Dense ``bool (N, M)`` mask of ``graph``; see :meth:`TokenGraph.to_dense_mask`."""
    n, m = graph.num_nodes, graph.num_src_nodes
    if n * m > max_elements:
        raise ValueError(
            f"dense mask of shape ({n}, {m}) has {n * m} "
            f"elements, more than max_elements={max_elements}; use a sparse backend"
        )
    check_allocation(n * m, f"the dense mask of shape ({n}, {m})")  # one byte per element
    return to_dense(graph, torch.ones(graph.num_edges, dtype=torch.bool))  # (N, M)


def to_dense(graph: TokenGraph, values: torch.Tensor, *, fill: float = 0.0) -> torch.Tensor:
    """Per-edge ``values`` as a dense matrix per head; see :meth:`TokenGraph.to_dense`."""
    e, n, m = graph.num_edges, graph.num_nodes, graph.num_src_nodes
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"values must be a tensor, got {type(values).__name__}")
    if not isinstance(fill, (int, float)):  # bool too: a mask's fill
        raise TypeError(f"fill must be a number, got {type(fill).__name__}")
    edges = {1: 0, 2: 0, 3: 1}.get(values.dim())  # the dim that runs over the edges
    if edges is None or values.shape[edges] != e:
        raise ValueError(
            f"values must have shape (E,), (E, H) or (B, E, H) with E={e} edges in "
            f"graph.edge_index column order, got {tuple(values.shape)}"
        )
    shape = (*values.shape[:edges], *values.shape[edges + 1 :], n, m)  # (.., H, N, M)
    check_allocation(math.prod(shape) * values.element_size(), f"the dense matrix {shape}")
    out = values.new_full(shape, fill)
    dst, src = graph.dst.to(values.device), graph.src.to(values.device)  # (E,)
    out[..., dst, src] = values if values.dim() == 1 else values.transpose(-1, -2)  # (.., H, E)
    return out


def from_dense_mask(
    cls: type[TokenGraph],
    mask: Any,
    *,
    cross: bool | None = None,
    tokens: Sequence[str] | None = None,
    src_tokens: Sequence[str] | None = None,
    name: str | None = None,
) -> TokenGraph:
    """A ``cls`` graph from a ``bool (N, M)`` mask; see :meth:`TokenGraph.from_dense_mask`."""
    m = torch.as_tensor(mask)
    if m.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor, got dtype {m.dtype}")
    if m.dim() != 2 or m.shape[0] == 0 or m.shape[1] == 0:
        raise ValueError(f"mask must have shape (N, M) with N, M > 0, got {tuple(m.shape)}")
    n, msrc = m.shape
    cross = (n != msrc) if cross is None else cross
    dst, src = m.nonzero(as_tuple=True)  # (E,) each
    return cls(
        torch.stack([src, dst]),
        n,
        num_src_nodes=msrc if cross else None,
        tokens=tokens,
        src_tokens=src_tokens if cross else None,
        name=name,
        cross=cross,
    )


def to_networkx(
    graph: TokenGraph, edge_attrs: Mapping[str, torch.Tensor] | None = None
) -> nx.DiGraph:
    """``graph`` as a ``networkx.DiGraph``; see :meth:`TokenGraph.to_networkx`."""
    values, dtypes = _edge_attr_lists(graph, edge_attrs)  # {name: E floats or lists}, dtypes
    G = nx.DiGraph(graphattn_cross=graph.is_cross, name=graph.name or "")
    if dtypes:  # read back by edge_attr_from_networkx, so a float32 attribute stays float32
        G.graph[DTYPES_KEY] = dtypes
    pairs = graph.edge_index.t().tolist()  # [[j, i], ...]
    data = [{key: vals[k] for key, vals in values.items()} for k in range(len(pairs))]
    if not graph.is_cross:
        for i in range(graph.num_nodes):
            G.add_node(i, **_token_attr(graph.tokens, i))
        G.add_edges_from((j, i, d) for (j, i), d in zip(pairs, data, strict=True))
        return G
    for j in range(graph.num_src_nodes):
        G.add_node(("src", j), bipartite=0, **_token_attr(graph.src_tokens, j))
    for i in range(graph.num_nodes):
        G.add_node(("dst", i), bipartite=1, **_token_attr(graph.tokens, i))
    G.add_edges_from((("src", j), ("dst", i), d) for (j, i), d in zip(pairs, data, strict=True))
    return G


def _edge_attr_lists(
    graph: TokenGraph, edge_attrs: Mapping[str, torch.Tensor] | None
) -> tuple[dict[str, list], dict[str, str]]:
    """Each per-edge tensor ``(E,)`` or ``(E, K)`` as a list of E floats or E lists; its dtype."""
    if edge_attrs is None:
        return {}, {}
    if not isinstance(edge_attrs, Mapping):
        raise TypeError(
            f"edge_attrs must be a mapping of name to tensor (E,) or (E, K), "
            f"got {type(edge_attrs).__name__}"
        )
    out, dtypes = {}, {}
    for key, value in edge_attrs.items():
        t = torch.as_tensor(value).detach().cpu()
        if t.dim() not in (1, 2) or t.shape[0] != graph.num_edges:
            raise ValueError(
                f"edge_attrs[{key!r}] must have shape ({graph.num_edges},) or "
                f"({graph.num_edges}, K), got {tuple(t.shape)}"
            )
        out[str(key)] = t.double().tolist()
        dtypes[str(key)] = str(t.dtype).removeprefix("torch.")
    return out, dtypes


def edge_attr_from_networkx(
    graph: TokenGraph,
    G: nx.Graph,
    name: str,
    nodes: Iterable[Hashable] | None = None,
    *,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Edge attribute ``name`` of ``G`` in ``graph``'s edge order (see the method of that name)."""
    if dtype is None:  # the dtype to_networkx recorded, else float64
        dtype = getattr(torch, G.graph.get(DTYPES_KEY, {}).get(name, "float64"))
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype or None, got {type(dtype).__name__}")
    if graph.is_cross:
        node_of = [("src", j) for j in range(graph.num_src_nodes)]
        dst_of = [("dst", i) for i in range(graph.num_nodes)]
    else:
        node_of = list(G.nodes) if nodes is None else list(nodes)
        dst_of = node_of
    values = []
    for j, i in graph.edge_index.t().tolist():
        u, v = node_of[j], dst_of[i]
        if not G.has_edge(u, v) or name not in G.edges[u, v]:
            raise ValueError(f"G has no edge attribute {name!r} on the edge {u!r} -> {v!r}")
        values.append(G.edges[u, v][name])
    return torch.tensor(values, dtype=dtype)  # (E,) or (E, K)


def _token_attr(labels: list[str] | None, k: int) -> dict[str, str]:
    return {} if labels is None else {"token": labels[k]}


def from_networkx(
    cls: type[TokenGraph],
    G: nx.Graph,
    nodes: Iterable[Hashable] | None = None,
    *,
    token_attr: str = "token",
    name: str | None = None,
) -> TokenGraph:
    """A ``cls`` graph from a networkx graph; see :meth:`TokenGraph.from_networkx`."""
    if not isinstance(G, nx.Graph):
        raise TypeError(f"G must be a networkx graph, got {type(G).__name__}")
    if G.graph.get("graphattn_cross"):
        return _from_cross_networkx(cls, G, token_attr, name)
    order = list(G.nodes) if nodes is None else list(nodes)
    _check_node_order(G, order)
    index = {node: k for k, node in enumerate(order)}
    edges = [(index[u], index[v]) for u, v in G.edges()]
    if not G.is_directed():
        edges += [(v, u) for u, v in edges]
    attrs = [G.nodes[n].get(token_attr) for n in order]
    tokens = attrs if all(a is not None for a in attrs) else [str(n) for n in order]
    name = name or G.graph.get("name") or None
    return cls(_edge_tensor(edges), len(order), tokens=tokens, name=name)


def _check_node_order(G: nx.Graph, order: list[Hashable]) -> None:
    """Raise unless ``order`` lists each node of ``G`` exactly once."""
    if not order:
        raise ValueError("G has no nodes; a TokenGraph needs at least one token")
    if len(set(order)) != len(order):
        raise ValueError("nodes repeats a node")
    known = set(order)
    missing = [n for n in G.nodes if n not in known]
    unknown = [n for n in order if n not in G]
    if missing or unknown:
        raise ValueError(
            f"nodes must list exactly G's nodes: missing {missing[:5]}, unknown {unknown[:5]}"
        )


def _edge_tensor(edges: list[tuple[int, int]]) -> torch.Tensor:
    """``[(j, i), ...]`` as a ``LongTensor (2, E)``."""
    if not edges:
        return torch.zeros(2, 0, dtype=torch.long)
    return torch.tensor(edges, dtype=torch.long).t()


def _from_cross_networkx(
    cls: type[TokenGraph], G: nx.Graph, token_attr: str, name: str | None
) -> TokenGraph:
    """Read back a cross graph written by :func:`to_networkx`."""
    m = sum(1 for n in G.nodes if n[0] == "src")
    n = sum(1 for n in G.nodes if n[0] == "dst")
    edges = [(u[1], v[1]) for u, v in G.edges()]
    src_tokens = [G.nodes[("src", j)].get(token_attr) for j in range(m)]
    tokens = [G.nodes[("dst", i)].get(token_attr) for i in range(n)]
    return cls(
        _edge_tensor(edges),
        n,
        num_src_nodes=m,
        tokens=tokens if None not in tokens else None,
        src_tokens=src_tokens if None not in src_tokens else None,
        name=name or G.graph.get("name") or None,
        cross=True,
    )
