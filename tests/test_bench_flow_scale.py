"""benchmarks/bench_flow_scale.py: a tiny run of the record cases, their rounds, a skipped cell."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_flow_scale.py"


def run(tmp_path, *args):
    out = tmp_path / "flow_scale.json"
    cmd = [sys.executable, str(SCRIPT), "--sizes", "48", "--window", "16", "--rounds", "1",
           "--out", str(out), *args]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def test_the_record_cases_run_alone_and_then_in_rounds_on_one_model(tmp_path):
    cases = ["forward", "record", "record_mean", "rollout", "touch", "held"]
    result = run(tmp_path, "--graphs", "causal", "--cases", *cases)
    assert "--rounds 1" in result["command"]
    rows = {r["case"]: r for r in result["rows"]}
    assert set(rows) == set(cases)
    for case in cases:
        row = rows[case]
        assert "error" not in row and row["first_s"] > 0 and row["peak_rss_gib"] > 0
        assert ("round_s" in row) == (case != "rollout")  # the rollout is not a forward
        assert row.get("round_s", 1) > 0


def test_a_cell_too_big_for_the_machine_stays_out_of_the_rounds(tmp_path):
    result = run(tmp_path, "--graphs", "window", "--cases", "forward", "record", "held",
                 "--memory-share", "1e-9")  # fmt: skip
    forward, *big = result["rows"]
    for row in big:
        assert row["error"].startswith("not run: keeps") and "round_s" not in row
    assert "error" not in forward and forward["round_s"] > 0


def test_rounds_out_of_range_are_refused(refused):
    assert "--rounds" in refused(SCRIPT, "--rounds", "0")
