"""A partition of a token graph over ranks, and the halo-exchange plan it implies.

Rank ``r`` owns the targets ``owned[r]`` (their queries and outputs) and the
sources ``owned_src[r]`` (their key/value rows; the same tokens for a self
graph). Its *halo* ``halo[r]`` is every source of an edge into an owned
target that rank ``r`` does not own: exactly the rows it must receive, and
nothing else. The plan (:attr:`Partition.counts`, :attr:`Partition.send_index`)
says which rows each rank sends to each other rank; the exchange is one
uneven all-to-all along it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NamedTuple

import torch

from graphattn._cache import ObjectCache
from graphattn._validate import check_allocation, check_int, check_positive_int
from graphattn.distributed.assign import METHODS, contiguous_owners, metis_owners
from graphattn.graph import TokenGraph

__all__ = ["LocalPlan", "Partition", "local_plan", "partition", "partition_as"]

# Per-rank local graphs, and partitions of other graphs with the same owners, kept while
# their partition lives.
LOCAL_PLANS = ObjectCache("distributed local plans")


@dataclass(frozen=True, eq=False)
class Partition:
    """Who owns which tokens, and which key/value rows move between ranks.

    Built by :func:`partition`; every field is a pure function of the graph,
    the world size, the method and the seed, identical on every rank.

    Attributes
    ----------
    graph : TokenGraph
        The partitioned graph.
    world_size : int
        Number of ranks ``P``.
    method : str
        ``"contiguous"`` or ``"metis"``.
    owner : LongTensor (N,)
        The rank that owns each target.
    src_owner : LongTensor (M,)
        The rank that owns each source (``owner`` itself for a self graph).
    owned : tuple of P LongTensors
        ``owned[r]``: the targets rank ``r`` owns, ascending (rows of its ``q``).
    owned_src : tuple of P LongTensors
        ``owned_src[r]``: the sources rank ``r`` owns, ascending (rows of its
        ``k``, ``v``); equal to ``owned`` for a self graph.
    halo : tuple of P LongTensors
        ``halo[r]``: the sources of edges into ``owned[r]`` that rank ``r`` does
        not own, grouped by owning rank (ascending) and ascending within a
        group: the order in which the exchange delivers them.
    counts : LongTensor (P, P)
        ``counts[s, r]``: how many key/value rows rank ``s`` sends to rank ``r``.
    send_index : tuple of P LongTensors
        ``send_index[s]``: positions in ``owned_src[s]`` of the rows rank ``s``
        sends, for destination rank 0, then 1, ... (split by ``counts[s]``).
    fingerprint : int
        A hash of the graph, the world size and the assignment; ranks compare
        it before exchanging anything.
    """

    graph: TokenGraph
    world_size: int
    method: str
    owner: torch.Tensor
    src_owner: torch.Tensor
    owned: tuple[torch.Tensor, ...]
    owned_src: tuple[torch.Tensor, ...]
    halo: tuple[torch.Tensor, ...]
    counts: torch.Tensor
    send_index: tuple[torch.Tensor, ...]
    fingerprint: int

    def rows(self, sender: int, receiver: int) -> torch.Tensor:
        """The source tokens (global indices) that rank ``sender`` sends to ``receiver``.

        Examples
        --------
        >>> from graphattn import patterns
        >>> part = partition(patterns.sliding_window(6, 2), 2, method="contiguous")
        >>> part.rows(0, 1).tolist(), part.rows(1, 0).tolist()
        ([2], [])
        """
        sender = check_int(sender, "sender", low=0, high=self.world_size - 1)
        receiver = check_int(receiver, "receiver", low=0, high=self.world_size - 1)
        start = int(self.counts[sender, :receiver].sum())
        pos = self.send_index[sender][start : start + int(self.counts[sender, receiver])]
        return self.owned_src[sender][pos]

    def __repr__(self) -> str:
        sizes = [len(o) for o in self.owned]
        halo = [len(h) for h in self.halo]
        return (
            f"Partition(world_size={self.world_size}, method={self.method!r}, "
            f"owned={sizes}, halo={halo})"
        )


def _split(values: torch.Tensor, groups: torch.Tensor, p: int) -> tuple[torch.Tensor, ...]:
    """``values`` (sorted by ``groups``) split into ``p`` tensors, one per group."""
    return tuple(values.split(torch.bincount(groups, minlength=p).tolist()))


def _owned(owner: torch.Tensor, p: int) -> tuple[torch.Tensor, ...]:
    """The tokens of each rank, ascending."""
    order = torch.argsort(owner, stable=True)  # (N,) tokens grouped by rank, ascending within
    return _split(order, owner[order], p)


def _positions(owned_src: tuple[torch.Tensor, ...], m: int) -> torch.Tensor:
    """``(M,)``: each source's position in its owner's ``owned_src`` list."""
    pos = torch.empty(m, dtype=torch.long)
    for rows in owned_src:
        pos[rows] = torch.arange(len(rows))
    return pos


def _halo_pairs(graph: TokenGraph, owner, src_owner, p: int):
    """Sorted ``(receiver, sender, source)`` triples of every row that must move."""
    src, dst = graph.src, graph.dst
    m = graph.num_src_nodes
    key = (owner[dst] * p + src_owner[src]) * m + src  # (E,) receiver-major
    key = torch.unique(key)  # sorted, one entry per (receiver, source)
    recv, sender, rows = key // (p * m), (key // m) % p, key % m
    moves = recv != sender
    return recv[moves], sender[moves], rows[moves]


def _fingerprint(graph: TokenGraph, p: int, method: str, owner, src_owner) -> int:
    """A process-independent hash (BLAKE2b) of the graph and the assignment, as int63."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{graph.num_nodes},{graph.num_src_nodes},{graph.is_cross},{p},{method}".encode())
    for t in (graph.edge_index, owner, src_owner):
        h.update(t.contiguous().numpy().tobytes())
    return int.from_bytes(h.digest(), "little") >> 1


