"""Graph-partitioned attention: :func:`graph_attention` across the ranks of a process group.

Every rank passes its own rows: queries of ``part.owned[rank]`` and keys and
values of ``part.owned_src[rank]``. The ranks first agree (one small integer
``all_gather``) that their inputs are valid and match; then one uneven
all-to-all brings each rank its halo rows; then each rank runs the ordinary
:func:`graphattn.graph_attention` on its local graph (owned targets by owned
plus halo sources). The result equals one process's attention on the whole
graph, restricted to the rank's targets.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from graphattn._validate import check_bool
from graphattn.backends.base import accumulation_dtype
from graphattn.backends.checks import check_backend, check_qkv, check_scale
from graphattn.backends.front import add_batch_dim, drop_batch_dim
from graphattn.distributed.exchange import agree, exchange_halo
from graphattn.distributed.partition import Partition, local_plan
from graphattn.functional import graph_attention as local_attention

__all__ = ["graph_attention"]

# Fields every rank must agree on before anything is exchanged.
AGREED = ("partition fingerprint", "dims", "batch size", "heads", "k/v heads", "head dim",
          "value dim", "dtype", "k/v requires grad")  # fmt: skip
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _probe(t):
    """``t`` with at least one row (dim -3), for the shape checks that reject empty dims."""
    if isinstance(t, torch.Tensor) and t.dim() >= 3 and t.shape[-3] == 0:
        return t.new_zeros((*t.shape[:-3], 1, *t.shape[-2:]))
    return t


def _check_rows(q, k, v, part: Partition, rank: int) -> None:
    """Each of ``q``, ``k``, ``v`` holds its rank's rows in dim -3 (named on its own)."""
    n_r, m_r = len(part.owned[rank]), len(part.owned_src[rank])
    src = "owned_src" if part.graph.is_cross else "owned"
    for name, t, rows, where in (("q", q, n_r, "owned"), ("k", k, m_r, src), ("v", v, m_r, src)):
        if not isinstance(t, torch.Tensor) or t.dim() not in (3, 4):
            continue  # check_qkv names it
        if t.shape[-3] != rows:
            raise ValueError(
                f"{name} must hold the {rows} rows of part.{where}[{rank}] in dim -3, "
                f"got shape {tuple(t.shape)}"
            )


def _check_options(scale, return_weights, backend) -> None:
    """The options, checked on every rank (a rank owning nothing must fail like the others)."""
    check_scale(scale)
    check_bool(return_weights, "return_weights")
    check_backend(backend)


def _local_fields(q, k, v, part, rank: int, world: int, options: dict) -> list[int]:
    """Check this rank's inputs and ``options``; return the integers all ranks must share."""
    if not isinstance(part, Partition):
        raise TypeError(f"part must be a Partition, got {type(part).__name__}")
    if part.world_size != world:
        raise ValueError(
            f"part was built for world_size={part.world_size}, the process group has {world}"
        )
    _check_rows(q, k, v, part, rank)
    check_qkv(_probe(q), _probe(k), _probe(v))
    if q.dtype not in _DTYPES:
        raise TypeError(f"q must have dtype in {list(_DTYPES)}, got {q.dtype}")
    _check_options(**options)
    batch = q.shape[0] if q.dim() == 4 else 0
    grad = torch.is_grad_enabled() and (k.requires_grad or v.requires_grad)
    return [part.fingerprint, q.dim(), batch, q.shape[-2], k.shape[-2], q.shape[-1],
            v.shape[-1], _DTYPES.index(q.dtype), int(grad)]  # fmt: skip


def _rank_and_world(group) -> tuple[int, int]:
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "graphattn.distributed.graph_attention needs an initialized process group "
            "(torch.distributed.init_process_group)"
        )
    return dist.get_rank(group), dist.get_world_size(group)


