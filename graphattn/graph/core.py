"""Token graphs: the directed graphs that attention runs on.

An edge ``j -> i`` means "token i attends to token j": the source ``j`` gives
keys and values, the target ``i`` gives the query. ``edge_index`` row 0 holds
sources, row 1 targets (PyG's ``flow="source_to_target"``).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import networkx as nx
import numpy as np
import torch

from graphattn._files import atomic_write

__all__ = ["TokenGraph"]

FORMAT_NAME = "graphattn.TokenGraph"
FORMAT_VERSION = 1
DEFAULT_MAX_DENSE = 2**31  # elements of a dense (N, M) mask before we refuse


class OwnedEdges(NamedTuple):
    """An edge list handed over to :class:`TokenGraph`, which may keep it without a copy.

    Pattern builders wrap the ``(2, E)`` tensor they just built in it, so a
    large canonical edge list is neither sorted nor copied again. Nobody else
    may hold a reference that could later change it.
    """

    edge_index: torch.Tensor


def _as_index_tensor(edge_index: Any) -> tuple[torch.Tensor, bool]:
    """Validate ``edge_index``; return it as a CPU ``int64`` tensor ``(2, E)``.

    The flag is True where that tensor may share memory with an array the
    caller still holds (it is then copied before it is kept); an
    :class:`OwnedEdges` is handed over and never flagged.
    """
    if isinstance(edge_index, OwnedEdges):
        t = edge_index.edge_index
    elif isinstance(edge_index, torch.Tensor):
        t = edge_index.detach()
    elif isinstance(edge_index, np.ndarray):
        t = torch.from_numpy(edge_index)
    elif isinstance(edge_index, (list, tuple)):
        arr = np.asarray(edge_index)
        if arr.size == 0:
            arr = arr.reshape(2, 0).astype(np.int64)
        t = torch.from_numpy(arr)
    else:
        raise TypeError(
            f"edge_index must be a tensor, numpy array or nested list of shape (2, E), "
            f"got {type(edge_index).__name__}"
        )
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise TypeError(f"edge_index must hold integers, got dtype {t.dtype}")
    if t.dim() != 2 or t.shape[0] != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(t.shape)}")
    out = t.to(device="cpu", dtype=torch.long).contiguous()
    shared = isinstance(edge_index, (torch.Tensor, np.ndarray)) and out.data_ptr() == t.data_ptr()
    return out, shared


def _is_canonical(ei: torch.Tensor, num_src_nodes: int, chunk: int = 1 << 22) -> bool:
    """True if the keys ``dst * M + src`` of ``ei (2, E)`` strictly increase.

    Checked in chunks so that a large, already canonical edge list (as the
    pattern builders make) skips ``torch.unique`` without a full-size copy.
    """
    e = ei.shape[1]
    prev = None
    for lo in range(0, e, chunk):
        key = ei[1, lo : lo + chunk] * num_src_nodes  # (chunk,)
        key += ei[0, lo : lo + chunk]
        if prev is not None and bool(key[0] <= prev):
            return False
        if key.numel() > 1 and not bool((key[1:] > key[:-1]).all()):
            return False
        prev = key[-1]
    return True


def _check_labels(labels: Sequence[str] | None, n: int, name: str) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        raise TypeError(f"{name} must be a sequence of strings, not one string")
    labels = [str(t) for t in labels]
    if len(labels) != n:
        raise ValueError(f"{name} must have {n} labels, got {len(labels)}")
    return labels


class TokenGraph:
    """A directed graph over tokens: edge ``j -> i`` lets target ``i`` attend to source ``j``.

    Edges are stored in canonical order, sorted by (target, source) without
    duplicates; every per-edge tensor (attention weights, biases) follows the
    column order of :attr:`edge_index`. A graph is valid once constructed and
    never changes afterwards.

    Parameters
    ----------
    edge_index : tensor, ndarray or nested list, shape (2, E)
        Integer edge list; row 0 are sources ``j`` (keys/values), row 1
        targets ``i`` (queries).
    num_nodes : int, optional
        Number of target tokens ``N``. Defaults to the largest index + 1.
    num_src_nodes : int, optional
        Number of source tokens ``M``. Given and different from ``num_nodes``
        (or with ``src_tokens``), the graph is a cross (bipartite) graph whose
        sources are a second token set, e.g. encoder -> decoder.
    tokens, src_tokens : sequence of str, optional
        Labels of targets and (for cross graphs) sources, used by drawings.
    name : str, optional
        A short name shown by ``repr`` and in drawings (patterns set it).
    cross : bool, optional
        Force a cross graph even where ``M == N`` (default: inferred as above).

    Raises
    ------
    TypeError
        If ``edge_index`` is not an integer array or labels are not strings.
    ValueError
        If ``edge_index`` is not ``(2, E)``, holds negative or out-of-range
        indices, or a label list has the wrong length.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [1, 2, 2]], tokens=["The", "sky", "is"])
    >>> g
    TokenGraph(N=3, E=3, density=0.333)
    >>> g.edge_index.tolist()
    [[0, 0, 1], [1, 2, 2]]
    >>> g.in_degree().tolist()
    [0, 1, 2]
    """

    def __init__(
        self,
        edge_index: Any,
        num_nodes: int | None = None,
        *,
        num_src_nodes: int | None = None,
        tokens: Sequence[str] | None = None,
        src_tokens: Sequence[str] | None = None,
        name: str | None = None,
        cross: bool | None = None,
    ) -> None:
        ei, shared = _as_index_tensor(edge_index)  # (2, E)
        if cross is None:
            cross = (num_src_nodes is not None and num_src_nodes != num_nodes) or (
                src_tokens is not None
            )
        elif not cross and num_src_nodes is not None and num_src_nodes != num_nodes:
            raise ValueError(
                f"cross=False needs num_src_nodes == num_nodes, got {num_src_nodes} != {num_nodes}"
            )
        if num_nodes is None and tokens is not None:
            num_nodes = len(tokens)
        if cross and num_src_nodes is None and src_tokens is not None:
            num_src_nodes = len(src_tokens)
        num_nodes = self._infer_size(num_nodes, ei[1] if cross else ei, "num_nodes")
        if cross:
            num_src_nodes = self._infer_size(num_src_nodes, ei[0], "num_src_nodes")
        else:
            num_src_nodes = num_nodes
        if ei.numel():
            if int(ei.min()) < 0:
                raise ValueError(f"edge_index holds a negative index ({int(ei.min())})")
            if int(ei[1].max()) >= num_nodes:
                raise ValueError(
                    f"edge_index target {int(ei[1].max())} is out of range for "
                    f"num_nodes={num_nodes}"
                )
            if int(ei[0].max()) >= num_src_nodes:
                raise ValueError(
                    f"edge_index source {int(ei[0].max())} is out of range for "
                    f"num_src_nodes={num_src_nodes}"
                )
        if _is_canonical(ei, num_src_nodes):
            # already sorted by (target, source) without duplicates; a graph never
            # changes, so it must not share memory with an array the caller holds
            self._edge_index = ei.clone() if shared else ei
        else:
            key = torch.unique(ei[1] * num_src_nodes + ei[0], sorted=True)  # (E,)
            self._edge_index = torch.stack([key % num_src_nodes, key // num_src_nodes])
        self._num_nodes = int(num_nodes)
        self._num_src_nodes = int(num_src_nodes)
        self._cross = bool(cross)
        self._tokens = _check_labels(tokens, self._num_nodes, "tokens")
        self._src_tokens = (
            _check_labels(src_tokens, self._num_src_nodes, "src_tokens") if cross else None
        )
        self.name = name
        self._ptr: torch.Tensor | None = None
        self._src_ptr: torch.Tensor | None = None
        self._cache: dict[Hashable, Any] = {}

    @staticmethod
    def _infer_size(size: int | None, indices: torch.Tensor, arg: str) -> int:
        if size is None:
            if indices.numel() == 0:
                raise ValueError(f"{arg} must be given for a graph without edges")
            return int(indices.max()) + 1
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
            raise TypeError(f"{arg} must be an int, got {type(size).__name__}")
        if size <= 0:
            raise ValueError(f"{arg} must be positive, got {size}")
        return int(size)

    # ------------------------------------------------------------------ basics
    @property
    def edge_index(self) -> torch.Tensor:
        """``LongTensor (2, E)`` in canonical order: row 0 sources, row 1 targets."""
        return self._edge_index

    @property
    def src(self) -> torch.Tensor:
        """Source (key/value) index of every edge, ``(E,)``."""
        return self._edge_index[0]

    @property
    def dst(self) -> torch.Tensor:
        """Target (query) index of every edge, ``(E,)``."""
        return self._edge_index[1]

    @property
    def num_nodes(self) -> int:
        """Number of target tokens ``N``."""
        return self._num_nodes

    @property
    def num_src_nodes(self) -> int:
        """Number of source tokens ``M`` (``N`` for self graphs)."""
        return self._num_src_nodes

    @property
    def num_edges(self) -> int:
        """Number of edges ``E``."""
        return self._edge_index.shape[1]

    @property
    def is_cross(self) -> bool:
        """True for cross (bipartite) graphs whose sources are a second token set."""
        return self._cross

    @property
    def density(self) -> float:
        """Fraction of the ``N * M`` possible edges that are present."""
        return self.num_edges / (self._num_nodes * self._num_src_nodes)

    @property
    def tokens(self) -> list[str] | None:
        """Target token labels, or None."""
        return self._tokens

    @property
    def src_tokens(self) -> list[str] | None:
        """Source token labels (the target labels for self graphs), or None."""
        return self._src_tokens if self._cross else self._tokens

    @property
    def ptr(self) -> torch.Tensor | None:
        """For a graph made by :meth:`batch`: target offsets of each member, ``(B + 1,)``."""
        return self._ptr

    @property
    def src_ptr(self) -> torch.Tensor | None:
        """For a graph made by :meth:`batch`: source offsets of each member, ``(B + 1,)``."""
        return self._src_ptr

    def in_degree(self) -> torch.Tensor:
        """Number of incoming edges of every target, ``LongTensor (N,)``."""
        return torch.bincount(self.dst, minlength=self._num_nodes)

    def out_degree(self) -> torch.Tensor:
        """Number of outgoing edges of every source, ``LongTensor (M,)``."""
        return torch.bincount(self.src, minlength=self._num_src_nodes)

    @property
    def indptr(self) -> torch.Tensor:
        """CSR row pointer over targets, ``LongTensor (N + 1,)``.

        The incoming edges of target ``i`` are columns ``indptr[i]:indptr[i+1]``
        of :attr:`edge_index`.

        Examples
        --------
        >>> TokenGraph([[0, 0, 1], [1, 2, 2]]).indptr.tolist()
        [0, 0, 1, 3]
        """
        return self.cached("indptr", self._build_indptr)

    def _build_indptr(self) -> torch.Tensor:
        indptr = torch.zeros(self._num_nodes + 1, dtype=torch.long)
        torch.cumsum(self.in_degree(), 0, out=indptr[1:])
        return indptr

    def cached(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """Return the plan stored under ``key``, building it once with ``build()``.

        Kernels keep graph-only plans here (CSR on a device, block lists,
        BlockMasks) so that repeated calls on one graph reuse them.

        Examples
        --------
        >>> g = TokenGraph([[0], [1]])
        >>> g.cached("answer", lambda: 42)
        42
        """
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def to_block_mask(self, block_size: int = 128, *, device: torch.device | str = "cpu") -> Any:
        """This graph as a FlexAttention ``BlockMask``, without an ``N x M`` table.

        See :func:`graphattn.backends.flex.to_block_mask`.

        Examples
        --------
        >>> TokenGraph([[0, 0, 1], [0, 1, 1]]).to_block_mask().kv_num_blocks.tolist()
        [[[1]]]
        """
        from graphattn.backends.flex import to_block_mask  # kernels build on this module

        return to_block_mask(self, block_size, device=device)

    def _like(self, edge_index: torch.Tensor, **changes: Any) -> TokenGraph:
        """A graph with this one's sizes, labels and name but other edges."""
        kwargs = dict(
            num_nodes=self._num_nodes,
            num_src_nodes=self._num_src_nodes,
            tokens=self._tokens,
            src_tokens=self._src_tokens,
            name=self.name,
            cross=self._cross,
        )
        kwargs.update(changes)
        return TokenGraph(edge_index, **kwargs)

    def with_tokens(
        self, tokens: Sequence[str] | None, src_tokens: Sequence[str] | None = None
    ) -> TokenGraph:
        """The same edges with new labels.

        Examples
        --------
        >>> TokenGraph([[0], [1]]).with_tokens(["a", "b"]).tokens
        ['a', 'b']
        """
        if src_tokens is not None and not self._cross:
            raise ValueError("src_tokens is only for cross graphs; a self graph has one label set")
        return self._like(self._edge_index, tokens=tokens, src_tokens=src_tokens)

    # ---------------------------------------------------------- conversions
    def to_dense_mask(self, *, max_elements: int = DEFAULT_MAX_DENSE) -> torch.Tensor:
        """Dense boolean mask ``(N, M)``: ``mask[i, j]`` is True iff edge ``j -> i``.

        This is the convention of ``scaled_dot_product_attention`` (True = may
        attend). ``nn.MultiheadAttention`` uses the opposite: pass ``~mask`` there.

        Raises
        ------
        ValueError
            If ``N * M`` exceeds ``max_elements`` (the mask would not fit).

        Examples
        --------
        >>> TokenGraph([[0, 0, 1], [1, 2, 2]]).to_dense_mask().int().tolist()
        [[0, 0, 0], [1, 0, 0], [1, 1, 0]]
        """
        size = self._num_nodes * self._num_src_nodes
        if size > max_elements:
            raise ValueError(
                f"dense mask of shape ({self._num_nodes}, {self._num_src_nodes}) has {size} "
                f"elements, more than max_elements={max_elements}; use a sparse backend"
            )
        mask = torch.zeros(self._num_nodes, self._num_src_nodes, dtype=torch.bool)
        mask[self.dst, self.src] = True
        return mask

    @classmethod
    def from_dense_mask(
        cls,
        mask: Any,
        *,
        cross: bool | None = None,
        tokens: Sequence[str] | None = None,
        src_tokens: Sequence[str] | None = None,
        name: str | None = None,
    ) -> TokenGraph:
        """Build a graph from a boolean mask ``(N, M)`` (True at ``[i, j]`` = edge ``j -> i``).

        ``cross`` defaults to ``N != M``.

        Examples
        --------
        >>> m = torch.tensor([[True, False], [True, True]])
        >>> TokenGraph.from_dense_mask(m).edge_index.tolist()
        [[0, 0, 1], [0, 1, 1]]
        """
        m = torch.as_tensor(mask)
        if m.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor, got dtype {m.dtype}")
        if m.dim() != 2 or m.shape[0] == 0 or m.shape[1] == 0:
            raise ValueError(f"mask must have shape (N, M) with N, M > 0, got {tuple(m.shape)}")
        n, msrc = m.shape
        cross = (n != msrc) if cross is None else cross
        dst, src = m.nonzero(as_tuple=True)
        return cls(
            torch.stack([src, dst]),
            n,
            num_src_nodes=msrc if cross else None,
            tokens=tokens,
            src_tokens=src_tokens if cross else None,
            name=name,
            cross=cross,
        )

    def to_networkx(self) -> nx.DiGraph:
        """Export as a ``networkx.DiGraph`` with edges ``j -> i``.

        Self graphs use nodes ``0..N-1``; cross graphs use ``("src", j)`` and
        ``("dst", i)`` with a ``bipartite`` attribute (0 sources, 1 targets).
        Labels are the node attribute ``token``. :meth:`from_networkx` reads it
        back losslessly.

        Examples
        --------
        >>> G = TokenGraph([[0, 1], [1, 2]], tokens=["a", "b", "c"]).to_networkx()
        >>> sorted(G.edges()), G.nodes[2]["token"]
        ([(0, 1), (1, 2)], 'c')
        """
        G = nx.DiGraph(graphattn_cross=self._cross, name=self.name or "")
        if self._cross:
            for j in range(self._num_src_nodes):
                attrs = {"bipartite": 0}
                if self._src_tokens is not None:
                    attrs["token"] = self._src_tokens[j]
                G.add_node(("src", j), **attrs)
            for i in range(self._num_nodes):
                attrs = {"bipartite": 1}
                if self._tokens is not None:
                    attrs["token"] = self._tokens[i]
                G.add_node(("dst", i), **attrs)
            G.add_edges_from(
                (("src", j), ("dst", i)) for j, i in self._edge_index.t().tolist()
            )
            return G
        for i in range(self._num_nodes):
            G.add_node(i, **({"token": self._tokens[i]} if self._tokens is not None else {}))
        G.add_edges_from(map(tuple, self._edge_index.t().tolist()))
        return G

    @classmethod
    def from_networkx(
        cls,
        G: nx.Graph,
        nodes: Iterable[Hashable] | None = None,
        *,
        token_attr: str = "token",
        name: str | None = None,
    ) -> TokenGraph:
        """Build a self graph from any networkx graph (edge ``u -> v``: v attends to u).

        Node names may be any hashables; ``nodes`` fixes their order (default:
        ``G.nodes`` order). Labels come from the ``token_attr`` node attribute
        where every node has one, else from ``str(node)``. An undirected graph
        gives edges both ways. A graph written by :meth:`to_networkx` for a cross
        graph is read back as that cross graph.

        Raises
        ------
        ValueError
            If ``nodes`` repeats a node, misses one of ``G``'s nodes, or names one
            ``G`` does not have, or if ``G`` is empty.

        Examples
        --------
        >>> G = nx.DiGraph([("the", "cat"), ("cat", "sat"), ("the", "sat")])
        >>> g = TokenGraph.from_networkx(G)
        >>> g.tokens, g.edge_index.tolist()
        (['the', 'cat', 'sat'], [[0, 0, 1], [1, 2, 2]])
        """
        if not isinstance(G, nx.Graph):
            raise TypeError(f"G must be a networkx graph, got {type(G).__name__}")
        if G.graph.get("graphattn_cross"):
            return cls._from_cross_networkx(G, token_attr, name)
        order = list(G.nodes) if nodes is None else list(nodes)
        if not order:
            raise ValueError("G has no nodes; a TokenGraph needs at least one token")
        index = {node: k for k, node in enumerate(order)}
        if len(index) != len(order):
            raise ValueError("nodes repeats a node")
        missing = [n for n in G.nodes if n not in index]
        unknown = [n for n in order if n not in G]
        if missing or unknown:
            raise ValueError(
                f"nodes must list exactly G's nodes: missing {missing[:5]}, unknown {unknown[:5]}"
            )
        edges = [(index[u], index[v]) for u, v in G.edges()]
        if not G.is_directed():
            edges += [(v, u) for u, v in edges]
        ei = torch.tensor(edges, dtype=torch.long).t() if edges else torch.zeros(2, 0)
        attrs = [G.nodes[n].get(token_attr) for n in order]
        tokens = attrs if all(a is not None for a in attrs) else [str(n) for n in order]
        return cls(ei.long(), len(order), tokens=tokens, name=name or G.graph.get("name") or None)

    @classmethod
    def _from_cross_networkx(cls, G: nx.Graph, token_attr: str, name: str | None) -> TokenGraph:
        m = sum(1 for n in G.nodes if n[0] == "src")
        n = sum(1 for n in G.nodes if n[0] == "dst")
        edges = [(u[1], v[1]) for u, v in G.edges()]
        ei = torch.tensor(edges, dtype=torch.long).t() if edges else torch.zeros(2, 0)
        src_tokens = [G.nodes[("src", j)].get(token_attr) for j in range(m)]
        tokens = [G.nodes[("dst", i)].get(token_attr) for i in range(n)]
        return cls(
            ei.long(),
            n,
            num_src_nodes=m,
            tokens=tokens if None not in tokens else None,
            src_tokens=src_tokens if None not in src_tokens else None,
            name=name or G.graph.get("name") or None,
            cross=True,
        )

    # --------------------------------------------------------------- algebra
    def _check_compatible(self, other: Any, op: str) -> None:
        if not isinstance(other, TokenGraph):
            raise TypeError(f"{op} needs two TokenGraphs, got {type(other).__name__}")
        mine = (self._num_nodes, self._num_src_nodes, self._cross)
        theirs = (other._num_nodes, other._num_src_nodes, other._cross)
        if mine != theirs:
            raise ValueError(
                f"{op} needs graphs of the same sizes (N, M, cross): {mine} vs {theirs}"
            )

    def _keys(self) -> torch.Tensor:
        return self.dst * self._num_src_nodes + self.src  # (E,) sorted

    def _from_keys(self, keys: torch.Tensor) -> TokenGraph:
        ei = torch.stack([keys % self._num_src_nodes, keys // self._num_src_nodes])
        return self._like(ei, name=None)

    def __or__(self, other: TokenGraph) -> TokenGraph:
        """Union of edge sets."""
        self._check_compatible(other, "|")
        return self._from_keys(torch.cat([self._keys(), other._keys()]))

    def __and__(self, other: TokenGraph) -> TokenGraph:
        """Intersection of edge sets."""
        self._check_compatible(other, "&")
        keys = self._keys()
        return self._from_keys(keys[torch.isin(keys, other._keys())])

    def __sub__(self, other: TokenGraph) -> TokenGraph:
        """Edges of ``self`` that are not in ``other``."""
        self._check_compatible(other, "-")
        keys = self._keys()
        return self._from_keys(keys[~torch.isin(keys, other._keys())])

    def _require_self(self, op: str) -> None:
        if self._cross:
            raise ValueError(f"{op} is defined for self graphs only, got a cross graph")

    def reverse(self) -> TokenGraph:
        """Flip every edge (``j -> i`` becomes ``i -> j``); self graphs only.

        Examples
        --------
        >>> TokenGraph([[0], [1]]).reverse().edge_index.tolist()
        [[1], [0]]
        """
        self._require_self("reverse()")
        return self._like(self._edge_index.flip(0))

    def add_self_loops(self) -> TokenGraph:
        """Add every edge ``i -> i``; self graphs only.

        Examples
        --------
        >>> TokenGraph([[0], [1]]).add_self_loops().num_edges
        3
        """
        self._require_self("add_self_loops()")
        loops = torch.arange(self._num_nodes).expand(2, -1)
        return self._like(torch.cat([self._edge_index, loops], 1))

    def remove_self_loops(self) -> TokenGraph:
        """Drop every edge ``i -> i``.

        Examples
        --------
        >>> TokenGraph([[0, 1], [0, 0]]).remove_self_loops().edge_index.tolist()
        [[1], [0]]
        """
        keep = self.src != self.dst
        if self._cross:
            keep = torch.ones_like(keep)
        return self._like(self._edge_index[:, keep])

    @staticmethod
    def _node_selection(nodes: Any, n: int, arg: str) -> torch.Tensor:
        idx = torch.as_tensor(nodes)
        if idx.dtype == torch.bool:
            if idx.shape != (n,):
                raise ValueError(
                    f"{arg} as a bool mask must have shape ({n},), got {tuple(idx.shape)}"
                )
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

    @staticmethod
    def _relabel(idx: torch.Tensor, n: int) -> torch.Tensor:
        new = torch.full((n,), -1, dtype=torch.long)
        new[idx] = torch.arange(idx.numel())
        return new

    def subgraph(self, nodes: Any, src_nodes: Any = None) -> TokenGraph:
        """The graph induced by ``nodes`` (in the given order), relabelled ``0..k-1``.

        For cross graphs ``src_nodes`` selects sources (default: all).

        Examples
        --------
        >>> g = TokenGraph([[0, 1, 2], [1, 2, 3]], tokens=list("abcd"))
        >>> s = g.subgraph([1, 2, 3])
        >>> s.edge_index.tolist(), s.tokens
        ([[0, 1], [1, 2]], ['b', 'c', 'd'])
        """
        dst_idx = self._node_selection(nodes, self._num_nodes, "nodes")
        if self._cross:
            src_idx = (
                torch.arange(self._num_src_nodes)
                if src_nodes is None
                else self._node_selection(src_nodes, self._num_src_nodes, "src_nodes")
            )
        elif src_nodes is not None:
            raise ValueError("src_nodes is only for cross graphs")
        else:
            src_idx = dst_idx
        new_dst = self._relabel(dst_idx, self._num_nodes)[self.dst]  # (E,)
        new_src = self._relabel(src_idx, self._num_src_nodes)[self.src]  # (E,)
        keep = (new_dst >= 0) & (new_src >= 0)
        pick = lambda labels, idx: None if labels is None else [labels[k] for k in idx.tolist()]  # noqa: E731
        return TokenGraph(
            torch.stack([new_src[keep], new_dst[keep]]),
            dst_idx.numel(),
            num_src_nodes=src_idx.numel() if self._cross else None,
            tokens=pick(self._tokens, dst_idx),
            src_tokens=pick(self._src_tokens, src_idx),
            name=self.name,
            cross=self._cross,
        )

    def permute(self, perm: Any, src_perm: Any = None) -> TokenGraph:
        """Reorder nodes: new node ``k`` is old node ``perm[k]``.

        With this convention, attention on ``graph.permute(perm)`` over inputs
        ``x[perm]`` gives ``out[perm]``. For cross graphs ``src_perm`` reorders
        the sources (default: unchanged).

        Examples
        --------
        >>> g = TokenGraph([[0], [1]], tokens=["a", "b"])
        >>> p = g.permute([1, 0])
        >>> p.edge_index.tolist(), p.tokens
        ([[1], [0]], ['b', 'a'])
        """
        perm_t = self._node_selection(perm, self._num_nodes, "perm")
        if perm_t.numel() != self._num_nodes:
            raise ValueError(f"perm must list all {self._num_nodes} nodes, got {perm_t.numel()}")
        sub = self.subgraph(perm_t, None if src_perm is None else src_perm)
        if self._cross and src_perm is not None and sub.num_src_nodes != self._num_src_nodes:
            raise ValueError(f"src_perm must list all {self._num_src_nodes} source nodes")
        return sub

    # ---------------------------------------------------------------- batches
    @classmethod
    def batch(cls, graphs: Sequence[TokenGraph]) -> TokenGraph:
        """Join graphs into one block-diagonal graph, nodes concatenated in order.

        The result's :attr:`ptr` (and :attr:`src_ptr`) hold each member's node
        offsets; :meth:`unbatch` splits it back.

        Examples
        --------
        >>> a, b = TokenGraph([[0], [1]]), TokenGraph([[0, 0], [1, 2]])
        >>> g = TokenGraph.batch([a, b])
        >>> g.edge_index.tolist(), g.ptr.tolist()
        ([[0, 2, 2], [1, 3, 4]], [0, 2, 5])
        """
        graphs = list(graphs)
        if not graphs or not all(isinstance(g, TokenGraph) for g in graphs):
            raise TypeError("batch needs a non-empty sequence of TokenGraphs")
        cross = {g.is_cross for g in graphs}
        if len(cross) != 1:
            raise ValueError("batch cannot mix cross and self graphs")
        (cross,) = cross
        ptr = torch.tensor([0] + [g.num_nodes for g in graphs]).cumsum(0)
        src_ptr = torch.tensor([0] + [g.num_src_nodes for g in graphs]).cumsum(0)
        ei = torch.cat(
            [
                g.edge_index + torch.stack([src_ptr[k], ptr[k]]).unsqueeze(1)
                for k, g in enumerate(graphs)
            ],
            1,
        )  # (2, E_total)

        def labels(attr: str) -> list[str] | None:
            parts = [getattr(g, attr) for g in graphs]
            return None if any(p is None for p in parts) else [t for p in parts for t in p]

        out = cls(
            ei,
            int(ptr[-1]),
            num_src_nodes=int(src_ptr[-1]) if cross else None,
            tokens=labels("tokens"),
            src_tokens=labels("src_tokens") if cross else None,
            cross=cross,
        )
        out._ptr, out._src_ptr = ptr, src_ptr
        return out

    def unbatch(self) -> list[TokenGraph]:
        """Split a graph made by :meth:`batch` back into its members.

        Examples
        --------
        >>> a, b = TokenGraph([[0], [1]]), TokenGraph([[0, 0], [1, 2]])
        >>> TokenGraph.batch([a, b]).unbatch() == [a, b]
        True
        """
        if self._ptr is None:
            raise ValueError("unbatch() needs a graph made by TokenGraph.batch")
        out = []
        for k in range(self._ptr.numel() - 1):
            lo, hi = int(self._ptr[k]), int(self._ptr[k + 1])
            slo, shi = int(self._src_ptr[k]), int(self._src_ptr[k + 1])
            sel = (self.dst >= lo) & (self.dst < hi)
            ei = self._edge_index[:, sel] - torch.tensor([[slo], [lo]])
            cut = lambda labels, a, b: None if labels is None else labels[a:b]  # noqa: E731
            out.append(
                TokenGraph(
                    ei,
                    hi - lo,
                    num_src_nodes=shi - slo if self._cross else None,
                    tokens=cut(self._tokens, lo, hi),
                    src_tokens=cut(self._src_tokens, slo, shi),
                    cross=self._cross,
                )
            )
        return out

    # ------------------------------------------------------------ comparison
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TokenGraph):
            return NotImplemented
        return (
            self._num_nodes == other._num_nodes
            and self._num_src_nodes == other._num_src_nodes
            and self._cross == other._cross
            and torch.equal(self._edge_index, other._edge_index)
            and self._tokens == other._tokens
            and self._src_tokens == other._src_tokens
        )

    __hash__ = None  # mutable-looking value type: equality without hashing

    def __repr__(self) -> str:
        name = f"{self.name!r}, " if self.name else ""
        sizes = (
            f"N={self._num_nodes}, M={self._num_src_nodes}, cross"
            if self._cross
            else f"N={self._num_nodes}"
        )
        return f"TokenGraph({name}{sizes}, E={self.num_edges}, density={self.density:.3g})"

    def to_string(self, max_nodes: int = 64) -> str:
        """ASCII grid of the mask: rows are targets ``i``, columns sources ``j``.

        ``x`` marks an edge ``j -> i``, ``.`` its absence.

        Examples
        --------
        >>> print(TokenGraph([[0, 0, 1, 0, 1, 2], [0, 1, 1, 2, 2, 2]]).to_string())
        TokenGraph(N=3, E=6, density=0.667)
        x . .
        x x .
        x x x
        """
        if max(self._num_nodes, self._num_src_nodes) > max_nodes:
            raise ValueError(
                f"to_string draws graphs of at most max_nodes={max_nodes} nodes; this one has "
                f"N={self._num_nodes}, M={self._num_src_nodes} (use graphattn.plot.draw_pattern)"
            )
        mask = self.to_dense_mask()
        rows = [" ".join("x" if v else "." for v in row) for row in mask.tolist()]
        return "\n".join([repr(self), *rows])

    # ------------------------------------------------------------- from text
    @classmethod
    def from_tokens(
        cls, tokens: str | Sequence[str], pattern: str = "causal", **params: Any
    ) -> TokenGraph:
        """Label a named pattern's nodes with tokens.

        ``tokens`` is a list of labels or a string, split on whitespace.
        ``pattern`` and ``params`` are passed to :func:`graphattn.patterns.get`.

        Examples
        --------
        >>> g = TokenGraph.from_tokens("The sky is blue")
        >>> g.tokens, g.num_edges
        (['The', 'sky', 'is', 'blue'], 10)
        """
        from graphattn import patterns  # patterns builds on this module; imported late

        labels = tokens.split() if isinstance(tokens, str) else list(tokens)
        if not labels:
            raise ValueError("tokens is empty; a token graph needs at least one token")
        return patterns.get(pattern, len(labels), **params).with_tokens(labels)

    # ----------------------------------------------------------------- files
    def save(self, path: str | os.PathLike) -> Path:
        """Save to ``.json`` (small graphs, readable) or ``.npz`` (large graphs).

        The file is written to a temporary name and moved into place, so a
        failure never leaves a half-written file. No pickle is used.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> g = TokenGraph([[0], [1]], tokens=["a", "b"])
        >>> with tempfile.TemporaryDirectory() as d:
        ...     TokenGraph.load(g.save(pathlib.Path(d) / "g.json")) == g
        True
        """
        path = Path(path)
        meta = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "num_nodes": self._num_nodes,
            "num_src_nodes": self._num_src_nodes,
            "cross": self._cross,
            "name": self.name,
            "tokens": self._tokens,
            "src_tokens": self._src_tokens,
        }
        suffix = path.suffix.lower()
        if suffix not in (".json", ".npz"):
            raise ValueError(f"path must end in .json or .npz, got {path.name!r}")
        if suffix == ".json":
            meta["edge_index"] = self._edge_index.tolist()
            text = json.dumps(meta)
            return atomic_write(path, lambda tmp: tmp.write_text(text))
        return atomic_write(
            path,
            lambda tmp: np.savez_compressed(
                tmp, meta=np.array(json.dumps(meta)), edge_index=self._edge_index.numpy()
            ),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> TokenGraph:
        """Load a graph written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file is corrupt, not a graphattn graph, or of a newer version.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        try:
            if suffix == ".json":
                meta = json.loads(path.read_text())
                if not isinstance(meta, dict):
                    raise ValueError("top level is not an object")
                edge_index = meta.get("edge_index")
            elif suffix == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    meta = json.loads(str(z["meta"]))
                    edge_index = z["edge_index"]
            else:
                raise ValueError(f"path must end in .json or .npz, got {path.name!r}")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            if isinstance(err, FileNotFoundError):
                raise
            raise ValueError(f"{path} is not a readable graphattn graph file: {err}") from err
        if meta.get("format") != FORMAT_NAME:
            raise ValueError(
                f"{path} is not a graphattn graph file (format={meta.get('format')!r})"
            )
        if meta.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{path} has graph format version {meta.get('version')!r}; "
                f"this graphattn reads version {FORMAT_VERSION}"
            )
        if edge_index is None:
            raise ValueError(f"{path} holds an invalid graph: it has no edge_index")
        try:
            cross = bool(meta["cross"])
            g = cls(
                edge_index if edge_index is not None and len(edge_index) else [[], []],
                meta["num_nodes"],
                num_src_nodes=meta["num_src_nodes"] if cross else None,
                tokens=meta.get("tokens"),
                src_tokens=meta.get("src_tokens") if cross else None,
                name=meta.get("name"),
                cross=cross,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path} holds an invalid graph: {err}") from err
        return g
