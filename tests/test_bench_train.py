"""benchmarks/bench_train.py: its dense-SDPA baseline is the same model, and one tiny run."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import torch

from graphattn.nn import GraphLM

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"


def _bench_train():
    sys.path.insert(0, str(SCRIPT.parent))  # for its `from _cells import ...`
    try:
        spec = importlib.util.spec_from_file_location("bench_train", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return module


def test_dense_sdpa_baseline_computes_the_causal_graph_model():
    torch.manual_seed(0)
    lm = GraphLM(32, 16, 2, 2, pattern="causal", max_len=24)
    idx = torch.randint(32, (2, 24), generator=torch.Generator().manual_seed(1))
    with _bench_train().dense_sdpa():
        swapped = lm(idx).logits
    torch.testing.assert_close(swapped, lm(idx).logits)


def test_a_tiny_run_writes_both_implementations(tmp_path):
    out = tmp_path / "train.json"
    args = ["--sizes", "32", "--window", "8", "--d-model", "16", "--heads", "2", "--layers", "1",
            "--vocab", "32", "--steps", "1", "--threads", "1", "--out", str(out)]  # fmt: skip
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["impl"] for r in rows] == ["window", "sdpa"]
    assert all(r["steps_per_s"] > 0 and "cpu_speedup_vs_sdpa" in r for r in rows)
