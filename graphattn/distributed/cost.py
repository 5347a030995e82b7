"""Bytes each rank sends for one attention layer: the halo exchange against the alternatives.

A *row* is one source token's keys and values for every head:
``B * H_kv * (D + Dv) * itemsize`` bytes. Per rank ``s`` (``M`` sources in
all, ``M_s`` of them owned by ``s``):

========================  ====================================  ==================================
scheme                    forward (K/V rows sent)               backward (gradient rows sent)
========================  ====================================  ==================================
halo (this package)       rows of ``s`` in other ranks' halos   gradients of ``s``'s own halo rows
all-gather of K/V         ``M_s * (P - 1)``                     ``M - M_s`` (reduce-scatter)
ring pass                 ``M - M_{s+1}`` (``P - 1`` steps)     twice that (K/V and dK/dV travel)
========================  ====================================  ==================================

The ring is Ring Attention's schedule (every key/value block visits every
rank; causal masks skip compute, not traffic); the all-gather is what
FlexAttention's context parallel does. Integer metadata (the shape agreement,
a few dozen bytes) is not counted.
"""

from __future__ import annotations

import torch

from graphattn._validate import check_positive_int
from graphattn.distributed.partition import Partition

__all__ = ["SCHEMES", "bytes_sent", "rows_sent"]

# The schemes :func:`bytes_sent` reports, each with a forward and a backward entry.
SCHEMES = ("halo", "allgather", "ring")


def rows_sent(part: Partition) -> dict[str, torch.Tensor]:
    """Rows each rank sends, per scheme and direction, as ``(P,)`` int64 tensors.

    Examples
    --------
    >>> from graphattn import patterns
    >>> from graphattn.distributed import partition
    >>> part = partition(patterns.sliding_window(8, 2), 2, method="contiguous")
    >>> rows = rows_sent(part)
    >>> rows["halo_forward"].tolist(), rows["halo_backward"].tolist()
    ([1, 0], [0, 1])
    >>> rows["allgather_forward"].tolist(), rows["ring_backward"].tolist()
    ([4, 4], [8, 8])
    """
    if not isinstance(part, Partition):
        raise TypeError(f"part must be a Partition, got {type(part).__name__}")
    p, m = part.world_size, part.graph.num_src_nodes
    own = torch.tensor([len(o) for o in part.owned_src], dtype=torch.long)  # (P,) M_s
    ring = m - own.roll(-1)  # (P,) M - M_{s+1}
    return {
        "halo_forward": part.counts.sum(1),  # (P,) rows s sends
        "halo_backward": part.counts.sum(0),  # (P,) gradients of the rows s received
        "allgather_forward": own * (p - 1),
        "allgather_backward": m - own,
        "ring_forward": ring,
        "ring_backward": 2 * ring,
    }


def bytes_sent(
    part: Partition, *, heads: int, head_dim: int, value_dim: int | None = None,
    batch: int = 1, itemsize: int = 4,
) -> dict[str, torch.Tensor]:  # fmt: skip
    """Bytes each rank sends for one layer, per scheme and direction: ``(P,)`` int64 tensors.

    Parameters
    ----------
    part : Partition
    heads : int
        Key/value heads ``H_kv``.
    head_dim, value_dim : int
        ``D`` and ``Dv`` (default ``D``).
    batch : int
        Sequences per step ``B``.
    itemsize : int
        Bytes per element (4 for float32, 2 for bfloat16).

    Examples
    --------
    >>> from graphattn import patterns
    >>> from graphattn.distributed import partition
    >>> part = partition(patterns.sliding_window(8, 2), 2, method="contiguous")
    >>> bytes_sent(part, heads=2, head_dim=4)["halo_forward"].tolist()  # 1 row of 2*(4+4)*4
    [64, 0]
    """
    h = check_positive_int(heads, "heads")
    d = check_positive_int(head_dim, "head_dim")
    dv = d if value_dim is None else check_positive_int(value_dim, "value_dim")
    b = check_positive_int(batch, "batch")
    row = b * h * (d + dv) * check_positive_int(itemsize, "itemsize")  # bytes per row
    return {name: rows * row for name, rows in rows_sent(part).items()}
