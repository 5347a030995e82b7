"""benchmarks/bench_prune.py: a tiny run against the committed revision, and a refused option."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_prune.py"
ROOT = SCRIPT.parents[1]


def test_a_tiny_run_times_this_prune_and_the_committed_one(tmp_path):
    out = tmp_path / "prune.json"
    cmd = [sys.executable, str(SCRIPT), "--sizes", "64", "--window", "16", "--k", "4",
           "--reps", "1", "--against", "HEAD", "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert "--against HEAD" in result["command"]
    assert {r["case"] for r in result["rows"]} == {"causal_mean", "window_heads"}
    for r in result["rows"]:
        assert r["n"] == 64 and r["now_s"] > 0 and r["then_s"] > 0


def test_a_k_below_one_is_refused_before_any_work(refused):
    stderr = refused(SCRIPT, "--k", "0", cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
    assert "--k must be >= 1" in stderr
