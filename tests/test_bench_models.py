"""benchmarks/bench_models.py: one tiny run of every mode, and the cells it refuses to run."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_models.py"


def run(tmp_path, *args):
    out = tmp_path / "models.json"
    cmd = [sys.executable, str(SCRIPT), "--sizes", "64", "--window", "16", "--rounds", "1",
           "--new", "1", "--out", str(out), *args]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def test_a_tiny_run_measures_every_implementation_first_and_warm(tmp_path):
    result = run(tmp_path, "--impls", "sdpa", "window", "--modes", "forward", "generate")
    assert "--rounds 1" in result["command"]
    rows = {(r["mode"], r["impl"]): r for r in result["rows"]}
    assert set(rows) == {(m, i) for m in ("forward", "generate") for i in ("sdpa", "window")}
    for impl in ("sdpa", "window"):
        forward, generate = rows["forward", impl], rows["generate", impl]
        assert "error" not in forward and "error" not in generate
        assert forward["first_s"] > 0 and forward["warm_s"] > 0 and forward["peak_rss_gib"] > 0
        assert 0 < forward["attention_s"] < forward["warm_s"]  # the clock saw the calls
        assert generate["prefill_s"] > 0 and generate["per_token_s"] > 0
        calls = forward["each_round"].pop("calls_s")  # one round: each of its 12 layers' calls
        assert len(calls) == 1 and len(calls[0]) == 12
        assert sum(calls[0]) == pytest.approx(forward["attention_s"])
        assert forward["each_round"] == {  # one round: its values are the medians
            "warm_s": [forward["warm_s"]], "attention_s": [forward["attention_s"]],
            "replay_s": [forward["replay_s"]],
        }  # fmt: skip
        assert 0 < forward["replay_s"] < forward["warm_s"]  # the first call, run again alone
        assert generate["each_round"] == {"per_token_s": [generate["per_token_s"]]}


def test_a_cell_whose_maps_would_not_fit_is_not_run_and_says_so(tmp_path):
    result = run(tmp_path, "--impls", "eager", "sdpa", "--modes", "train", "--memory-share", "1e-9")
    eager, sdpa = result["rows"]
    assert eager["impl"] == "eager" and eager["error"].startswith("not run: holds")
    assert "warm_s" not in eager
    assert "error" not in sdpa and sdpa["warm_s"] > 0


@pytest.mark.parametrize(
    "option", [["--memory-share", "1.5"], ["--rounds", "0"], ["--replays", "0"]]
)
def test_options_out_of_range_are_refused(refused, option):
    assert option[0] in refused(SCRIPT, *option)


def test_training_cells_run_without_dropout(monkeypatch):
    """Dropout would send transformers' SDPA to its math path (``N^2`` memory)."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # for its `from _cells import ...`
    spec = importlib.util.spec_from_file_location("bench_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.ARGS = module.parse(["--sizes", "32", "--window", "8"])
    runner = module.Runner("sdpa", 32, "train")
    rates = {m.p for m in runner.model.modules() if isinstance(m, torch.nn.Dropout)}
    assert runner.model.training and rates == {0.0}