def _local(q, k, v, part: Partition, rank: int, anchor, *, return_weights: bool, **options):
    """Attention on the rank's local graph: ``out (B, N_r, H, Dv)``, weights or None.

    A rank without a local graph (no target, or no source at all) gets zeros.
    """
    plan = local_plan(part, rank)
    b, n, h, _ = q.shape
    if plan.graph is None:
        out = q.new_zeros(b, n, h, v.shape[-1]) + anchor
        weights = q.new_zeros(b, 0, h, dtype=accumulation_dtype(q.dtype))  # (B, 0, H)
        return out, (weights if return_weights else None)
    result = local_attention(q, k, v, plan.graph, return_weights=return_weights, **options)
    if not return_weights:
        return result + anchor, None
    out, weights = result
    return out + anchor, weights[:, plan.to_global]  # (B, E_r, H) in global edge order


def graph_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    part: Partition,
    *,
    scale: float | None = None,
    return_weights: bool = False,
    backend: str = "auto",
    group=None,
):
    """Attention along ``part.graph`` with the tokens spread over a process group.

    Call it on every rank of ``group`` with that rank's rows. Only the halo
    key/value rows move (one uneven all-to-all; its transpose in backward).

    Parameters
    ----------
    q : Tensor, shape (N_r, H, D) or (B, N_r, H, D)
        Queries of ``part.owned[rank]``, in that order.
    k, v : Tensor, shape (M_r, H_kv, D) and (M_r, H_kv, Dv), or with a batch dim
        Keys and values of ``part.owned_src[rank]`` (``part.owned[rank]`` for a
        self graph), in that order.
    part : Partition
        From :func:`~graphattn.distributed.partition`, the same on every rank.
    scale, backend
        As in :func:`graphattn.graph_attention` (the backend runs per rank).
    return_weights : bool
        Also return the weights of the edges into this rank's targets.
    group : ProcessGroup, optional
        Default: the world group.

    Returns
    -------
    out : Tensor, shape (N_r, H, Dv) or (B, N_r, H, Dv)
        This rank's output rows, in the order of ``part.owned[rank]``. It always
        carries gradients back to ``q``, ``k`` and ``v`` (zeros where no edge
        leads), so every rank takes part in the backward exchange.
    weights : Tensor, shape (E_r, H) or (B, E_r, H), only with ``return_weights``
        In the global edge order restricted to this rank's targets: row ``t``
        belongs to global edge ``local_plan(part, rank).edge_ids[t]``.

    Raises
    ------
    TypeError, ValueError
        On every rank, before anything is exchanged, if any rank's input is
        invalid (wrong rows for its part of the partition, a partition for
        another world size) or the ranks disagree on the partition, shapes,
        dtype or whether keys and values need gradients.
    RuntimeError
        Without an initialized process group.
    """
    rank, world = _rank_and_world(group)
    error, fields = None, [0] * len(AGREED)
    try:
        options = {"scale": scale, "return_weights": return_weights, "backend": backend}
        fields = _local_fields(q, k, v, part, rank, world, options)
    except (TypeError, ValueError) as err:
        error = err
    agree(AGREED, fields, error, group)
    q, k, v, batched = add_batch_dim(q, k, v)  # (B, *, H | H_kv, D)
    d = k.shape[-1]
    rows = torch.cat([k, v], -1).transpose(0, 1)  # (M_r, B, H_kv, D + Dv)
    rows = torch.cat([rows, exchange_halo(rows, part, rank, group)])  # (M_r + H_r, B, H_kv, D+Dv)
    anchor = rows[:0].sum() + q[:, :0].sum()  # exact 0 tying out to every input's graph
    rows = rows.index_select(0, local_plan(part, rank).source_order.to(rows.device))  # local order
    kv = rows.transpose(0, 1)  # (B, M_r + H_r, H_kv, D + Dv)
    out, weights = _local(q, kv[..., :d], kv[..., d:], part, rank, anchor,
                          scale=scale, backend=backend, return_weights=return_weights)  # fmt: skip
    if not batched:
        out, weights = drop_batch_dim(out, weights)
    return (out, weights) if return_weights else out
