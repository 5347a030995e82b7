"""Data-parallel training for experiments: ``graphattn experiment --nproc P``.

Every rank draws the same global batch of each step (the batch generator is
seeded by ``(seed, step)`` alone) and trains on its slice of the sequences
(``tensor_split`` into ``P`` pieces). Its loss is its share of the global mean:
the sum of its cross-entropies divided by the number of scored positions in
the whole batch, so the shares sum to the one-process loss; summing gradients
over ranks (:func:`graphattn.distributed.sum_gradients`) gives the
one-process gradient, and every rank takes the same AdamW step. Rank 0 alone
writes results and checkpoints; every rank evaluates the (same) validation
batches. Without a process group (or with one rank) everything is the plain
one-process computation.
"""

from __future__ import annotations

import datetime
import socket

import torch
import torch.distributed as dist
import torch.nn.functional as F

from graphattn import distributed as gd
from graphattn.experiments.common.task import IGNORE

__all__ = ["barrier", "is_main", "launch", "loss_value", "rank_and_world", "step_loss",
           "sum_gradients"]  # fmt: skip

TIMEOUT = datetime.timedelta(minutes=10)  # a rank that stops answering fails the others


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of the default process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process writes files (rank 0, or no process group)."""
    return rank_and_world()[0] == 0


def barrier() -> None:
    """Wait for every rank (nothing without a process group)."""
    if rank_and_world()[1] > 1:
        dist.barrier()


def step_loss(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """This rank's share of the mean next-token loss of the global batch ``x, y (B, N)``."""
    rank, world = rank_and_world()
    if world == 1:
        logits = model(x).logits  # (B, N, V)
        return F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE)
    count = int((y != IGNORE).sum())  # scored positions of the whole batch
    xs, ys = x.tensor_split(world)[rank], y.tensor_split(world)[rank]  # (B_r, N)
    logits = model(xs).logits  # (B_r, N, V)
    total = F.cross_entropy(
        logits.flatten(0, 1), ys.flatten(), ignore_index=IGNORE, reduction="sum"
    )
    return total / max(count, 1)


def sum_gradients(model) -> None:
    """Sum the gradients over ranks (nothing without a process group)."""
    if rank_and_world()[1] > 1:
        gd.sum_gradients(model.parameters())


def loss_value(loss: torch.Tensor) -> float:
    """The global loss: the sum of every rank's share."""
    value = loss.detach().reshape(1).clone()
    if rank_and_world()[1] > 1:
        dist.all_reduce(value)
    return float(value)


def _run_rank(rank: int, world: int, port: int, fn, args: tuple, kwargs: dict) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
        timeout=TIMEOUT,
    )  # fmt: skip
    try:
        fn(*args, **kwargs)
    finally:
        dist.destroy_process_group()


def launch(nproc: int, fn, *args, **kwargs) -> None:
    """Run ``fn(*args, **kwargs)`` in ``nproc`` processes joined in a gloo group on 127.0.0.1.

    ``fn`` and its arguments must be picklable (a module-level function).
    Raises if any process fails.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(
        _run_rank, args=(nproc, port, fn, args, kwargs), nprocs=nproc, join=True
    )