def _plan(graph: TokenGraph, p: int, method: str, owner, src_owner) -> Partition:
    owned = _owned(owner, p)
    owned_src = owned if not graph.is_cross else _owned(src_owner, p)
    recv, sender, rows = _halo_pairs(graph, owner, src_owner, p)
    counts = torch.bincount(sender * p + recv, minlength=p * p).view(p, p)  # [sender, receiver]
    halo = _split(rows, recv, p)  # receiver-major, then sender, then index
    by_sender = torch.argsort(sender * p + recv, stable=True)  # sender-major, then receiver
    pos = _positions(owned_src, graph.num_src_nodes)[rows[by_sender]]
    send_index = _split(pos, sender[by_sender], p)
    return Partition(
        graph, p, method, owner, src_owner, owned, owned_src, halo, counts, send_index,
        _fingerprint(graph, p, method, owner, src_owner),
    )  # fmt: skip


def partition(
    graph: TokenGraph, world_size: int, method: str = "metis", *, seed: int = 0
) -> Partition:
    """Partition ``graph`` over ``world_size`` ranks and plan its halo exchange.

    Every rank calls this itself; the result depends only on the arguments,
    so it is identical everywhere (METIS runs with a fixed ``seed``).

    Parameters
    ----------
    graph : TokenGraph
        Self or cross graph.
    world_size : int
        Number of ranks ``P >= 1``; may exceed the number of tokens (some
        ranks then own nothing), as long as the plan's ``(P, P)`` table of
        halo counts fits in memory.
    method : {"metis", "contiguous"}
        ``"contiguous"`` cuts the target range into ``P`` pieces balanced by
        targets plus incoming edges (cross-graph sources by count): ideal for
        windows. ``"metis"`` cuts the symmetrized graph with METIS (the
        ``pymetis`` package, extra ``distributed``), balancing targets and edges
        while minimizing the cut.
    seed : int
        METIS's random seed.

    Returns
    -------
    Partition

    Raises
    ------
    TypeError
        If ``graph`` is not a TokenGraph or an int argument is not an int.
    ValueError
        If ``world_size < 1``, so large that the ``(P, P)`` halo counts
        (``8 * P**2`` bytes) exceed this machine's memory, or ``method`` is
        unknown.
    ImportError
        For ``method="metis"`` without ``pymetis``.

    Examples
    --------
    >>> from graphattn import patterns
    >>> part = partition(patterns.sliding_window(6, 2), 2, method="contiguous")
    >>> [o.tolist() for o in part.owned], [h.tolist() for h in part.halo]
    ([[0, 1, 2], [3, 4, 5]], [[], [2]])
    >>> part.counts.tolist()
    [[0, 1], [0, 0]]
    """
    if not isinstance(graph, TokenGraph):
        raise TypeError(f"graph must be a TokenGraph, got {type(graph).__name__}")
    p = check_positive_int(world_size, "world_size")
    tokens = max(graph.num_nodes, graph.num_src_nodes)
    what = f"the ({p}, {p}) halo counts of world_size={p} (a graph of {tokens} tokens keeps"
    check_allocation(8 * p * p, f"{what} at most {tokens} ranks busy)")
    seed = check_int(seed, "seed", low=0)
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    if method == "metis":
        owner, src_owner = metis_owners(graph, p, seed)
    else:
        owner, src_owner = contiguous_owners(graph, p)
    return _plan(graph, p, method, owner, src_owner)


