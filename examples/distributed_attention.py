"""Graph-partitioned attention on 2 local gloo processes, checked against one process.

    python examples/distributed_attention.py            # 2 processes on 127.0.0.1
    torchrun --nproc-per-node 4 examples/distributed_attention.py --torchrun

Each rank owns a contiguous quarter (half) of a 4,096-token window graph,
receives only its halo of keys and values, and compares its output rows and
gradients with single-process attention over the whole graph.
"""

from __future__ import annotations

import datetime
import socket
import sys

import torch
import torch.distributed as dist

import graphattn.distributed as gd
from graphattn import graph_attention, patterns


def check(rank: int, world: int) -> None:
    graph = patterns.sliding_window(4096, 64)
    part = gd.partition(graph, world, method="contiguous")
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(4096, 4, 32, generator=gen, requires_grad=True) for _ in range(3))
    graph_attention(q, k, v, graph).square().sum().backward()  # one process, every rank alike
    rows = part.owned[rank]
    ql, kl, vl = (t.detach()[rows].requires_grad_(True) for t in (q, k, v))
    out = gd.graph_attention(ql, kl, vl, part)  # (N_r, H, D): this rank's rows
    out.square().sum().backward()
    ref = graph_attention(q.detach(), k.detach(), v.detach(), graph)[rows]
    sent = gd.bytes_sent(part, heads=4, head_dim=32)
    print(
        f"rank {rank}/{world}: {len(rows)} tokens, halo {len(part.halo[rank])} rows, "
        f"sent {int(sent['halo_forward'][rank])} B (all-gather: "
        f"{int(sent['allgather_forward'][rank])} B); max |out diff| "
        f"{float((out.detach() - ref).abs().max()):.1e}, |dq diff| "
        f"{float((ql.grad - q.grad[rows]).abs().max()):.1e}"
    )


def spawned(rank: int, world: int, port: int) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=60))  # fmt: skip
    try:
        check(rank, world)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    if "--torchrun" in sys.argv:  # RANK, WORLD_SIZE, MASTER_ADDR/PORT come from torchrun
        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
        check(dist.get_rank(), dist.get_world_size())
        dist.destroy_process_group()
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            free = s.getsockname()[1]
        torch.multiprocessing.spawn(spawned, args=(2, free), nprocs=2, join=True)
