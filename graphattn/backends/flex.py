"""The ``"flex"`` backend: any token graph as a FlexAttention ``BlockMask``.

:func:`to_block_mask` compiles a :class:`~graphattn.graph.TokenGraph` into
PyTorch's ``BlockMask`` without an ``N x M`` table: from the non-empty tiles
of :func:`~graphattn.backends.tiles.block_tiles` it lists, per query block,
the *full* key blocks (every position an edge; no mask is evaluated there) and
the *partial* ones, whose positions are looked up in the stored in-tile masks::

    mask_mod(b, h, i, j) = tiles[pair[i // bs, j // bs], i % bs, j % bs]

``pair`` is a ``(N / bs, M / bs)`` table of tile ids, so memory is
``O(E_tiles * bs^2 + (N / bs) * (M / bs))``. Patterns whose edges are spread
thinly over many tiles can be packed first by reordering the nodes (see
:func:`reorder_nodes`, reverse Cuthill-McKee).

The kernel runs ``torch.compile(flex_attention)``; on CPU that path is
inference only (no backward), returns no weights and takes no per-edge bias,
which :func:`~graphattn.backends.base.select_backend` knows from ``supports``.
"""

from __future__ import annotations

import shutil
import warnings
from functools import partial

import networkx as nx
import torch

from graphattn._validate import check_allocation
from graphattn.backends.base import (
    PLANS,
    AttentionRequest,
    KernelCall,
    contain_nonfinite,
    register_backend,
)
from graphattn.backends.tiles import block_tiles
from graphattn.graph import TokenGraph

try:  # FlexAttention arrived in torch 2.5
    from torch.nn.attention.flex_attention import BlockMask, flex_attention
except ImportError:  # pragma: no cover - older torch
    BlockMask = flex_attention = None

__all__ = ["FLEX_BLOCK_SIZE", "flex_attention_kernel", "reorder_nodes", "to_block_mask"]

FLEX_BLOCK_SIZE = 128  # FlexAttention's default (and fastest) block size

_COMPILED = {}


def _compiled_flex():
    """``torch.compile(flex_attention)``, built once per process."""
    if "flex" not in _COMPILED:
        _COMPILED["flex"] = torch.compile(flex_attention, dynamic=False)
    return _COMPILED["flex"]


