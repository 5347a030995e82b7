"""The collectives: the halo exchange of key/value rows and the agreement on shapes.

Both are single ``torch.distributed`` collectives; nothing here writes a
communication layer of its own. :func:`exchange_halo` is one uneven
``all_to_all_single`` in its autograd form
(``torch.distributed.nn.functional``): forward moves the halo rows, backward
runs the transposed all-to-all that returns their gradients to their owners.
:func:`agree` is one ``all_gather`` of a few integers, so that a rank with bad
input raises on every rank instead of leaving the others waiting.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn

from graphattn.distributed.partition import Partition

__all__ = ["agree", "exchange_halo", "group_device", "sum_gradients"]


def group_device(group=None) -> torch.device:
    """The device collectives of ``group`` take: the current CUDA device for NCCL, else CPU."""
    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def exchange_halo(rows: torch.Tensor, part: Partition, rank: int, group=None) -> torch.Tensor:
    """This rank's halo rows, received from their owners (differentiable).

    Parameters
    ----------
    rows : Tensor, shape (M_r, ...)
        The rows of ``part.owned_src[rank]``, in that order.
    part : Partition
    rank : int
        This process's rank in ``group``.

    Returns
    -------
    Tensor, shape (len(part.halo[rank]), ...)
        The rows of ``part.halo[rank]``, in that order. Every rank must call
        this, and (when ``rows`` requires grad) backpropagate through it.
    """
    send = rows.index_select(0, part.send_index[rank].to(rows.device))  # (S_r, ...)
    out = rows.new_empty((len(part.halo[rank]), *rows.shape[1:]))  # (H_r, ...)
    with warnings.catch_warnings():
        # torch 2.13 marks the autograd all_to_all_single deprecated in favour of a
        # private functional-collectives module; the public one is kept on purpose.
        warnings.simplefilter("ignore", FutureWarning)
        return dist_fn.all_to_all_single(
            out, send.contiguous(),
            output_split_sizes=part.counts[:, rank].tolist(),
            input_split_sizes=part.counts[rank].tolist(),
            group=group,
        )  # fmt: skip


def agree(
    names: Sequence[str], values: Sequence[int], error: Exception | None, group=None
) -> None:
    """Check on every rank that all ranks have valid input and the same ``values``.

    One ``all_gather`` of ``[ok, *values]``. The rank that failed re-raises its
    own ``error``; every other rank raises a ``ValueError`` naming it, so none is
    left waiting in a later collective.

    Raises
    ------
    TypeError, ValueError
        This rank's ``error``.
    ValueError
        If another rank failed, or the ranks disagree on one of ``names``.
    """
    vec = torch.tensor([int(error is None), *values], dtype=torch.long, device=group_device(group))
    world = dist.get_world_size(group)
    gathered = [torch.empty_like(vec) for _ in range(world)]
    dist.all_gather(gathered, vec, group=group)
    table = torch.stack(gathered).cpu()  # (P, 1 + K)
    if error is not None:
        raise error
    failed = (table[:, 0] == 0).nonzero().flatten().tolist()
    if failed:
        raise ValueError(
            f"rank(s) {failed} rejected their inputs (see the error raised there); "
            "nothing was exchanged"
        )
    for col, name in enumerate(names, start=1):
        if (table[:, col] != table[0, col]).any():
            raise ValueError(f"ranks disagree on {name}: {table[:, col].tolist()} (by rank)")


def sum_gradients(parameters, group=None) -> None:
    """Sum the gradients of ``parameters`` over the ranks of ``group``, in place.

    One ``all_reduce`` of all gradients flattened together; a parameter
    without a gradient counts as zeros (and gets the sum), so ranks whose
    tokens did not reach a parameter still take part. For replicated
    parameters under sequence or data parallelism whose per-rank losses sum
    to the one-process loss, the result is the one-process gradient.

    Parameters
    ----------
    parameters : iterable of Tensor
        The same parameters in the same order on every rank (``model.parameters()``).
    """
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    flat = torch.cat([
        (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params
    ])  # (sum of numel,)
    device = group_device(group)
    reduced = flat.to(device)
    dist.all_reduce(reduced, group=group)
    reduced = reduced.to(flat.device)
    start = 0
    for p in params:
        p.grad = reduced[start : start + p.numel()].view_as(p).clone()
        start += p.numel()
