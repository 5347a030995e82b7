"""One rank of the multi-process tests of graphattn.distributed (run by test_distributed.py).

Usage: ``python tests/distributed_worker.py RANK WORLD PORT OUT_JSON``. Joins a
gloo group on 127.0.0.1, runs every case against a single-process reference
that each rank computes itself, and writes ``{case: result}`` to ``OUT_JSON``:
the largest differences of outputs, weights and gradients, or the error each
bad-input case raised here.
"""

from __future__ import annotations

import datetime
import json
import math
import sys
from pathlib import Path

import torch
import torch.distributed as dist

import graphattn.distributed as gd
from graphattn import TokenGraph, graph_attention, patterns
from graphattn.nn import GraphLM, GraphTransformer
from graphattn.nn.parallel import shard_tokens

GRAPHS = {
    "window": lambda: patterns.sliding_window(48, 5, causal=False),
    "strided": lambda: patterns.strided(48, 6),
    "bigbird": lambda: patterns.bigbird(48, window=3, num_global=2, num_random=2, seed=1),
    "random": lambda: patterns.random(48, 3, seed=2),
    "cross": lambda: patterns.cross_window(30, 20, 2),
    "isolated": lambda: TokenGraph([[0, 1, 5, 9], [1, 1, 6, 6]], num_nodes=12),
    "tiny": lambda: patterns.sliding_window(3, 2),  # P = 4 > N: a rank owns nothing
}


def _methods() -> list[str]:
    try:
        import pymetis  # noqa: F401
    except ImportError:
        return ["contiguous"]
    return ["contiguous", "metis"]


def _inputs(g: TokenGraph, batch: int | None, seed: int):
    """Full q, k, v and an output cotangent, the same on every rank."""
    gen = torch.Generator().manual_seed(seed)
    lead = () if batch is None else (batch,)
    q = torch.randn(*lead, g.num_nodes, 4, 8, generator=gen)
    k = torch.randn(*lead, g.num_src_nodes, 2, 8, generator=gen)  # grouped-query: H_kv = 2
    v = torch.randn(*lead, g.num_src_nodes, 2, 3, generator=gen)
    cot = torch.randn(*lead, g.num_nodes, 4, 3, generator=gen)
    return q, k, v, cot