def to_block_mask(
    graph: TokenGraph, block_size: int = FLEX_BLOCK_SIZE, *, device: torch.device | str = "cpu"
) -> BlockMask:
    """FlexAttention ``BlockMask`` equal to ``graph``'s mask, built without an ``N x M`` table.

    Parameters
    ----------
    graph : TokenGraph
        Any graph (self or cross).
    block_size : int
        Block side (FlexAttention's ``BLOCK_SIZE``).
    device : torch.device or str
        Where the mask lives (the device of the attention inputs).

    Returns
    -------
    BlockMask
        Full key blocks skip the mask; partial ones evaluate a ``mask_mod``
        that reads the graph's in-tile masks. Cached while the graph lives.

    Raises
    ------
    ImportError
        If this torch has no FlexAttention.
    ValueError
        If ``block_size`` is not a positive int, or the tables of the mask
        (``16 * (N / bs) * (M / bs)`` bytes) exceed this machine's memory.

    Examples
    --------
    >>> from graphattn import patterns
    >>> bm = to_block_mask(patterns.sliding_window(512, 128))
    >>> bm.kv_num_blocks.flatten().tolist(), bm.full_kv_num_blocks.flatten().tolist()
    ([1, 2, 2, 2], [0, 0, 0, 0])
    >>> bool(bm.mask_mod(0, 0, torch.tensor(300), torch.tensor(200)))
    True
    """
    if not isinstance(graph, TokenGraph):
        raise TypeError(f"graph must be a TokenGraph, got {type(graph).__name__}")
    if BlockMask is None:
        raise ImportError("FlexAttention needs torch >= 2.5")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    device = torch.device(device)
    nqb, nkb = -(-graph.num_nodes // block_size), -(-graph.num_src_nodes // block_size)
    # two int32 (nqb, nkb) index tables and one int64 table of tile ids
    check_allocation(16 * nqb * nkb, f"the BlockMask tables of shape ({nqb}, {nkb})")
    key = ("flex_block_mask", block_size, str(device))
    return PLANS.get(graph, key, lambda: _build_block_mask(graph, block_size, device))


def _build_block_mask(graph: TokenGraph, bs: int, device: torch.device) -> BlockMask:
    nqb = -(-graph.num_nodes // bs)
    nkb = -(-graph.num_src_nodes // bs)
    pair_key, tiles = block_tiles(graph, bs)  # (P,), (P, bs, bs)
    pair_q, pair_k = pair_key // nkb, pair_key % nkb  # (P,)
    # rows beyond N or columns beyond M are never edges; a tile that reaches past
    # the end is full if every in-range position is an edge
    rows_in = (pair_q * bs + torch.arange(bs).unsqueeze(1) < graph.num_nodes).T  # (P, bs)
    cols_in = (pair_k * bs + torch.arange(bs).unsqueeze(1) < graph.num_src_nodes).T  # (P, bs)
    in_range = rows_in.unsqueeze(2) & cols_in.unsqueeze(1)  # (P, bs, bs)
    full = (tiles | ~in_range).flatten(1).all(1)  # (P,)

    def lists(sel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, k = pair_q[sel], pair_k[sel]  # (P_sel,) sorted by (q, k)
        num = torch.bincount(q, minlength=nqb)  # (nqb,)
        slot = torch.arange(q.numel()) - (torch.cumsum(num, 0) - num)[q]  # (P_sel,)
        idx = torch.zeros(nqb, nkb, dtype=torch.int32)  # (nqb, nkb)
        idx[q, slot] = k.to(torch.int32)
        return num.to(torch.int32).view(1, 1, nqb), idx.view(1, 1, nqb, nkb)

    num_partial, idx_partial = lists(~full)
    num_full, idx_full = lists(full)
    pair = torch.full((nqb, nkb), tiles.shape[0], dtype=torch.long)  # (nqb, nkb) tile ids
    pair[pair_q, pair_k] = torch.arange(pair_key.numel())
    table = torch.cat([tiles, tiles.new_zeros(1, bs, bs)]).to(device)  # (P + 1, bs, bs)
    pair = pair.to(device)

    def mask_mod(b, h, q_idx, kv_idx):
        return table[pair[q_idx // bs, kv_idx // bs], q_idx % bs, kv_idx % bs]

    return BlockMask.from_kv_blocks(
        num_partial.to(device),
        idx_partial.to(device),
        num_full.to(device),
        idx_full.to(device),
        BLOCK_SIZE=bs,
        mask_mod=mask_mod,
        seq_lengths=(graph.num_nodes, graph.num_src_nodes),
    )


def reorder_nodes(graph: TokenGraph) -> torch.Tensor:
    """A node order that packs edges near the diagonal: reverse Cuthill-McKee.

    With ``perm = reorder_nodes(graph)``, ``graph.permute(perm)`` has the same
    attention (on inputs ``x[perm]``, giving ``out[perm]``) and usually fewer,
    fuller tiles, so :func:`to_block_mask` and the block backend do less work.
    Self graphs only.

    Raises
    ------
    ValueError
        For cross graphs.

    Examples
    --------
    >>> g = TokenGraph([[0, 3, 1, 2], [3, 0, 2, 1]], 4)
    >>> perm = reorder_nodes(g)
    >>> sorted(perm.tolist())
    [0, 1, 2, 3]
    """
    if graph.is_cross:
        raise ValueError("reorder_nodes needs a self graph (sources and targets are one set)")
    und = nx.Graph()
    und.add_nodes_from(range(graph.num_nodes))
    und.add_edges_from(graph.edge_index.t().tolist())
    return torch.tensor(list(nx.utils.reverse_cuthill_mckee_ordering(und)), dtype=torch.long)


def flex_attention_kernel(
    call: KernelCall, *, compiled: bool = True
) -> tuple[torch.Tensor, None]:
    """Kernel of the ``"flex"`` backend (contract in :mod:`graphattn.backends.base`).

    ``compiled=False`` runs FlexAttention's eager reference (slow, dense
    scores: for tests).

    Raises
    ------
    ValueError
        With a bias, ``return_weights`` or dropout, which FlexAttention here
        does not give.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> q = k = torch.zeros(1, 2, 1, 4)
    >>> v = torch.arange(2.0).view(1, 2, 1, 1).expand(1, 2, 1, 4)
    >>> out, _ = flex_attention_kernel(KernelCall(q, k, v, g, scale=0.5), compiled=False)
    >>> out[0, :, 0, 0].tolist()
    [0.0, 0.5]
    """
    if call.bias is not None or call.return_weights or call.dropout_p > 0:
        raise ValueError("the flex backend takes no bias, returns no weights and has no dropout")
    return contain_nonfinite(call, partial(_flex, compiled=compiled))


def _flex(call: KernelCall, *, compiled: bool) -> tuple[torch.Tensor, None]:
    """The flex kernel proper (its tiles include non-edges and padding)."""
    block_mask = to_block_mask(call.graph, device=call.q.device)
    # (B, H, L, D); under no_grad FlexAttention still refuses CPU inputs that require grad
    grad = torch.is_grad_enabled()
    args = tuple((t if grad else t.detach()).transpose(1, 2) for t in (call.q, call.k, call.v))
    if compiled:
        out = _compiled_flex()(*args, block_mask=block_mask, scale=call.scale)  # (B, H, N, Dv)
    else:
        with warnings.catch_warnings():  # the eager path warns that it is unfused
            warnings.simplefilter("ignore", UserWarning)
            out = flex_attention(*args, block_mask=block_mask, scale=call.scale)  # (B, H, N, Dv)
    return out.transpose(1, 2), None


def _supports(request: AttentionRequest) -> str | None:
    """FlexAttention here: compiled, no weights, bias or dropout, no CPU backward."""
    if BlockMask is None:
        return "this torch has no FlexAttention"
    if request.return_weights or request.has_bias or request.dropout > 0:
        return "FlexAttention returns no weights and takes no bias or dropout here"
    if request.device.type == "cpu":
        if request.needs_grad:
            return "FlexAttention's compiled CPU path has no backward"
        if shutil.which("c++") is None and shutil.which("g++") is None:
            return "torch.compile on CPU needs a C++ compiler"
    if request.head_dim != request.value_dim:
        return "FlexAttention needs equal query and value head dims"
    if request.dtype == torch.float64:
        return "FlexAttention's compiled kernel does not take float64 (use 'edge' or 'block')"
    return None


register_backend("flex", flex_attention_kernel, _supports)
