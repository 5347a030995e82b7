"""``graphattn bench`` says when its numbers are suspect, where they go, and what they mean."""

from __future__ import annotations

import json

import pytest

from graphattn import bench
from graphattn.bench import machine, runner
from graphattn.cli import build_parser, main

QUICK = ["bench", "--quick", "--impls", "graphattn", "--modes", "fwd", "--sizes", "256"]


@pytest.fixture
def in_process(monkeypatch):
    """Run each case in this process (no subprocess start-up)."""
    monkeypatch.setattr(runner, "launch", lambda case, timeout: bench.run_case(case))


def test_a_loaded_machine_is_named_before_and_after_the_run(
    tmp_path, monkeypatch, capsys, in_process
):
    monkeypatch.setattr(machine, "load_average", lambda: 9.0)
    monkeypatch.setattr(machine, "cores", lambda: 2)
    assert main([*QUICK, "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert err.count("the load average (9.0) is above the 2 cores") == 2
    assert "warning (before the run)" in err and "warning (after the run)" in err


def test_a_quiet_machine_gets_no_warning(tmp_path, monkeypatch, capsys, in_process):
    monkeypatch.setattr(machine, "load_average", lambda: 0.1)
    monkeypatch.setattr(machine, "calibrate", lambda: [1.0, 1.0, 1.1])
    assert main([*QUICK, "--out", str(tmp_path / "o")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_warnings_for_load_and_calibration_spread():
    assert machine.warnings_for(None, 2, [1.0, 1.2, 1.4]) == []
    assert machine.warnings_for(2.0, 2, [1.0, 1.0]) == []  # at the core count: not above it
    (load,) = machine.warnings_for(2.5, 2, [1.0, 1.0])
    assert "load average (2.5)" in load
    (spread,) = machine.warnings_for(0.0, 2, [1.0, 2.0, 2.0, 2.0, 1.0])
    assert "2.0x slower at its median than at its fastest" in spread
    times = machine.calibrate(calls=3)
    assert len(times) == 3 and min(times) > 0


def test_help_names_the_default_folder_and_it_is_not_the_committed_one(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: bench-results;" in out
    assert build_parser().parse_args(["bench"]).out.as_posix() == "bench-results"


def test_a_folder_with_results_is_overwritten_only_when_asked(tmp_path, capsys, in_process):
    out = tmp_path / "results"
    out.mkdir()
    (out / "bench.json").write_text('{"committed": true}')
    assert main([*QUICK, "--out", str(out)]) == 2
    assert "already holds a bench.json" in capsys.readouterr().err
    assert json.loads((out / "bench.json").read_text()) == {"committed": True}
    assert main([*QUICK, "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "bench.json").read_text())["complete"]


def test_the_committed_results_are_refused_by_default(capsys, monkeypatch):
    monkeypatch.setattr(runner, "launch", lambda case, timeout: pytest.fail("a case ran"))
    assert main([*QUICK, "--out", "benchmarks/results"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err


def test_every_target_line_is_explained_once(capsys, monkeypatch):
    n = bench.TARGET_N
    results = [
        {"case": dict(pattern="window", n=n, impl=impl, mode=mode, heads=4, dim=64),
         "median_s": ms / 1e3, "peak_extra_bytes": 2**20, "peak_rss_bytes": 2**20,
         "input_bytes": 3 * n * 256 * 4, "edges": n * 128, "backend": "block"}
        for impl, mode, ms in [("graphattn", "fwd", 50), ("graphattn", "fwdbwd", 120),
                               ("dense", "fwd", 900), ("flex", "fwd", 60)]
    ]  # fmt: skip
    targets = bench.check_targets(results)
    kinds = {t["target"].rpartition(": ")[2] for t in targets}
    assert kinds == {"dense / graphattn", "graphattn / flex", "fwd+bwd / fwd time",
                     "fwd+bwd peak / budget"}  # fmt: skip
    assert set(bench.MEANINGS) >= kinds
    assert "E * H * 4 bytes" in bench.explain(f"window N={n}: fwd+bwd peak / budget")
    from graphattn.commands.bench import _print_targets

    _print_targets(targets)
    out = capsys.readouterr().out
    assert "what the target lines measure:" in out
    for kind in kinds:
        assert out.count(f"  {kind}: ") == 1


def test_every_kind_of_target_has_a_meaning():
    """Each name check_targets can produce (speed, backward, large) is in MEANINGS."""
    kinds = ["pyg / graphattn", "dense / graphattn", "graphattn / flex", "flex / graphattn",
             "fwd+bwd / fwd time", "fwd+bwd peak / budget", "peak RSS GiB"]  # fmt: skip
    assert sorted(bench.MEANINGS) == sorted(kinds)
    assert bench.explain(f"window N={bench.LARGE_N} fwd: peak RSS GiB").startswith("the whole")
