"""One benchmark case measured in this process: time, peak memory and the backend that ran.

:func:`run_case` is what each worker process runs (``python -m
graphattn.bench.measure CASE_JSON`` prints its result as one JSON line); the
graph, its graph-only plans and the inputs are built before the peak-memory
counter is reset, so the peak covers the calls alone.
"""

from __future__ import annotations

import gc
import json
import math
import statistics
import sys
import time
from dataclasses import asdict

import torch

from graphattn.bench.cases import Case, build_graph, flex_predicate

__all__ = ["make_call", "run_case"]


def _status(field: str) -> int:
    """A ``/proc/self/status`` memory field in bytes (0 where unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def make_call(case: Case, graph, q, k, v):
    """A zero-argument function running one forward (and backward) of ``case``."""
    scale = 1.0 / math.sqrt(case.dim)
    fwd = _FORWARDS[case.impl](case, graph, q, k, v, scale)
    if case.mode == "fwd":
        return fwd

    def fwd_bwd():
        out = fwd()
        out.backward(torch.ones_like(out))
        for t in (q, k, v):
            t.grad = None

    return fwd_bwd


def _graphattn_forward(case: Case, graph, q, k, v, scale: float):
    """graphattn's ``graph_attention`` on the case's backend."""
    from graphattn import graph_attention

    return lambda: graph_attention(q, k, v, graph, scale=scale, backend=case.backend)


def _dense_forward(case: Case, graph, q, k, v, scale: float):
    """Dense SDPA with the graph's boolean mask."""
    import torch.nn.functional as F

    mask = graph.to_dense_mask()  # (N, M)
    qh, kh, vh = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, L, D)
    return lambda: F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, scale=scale)


def _pyg_forward(case: Case, graph, q, k, v, scale: float):
    """PyG's edge-wise recipe: gather, scatter-softmax, scatter-sum."""
    from torch_geometric.utils import scatter, softmax

    src, dst = graph.src, graph.dst
    n = graph.num_nodes

    def fwd():
        score = (q[0, dst] * k[0, src]).sum(-1) * scale  # (E, H)
        alpha = softmax(score, dst, num_nodes=n)  # (E, H)
        return scatter(alpha.unsqueeze(-1) * v[0, src], dst, dim=0, dim_size=n)  # (N, H, D)

    return fwd


def _flex_forward(case: Case, graph, q, k, v, scale: float):
    """Compiled FlexAttention on the pattern's predicate (or the graph's BlockMask)."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    from graphattn.backends.flex import to_block_mask

    pred = flex_predicate(case.pattern)
    if pred is None:
        block_mask = to_block_mask(graph)
    else:
        block_mask = create_block_mask(pred, None, None, case.n, case.n, device="cpu")
    compiled = torch.compile(flex_attention, dynamic=False)
    qh, kh, vh = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, L, D)
    return lambda: compiled(qh, kh, vh, block_mask=block_mask, scale=scale)


_FORWARDS = {
    "graphattn": _graphattn_forward,
    "dense": _dense_forward,
    "pyg": _pyg_forward,
    "flex": _flex_forward,
}


def run_case(case: Case) -> dict:
    """Run ``case`` in this process and return its measurements."""
    if case.threads:
        torch.set_num_threads(case.threads)
    result = {"case": asdict(case), "threads": torch.get_num_threads()}
    t0 = time.perf_counter()
    graph = build_graph(case.pattern, case.n)
    result["graph_build_s"] = time.perf_counter() - t0
    result["edges"] = graph.num_edges
    if case.impl == "graphattn":
        result.update(_plan(case, graph))
    gen = torch.Generator().manual_seed(0)
    grad = case.mode == "fwdbwd"
    q, k, v = (
        torch.randn(1, case.n, case.heads, case.dim, generator=gen).requires_grad_(grad)
        for _ in range(3)
    )  # (B, N, H, D) each
    result.update(_time_calls(case, make_call(case, graph, q, k, v), graph.num_edges))
    result["input_bytes"] = sum(t.numel() * t.element_size() for t in (q, k, v))
    return result


def _plan(case: Case, graph) -> dict:
    """The backend graphattn runs and why; builds its graph-only plan (``plan_s``)."""
    from graphattn import explain_backend
    from graphattn.backends.edge import CHUNK_ELEMENTS, chunks_on
    from graphattn.backends.tiles import block_plan, block_size_for

    grad = case.mode == "fwdbwd"
    choice = explain_backend(graph, num_heads=case.heads, head_dim=case.dim, needs_grad=grad)
    name = choice.backend if case.backend == "auto" else case.backend
    result = {"backend": name, "why": choice.reason}
    t0 = time.perf_counter()
    if name == "block":  # graph-only plans are part of the graph, like its edge list
        plan = block_plan(graph, block_size_for(graph))
        result["block_fill"], result["block_size"] = plan.fill, plan.block_size
    elif name == "edge":  # B = 1: chunks of CHUNK_ELEMENTS // H edges
        chunks_on(graph, torch.device("cpu"), max(1, CHUNK_ELEMENTS // case.heads))
    result["plan_s"] = time.perf_counter() - t0
    return result


def _time_calls(case: Case, call, edges: int) -> dict:
    """Peak memory and times of one warm-up call and the timed calls of ``call``."""
    gc.collect()
    result = {"peak_measured": _reset_peak()}
    rss0 = _status("VmRSS")
    t0 = time.perf_counter()
    call()
    result["first_call_s"] = time.perf_counter() - t0
    times: list[float] = []
    # at least two timed calls, one where the warm-up alone took longer than the time budget
    least = 1 if result["first_call_s"] > case.seconds else 2
    while len(times) < case.reps and (len(times) < least or sum(times) < case.seconds):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    hwm = _status("VmHWM")
    result.update(
        times_s=times,
        median_s=statistics.median(times),
        edges_per_s=edges / statistics.median(times),
        rss_before_bytes=rss0,
        peak_rss_bytes=hwm,
        peak_extra_bytes=max(0, hwm - rss0),
    )
    return result


if __name__ == "__main__":  # a worker: run one case given as JSON, print its result
    print(json.dumps(run_case(Case(**json.loads(sys.argv[1])))), flush=True)