def _leaf(t: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    return t.index_select(-3, rows).detach().requires_grad_(True)


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return 0.0 if a.numel() == 0 else float((a - b).abs().max().detach())


def _compare(g: TokenGraph, part: gd.Partition, rank: int, batch, seed: int) -> dict:
    q, k, v, cot = _inputs(g, batch, seed)
    q0, k0, v0 = (t.clone().requires_grad_(True) for t in (q, k, v))
    out0, w0 = graph_attention(q0, k0, v0, g, return_weights=True)
    (out0 * cot).sum().backward()
    rows, src = part.owned[rank], part.owned_src[rank]
    ql, kl, vl = _leaf(q, rows), _leaf(k, src), _leaf(v, src)
    out, w = gd.graph_attention(ql, kl, vl, part, return_weights=True)
    (out * cot.index_select(-3, rows)).sum().backward()
    edges = gd.local_plan(part, rank).edge_ids
    return {
        "out": _diff(out, out0.index_select(-3, rows)),
        "weights": _diff(w, w0.index_select(-2, edges)),
        "grad_q": _diff(ql.grad, q0.grad.index_select(-3, rows)),
        "grad_k": _diff(kl.grad, k0.grad.index_select(-3, src)),
        "grad_v": _diff(vl.grad, v0.grad.index_select(-3, src)),
        "rows": len(rows),
        "halo": len(part.halo[rank]),
        "grad_fn": out.grad_fn is not None,
    }


def _error(fn) -> dict:
    try:
        fn()
    except (TypeError, ValueError) as err:
        return {"error": type(err).__name__, "message": str(err)}
    return {"error": None}


def _bad_cases(rank: int, world: int) -> dict:
    g = patterns.random(16, 3, seed=0)  # every target has 3 edges: the same split as seed=1
    part = gd.partition(g, world, method="contiguous")
    q, k, v, _ = _inputs(g, None, 0)
    mine = part.owned[rank]
    ok = (q[mine], k[mine], v[mine])
    wrong_rows = (q[: len(mine) + 1], k[mine], v[mine]) if rank == 1 else ok
    other = gd.partition(patterns.random(16, 3, seed=1), world, method="contiguous")
    head_dim = (q[mine, :, :4], k[mine, :, :4], v[mine]) if rank == 0 else ok
    wrong_k = (q[mine], k[: len(mine) + 1], v[mine]) if rank == 1 else ok
    small = patterns.sliding_window(world - 1, 1)  # world - 1 tokens: a rank owns nothing
    spart = gd.partition(small, world, method="contiguous")
    sq, sk, sv, _ = _inputs(small, None, 0)
    srows = spart.owned[rank]
    sok = (sq[srows], sk[srows], sv[srows])
    return {
        "bad_rows_on_rank_1": _error(lambda: gd.graph_attention(*wrong_rows, part)),
        "k_rows_on_rank_1": _error(lambda: gd.graph_attention(*wrong_k, part)),
        "nan_scale_with_an_empty_rank": _error(
            lambda: gd.graph_attention(*sok, spart, scale=math.nan)
        ),
        "return_weights_no_with_an_empty_rank": _error(
            lambda: gd.graph_attention(*sok, spart, return_weights="no")
        ),
        "other_world_size": _error(
            lambda: gd.graph_attention(*ok, gd.partition(g, world + 1, method="contiguous"))
        ),
        "other_graph_on_rank_0": _error(
            lambda: gd.graph_attention(*ok, other if rank == 0 else part)
        ),
        "head_dim_on_rank_0": _error(lambda: gd.graph_attention(*head_dim, part)),
        "after_errors": _compare(g, part, rank, None, 1),  # the group still works
    }


def _no_grad_case(rank: int, world: int) -> dict:
    g = patterns.strided(32, 4)
    part = gd.partition(g, world, method="contiguous")
    q, k, v, _ = _inputs(g, 2, 3)
    rows = part.owned[rank]
    with torch.no_grad():
        out = gd.graph_attention(q[:, rows], k[:, rows], v[:, rows], part)
    return {"out": _diff(out, graph_attention(q, k, v, g)[:, rows]), "rows": len(rows)}


def _grad_diff(model: torch.nn.Module, ref: dict) -> float:
    """Largest parameter-gradient difference, relative to the largest entry (at least 1)."""
    return max(
        float((p.grad - ref[name]).abs().max() / ref[name].abs().max().clamp_min(1.0))
        for name, p in model.named_parameters()
    )


def _lm_case(rank: int, world: int, method: str) -> dict:
    torch.manual_seed(0)
    lm = GraphLM(30, 16, 2, 2, pattern=["causal", ("sliding_window", {"window": 4})], max_len=32)
    idx = torch.randint(30, (2, 24), generator=torch.Generator().manual_seed(1))
    ref_loss = lm.loss(idx)
    ref_loss.backward()
    ref = {name: p.grad.clone() for name, p in lm.named_parameters()}
    lm.zero_grad()
    part = gd.partition(lm.graphs(24)[0], world, method=method)
    ids, targets = shard_tokens(idx, part, rank)
    loss = lm.loss(ids, targets, partition=part)
    loss.backward()
    gd.sum_gradients(lm.parameters())
    total = loss.detach().reshape(1).clone()
    dist.all_reduce(total)
    bad = ids.clone()
    if rank == 1:
        bad[:, :1] = 99  # outside the vocabulary, on rank 1 only
    errors = {"bad_ids_on_rank_1": _error(lambda: lm.loss(bad, targets, partition=part)),
              "no_targets": _error(lambda: lm.loss(ids, partition=part))}  # fmt: skip
    with torch.no_grad():
        logits = lm(ids, partition=part).logits
        ref_logits = lm(idx).logits[:, part.owned[rank]]
    return {"loss": abs(float(total) - float(ref_loss.detach())), "grads_rel": _grad_diff(lm, ref),
            "logits": _diff(logits, ref_logits), "rows": ids.shape[1], **errors}  # fmt: skip


def _transformer_case(rank: int, world: int, method: str) -> dict:
    torch.manual_seed(0)
    model = GraphTransformer(16, 2, 2, dim_feedforward=32, dropout=0.0, norm_first=True)
    g1, g2 = GRAPHS["bigbird"](), GRAPHS["window"]()
    x = torch.randn(2, 48, 16, generator=torch.Generator().manual_seed(2))
    x0 = x.clone().requires_grad_(True)
    out0 = model(x0, [g1, g2]).last_hidden_state
    out0.square().sum().backward()
    ref = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    p1 = gd.partition(g1, world, method=method)
    rows = p1.owned[rank]
    xl = x[:, rows].detach().requires_grad_(True)
    out = model(xl, [p1, gd.partition_as(g2, p1)]).last_hidden_state
    out.square().sum().backward()
    gd.sum_gradients(model.parameters())
    return {"out": _diff(out, out0[:, rows]), "grad_x": _diff(xl.grad, x0.grad[:, rows]),
            "grads_rel": _grad_diff(model, ref), "rows": len(rows)}  # fmt: skip


def run(rank: int, world: int) -> dict:
    results = {}
    for seed, (name, build) in enumerate(sorted(GRAPHS.items())):
        g = build()
        for method in _methods():
            part = gd.partition(g, world, method=method)
            for batch in (None, 2):
                results[f"{name}/{method}/B={batch}"] = _compare(g, part, rank, batch, seed)
    results.update(_bad_cases(rank, world))
    results["no_grad"] = _no_grad_case(rank, world)
    for method in _methods():
        results[f"model:lm/{method}"] = _lm_case(rank, world, method)
        results[f"model:transformer/{method}"] = _transformer_case(rank, world, method)
    return results


def main() -> None:
    rank, world, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
        timeout=datetime.timedelta(seconds=60),
    )  # fmt: skip
    try:
        Path(out).write_text(json.dumps(run(rank, world)))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
