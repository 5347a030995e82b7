"""graphattn.distributed across 2 and 4 gloo processes on 127.0.0.1, against one process.

Each world size is spawned once (``tests/distributed_worker.py``, one process
per rank, bounded by a process-group timeout and a join timeout here) and runs
every case inside: window, strided, BigBird, random, cross, isolated targets
and a rank owning nothing, both partition methods, batched or not; outputs,
weights and gradients of q, k, v within 1e-5 of one process; bad input raising
on every rank without a hang.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import graphattn

torch_dist = pytest.importorskip("torch.distributed")
if not torch_dist.is_available() or not torch_dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

WORKER = Path(__file__).with_name("distributed_worker.py")
TOL = 1e-5
JOIN_TIMEOUT = 150  # seconds for a whole world; the process group itself times out after 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(world: int, tmp: Path) -> list[dict]:
    """Run one process per rank; return each rank's results."""
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=str(Path(graphattn.__file__).parents[1]))  # fmt: skip
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(r), str(world), port, str(tmp / f"rank{r}.json")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        for r in range(world)
    ]
    logs = []
    try:
        for proc in procs:
            logs.append(proc.communicate(timeout=JOIN_TIMEOUT)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for r, proc in enumerate(procs):
        assert proc.returncode == 0, f"rank {r} failed:\n{logs[r] if r < len(logs) else ''}"
    return [json.loads((tmp / f"rank{r}.json").read_text()) for r in range(world)]


@pytest.fixture(scope="module", params=[2, 4])
def results(request, tmp_path_factory):
    world = request.param
    return world, _spawn(world, tmp_path_factory.mktemp(f"world{world}"))


def test_matches_one_process(results):
    world, ranks = results
    cases = [name for name in ranks[0] if "/" in name or name in ("after_errors", "no_grad")]
    assert len(cases) >= 2 * 7 * 2
    for r, res in enumerate(ranks):
        for name in cases:
            for key, diff in res[name].items():
                if key in ("out", "weights", "grad_q", "grad_k", "grad_v"):
                    assert diff <= TOL, f"rank {r} of {world}, {name}: {key} differs by {diff}"
            assert res[name].get("grad_fn", True), f"rank {r}, {name}: output has no grad_fn"
    total = {name: sum(res[name]["rows"] for res in ranks) for name in cases}
    assert total["window/contiguous/B=None"] == 48 and total["cross/contiguous/B=2"] == 30


def test_covers_every_method_and_edge_case(results):
    world, ranks = results
    names = set(ranks[0])
    for graph in ("window", "strided", "bigbird", "random", "cross", "isolated", "tiny"):
        assert f"{graph}/contiguous/B=None" in names
        if importlib.util.find_spec("pymetis"):
            assert f"{graph}/metis/B=2" in names
    # a rank that owns no target (tiny: 3 tokens), and ranks that receive a halo
    if world == 4:
        assert min(res["tiny/contiguous/B=None"]["rows"] for res in ranks) == 0
    assert max(res["window/contiguous/B=None"]["halo"] for res in ranks) > 0


def test_models_match_one_process(results):
    world, ranks = results
    names = [name for name in ranks[0] if name.startswith("model:")]
    assert len(names) >= 2
    for r, res in enumerate(ranks):
        for name in names:
            for key in ("loss", "grads_rel", "logits", "out", "grad_x"):
                if key in res[name]:
                    assert res[name][key] <= TOL, f"rank {r}, {name}: {key} {res[name][key]}"
    assert sum(res["model:lm/contiguous"]["rows"] for res in ranks) == 24
    for r, res in enumerate(ranks):
        bad = res["model:lm/contiguous"]["bad_ids_on_rank_1"]
        assert bad["error"] == "ValueError"
        assert ("outside [0, vocab_size=30)" in bad["message"]) if r == 1 else (
            "rank(s) [1] rejected" in bad["message"])  # fmt: skip
        assert "targets must have the shape" in res["model:lm/contiguous"]["no_targets"]["message"]


def test_bad_input_raises_on_every_rank(results):
    world, ranks = results
    for r, res in enumerate(ranks):
        msg = res["bad_rows_on_rank_1"]["message"]
        assert res["bad_rows_on_rank_1"]["error"] == "ValueError"
        assert ("q must hold" in msg) if r == 1 else ("rank(s) [1] rejected" in msg)
        msg = res["k_rows_on_rank_1"]["message"]
        assert ("k must hold" in msg) if r == 1 else ("rank(s) [1] rejected" in msg)
        # every rank, the one owning nothing included, checks every option itself
        nan_scale = res["nan_scale_with_an_empty_rank"]
        assert nan_scale["error"] == "ValueError" and "scale must be finite" in nan_scale["message"]
        flag = res["return_weights_no_with_an_empty_rank"]
        assert flag["error"] == "TypeError" and "return_weights must be a bool" in flag["message"]
        assert "part was built for world_size" in res["other_world_size"]["message"]
        assert "disagree on partition fingerprint" in res["other_graph_on_rank_0"]["message"]
        assert "disagree on head dim" in res["head_dim_on_rank_0"]["message"]


def test_experiment_nproc_2_equals_one_process(tmp_path):
    from graphattn import cli

    config = {
        "name": "tiny", "seeds": [0],
        "task": {"name": "recall", "seq_len": 12, "n_pairs": 2, "n_queries": 2, "distance": 4,
                 "n_keys": 4, "n_values": 4},
        "model": {"d_model": 16, "n_layers": 1, "n_heads": 2},
        "train": {"steps": 4, "batch_size": 5, "lr": 0.01, "warmup": 1, "eval_every": 2,
                  "eval_batches": 1, "eval_batch_size": 8, "log_every": 1, "checkpoint_every": 2},
        "patterns": [{"label": "window 3", "pattern": "sliding_window", "params": {"window": 3}}],
    }  # fmt: skip
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config))
    runs = []
    for nproc in ("1", "2"):
        out = tmp_path / f"nproc{nproc}"
        args = ["experiment", str(path), "--out", str(out), "--no-progress", "--nproc", nproc]
        assert cli.main(args) == 0
        runs.append(json.loads((out / "results.json").read_text())["patterns"][0]["runs"][0])
    one, two = runs
    assert two["status"] == "complete" and len(two["curve"]) == 4
    for (s1, loss1), (s2, loss2) in zip(one["curve"], two["curve"], strict=True):
        assert s1 == s2 and abs(loss1 - loss2) <= TOL
    for e1, e2 in zip(one["evals"], two["evals"], strict=True):
        assert e1[0] == e2[0] and abs(e1[1] - e2[1]) <= TOL and e1[2] == e2[2]
