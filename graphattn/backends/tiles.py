"""The tile plan: a graph cut into ``block_size`` tiles, shared by the tiled backends.

Targets and sources are cut into blocks of ``block_size`` tokens; a *tile* (a
pair ``(query block, key block)``) is non-empty when at least one edge joins
the two blocks. This module lists the non-empty tiles of a graph and what the
tiled backends need of them, built from slices of the edge list (no ``N x M``
table is formed) and cached for as long as the graph lives
(:data:`~graphattn.backends.base.PLANS`):

- :func:`tile_counts`: the tiles and how many edges each holds (the ``auto``
  policy decides from it, :func:`~graphattn.backends.split.split_plan` cuts a
  graph by it);
- :func:`block_tiles`: the tiles and their in-tile masks (FlexAttention's
  ``BlockMask``);
- :func:`block_plan`: the tiles grouped by query block, with their in-tile
  masks, what the ``"block"`` kernel runs;
- :func:`block_size_for`: the tile side the ``"block"`` kernel runs a graph
  at, the smallest of :data:`BLOCK_SIZES` that still saves work;
- :func:`edge_map`: the edge at every position of a plan's tiles (for a bias
  or the gradient of returned weights);
- :func:`edge_slots`: where each edge sits in the tiles (to gather returned
  weights from computed tiles in ``O(E)`` memory).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from graphattn.backends.base import PLANS
from graphattn.graph import TokenGraph

__all__ = [
    "BLOCK_SIZE",
    "BLOCK_SIZES",
    "SMALLER_TILES",
    "BlockGroup",
    "BlockPlan",
    "EdgeSlots",
    "block_plan",
    "block_size_for",
    "block_tiles",
    "edge_map",
    "edge_slots",
    "tile_counts",
]

BLOCK_SIZE = 64  # tokens per block, for targets and sources alike
BLOCK_SIZES = (64, 32, 16)  # the tile sides block_size_for chooses from, largest first
# a smaller tile side is taken when its tiles hold at most this share of the positions the
# larger side computes: smaller tiles run the matmuls less efficiently (16k tokens, no grad:
# BigBird's full tiles 178 / 201 / 454 ms at 64 / 32 / 16), so only a real saving pays
SMALLER_TILES = 0.85
PLAN_EDGES = 2**22  # edges handled at once while building a plan
COUNT_TABLE = 2**22  # tiles up to which tile_counts counts in a table (32 MiB), not by sorting


@dataclass(frozen=True)
class BlockGroup:
    """Query blocks that all have ``c`` key blocks.

    ``qb (n,)`` are the query blocks, ``kb (n, c)`` their key blocks in
    increasing order and ``pairs (n, c)`` the index of each pair in the plan.
    ``blocked (n or 1, bs, c * bs)`` is True where a tile position is *not* an
    edge (one shared row when every query block has the same in-tile mask;
    None when every position is an edge); ``empty (n or 1, bs)`` marks rows
    without any edge (None when there are none). ``band`` is ``s`` when
    ``qb`` are consecutive and ``kb[r, j] = kb[0, 0] + r * s + j`` (windows,
    globals): then tiles are strided views of the operands, never copies.
    """

    qb: torch.Tensor
    kb: torch.Tensor
    pairs: torch.Tensor
    blocked: torch.Tensor | None
    empty: torch.Tensor | None
    band: int | None


def _band(qb: torch.Tensor, kb: torch.Tensor) -> int | None:
    """The step ``s`` of a banded group (see :class:`BlockGroup`), or None."""
    n, c = kb.shape
    if int(qb[-1] - qb[0]) != n - 1:
        return None
    if not torch.equal(kb - kb[:, :1], torch.arange(c).expand(n, c)):
        return None
    if n == 1:
        return 0
    steps = kb[1:, 0] - kb[:-1, 0]  # (n - 1,)
    return int(steps[0]) if bool((steps == steps[0]).all()) and int(steps[0]) >= 0 else None


@dataclass(frozen=True)
class BlockPlan:
    """The block structure of one graph at one block size (see :func:`block_plan`)."""

    block_size: int
    num_q_blocks: int
    num_k_blocks: int
    pair_key: torch.Tensor  # (P,) query block * num_k_blocks + key block, sorted
    groups: tuple[BlockGroup, ...]
    num_edges: int

    @property
    def num_pairs(self) -> int:
        """Number of computed tiles."""
        return self.pair_key.numel()

    @property
    def fill(self) -> float:
        """Fraction of the computed tile positions that are edges (1.0 = no waste)."""
        return self.num_edges / max(1, self.num_pairs * self.block_size**2)

    def to(self, device: torch.device) -> BlockPlan:
        """The same plan with its tensors on ``device``."""
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        groups = tuple(
            BlockGroup(
                move(g.qb), move(g.kb), move(g.pairs), move(g.blocked), move(g.empty), g.band
            )
            for g in self.groups
        )
        return BlockPlan(
            self.block_size,
            self.num_q_blocks,
            self.num_k_blocks,
            move(self.pair_key),
            groups,
            self.num_edges,
        )


def _edge_slices(graph: TokenGraph) -> list[tuple[int, int]]:
    """Column ranges of ``edge_index`` of at most ``PLAN_EDGES`` edges each."""
    e = graph.num_edges
    return [(lo, min(lo + PLAN_EDGES, e)) for lo in range(0, e, PLAN_EDGES)]


def block_tiles(graph: TokenGraph, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The non-empty ``block_size`` tiles of ``graph`` and their in-tile masks.

    Returns ``pair_key (P,)``, sorted, ``query block * num_k_blocks + key
    block``, and ``tiles (P, bs, bs)`` bool, ``tiles[p, r, c]`` True iff source
    ``kb * bs + c`` -> target ``qb * bs + r`` is an edge. Built from slices of
    the edge list; no ``N x M`` table is formed.

    Examples
    --------
    >>> key, tiles = block_tiles(TokenGraph([[0, 0, 3], [0, 1, 3]]), 2)
    >>> key.tolist(), tiles.sum().item()
    ([0, 3], 3)
    """
    nkb = -(-graph.num_src_nodes // block_size)
    bs = block_size
    slices = _edge_slices(graph)
    keys = [
        torch.unique(graph.dst[lo:hi] // bs * nkb + graph.src[lo:hi] // bs) for lo, hi in slices
    ]
    pair_key = torch.unique(torch.cat(keys)) if keys else torch.zeros(0, dtype=torch.long)  # (P,)
    tiles = torch.zeros(pair_key.numel(), bs, bs, dtype=torch.bool)  # (P, bs, bs)
    for lo, hi in slices:
        src, dst = graph.src[lo:hi], graph.dst[lo:hi]  # (Es,)
        pid = torch.searchsorted(pair_key, dst // bs * nkb + src // bs)  # (Es,)
        tiles.view(-1)[(pid * bs + dst % bs) * bs + src % bs] = True
    return pair_key, tiles


def tile_counts(graph: TokenGraph, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The non-empty tiles of ``graph`` and how many edges each holds (cached).

    Returns ``pair_key (P,)``, sorted, ``query block * num_k_blocks + key
    block`` as in :func:`block_tiles`, and ``counts (P,)``. Cheaper than a
    plan (no in-tile masks): :mod:`graphattn.backends.auto` decides from it.
    One pass over the edges into a table of every tile when the mask has at
    most :data:`COUNT_TABLE` of them (16,384 tokens at 16-token tiles: a
    million), a sort of the edges' tile keys otherwise.

    Examples
    --------
    >>> key, counts = tile_counts(TokenGraph([[0, 0, 1, 3], [0, 1, 1, 3]]), 2)
    >>> key.tolist(), counts.tolist()
    ([0, 3], [3, 1])
    """

    def build() -> tuple[torch.Tensor, torch.Tensor]:
        nkb = -(-graph.num_src_nodes // block_size)
        key = graph.dst // block_size * nkb + graph.src // block_size  # (E,)
        every = -(-graph.num_nodes // block_size) * nkb  # tiles in the whole (N, M) mask
        if every > COUNT_TABLE:
            return torch.unique(key, sorted=True, return_counts=True)  # a sort of the E keys
        counts = torch.bincount(key, minlength=every)  # (every,) no sort: one pass over E
        pair_key = counts.nonzero().squeeze(1)  # (P,) sorted
        return pair_key, counts[pair_key]

    return PLANS.get(graph, ("tile_counts", block_size), build)


def block_size_for(graph: TokenGraph, needs_grad: bool = False) -> int:
    """The tile side of the ``"block"`` kernel for ``graph`` (cached).

    Going down :data:`BLOCK_SIZES`, a side is taken while its non-empty tiles
    cover at most :data:`SMALLER_TILES` of the positions the previous side
    computes: a band follows its diagonal more tightly in small tiles (a
    window of 128 keys fills 0.67 of its 64-tiles, 0.80 of its 32-tiles),
    while full tiles (BigBird's blocks, a causal triangle) stay at 64. A call
    with a backward to run (``needs_grad``) stays at 64: the fused backward
    loses more on smaller tiles than the forward gains (16,384 tokens, window
    of 128, one run: forward 34.9 / 31.3 ms, forward + backward 129 / 163 ms
    at 64 / 32).

    Examples
    --------
    >>> from graphattn import patterns
    >>> block_size_for(patterns.sliding_window(4096, 128)), block_size_for(patterns.causal(4096))
    (32, 64)
    >>> block_size_for(patterns.sliding_window(4096, 128), needs_grad=True)
    64
    """
    if needs_grad:
        return BLOCK_SIZES[0]

    def computed(bs: int) -> int:  # positions of the non-empty tiles
        return tile_counts(graph, bs)[0].numel() * bs**2

    def build() -> int:
        best = BLOCK_SIZES[0]
        for bs in BLOCK_SIZES[1:]:
            if computed(bs) > SMALLER_TILES * computed(best):
                break
            best = bs
        return best

    return PLANS.get(graph, ("block_size_for",), build)


def _build_plan(graph: TokenGraph, bs: int) -> BlockPlan:
    nqb = -(-graph.num_nodes // bs)
    nkb = -(-graph.num_src_nodes // bs)
    pair_key, tiles = block_tiles(graph, bs)  # (P,), (P, bs, bs)
    pair_q, pair_k = pair_key // nkb, pair_key % nkb  # (P,)
    count = torch.bincount(pair_q, minlength=nqb)  # (nqb,) key blocks per query block
    first = torch.cumsum(count, 0) - count  # (nqb,) index of each query block's first pair
    groups = []
    for c in torch.unique(count[count > 0]).tolist():
        qb = torch.nonzero(count == c).flatten()  # (n,)
        pairs = first[qb].unsqueeze(1) + torch.arange(c)  # (n, c)
        mask = tiles[pairs].permute(0, 2, 1, 3).reshape(qb.numel(), bs, c * bs)  # (n, bs, c*bs)
        if bool((mask == mask[:1]).all()):
            mask = mask[:1]  # (1, bs, c*bs) shared by all query blocks
        blocked = None if bool(mask.all()) else ~mask
        empty = ~mask.any(-1)  # (n or 1, bs)
        empty = empty if bool(empty.any()) else None
        kb = pair_k[pairs]  # (n, c)
        groups.append(BlockGroup(qb, kb, pairs, blocked, empty, _band(qb, kb)))
    return BlockPlan(bs, nqb, nkb, pair_key, tuple(groups), graph.num_edges)


def block_plan(
    graph: TokenGraph, block_size: int = BLOCK_SIZE, device: torch.device | str = "cpu"
) -> BlockPlan:
    """The block plan of ``graph``: kept tiles, their groups and in-tile masks (cached).

    Parameters
    ----------
    graph : TokenGraph
        The graph.
    block_size : int
        Tokens per block.
    device : torch.device or str
        Where the plan's tensors live.

    Returns
    -------
    BlockPlan
        ``num_pairs`` kept tiles; ``fill`` is the fraction of their positions
        that are edges.

    Raises
    ------
    ValueError
        If ``block_size`` is not a positive int.

    Examples
    --------
    >>> from graphattn import patterns
    >>> plan = block_plan(patterns.sliding_window(256, 64), block_size=64)
    >>> plan.num_pairs, [g.kb.shape[1] for g in plan.groups]
    (7, [1, 2])
    >>> round(plan.fill, 3)
    0.501
    """
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    device = torch.device(device)
    plan = PLANS.get(graph, ("block_plan", block_size), lambda: _build_plan(graph, block_size))
    if device.type == "cpu":
        return plan
    return PLANS.get(graph, ("block_plan", block_size, str(device)), lambda: plan.to(device))


class _PairIndex:
    """Where each kept tile of a plan sits: its group, its row in the group, its key slot."""

    def __init__(self, plan: BlockPlan) -> None:
        p = plan.num_pairs
        self.plan = plan
        self.group = torch.empty(p, dtype=torch.long)  # (P,)
        self.row = torch.empty(p, dtype=torch.long)  # (P,)
        self.slot = torch.empty(p, dtype=torch.long)  # (P,)
        for gi, g in enumerate(plan.groups):
            n, c = g.pairs.shape
            self.group[g.pairs.cpu()] = gi
            self.row[g.pairs.cpu()] = torch.arange(n).unsqueeze(1).expand(n, c)
            self.slot[g.pairs.cpu()] = torch.arange(c).expand(n, c)
        bs = plan.block_size
        self.width = torch.tensor([g.kb.shape[1] * bs for g in plan.groups])  # (G,) row widths

    def locate(self, src: torch.Tensor, dst: torch.Tensor):
        """Group ``(Es,)``, row in the group ``(Es,)`` and flat position in that row's tiles.

        The position indexes a ``(bs, c * bs)`` row of tiles: ``r * c * bs + column``.
        """
        plan, bs = self.plan, self.plan.block_size
        pid = torch.searchsorted(plan.pair_key.cpu(), dst // bs * plan.num_k_blocks + src // bs)
        gi = self.group[pid]  # (Es,)
        pos = (dst % bs) * self.width[gi] + self.slot[pid] * bs + src % bs  # (Es,)
        return gi, self.row[pid], pos


def edge_map(graph: TokenGraph, plan: BlockPlan, device: torch.device) -> list[torch.Tensor]:
    """Per group of ``plan``, the edge at every tile position ``(n, bs, c * bs)``; ``E`` where none.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> edge_map(g, block_plan(g, 2), torch.device("cpu"))[0].tolist()
    [[[0, 3], [1, 2]]]
    """

    def build() -> list[torch.Tensor]:
        bs, e = plan.block_size, graph.num_edges
        index = _PairIndex(plan)
        maps = [torch.full((g.kb.shape[0], bs, g.kb.shape[1] * bs), e) for g in plan.groups]
        for lo, hi in _edge_slices(graph):
            gi, row, pos = index.locate(graph.src[lo:hi], graph.dst[lo:hi])  # (Es,) each
            flat = row * bs * index.width[gi] + pos  # (Es,) position in the group's map
            ids = torch.arange(lo, hi)  # (Es,)
            for g in range(len(plan.groups)):
                sel = gi == g
                maps[g].view(-1)[flat[sel]] = ids[sel]
        return [m.to(device) for m in maps]

    return PLANS.get(graph, ("block_edge_map", plan.block_size, str(device)), build)


@dataclass(frozen=True)
class EdgeSlots:
    """The edges of one group of a plan, ordered by the group row they sit in.

    ``ids (E_g,)`` are edge ids (ascending), ``dst (E_g,)`` their targets,
    ``row (E_g,)`` the group row (query block) of each, ``pos (E_g,)`` its flat
    position in that row's ``(bs, c * bs)`` tiles, ``flat (E_g,)`` its position
    in the group's ``(n, bs, c * bs)`` tiles, and ``start (n + 1,)`` where each
    row's edges begin, so the edges of rows ``r0:r1`` are
    ``start[r0]:start[r1]``.
    """

    ids: torch.Tensor
    dst: torch.Tensor
    row: torch.Tensor
    pos: torch.Tensor
    flat: torch.Tensor
    start: list[int]


def edge_slots(graph: TokenGraph, plan: BlockPlan, device: torch.device) -> list[EdgeSlots]:
    """Per group of ``plan``, where its edges sit in the tiles (:class:`EdgeSlots`), cached.

    The sparse inverse of :func:`edge_map`: ``O(E)`` memory, whatever the
    tiles' fill, so per-edge values can be gathered from computed tiles.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> slots = edge_slots(g, block_plan(g, 2), torch.device("cpu"))
    >>> slots[0].ids.tolist(), slots[0].pos.tolist(), slots[0].start
    ([0, 1, 2], [0, 2, 3], [0, 3])
    """

    def build() -> list[EdgeSlots]:
        index = _PairIndex(plan)
        gi, row, pos = index.locate(graph.src, graph.dst)  # (E,) each
        ids = torch.arange(graph.num_edges)
        out = []
        for g, group in enumerate(plan.groups):
            sel = gi == g
            order = torch.argsort(row[sel], stable=True)  # edges are sorted by target already
            g_row = row[sel][order]  # (E_g,)
            counts = torch.bincount(g_row, minlength=group.kb.shape[0])  # (n,)
            start = [0, *torch.cumsum(counts, 0).tolist()]
            g_ids, g_pos = ids[sel][order], pos[sel][order]  # (E_g,)
            flat = g_row * (plan.block_size * index.width[g]) + g_pos  # (E_g,)
            parts = (g_ids, graph.dst[g_ids], g_row, g_pos, flat)
            out.append(EdgeSlots(*(t.to(device) for t in parts), start))
        return out

    return PLANS.get(graph, ("block_edge_slots", plan.block_size, str(device)), build)
