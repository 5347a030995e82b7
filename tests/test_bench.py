"""The benchmark: cases run, measure, skip with reasons, and report tables, targets and plots."""

import json

import pytest
import torch

from graphattn import bench
from graphattn.bench import runner
from graphattn.cli import build_parser, main


def test_a_case_runs_in_process_and_measures_time_memory_and_backend():
    case = bench.Case("window", 256, "graphattn", "fwdbwd", heads=2, dim=8, reps=2, seconds=60.0)
    r = bench.run_case(case)
    assert r["backend"] in ("dense", "block", "edge")
    assert len(r["times_s"]) == 2 and r["median_s"] > 0
    assert r["edges"] == bench.build_graph("window", 256).num_edges
    assert r["edges_per_s"] == pytest.approx(r["edges"] / r["median_s"])
    assert r["input_bytes"] == 3 * 256 * 2 * 8 * 4
    assert r["peak_rss_bytes"] >= r["rss_before_bytes"] > 0


def test_skips_say_why():
    assert "GiB" in bench.skip_reason(bench.Case("window", 65536, "dense", "fwd"), 16)
    assert "no backward" in bench.skip_reason(bench.Case("window", 1024, "flex", "fwdbwd"), 16)
    assert "edges" in bench.skip_reason(bench.Case("causal", 65536, "graphattn", "fwd"), 16)
    assert "graphattn alone" in bench.skip_reason(
        bench.Case("window", bench.LARGE_N, "dense", "fwd"), 1e9
    )
    assert bench.skip_reason(bench.Case("window", 16384, "graphattn", "fwdbwd"), 16) is None


def fake(pattern, n, impl, mode, ms, peak=0, backend="block"):
    return {
        "case": dict(pattern=pattern, n=n, impl=impl, mode=mode, heads=4, dim=64),
        "median_s": ms / 1e3, "peak_extra_bytes": peak, "peak_rss_bytes": peak,
        "input_bytes": 3 * n * 256 * 4, "edges": n * 128, "backend": backend,
    }  # fmt: skip


def test_ratio_table_and_targets_from_known_numbers():
    n = bench.TARGET_N
    results = [
        fake("window", n, "graphattn", "fwd", 50),
        fake("window", n, "graphattn", "fwdbwd", 200),
        fake("window", n, "dense", "fwd", 1000),
        fake("window", n, "pyg", "fwd", 1000),
        fake("window", n, "flex", "fwd", 50),
        {"case": dict(pattern="window", n=n, impl="pyg", mode="fwdbwd"), "skipped": "why"},
    ]
    table = bench.ratio_table(results)
    assert "20.0x" in table and "1.0x" in table
    got = {t["target"]: (round(t["value"], 2), t["met"]) for t in bench.check_targets(results)}
    assert got[f"window N={n} fwd: dense / graphattn"] == (20.0, True)
    assert got[f"window N={n} fwd: pyg / graphattn"] == (20.0, False)  # needs >= 30
    assert got[f"window N={n} fwd: graphattn / flex"] == (1.0, True)
    assert got[f"window N={n}: fwd+bwd / fwd time"] == (4.0, False)


def test_quick_run_writes_json_table_and_plots(tmp_path, monkeypatch, capsys):
    """--quick end to end, with each case run in this process (no subprocess start-up)."""
    monkeypatch.setattr(runner, "launch", lambda case, timeout: bench.run_case(case))
    args = ["bench", "--quick", "--impls", "graphattn", "--modes", "fwd", "--out", str(tmp_path)]
    assert main(args) == 0
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["complete"] and data["table"].startswith("pattern")
    ran = [r for r in data["results"] if "median_s" in r]
    assert {(r["case"]["pattern"], r["case"]["n"]) for r in ran} == {
        (p, n)
        for p in ("window", "random")
        for n in (256, 512)  # --quick's own sizes
    }
    for name in ("bench_time.png", "bench_memory.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert "wrote" in capsys.readouterr().out


def test_peers_side_by_side_in_one_run(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "launch", lambda case, timeout: bench.run_case(case))
    impls = "graphattn,dense,pyg" if bench.has_pyg() else "graphattn,dense"
    args = ["bench", "--sizes", "256", "--patterns", "random", "--impls", impls, "--modes", "fwd",
            "--reps", "2", "--seconds", "0", "--heads", "1", "--dim", "8",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    data = json.loads((tmp_path / "bench.json").read_text())
    assert {r["case"]["impl"] for r in data["results"] if "median_s" in r} == set(impls.split(","))
    assert "dense x" in data["table"]


def test_one_case_in_a_subprocess():
    r = bench.launch(bench.Case("window", 128, "graphattn", "fwd", heads=1, dim=4, reps=2), 300)
    assert r["median_s"] > 0 and r["case"]["n"] == 128


def test_bad_arguments_are_refused(capsys):
    parser = build_parser()
    for bad in (["--sizes", "0"], ["--patterns", "nope"], ["--impls", "x"], ["--sizes", "a"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["bench", *bad])
    assert "choose from" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown pattern"):
        bench.build_graph("nope", 8)


def test_the_worker_uses_torch_threads_setting():
    before = torch.get_num_threads()
    try:
        r = bench.run_case(bench.Case("random", 256, "graphattn", "fwd", heads=1, dim=4, threads=1))
        assert r["threads"] == 1
    finally:
        torch.set_num_threads(before)
