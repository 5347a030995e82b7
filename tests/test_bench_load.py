"""benchmarks/bench_load.py: one tiny run, and the options it refuses."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_load.py"


def test_a_tiny_run_times_every_case_quiet_and_loaded(tmp_path):
    out = tmp_path / "load.json"
    cmd = [sys.executable, str(SCRIPT), "--size", "128", "--window", "64", "--reps", "1",
           "--phases", "1", "--turns", "3", "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert "--phases 1" in result["command"]
    names = ["causal", "window", "sdpa causal", "sdpa tiles x1", "sdpa tiles x2"]
    phases = [r for r in result["rows"] if r["kind"] == "phase"]
    assert [r["case"] for r in phases] == names
    for r in phases:
        assert r["quiet_ms"] > 0 and r["loaded_ms"] > 0
        assert r["slowdown"] == pytest.approx(r["loaded_ms"] / r["quiet_ms"])
    traced = {r["case"]: r for r in result["rows"] if r["kind"] == "trace"}
    assert list(traced) == [*names, "window / tiles"]
    window = traced["window"]
    assert len(window["each_ms"]) == 3 and window["corr_window"] == pytest.approx(1.0)
    assert window["p10_ms"] <= window["p50_ms"] <= window["p90_ms"]
    each = zip(window["each_ms"], traced["sdpa tiles x1"]["each_ms"], strict=True)
    ratio = sorted(w / t for w, t in each)[1]  # the median of three turns
    assert traced["window / tiles"]["p50_ms"] == pytest.approx(ratio)
    assert not list(tmp_path.glob("*.part"))
    assert "| sdpa tiles x2 |" in done.stdout and "| window / tiles |" in done.stdout


@pytest.mark.parametrize(
    "option",
    [["--size", "100"], ["--size", "64", "--window", "128"], ["--competitors", "0"],
     ["--turns", "0"]],  # fmt: skip
)
def test_options_out_of_range_are_refused(refused, option):
    assert option[0] in refused(SCRIPT, *option)
