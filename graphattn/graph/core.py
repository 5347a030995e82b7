"""The :class:`TokenGraph` class: construction, canonical order, sizes and labels.

A graph is validated and put in canonical order once, when it is built, and
never changes afterwards. Its other topics live in sibling modules whose
functions the methods call: :mod:`~graphattn.graph.convert` (dense masks,
networkx), :mod:`~graphattn.graph.algebra` (``|``, ``&``, ``-``, subgraphs,
batches), :mod:`~graphattn.graph.files` (JSON/NPZ), :mod:`~graphattn.graph.view`
(ASCII) and :mod:`~graphattn.graph.text` (labelled patterns).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import networkx as nx
import numpy as np
import torch

from graphattn._validate import check_positive_int
from graphattn.graph import algebra, convert, files, text, view
from graphattn.graph.convert import DEFAULT_MAX_DENSE

__all__ = ["OwnedEdges", "TokenGraph"]


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
        t = _from_numpy(edge_index)
    elif isinstance(edge_index, (list, tuple)):
        try:
            arr = np.asarray(edge_index)
        except ValueError as err:  # ragged rows
            raise ValueError(f"edge_index must have shape (2, E), got ragged rows: {err}") from err
        if arr.size == 0:
            arr = arr.reshape(2, 0).astype(np.int64)
        t = _from_numpy(arr)
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


def _canonical(ei: torch.Tensor, num_src_nodes: int, shared: bool) -> torch.Tensor:
    """``ei (2, E)`` sorted by (target, source) without duplicates, owned by the graph."""
    if _is_canonical(ei, num_src_nodes):
        # already canonical; a graph never changes, so it must not share
        # memory with an array the caller holds
        return ei.clone() if shared else ei
    key = torch.unique(ei[1] * num_src_nodes + ei[0], sorted=True)  # (E,)
    return torch.stack([key % num_src_nodes, key // num_src_nodes])  # (2, E)


def _from_numpy(arr: np.ndarray) -> torch.Tensor:
    """``arr`` as a tensor; an array of anything but numbers is refused by name."""
    if arr.dtype.kind not in "biuf":  # strings, objects, dates ...
        raise TypeError(f"edge_index must hold integers, got numpy dtype {arr.dtype}")
    return torch.from_numpy(arr)


def _label_list(labels: Iterable[str] | None, name: str) -> list[str] | None:
    """``labels`` as a list of strings (None stays None), refused by name if not a sequence."""
    if labels is None:
        return None
    if isinstance(labels, str):
        raise TypeError(f"{name} must be a sequence of strings, not one string")
    if not isinstance(labels, Iterable):
        raise TypeError(f"{name} must be a sequence of strings, got {type(labels).__name__}")
    return [str(t) for t in labels]


def _check_labels(labels: Sequence[str] | None, n: int, name: str) -> list[str] | None:
    labels = _label_list(labels, name)
    if labels is None:
        return None
    if len(labels) != n:
        raise ValueError(f"{name} must have {n} labels, got {len(labels)}")
    return labels


def _is_cross(
    cross: bool | None, num_nodes: int | None, num_src_nodes: int | None, src_tokens: Any
) -> bool:
    """``cross`` as given, else inferred: True where M differs from N or sources are labelled."""
    if cross is None:
        return (num_src_nodes is not None and num_src_nodes != num_nodes) or (
            src_tokens is not None
        )
    if not cross and num_src_nodes is not None and num_src_nodes != num_nodes:
        raise ValueError(
            f"cross=False needs num_src_nodes == num_nodes, got {num_src_nodes} != {num_nodes}"
        )
    return bool(cross)


def _infer_size(size: int | None, indices: torch.Tensor, arg: str) -> int:
    """``size`` checked, or the largest index + 1 where it is None."""
    if size is None:
        if indices.numel() == 0:
            raise ValueError(f"{arg} must be given for a graph without edges")
        return int(indices.max()) + 1
    return check_positive_int(size, arg)


def _sizes(
    ei: torch.Tensor,
    cross: bool,
    num_nodes: int | None,
    num_src_nodes: int | None,
    labels: tuple[Sequence[str] | None, Sequence[str] | None],
) -> tuple[int, int]:
    """``(N, M)`` from the arguments, the label counts or else the edges ``ei (2, E)``."""
    tokens, src_tokens = labels
    if num_nodes is None and tokens is not None:
        num_nodes = len(tokens)
    if not cross:
        n = _infer_size(num_nodes, ei, "num_nodes")
        return n, n
    if num_src_nodes is None and src_tokens is not None:
        num_src_nodes = len(src_tokens)
    n = _infer_size(num_nodes, ei[1], "num_nodes")
    return n, _infer_size(num_src_nodes, ei[0], "num_src_nodes")


MAX_NODE_PAIRS = 2**63 - 1  # N * M must stay below 2**63: edge keys dst * M + src are int64


def _check_pairs(num_nodes: int, num_src_nodes: int) -> None:
    """Raise unless every key ``dst * M + src < N * M`` fits in an int64."""
    if num_nodes * num_src_nodes > MAX_NODE_PAIRS:
        raise ValueError(
            f"num_nodes * num_src_nodes must be below 2**63 (edges are sorted by the int64 key "
            f"dst * num_src_nodes + src), got {num_nodes} * {num_src_nodes}"
        )


def _check_range(ei: torch.Tensor, num_nodes: int, num_src_nodes: int) -> None:
    """Raise unless all sources of ``ei (2, E)`` lie in ``[0, M)`` and all targets in ``[0, N)``."""
    if not ei.numel():
        return
    if int(ei.min()) < 0:
        raise ValueError(f"edge_index holds a negative index ({int(ei.min())})")
    if int(ei[1].max()) >= num_nodes:
        raise ValueError(
            f"edge_index target {int(ei[1].max())} is out of range for num_nodes={num_nodes}"
        )
    if int(ei[0].max()) >= num_src_nodes:
        raise ValueError(
            f"edge_index source {int(ei[0].max())} is out of range for "
            f"num_src_nodes={num_src_nodes}"
        )


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
        indices, a label list has the wrong length, or ``N * M >= 2**63``
        (edges are sorted by the int64 key ``dst * M + src``).

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
        tokens, src_tokens = _label_list(tokens, "tokens"), _label_list(src_tokens, "src_tokens")
        cross = _is_cross(cross, num_nodes, num_src_nodes, src_tokens)
        n, m = _sizes(ei, cross, num_nodes, num_src_nodes, (tokens, src_tokens))
        _check_pairs(n, m)
        _check_range(ei, n, m)
        self._edge_index = _canonical(ei, m, shared)  # (2, E)
        self._num_nodes = n
        self._num_src_nodes = m
        self._cross = cross
        self._tokens = _check_labels(tokens, n, "tokens")
        self._src_tokens = _check_labels(src_tokens, m, "src_tokens") if cross else None
        self.name = name
        self._indptr: torch.Tensor | None = None
        self._ptr: torch.Tensor | None = None
        self._src_ptr: torch.Tensor | None = None

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
        of :attr:`edge_index`. Computed once, on first use.

        Examples
        --------
        >>> TokenGraph([[0, 0, 1], [1, 2, 2]]).indptr.tolist()
        [0, 0, 1, 3]
        """
        if self._indptr is None:
            indptr = torch.zeros(self._num_nodes + 1, dtype=torch.long)
            torch.cumsum(self.in_degree(), 0, out=indptr[1:])
            self._indptr = indptr
        return self._indptr

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
        return algebra.with_edges(self, self._edge_index, tokens=tokens, src_tokens=src_tokens)

    # ---------------------------------------------------------- conversions
    def to_dense_mask(self, *, max_elements: int = DEFAULT_MAX_DENSE) -> torch.Tensor:
        """Dense boolean mask ``(N, M)``: ``mask[i, j]`` is True iff edge ``j -> i``.

        This is the convention of ``scaled_dot_product_attention`` (True = may
        attend). ``nn.MultiheadAttention`` uses the opposite: pass ``~mask`` there.

        Raises
        ------
        ValueError
            If ``N * M`` exceeds ``max_elements``, or the mask's ``N * M``
            bytes exceed this machine's memory.

        Examples
        --------
        >>> TokenGraph([[0, 0, 1], [1, 2, 2]]).to_dense_mask().int().tolist()
        [[0, 0, 0], [1, 0, 0], [1, 1, 0]]
        """
        return convert.to_dense_mask(self, max_elements=max_elements)

    def to_dense(self, values: torch.Tensor, *, fill: float = 0.0) -> torch.Tensor:
        """Per-edge values as a dense matrix: ``out[..., i, j]`` is the value of edge ``j -> i``.

        The inverse of reading a dense matrix at the edges
        (``dense[..., graph.dst, graph.src]``); pairs that are no edge get ``fill``.

        Parameters
        ----------
        values : Tensor, shape (E,), (E, H) or (B, E, H)
            One value per edge (and head, and example) in ``edge_index``
            column order, such as the weights of
            :func:`graphattn.graph_attention`.
        fill : float
            The value of the non-edges (0 by default; ``float("nan")`` or
            ``-inf`` tell them apart from edges of value 0).

        Returns
        -------
        Tensor, shape (N, M), (H, N, M) or (B, H, N, M)
            Head-major, in ``values``' dtype and device.

        Raises
        ------
        TypeError
            If ``values`` is not a tensor or ``fill`` is not a number.
        ValueError
            If ``values`` has another shape, or the dense matrix would not
            fit this machine's memory.

        Examples
        --------
        >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])  # 0 -> 0, 0 -> 1, 1 -> 1
        >>> g.to_dense(torch.tensor([1.0, 0.25, 0.75])).tolist()
        [[1.0, 0.0], [0.25, 0.75]]
        >>> g.to_dense(torch.ones(2, 3, 4), fill=-1.0).shape  # (B, E, H) -> (B, H, N, M)
        torch.Size([2, 4, 2, 2])
        """
        return convert.to_dense(self, values, fill=fill)

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
        return convert.from_dense_mask(
            cls, mask, cross=cross, tokens=tokens, src_tokens=src_tokens, name=name
        )

    def to_networkx(self, edge_attrs: Mapping[str, torch.Tensor] | None = None) -> nx.DiGraph:
        """Export as a ``networkx.DiGraph`` with edges ``j -> i``.

        Self graphs use nodes ``0..N-1``; cross graphs use ``("src", j)`` and
        ``("dst", i)`` with a ``bipartite`` attribute (0 sources, 1 targets).
        Labels are the node attribute ``token``. :meth:`from_networkx` reads it
        back losslessly, :meth:`edge_attr_from_networkx` the edge attributes.

        Parameters
        ----------
        edge_attrs : mapping of str to tensor (E,) or (E, K), optional
            Per-edge values in this graph's edge order (attention weights
            ``(E, H)``, a bias ``(E,)``), stored as edge attributes: a float,
            or a list of K floats (one per head).

        Raises
        ------
        TypeError, ValueError
            If ``edge_attrs`` is not a mapping, or a value is not ``(E,)`` or ``(E, K)``.

        Examples
        --------
        >>> G = TokenGraph([[0, 1], [1, 2]], tokens=["a", "b", "c"]).to_networkx()
        >>> sorted(G.edges()), G.nodes[2]["token"]
        ([(0, 1), (1, 2)], 'c')
        >>> w = torch.tensor([[0.25, 1.0], [0.75, 0.5]])  # (E, H)
        >>> TokenGraph([[0, 1], [1, 2]]).to_networkx({"weight": w}).edges[1, 2]
        {'weight': [0.75, 0.5]}
        """
        return convert.to_networkx(self, edge_attrs)

    def edge_attr_from_networkx(
        self,
        G: nx.Graph,
        name: str,
        nodes: Iterable[Hashable] | None = None,
        *,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """The edge attribute ``name`` of ``G``, one value per edge of this graph, in its order.

        Reads back what :meth:`to_networkx` wrote with ``edge_attrs`` (after
        :meth:`from_networkx` built this graph from ``G``; ``nodes`` as there).

        Parameters
        ----------
        G : networkx.Graph
            The graph holding the attribute.
        name : str
            The edge attribute.
        nodes : iterable of hashables, optional
            The node order, as given to :meth:`from_networkx`.
        dtype : torch.dtype, optional
            Of the result; default: the dtype :meth:`to_networkx` wrote it
            from (recorded in ``G.graph``), else float64.

        Returns
        -------
        Tensor (E,) or (E, K)
            In ``dtype``.

        Raises
        ------
        ValueError
            If an edge of this graph is missing in ``G`` or lacks the attribute.
        TypeError
            If ``dtype`` is neither a ``torch.dtype`` nor None.

        Examples
        --------
        >>> g = TokenGraph([[0, 1], [1, 2]])
        >>> G = g.to_networkx({"weight": torch.tensor([[0.25, 1.0], [0.75, 0.5]])})
        >>> back = TokenGraph.from_networkx(G).edge_attr_from_networkx(G, "weight")
        >>> back.tolist(), back.dtype
        ([[0.25, 1.0], [0.75, 0.5]], torch.float32)
        """
        return convert.edge_attr_from_networkx(self, G, name, nodes, dtype=dtype)

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
        return convert.from_networkx(cls, G, nodes, token_attr=token_attr, name=name)

    # --------------------------------------------------------------- algebra
    def __or__(self, other: TokenGraph) -> TokenGraph:
        """Union of edge sets."""
        return algebra.union(self, other)

    def __and__(self, other: TokenGraph) -> TokenGraph:
        """Intersection of edge sets."""
        return algebra.intersection(self, other)

    def __sub__(self, other: TokenGraph) -> TokenGraph:
        """Edges of ``self`` that are not in ``other``."""
        return algebra.difference(self, other)

    def reverse(self) -> TokenGraph:
        """Flip every edge (``j -> i`` becomes ``i -> j``); self graphs only.

        Examples
        --------
        >>> TokenGraph([[0], [1]]).reverse().edge_index.tolist()
        [[1], [0]]
        """
        return algebra.reverse(self)

    def add_self_loops(self) -> TokenGraph:
        """Add every edge ``i -> i``; self graphs only.

        Examples
        --------
        >>> TokenGraph([[0], [1]]).add_self_loops().num_edges
        3
        """
        return algebra.add_self_loops(self)

    def remove_self_loops(self) -> TokenGraph:
        """Drop every edge ``i -> i``.

        Examples
        --------
        >>> TokenGraph([[0, 1], [0, 0]]).remove_self_loops().edge_index.tolist()
        [[1], [0]]
        """
        return algebra.remove_self_loops(self)

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
        return algebra.subgraph(self, nodes, src_nodes)

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
        return algebra.permute(self, perm, src_perm)

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
        joined, ptr, src_ptr = algebra.batch(cls, graphs)
        joined._ptr, joined._src_ptr = ptr, src_ptr
        return joined

    def unbatch(self) -> list[TokenGraph]:
        """Split a graph made by :meth:`batch` back into its members.

        Examples
        --------
        >>> a, b = TokenGraph([[0], [1]]), TokenGraph([[0, 0], [1, 2]])
        >>> TokenGraph.batch([a, b]).unbatch() == [a, b]
        True
        """
        return algebra.unbatch(self)

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

    def _repr_svg_(self) -> str:
        """Notebook view: a small drawing of the mask (:func:`graphattn.graph.view.to_svg`)."""
        return view.to_svg(self)

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
        return view.to_string(self, max_nodes)

    # ------------------------------------------------------------- from text
    @classmethod
    def from_tokens(
        cls,
        tokens: str | Sequence[str],
        pattern: str | Callable[..., TokenGraph] = "causal",
        **params: Any,
    ) -> TokenGraph:
        """Label a named pattern's nodes with tokens.

        ``tokens`` is a list of labels or a string, split on whitespace.
        ``pattern`` and ``params`` are passed to :func:`graphattn.patterns.get`;
        ``pattern`` may also be a callable ``pattern(n, **params)`` that
        returns a graph on ``n`` nodes.

        Raises
        ------
        ValueError
            If ``tokens`` is empty, or ``pattern`` names a pattern while
            :mod:`graphattn.patterns` is not imported (``import graphattn``
            imports it).

        Examples
        --------
        >>> g = TokenGraph.from_tokens("The sky is blue")
        >>> g.tokens, g.num_edges
        (['The', 'sky', 'is', 'blue'], 10)
        >>> TokenGraph.from_tokens("a b", lambda n: TokenGraph([[0], [1]], n)).edge_index.tolist()
        [[0], [1]]
        """
        return text.from_tokens(cls, tokens, pattern, **params)

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
        return files.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TokenGraph:
        """Load a graph written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file is corrupt, not a graphattn graph, or of a newer version.
        """
        return files.load(cls, path)
