"""The ``"block"`` backend: block-sparse tiles for locally dense patterns.

Targets and sources are cut into blocks of ``block_size`` tokens. A *pair*
``(query block, key block)`` is kept when at least one edge joins the two
blocks; only kept pairs are computed, and an in-tile mask removes the
positions of a kept tile that are not edges. Query blocks with the same number
``c`` of key blocks form a *group*, so one batched matmul computes all of them::

    qt = q[query blocks]                       # (B, H, n, bs, D)
    kt = k[key blocks of each query block]     # (B, H, n, c * bs, D)
    s  = qt @ kt^T * scale (+ bias), masked    # (B, H, n, bs, c * bs)

The softmax is online over slices of the ``c`` key blocks (running max and sum,
as in FlashAttention), so a very wide row (a global token) never needs more
than one slice in memory. The backward saves only ``out`` and the per-row
log-sum-exp and recomputes each tile, so no ``(E, H, D)`` or ``(E, H)`` tensor
is kept. The plan (pairs, groups, tile masks) depends only on the graph: it is
built and cached by :mod:`graphattn.backends.tiles`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import torch
from torch.autograd.function import once_differentiable

from graphattn.backends.base import (
    AttentionRequest,
    KernelCall,
    accumulation_dtype,
    contain_nonfinite,
    register_backend,
    safe_total,
)
from graphattn.backends.structured import (
    FLASH,
    FUSED_MAX_LSE,
    fold_lse,
    fused_precise,
    structured_attention,
)
from graphattn.backends.tiles import (
    BlockGroup,
    BlockPlan,
    EdgeSlots,
    block_plan,
    block_size_for,
    edge_map,
    edge_slots,
)

__all__ = [
    "CHUNK_ELEMENTS",
    "FUSED_MAX_LSE",
    "LSE_DTYPE",
    "block_attention",
    "block_backward",
    "block_forward",
]

CHUNK_ELEMENTS = 2**22  # score elements (B * H * n * bs * width) computed at once
# dtype of the per-row log-sum-exp: in float32, m + log(total) would round to the ulp of the
# score (~6e-8 |score|), and exp(s - lse) would carry that error into every weight and gradient
LSE_DTYPE = torch.float64


def _node_major(x: torch.Tensor, rows: int, dtype: torch.dtype) -> torch.Tensor:
    """``(B, L, H, D)`` -> zero-padded ``(rows, B * H, D)`` in ``dtype``.

    A view, not a copy, when no padding or cast is needed and ``(B, H)`` is one
    stride: node-major inputs with ``B = 1``, and head-major ones (``(B, H, L,
    D)`` transposed, the layout transformers' attention modules pass) at any
    ``B``. The tiles read any such strides.
    """
    b, length, h, d = x.shape
    merged = b == 1 or x.stride(0) == h * x.stride(2)  # B and H are one dimension
    if length == rows and x.dtype == dtype and merged and x.stride(3) == 1:
        return x.transpose(0, 1).reshape(rows, b * h, d)  # a view: no copy
    out = x.new_empty((rows, b, h, d), dtype=dtype)
    out[:length] = x.transpose(0, 1)
    out[length:] = 0
    return out.view(rows, b * h, d)


def _batch_first(x: torch.Tensor, length: int, b: int) -> torch.Tensor:
    """``(rows, B * H, D)`` -> ``(B, length, H, D)`` (the first ``length`` rows)."""
    return x[:length].unflatten(1, (b, -1)).transpose(0, 1)


@dataclass(frozen=True)
class _Rows:
    """A batch of query blocks of group ``gi`` (its rows ``r0:r1``) and its key-block slices.

    ``slices`` are ``(s0, s1)`` ranges of the group's ``c`` key blocks, each
    computed at once: one slice when a whole row of tiles fits the budget.
    """

    gi: int
    group: BlockGroup
    r0: int
    r1: int
    slices: tuple[tuple[int, int], ...]

    @property
    def qb(self) -> torch.Tensor:
        """The query blocks ``(n,)``."""
        return self.group.qb[self.r0 : self.r1]

    def kb(self, s0: int, s1: int) -> torch.Tensor:
        """The key blocks ``(n, w)`` of slice ``s0:s1``."""
        return self.group.kb[self.r0 : self.r1, s0:s1]


def _slots(c: int, bs: int, bh: int, chunk_elements: int) -> int:
    """Key blocks computed at once in a group of ``c``: all of them when a row of tiles fits."""
    if bh * bs * bs * c <= chunk_elements:
        return c
    return max(1, chunk_elements // (bh * bs * bs))


def _tile_rows(
    plan: BlockPlan,
    bh: int,
    chunk_elements: int,
    row_elements: Callable[[BlockGroup], int] | None = None,
) -> Iterator[_Rows]:
    """The plan's query blocks in batches that fit ``chunk_elements``, group by group.

    A query block costs ``row_elements(group)`` elements, by default its
    scores ``BH * bs * c * bs``. The forward, the weights and the backward all
    walk the tiles this way.
    """
    bs = plan.block_size
    for gi, g in enumerate(plan.groups):
        n, c = g.kb.shape
        per_row = bh * bs * bs * c if row_elements is None else row_elements(g)
        rows = max(1, chunk_elements // per_row)
        slots = _slots(c, bs, bh, chunk_elements)
        slices = tuple((s0, min(s0 + slots, c)) for s0 in range(0, c, slots))
        for r0 in range(0, n, rows):
            yield _Rows(gi, g, r0, min(r0 + rows, n), slices)


_FLASH_BACKWARD = getattr(
    torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None
)


_BF16_CHECK = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
_BF16 = FLASH is not None and _BF16_CHECK is not None and bool(_BF16_CHECK())  # bf16 matmuls


def _fused_kernels(call: KernelCall, plan: BlockPlan, chunk_elements: int, weights):
    """``(whole, fused)``: every row of tiles at once, and whether the fused CPU kernels run.

    They run where they exist (they need D == Dv) and can do the whole job: the
    fused backward has no bias or weight gradients and takes whole rows of
    tiles. The forward's log-sum-exp must come from the same score arithmetic
    as the recomputed scores (fused or plain matmuls): they differ by ~1e-7
    |score|, which exp() turns into wrong weights and gradients at large logits.
    """
    q, bs = call.q, plan.block_size
    bh = q.shape[0] * q.shape[2]
    whole = all(_slots(g.kb.shape[1], bs, bh, chunk_elements) == g.kb.shape[1] for g in plan.groups)
    fused = FLASH is not None and _FLASH_BACKWARD is not None and q.device.type == "cpu"
    fused = fused and q.shape[-1] == call.v.shape[-1] and call.bias is None
    return whole, fused and whole and not weights


class _Tiles:
    """Node-major padded operands and the tile arithmetic shared by forward and backward.

    Operands are ``(rows, B * H, D)``; a tile batch is ``(n, B * H, bs, D)`` for
    queries and ``(n, B * H, w * bs, D)`` for keys and values (strided views of
    gathered blocks), so one float mask ``(n, 1, bs, w * bs)`` serves all heads.
    Operands are in the accumulation dtype, except with ``half`` (the forward
    asks for it): bf16 inputs stay bf16 where the fused kernels run them.
    """

    def __init__(
        self, call: KernelCall, plan: BlockPlan, emaps, chunk_elements: int, weights, half=False
    ):
        q, v, bias = call.q, call.v, call.bias
        acc = accumulation_dtype(q.dtype)
        bs = plan.block_size
        self.plan, self.scale, self.acc, self.emaps = plan, call.scale, acc, emaps
        self.b, self.h = q.shape[0], q.shape[2]
        self.whole, self.fused = _fused_kernels(call, plan, chunk_elements, weights)
        # bf16 tiles for the fused forward (``half``) where the CPU has bf16 matmuls: the
        # kernel accumulates scores, softmax and output in float32 and skips three copies
        tiles = q.dtype if half and self.fused and q.dtype == torch.bfloat16 and _BF16 else acc
        self.qp = _node_major(q, plan.num_q_blocks * bs, tiles)  # (Nq, BH, D)
        self.kp = _node_major(call.k, plan.num_k_blocks * bs, tiles)  # (Mk, BH, D)
        self.vp = _node_major(v, plan.num_k_blocks * bs, tiles)  # (Mk, BH, Dv)
        self.bias = None
        if bias is not None:
            flat = bias.to(acc).transpose(0, 1).reshape(bias.shape[1], self.b * self.h)  # (E, BH)
            self.bias = torch.cat([flat, flat.new_zeros(1, flat.shape[1])])  # (E + 1, BH)

    def fused_row_elements(self, g: BlockGroup) -> int:
        """Elements the fused forward holds per query block of ``g``, in place of its scores.

        The kernel keeps the scores in per-thread blocks. A band's tiles are
        views, so a query block holds its output tile ``BH * bs * Dv`` and, where
        each block has its own, its mask. Other groups gather their key and value
        tiles, ``2 D / bs`` times their scores (twice at D = bs = 64):
        they are counted by their scores, as in every other walk of the tiles.
        """
        bs, c = self.plan.block_size, g.kb.shape[1]
        bh = self.qp.shape[1]
        if g.band is None:
            return bh * bs * bs * c
        held = bh * bs * self.vp.shape[2]  # the output tile
        if g.blocked is None or g.blocked.shape[0] > 1:  # see mask(): a mask row per block
            held += bs * c * bs
        return held

    def blocks(self, x: torch.Tensor) -> torch.Tensor:
        """``(rows, BH, D)`` -> ``(rows / bs, bs, BH, D)``."""
        return x.view(-1, self.plan.block_size, x.shape[1], x.shape[2])

    def queries(self, x: torch.Tensor, qb: torch.Tensor, band: int | None = None) -> torch.Tensor:
        """Query tiles of blocks ``qb (n,)``: ``(n, BH, bs, D)`` (a view for a band)."""
        if band is not None:
            lo = int(qb[0])
            return self.blocks(x)[lo : lo + qb.numel()].transpose(1, 2)
        return self.blocks(x).index_select(0, qb).transpose(1, 2)

    def keys(self, x: torch.Tensor, kb: torch.Tensor, band: int | None = None) -> torch.Tensor:
        """Key tiles of ``kb (n, w)``: ``(n, BH, w * bs, D)`` (a strided view for a band)."""
        n, w = kb.shape
        bs, bh, d = self.plan.block_size, x.shape[1], x.shape[2]
        if band is not None:
            step, head = x.stride(0), x.stride(1)  # node-major or head-major operands
            offset = x.storage_offset() + int(kb[0, 0]) * bs * step
            t = x.as_strided((n, w * bs, bh, d), (band * bs * step, step, head, 1), offset)
            return t.transpose(1, 2)
        t = self.blocks(x).index_select(0, kb.reshape(-1))  # (n * w, bs, BH, D)
        return t.view(n, w * bs, bh, d).transpose(1, 2)

    def edge_at(self, rows: _Rows, s0: int, s1: int) -> torch.Tensor:
        """The edge at every position of a tile batch, ``(n, bs, w * bs)``; ``E`` where none."""
        bs = self.plan.block_size
        return self.emaps[rows.gi][rows.r0 : rows.r1, :, s0 * bs : s1 * bs]

    def mask(self, rows: _Rows, s0: int, s1: int) -> torch.Tensor:
        """Additive mask (bias, ``-inf`` off the edges): ``(n, 1 or BH, bs, w * bs)``."""
        bs, g = self.plan.block_size, rows.group
        cols = slice(s0 * bs, s1 * bs)
        if self.bias is not None:
            m = self.bias[self.edge_at(rows, s0, s1)].permute(0, 3, 1, 2)  # (n, BH, bs, w*bs)
        else:
            n = 1 if g.blocked is not None and g.blocked.shape[0] == 1 else rows.r1 - rows.r0
            m = self.qp.new_zeros(n, 1, bs, (s1 - s0) * bs)  # (n or 1, 1, bs, w*bs)
        if g.blocked is not None:
            sel = slice(None) if g.blocked.shape[0] == 1 else slice(rows.r0, rows.r1)
            m = m.masked_fill(g.blocked[sel, None, :, cols], -math.inf)
        return m

    def scores(self, qt, kt, mask) -> torch.Tensor:
        """``qt kt^T * scale + mask``: ``(n, BH, bs, w * bs)``."""
        return torch.matmul(qt, kt.transpose(-1, -2)).mul_(self.scale).add_(mask)

    def empty_rows(self, rows: _Rows, mask: torch.Tensor) -> torch.Tensor | None:
        """Rows of a tile batch without an allowed position, ``(n or 1, 1 or BH, bs)``, or None."""
        g = rows.group
        if self.bias is None and len(rows.slices) == 1:
            if g.empty is None:
                return None
            sel = slice(None) if g.empty.shape[0] == 1 else slice(rows.r0, rows.r1)
            return g.empty[sel].unsqueeze(1)
        return (mask == -math.inf).all(-1)

    def attend(self, qt, kt, vt, mask, empty):
        """Output ``(n, BH, bs, Dv)`` and log-sum-exp ``(n, BH, bs)`` of one tile batch.

        Rows marked in ``empty`` (see :meth:`empty_rows`) get a zero output and
        ``lse = -inf``.
        """
        if self.fused:
            o, lse = FLASH(qt, kt, vt, attn_mask=mask, scale=self.scale)
            lse = lse.to(LSE_DTYPE)
        else:
            s = self.scores(qt, kt, mask)  # (n, BH, bs, w*bs)
            m = s.amax(-1, keepdim=True)
            if empty is not None:
                m = m.masked_fill_(empty.unsqueeze(-1), 0.0)
            p = torch.exp_(s.sub_(m))  # (n, BH, bs, w*bs)
            total = p.sum(-1, keepdim=True)  # (n, BH, bs, 1)
            o = torch.matmul(p, vt) / safe_total(total)
            lse = (m.to(LSE_DTYPE) + torch.log(total)).squeeze(-1)  # (n, BH, bs)
        if empty is None:
            return o, lse
        return o.masked_fill(empty.unsqueeze(-1), 0.0), lse.masked_fill(empty, -math.inf)


def block_forward(
    call: KernelCall,
    *,
    plan: BlockPlan,
    emaps: list[torch.Tensor] | None,
    chunk_elements: int,
    weight_grads: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Output ``(B, N, H, Dv)``, log-sum-exp ``(Nq, B * H)`` and weights ``(B, E, H)`` (or None).

    ``plan`` is the block plan of ``call.graph`` on the inputs' device and
    ``emaps`` its :func:`~graphattn.backends.tiles.edge_map` (needed for a
    bias). ``Nq`` is ``N`` rounded up to whole blocks; the log-sum-exp is
    in :data:`LSE_DTYPE` (float64); rows without
    an edge have ``lse = +inf`` (so that ``exp(s - lse) = 0`` there). Shared by
    the block backend and the split backend (:mod:`graphattn.backends.split`).

    Returned weights are ``exp(score - lse)`` gathered at the edges from
    recomputed tiles (:func:`~graphattn.backends.tiles.edge_slots`). When a
    gradient will flow back through them (``weight_grads``), the forward runs
    the plain tiles, whose log-sum-exp comes from the very arithmetic the
    backward recomputes; otherwise the fused kernels run as without weights.
    """
    tiles = partial(_Tiles, call, plan, emaps, chunk_elements)
    t = tiles(weights=call.return_weights and weight_grads, half=not call.return_weights)
    outp, lse = _forward_tiles(t, call.v.shape[-1], chunk_elements)
    if t.fused and not fused_precise(lse, t.acc):  # large logits: again, with a float64 lse
        t = tiles(weights=call.return_weights and weight_grads)  # float32 tiles
        t.fused = False
        outp, lse = _forward_tiles(t, call.v.shape[-1], chunk_elements)
    out = _batch_first(outp, call.q.shape[1], t.b).to(call.q.dtype)  # (B, N, H, Dv)
    weights = None
    if call.return_weights:
        weights = _weights(t, lse, call.graph, chunk_elements)  # (B, E, H)
    return out.contiguous(), lse, weights


def _forward_tiles(t: _Tiles, dv: int, chunk_elements: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Node-major output ``(Nq, BH, Dv)`` and log-sum-exp ``(Nq, BH)``, batch by batch."""
    plan, bh = t.plan, t.b * t.h
    rows_q = plan.num_q_blocks * plan.block_size
    covered = sum(g.qb.numel() for g in plan.groups) == plan.num_q_blocks
    make = t.qp.new_empty if covered else t.qp.new_zeros  # rows of blocks without pairs: 0
    outp = make((rows_q, bh, dv), dtype=t.qp.dtype)  # (Nq, BH, Dv)
    lse = make((rows_q, bh), dtype=LSE_DTYPE)  # (Nq, BH)
    if not covered:
        lse.fill_(math.inf)
    held = t.fused_row_elements if t.fused else None  # the fused kernel holds no scores
    for rows in _tile_rows(plan, bh, chunk_elements, held):
        o, row_lse = _attend_rows(t, rows)  # (n, BH, bs, Dv), (n, BH, bs)
        t.blocks(outp).index_copy_(0, rows.qb, o.transpose(1, 2))
        t.blocks(lse.unsqueeze(-1)).index_copy_(0, rows.qb, row_lse.transpose(1, 2).unsqueeze(-1))
    return outp, lse


def _probabilities(score: torch.Tensor, lse: torch.Tensor) -> torch.Tensor:
    """``exp(score - lse)`` in place, in ``score``'s dtype, for a float64 ``lse``.

    The lse is split into its value in ``score``'s dtype and the rest, so the
    tile arithmetic stays in that dtype (no float64 tiles on a GPU) while
    ``score - hi`` of two close numbers is exact and ``lo`` restores the digits
    that rounding ``lse`` would lose.
    """
    hi = lse.to(score.dtype)
    lo = (lse - hi).nan_to_num_(0.0).to(score.dtype)  # inf - inf: rows without an edge
    return torch.exp_(score.sub_(hi).sub_(lo))


def _attend_rows(t: _Tiles, rows: _Rows) -> tuple[torch.Tensor, torch.Tensor]:
    """Output ``(n, BH, bs, Dv)`` and log-sum-exp ``(n, BH, bs)`` (``+inf``: no edge) of a batch.

    The key-block slices are merged with an online softmax.
    """
    g = rows.group
    qt = t.queries(t.qp, rows.qb, g.band)  # (n, BH, bs, D)
    o = row_lse = None
    for s0, s1 in rows.slices:
        kb = rows.kb(s0, s1)  # (n, w)
        mask = t.mask(rows, s0, s1)
        kt, vt = t.keys(t.kp, kb, g.band), t.keys(t.vp, kb, g.band)  # (n, BH, w*bs, D|Dv)
        o_s, lse_s = t.attend(qt, kt, vt, mask, t.empty_rows(rows, mask))
        if o is None:
            o, row_lse = o_s, lse_s
            continue
        new = torch.logaddexp(row_lse, lse_s)  # (n, BH, bs) online softmax
        safe = new.masked_fill(new == -math.inf, 0.0)
        o = (row_lse - safe).exp().unsqueeze(-1).to(o.dtype) * o  # the lse is float64
        o = o + (lse_s - safe).exp().unsqueeze(-1).to(o.dtype) * o_s
        row_lse = new
    return o, row_lse.masked_fill(row_lse == -math.inf, math.inf)  # p = 0 there


def block_backward(
    call: KernelCall,
    *,
    plan: BlockPlan,
    emaps: list[torch.Tensor] | None,
    chunk_elements: int,
    out: torch.Tensor,
    lse: torch.Tensor,
    weights: torch.Tensor | None,
    grad_out: torch.Tensor | None,
    grad_weights: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(dq, dk, dv, dbias)`` of :func:`block_forward` from its ``out``, ``lse`` and ``weights``.

    The split backend passes the *merged* ``out`` and ``lse`` of all its parts:
    the recomputed probabilities ``exp(s - lse)`` and ``delta = <dout, out>``
    are then those of the whole softmax.
    """
    t = _Tiles(call, plan, emaps, chunk_elements, weights=weights is not None)
    t.fused = t.fused and fused_precise(lse, t.acc)  # as the forward decided
    grads = _Gradients(t, out, lse, weights, grad_out, grad_weights)
    for rows in _tile_rows(plan, t.b * t.h, chunk_elements):
        grads.add_rows(rows)
    return grads.result(call)


class _Gradients:
    """The gradient buffers of one :func:`block_backward`, filled batch by batch of query blocks."""

    def __init__(self, t: _Tiles, out, lse, weights, grad_out, grad_weights):
        plan, bh = t.plan, t.b * t.h
        rows_q = plan.num_q_blocks * plan.block_size
        if grad_out is None:
            grad_out = torch.zeros_like(out)
        self.t, self.lse = t, lse
        self.dop = _node_major(grad_out, rows_q, t.acc)  # (Nq, BH, Dv)
        self.outp = _node_major(out, rows_q, t.acc)  # (Nq, BH, Dv)
        self.fused = t.fused  # as the forward was; otherwise tiles are recomputed here
        self.delta = self.gw = None
        if not self.fused:
            # delta_i = sum_j p_ij dP_ij = <dout_i, out_i> (+ sum_j w_ij dW_ij)
            self.delta = (self.dop * self.outp).sum(-1)  # (Nq, BH)
        if grad_weights is not None:
            gw = _node_major(grad_weights.unsqueeze(-1), grad_weights.shape[1], t.acc)[..., 0]
            self.gw = torch.cat([gw, gw.new_zeros(1, bh)])  # (E + 1, BH)
            wp = _node_major(weights.unsqueeze(-1), weights.shape[1], t.acc)[..., 0]  # (E, BH)
            self.delta = self.delta + _per_target_sum(wp * gw, plan, t.emaps)
        covered = t.whole and sum(g.qb.numel() for g in plan.groups) == plan.num_q_blocks
        self.dqp = torch.empty_like(t.qp) if covered else torch.zeros_like(t.qp)  # (Nq, BH, D)
        self.dkp, self.dvp = torch.zeros_like(t.kp), torch.zeros_like(t.vp)  # (Mk, BH, D|Dv)
        self.dbias = None if t.bias is None else torch.zeros_like(t.bias)  # (E + 1, BH)

    def add_rows(self, rows: _Rows) -> None:
        """Add the gradients of one batch of query blocks, slice by slice of key blocks."""
        t, g, qb = self.t, rows.group, rows.qb
        qt = t.queries(t.qp, qb, g.band)  # (n, BH, bs, D)
        dot = t.queries(self.dop, qb, g.band)  # (n, BH, bs, Dv)
        row_lse = t.blocks(self.lse.unsqueeze(-1)).index_select(0, qb)[..., 0]  # (n, bs, BH)
        row_lse = row_lse.transpose(1, 2)  # (n, BH, bs)
        dq = None
        for s0, s1 in rows.slices:
            kb = rows.kb(s0, s1)  # (n, w)
            kt, vt = t.keys(t.kp, kb, g.band), t.keys(t.vp, kb, g.band)  # (n, BH, w*bs, D|Dv)
            mask = t.mask(rows, s0, s1)
            if self.fused:
                ot = t.queries(self.outp, qb, g.band)  # (n, BH, bs, Dv)
                lse_f = row_lse.masked_fill(row_lse == math.inf, 0.0).to(t.acc)
                dq_t, dk_t, dv_t = _FLASH_BACKWARD(
                    dot, qt, kt, vt, ot, lse_f, 0.0, False, attn_mask=mask, scale=t.scale
                )
            else:
                p = _probabilities(t.scores(qt, kt, mask), row_lse.unsqueeze(-1))  # (n,BH,bs,w*bs)
                dq_t, dk_t, dv_t = self._recomputed(rows, (s0, s1), p, qt, kt, vt, dot)
            dq = dq_t if dq is None else dq.add_(dq_t)
            _add_keys(t, self.dkp, dk_t, kb)
            _add_keys(t, self.dvp, dv_t, kb)
        t.blocks(self.dqp).index_copy_(0, qb, dq.transpose(1, 2))

    def _recomputed(self, rows: _Rows, cols: tuple[int, int], p, qt, kt, vt, dot):
        """``(dq, dk, dv)`` tiles of a batch from its probabilities ``p (n, BH, bs, w * bs)``."""
        t = self.t
        dv_t = torch.matmul(p.transpose(-1, -2), dot)  # (n, BH, w*bs, Dv)
        dp = torch.matmul(dot, vt.transpose(-1, -2))  # (n, BH, bs, w*bs)
        at = None
        if self.gw is not None or self.dbias is not None:
            at = t.edge_at(rows, *cols)  # (n, bs, w*bs)
        if self.gw is not None:
            dp += self.gw[at].permute(0, 3, 1, 2)
        row_delta = t.queries(self.delta.unsqueeze(-1), rows.qb, rows.group.band)  # (n,BH,bs,1)
        ds = p.mul_(dp.sub_(row_delta))  # (n, BH, bs, w*bs)
        if self.dbias is not None:
            self.dbias[at] = ds.permute(0, 2, 3, 1)
        ds = ds.mul_(t.scale)  # scores were q k^T * scale
        return torch.matmul(ds, kt), torch.matmul(ds.transpose(-1, -2), qt), dv_t

    def result(self, call: KernelCall):
        """``(dq, dk, dv, dbias)`` batch-first, in the dtypes of ``call``'s tensors."""
        b = self.t.b
        dq = _batch_first(self.dqp, call.q.shape[1], b).to(call.q.dtype)  # (B, N, H, D)
        dk = _batch_first(self.dkp, call.k.shape[1], b).to(call.k.dtype)  # (B, M, H, D)
        dv = _batch_first(self.dvp, call.v.shape[1], b).to(call.v.dtype)  # (B, M, H, Dv)
        dbias = None
        if self.dbias is not None:
            e = call.bias.shape[1]
            dbias = _batch_first(self.dbias[:-1].unsqueeze(-1), e, b)[..., 0]  # (B, E, H)
            dbias = dbias.to(call.bias.dtype)
        return dq, dk, dv, dbias


class _BlockAttention(torch.autograd.Function):
    """Block-sparse attention; the backward recomputes tiles from ``out`` and log-sum-exp."""

    @staticmethod
    def forward(ctx, q, k, v, bias, call: KernelCall, plan, emaps, chunk_elements: int, track):
        # q, k, v, bias are call's own tensors, passed apart so that autograd tracks them
        out, lse, weights = block_forward(
            call, plan=plan, emaps=emaps, chunk_elements=chunk_elements, weight_grads=track
        )
        ctx.save_for_backward(q, k, v, bias, out, lse, weights)
        ctx.graph, ctx.scale = call.graph, call.scale
        ctx.plan, ctx.emaps, ctx.chunk_elements = plan, emaps, chunk_elements
        ctx.set_materialize_grads(False)
        return out, weights

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_weights):
        q, k, v, bias, out, lse, weights = ctx.saved_tensors
        grads = block_backward(
            KernelCall(q, k, v, ctx.graph, scale=ctx.scale, bias=bias),
            plan=ctx.plan, emaps=ctx.emaps, chunk_elements=ctx.chunk_elements,
            out=out, lse=lse, weights=weights, grad_out=grad_out, grad_weights=grad_weights,
        )  # fmt: skip
        return (*grads, None, None, None, None, None)


def _add_keys(t: _Tiles, dst: torch.Tensor, tiles: torch.Tensor, kb: torch.Tensor) -> None:
    """Add key tiles ``(n, BH, w * bs, D)`` into ``dst (Mk, BH, D)`` at blocks ``kb (n, w)``."""
    bs = t.plan.block_size
    n, bh, _, d = tiles.shape
    rows = tiles.transpose(1, 2).reshape(-1, bs, bh, d)  # (n * w, bs, BH, D)
    t.blocks(dst).index_add_(0, kb.reshape(-1), rows)


def _per_target_sum(x: torch.Tensor, plan: BlockPlan, emaps) -> torch.Tensor:
    """Sum a per-edge ``x (E, BH)`` over each target: ``(Nq, BH)``."""
    bs = plan.block_size
    xp = torch.cat([x, x.new_zeros(1, x.shape[1])])  # (E + 1, BH)
    out = x.new_zeros(plan.num_q_blocks, bs, x.shape[1])  # (nqb, bs, BH)
    for g, at in zip(plan.groups, emaps, strict=True):
        out.index_copy_(0, g.qb, xp[at].sum(2))  # (n, bs, BH)
    return out.view(-1, x.shape[1])


def _weights(t: _Tiles, lse: torch.Tensor, graph, chunk_elements: int) -> torch.Tensor:
    """Post-softmax weights ``(B, E, H)`` in edge order, gathered from recomputed tiles.

    (A recorded full or causal graph never gets here: see
    :func:`~graphattn.backends.structured.structured_attention`.) Each batch
    of query blocks computes its scores head-major with no mask (only the
    positions of edges are read), and the weights
    ``exp(score * scale + bias - lse)`` are formed in edge space,
    ``(BH, E_c)``. After the fused forward, whose float32 log-sum-exp has no
    more digits to keep, ``-lse`` enters the matmul as one more feature
    (``[q * scale, -lse] . [k, 1]``); otherwise the float64 log-sum-exp is
    subtracted in two exact steps as in :func:`_probabilities`. The result is
    a ``(B, E, H)`` view of a head-major ``(B, H, E)`` tensor.
    """
    bh, bs = t.b * t.h, t.plan.block_size
    hi = lse.to(t.acc)  # (Nq, BH) the lse rounded to the score's dtype
    qp, kp, rest = t.qp, t.kp, None
    if t.fused:
        qp, kp = fold_lse(t.qp, t.kp, hi, t.scale)  # (Nq, BH, D + 1), (Mk, BH, D + 1)
    else:
        lo = (lse - hi).nan_to_num_(0.0).to(t.acc)  # what rounding lost (inf - inf: no edge)
        rest = (hi.t().contiguous(), lo.t().contiguous())  # (BH, Nq) each
    num_edges = graph.num_edges
    slots = edge_slots(graph, t.plan, t.qp.device)
    w = t.qp.new_empty(bh, num_edges)  # (BH, E)
    for rows in _tile_rows(t.plan, bh, chunk_elements):
        g, at = rows.group, slots[rows.gi]
        lo_e, hi_e = at.start[rows.r0], at.start[rows.r1]
        ids, dst = at.ids[lo_e:hi_e], at.dst[lo_e:hi_e]  # (E_c,) the edges of these blocks
        qt = t.queries(qp, rows.qb, g.band).transpose(0, 1)  # (BH, n, bs, D')
        for s0, s1 in rows.slices:
            kt = t.keys(kp, rows.kb(s0, s1), g.band).transpose(0, 1)  # (BH, n, w*bs, D')
            s = torch.matmul(qt, kt.transpose(-1, -2)).flatten(1)  # (BH, n * bs * w*bs)
            sel, flat = _in_slice(at, lo_e, hi_e, rows, (s0 * bs, s1 * bs), bs)
            score = _edge_scores(t, s.index_select(1, flat), ids[sel], dst[sel], rest)
            _put_exp(w, ids[sel], score)
    return w.view(t.b, t.h, num_edges).transpose(1, 2)  # (B, E, H)


def _edge_scores(t: _Tiles, s: torch.Tensor, ids, dst, rest) -> torch.Tensor:
    """``s (BH, E_s)`` gathered at edges ``ids``, brought to ``score * scale + bias - lse``.

    ``rest`` is None when ``s`` already holds ``score * scale - lse`` (the
    folded matmul), else the float64 lse split in ``(hi, lo)``, ``(BH, Nq)``.
    """
    if rest is not None:
        s.mul_(t.scale)
    if t.bias is not None:
        s += t.bias[ids].t()
    if rest is not None:
        s.sub_(rest[0].index_select(1, dst)).sub_(rest[1].index_select(1, dst))
    return s


def _put_exp(w: torch.Tensor, ids: torch.Tensor, x: torch.Tensor) -> None:
    """``w[:, ids] = exp(x)`` for ascending ``ids (E_s,)``; in place where they are a range."""
    if ids.numel() and int(ids[-1]) - int(ids[0]) + 1 == ids.numel():
        torch.exp(x, out=w[:, int(ids[0]) : int(ids[-1]) + 1])
    else:
        w.index_copy_(1, ids, torch.exp_(x))


def _in_slice(at: EdgeSlots, lo: int, hi: int, rows: _Rows, cols: tuple[int, int], bs: int):
    """The edges ``lo:hi`` of ``at`` in key columns ``cols`` and their positions in the scores.

    The scores of a batch are ``(n, bs, c1 - c0)`` per head, for rows
    ``rows.r0:r1`` of the group. Returns a selector (a ``slice`` when ``cols``
    is the whole row) and the flat positions ``(E_s,)``.
    """
    c0, c1 = cols
    width = rows.group.kb.shape[1] * bs  # columns of a whole row of tiles
    if c0 == 0 and c1 == width:
        flat = at.flat[lo:hi]  # (E_c,)
        return slice(None), (flat - rows.r0 * bs * width if rows.r0 else flat)
    pos = at.pos[lo:hi]  # (E_c,)
    inner, col = torch.div(pos, width, rounding_mode="floor"), pos % width  # (E_c,)
    sel = (col >= c0) & (col < c1)
    r = at.row[lo:hi][sel] - rows.r0  # (E_s,)
    return sel, ((r * bs + inner[sel]) * (c1 - c0)) + col[sel] - c0


def block_attention(
    call: KernelCall,
    *,
    block_size: int | None = None,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Kernel of the ``"block"`` backend (contract in :mod:`graphattn.backends.base`).

    ``block_size`` is the tile side (None: chosen for the graph and whether a
    backward runs by :func:`~graphattn.backends.tiles.block_size_for`); ``chunk_elements``
    bounds the score elements computed at once (whole query blocks; a query
    block wider than that is processed in slices of key blocks with an
    online softmax). The fused forward keeps no scores: on a band it bounds
    the output tiles (and masks) it holds instead, so fewer, longer kernel
    calls run.

    Raises
    ------
    ValueError
        If ``dropout_p > 0`` (use the ``"edge"`` backend for dropout).

    Examples
    --------
    >>> from graphattn import patterns
    >>> g = patterns.causal(3)  # tiles of 2 x 2 tokens: two on the diagonal, one below
    >>> q = k = torch.zeros(1, 3, 1, 4)
    >>> v = torch.arange(3.0).view(1, 3, 1, 1)
    >>> out, _ = block_attention(KernelCall(q, k, v, g, scale=0.5), block_size=2)
    >>> out.flatten().tolist()
    [0.0, 0.5, 1.0]
    """
    if call.dropout_p > 0:
        raise ValueError(f"the block backend has no dropout; got dropout_p={call.dropout_p}")
    return contain_nonfinite(
        call, partial(_block, block_size=block_size, chunk_elements=chunk_elements)
    )


def _block(call: KernelCall, *, block_size: int | None, chunk_elements: int):
    """The block kernel proper, on whole tiles (padding and non-edges included)."""
    if call.return_weights:
        whole = structured_attention(call, chunk_elements)  # a recorded full or causal graph
        if whole is not None:
            return whole
    track = call.request().needs_grad  # a gradient may flow back through returned weights
    bs = block_size_for(call.graph, track) if block_size is None else block_size
    plan = block_plan(call.graph, bs, call.q.device)
    emaps = None
    if call.bias is not None or (call.return_weights and track):
        emaps = edge_map(call.graph, plan, call.q.device)
    tensors = (call.q, call.k, call.v, call.bias)
    return _BlockAttention.apply(*tensors, call, plan, emaps, chunk_elements, track)


def _supports(request: AttentionRequest) -> str | None:
    """The block backend runs everything but dropout."""
    if request.dropout > 0:
        return "no dropout in the block backend (use 'edge')"
    return None


register_backend("block", block_attention, _supports)