def partition_as(graph: TokenGraph, part: Partition) -> Partition:
    """``graph`` partitioned with the owners of ``part`` (the same tokens, another graph).

    Layers with different graphs over one sequence keep each token's
    activations on one rank: every layer's partition must share the owners.
    Built once per ``(part, graph)`` while ``part`` lives; ``part`` itself for
    its own graph.

    Raises
    ------
    TypeError
        If ``graph`` is not a TokenGraph or ``part`` not a Partition.
    ValueError
        If ``graph`` has other token counts, or is cross where ``part``'s is not
        (or the other way round).

    Examples
    --------
    >>> from graphattn import patterns
    >>> part = partition(patterns.sliding_window(8, 2), 2, method="contiguous")
    >>> full = partition_as(patterns.causal(8), part)
    >>> [o.tolist() for o in full.owned] == [o.tolist() for o in part.owned]
    True
    >>> [h.tolist() for h in full.halo]
    [[], [0, 1, 2, 3]]
    """
    if not isinstance(graph, TokenGraph):
        raise TypeError(f"graph must be a TokenGraph, got {type(graph).__name__}")
    if not isinstance(part, Partition):
        raise TypeError(f"part must be a Partition, got {type(part).__name__}")
    if graph is part.graph:
        return part
    g = part.graph
    sizes, got = (g.num_nodes, g.num_src_nodes, g.is_cross), (
        graph.num_nodes, graph.num_src_nodes, graph.is_cross)  # fmt: skip
    if sizes != got:
        raise ValueError(
            f"graph must have part.graph's (N, M, cross)={sizes}, got {got}"
        )
    return LOCAL_PLANS.get(part, ("as", id(graph)), lambda: _plan(
        graph, part.world_size, part.method, part.owner, part.src_owner))  # fmt: skip


class LocalPlan(NamedTuple):
    """What one rank runs attention on.

    Attributes
    ----------
    graph : TokenGraph or None
        Owned targets (local ``0..N_r-1``) by owned plus halo sources (local
        ``0..M_r+H_r-1``), both relabelled in ascending global order, so a
        band stays a band for the block kernels; ``None`` where the rank owns no
        target or has no source at all (a graph needs a token on each side).
    edge_ids : LongTensor (E_r,)
        The global edge ids of the edges into owned targets, ascending.
    to_global : LongTensor (E_r,)
        ``to_global[t]``: position in ``graph``'s edge order of global edge
        ``edge_ids[t]``; ``weights[..., to_global, :]`` is in global order
        (the identity, as the relabelling keeps the order; kept for safety).
    source_order : LongTensor (M_r + H_r,)
        Positions in ``owned_src[rank]`` followed by ``halo[rank]`` (the rows
        as held and received) of the local sources ``0, 1, ...``.
    """

    graph: TokenGraph | None
    edge_ids: torch.Tensor
    to_global: torch.Tensor
    source_order: torch.Tensor


def _build_local(part: Partition, rank: int) -> LocalPlan:
    g = part.graph
    owned, held = part.owned[rank], torch.cat([part.owned_src[rank], part.halo[rank]])
    source_order = torch.argsort(held)  # local sources ascending by global index
    sources = held[source_order]
    tpos = torch.full((g.num_nodes,), -1, dtype=torch.long)
    tpos[owned] = torch.arange(len(owned))
    spos = torch.full((g.num_src_nodes,), -1, dtype=torch.long)
    spos[sources] = torch.arange(len(sources))
    edge_ids = torch.nonzero(tpos[g.dst] >= 0).flatten()  # (E_r,) ascending
    ls, ld = spos[g.src[edge_ids]], tpos[g.dst[edge_ids]]  # (E_r,) local indices
    local = None
    if len(owned) and len(sources):
        local = TokenGraph(
            torch.stack([ls, ld]), num_nodes=len(owned), num_src_nodes=len(sources),
            cross=True if g.is_cross else None,
        )  # fmt: skip
    order = torch.argsort(ld * max(len(sources), 1) + ls)  # local canonical order
    to_global = torch.empty_like(order)
    to_global[order] = torch.arange(len(order))
    return LocalPlan(local, edge_ids, to_global, source_order)


def local_plan(part: Partition, rank: int) -> LocalPlan:
    """Rank ``rank``'s local graph and edge maps, built once per partition and rank.

    Examples
    --------
    >>> from graphattn import patterns
    >>> part = partition(patterns.sliding_window(4, 2), 2, method="contiguous")
    >>> plan = local_plan(part, 1)
    >>> plan.graph.edge_index.tolist(), plan.edge_ids.tolist()
    ([[0, 1, 1, 2], [0, 0, 1, 1]], [3, 4, 5, 6])
    >>> plan.source_order.tolist()  # local sources 1, 2, 3: halo row 0, then owned rows 0, 1
    [2, 0, 1]
    """
    if not isinstance(part, Partition):
        raise TypeError(f"part must be a Partition, got {type(part).__name__}")
    rank = check_int(rank, "rank", low=0, high=part.world_size - 1)
    return LOCAL_PLANS.get(part, rank, lambda: _build_local(part, rank))
