"""Bad command lines and configs: a one-line error and exit status 2, before any work."""

from __future__ import annotations

import json
import os

import pytest

from graphattn import cli
from graphattn.bench import runner
from graphattn.experiments import config_from_dict, run_experiment


def exit_status(argv: list[str]) -> int:
    """The exit status of ``graphattn ARGV``, argparse's own refusals included."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


def tiny_config(**edits) -> dict:
    """A config that trains in well under a second; ``edits`` replace whole sections."""
    d = {
        "task": {"name": "copy", "seq_len": 8, "n_symbols": 4},
        "model": {"d_model": 8, "n_layers": 1, "n_heads": 2},
        "train": {"steps": 2, "batch_size": 2, "warmup": 0, "eval_every": 2, "eval_batches": 1,
                  "eval_batch_size": 2, "log_every": 1},
        "patterns": [{"label": "causal", "pattern": "causal"}],
    }  # fmt: skip
    d.update(edits)
    return d


def write_config(folder, data: dict):
    path = folder / "c.json"
    path.write_text(json.dumps(data))
    return path


def assert_refused(argv, capsys, message, folder=None):
    """``argv`` exits 2 with ``message`` on one line of stderr, no traceback, nothing written."""
    before = sorted(os.listdir(folder)) if folder else None
    assert exit_status(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    if folder:
        assert sorted(os.listdir(folder)) == before


# ------------------------------------------------------------------ experiment configs
BAD_CONFIGS = [
    ({"patterns": [{"label": "f", "function": 5}]}, "function must be a string, got int 5"),
    ({"patterns": [{"label": "f", "file": 5}]}, "file must be a string, got int 5"),
    ({"patterns": [{"label": "f", "pattern": ["causal"]}]}, "pattern must be a string"),
    ({"task": {"name": ["copy"], "seq_len": 8}}, "task.name: unknown task ['copy']"),
    ({"task": {"name": "copy", "seq_len": 10**8}}, "task.seq_len (100,000,000 tokens)"),
    (
        {"train": {"steps": 2, "warmup": 0, "eval_every": 2, "log_every": 1,
                   "eval_batch_size": 10**9}},
        "(1,000,000,000 sequences)",
    ),  # fmt: skip
]


@pytest.mark.parametrize("edit, message", BAD_CONFIGS)
def test_a_bad_config_is_one_line_and_exit_2(tmp_path, capsys, edit, message):
    path = write_config(tmp_path, tiny_config(**edit))
    argv = ["experiment", str(path), "--out", str(tmp_path / "out"), "--no-progress"]
    assert_refused(argv, capsys, message, tmp_path)


FUNCTION_MODULES = {
    "syntax_error": ("def f(n) :: x\n", "SyntaxError"),
    "raising": ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
    "exiting": ("import sys\nsys.exit(0)\n", "called sys.exit(0)"),
    "call_raises": ("def f(n):\n    raise KeyError(n)\n", "KeyError: 8"),
}


@pytest.mark.parametrize("module", sorted(FUNCTION_MODULES))
def test_a_broken_function_module_is_an_error_not_a_traceback_or_success(
    tmp_path, capsys, monkeypatch, module
):
    source, message = FUNCTION_MODULES[module]
    (tmp_path / f"{module}_mod.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    spec = {"label": "f", "function": f"{module}_mod:f"}
    path = write_config(tmp_path, tiny_config(patterns=[spec]))
    argv = ["experiment", str(path), "--out", str(tmp_path / "out"), "--no-progress"]
    assert exit_status(argv) == 2
    err = capsys.readouterr().err
    assert f"function '{module}_mod:f'" in err and message in err and "Traceback" not in err
    assert not (tmp_path / "out" / "results.json").exists()


def test_an_empty_out_folder_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path, tiny_config())
    for argv in (
        ["experiment", str(path), "--out", "", "--no-progress"],
        ["demo", "--out", " ", "--quiet"],
        ["bench", "--quick", "--out", ""],
    ):
        assert_refused(argv, capsys, "expected a folder name", tmp_path)
    cfg = config_from_dict(tiny_config())
    with pytest.raises(ValueError, match="out_dir must name a folder"):
        run_experiment(cfg, "", progress=False)


# ------------------------------------------------------------------ draw
@pytest.mark.parametrize(
    "args, message",
    [
        (["--n", "1000000000"], "--n must be at most 16,384 tokens"),
        (["--n", "0"], "expected an integer >= 1"),
        (["--tokens", ""], "argument --tokens: expected at least one word"),
        (["--tokens", "   "], "argument --tokens: expected at least one word"),
        (["--layers", "0"], "argument --layers: expected an integer >= 1"),
    ],
)
def test_draw_refuses_before_drawing(tmp_path, capsys, args, message):
    argv = ["draw", "causal", *args, "-o", str(tmp_path / "x.png")]
    assert_refused(argv, capsys, message, tmp_path)


# ------------------------------------------------------------------ bench
@pytest.fixture
def no_case_runs(monkeypatch):
    """Fail the test if the benchmark gets as far as running a case."""

    def launch(case, timeout):
        raise AssertionError(f"a case ran: {case}")

    monkeypatch.setattr(runner, "launch", launch)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--threads", "-1"], "argument --threads: expected an integer >= 0"),
        (["--reps", "0"], "argument --reps: expected an integer >= 1"),
        (["--reps", "2.5"], "argument --reps: expected an integer"),
        (["--timeout", "0"], "argument --timeout: expected a finite number > 0"),
        (["--timeout", "nan"], "argument --timeout: expected a finite number > 0"),
        (["--seconds", "nan"], "argument --seconds: expected a finite number >= 0"),
        (["--seconds", "-1"], "argument --seconds: expected a finite number >= 0"),
        (["--budget-gib", "-1"], "argument --budget-gib: expected a finite number > 0"),
        (["--budget-gib", "inf"], "argument --budget-gib: expected a finite number > 0"),
        (["--sizes", "16"], "--sizes: window needs N >= 128 (its window), got 16"),
        (["--sizes", "128", "--patterns", "bigbird"], "bigbird needs N >= 129"),
        (["--sizes", "129", "--patterns", "bigbird"], None),  # the fewest it needs: runs
        (["--backend", "nope"], "--backend must be 'auto' or one of"),
    ],
)
def test_bench_checks_every_option_before_any_case(tmp_path, capsys, no_case_runs, args, message):
    out = tmp_path / "out"
    argv = ["bench", "--impls", "graphattn", "--modes", "fwd", "--out", str(out), *args]
    if message is None:
        with pytest.raises(AssertionError, match="a case ran"):
            cli.main(argv)
        return
    assert_refused(argv, capsys, message, tmp_path)


# ------------------------------------------------------------------ wrong kinds, every subcommand
# The options not covered above, each given a value of the wrong kind (a float or NaN for an int,
# a word for a number, an unknown name, an empty text): exit 2, one line naming it, no file.
WRONG_KIND_OPTIONS = [
    (["draw", "sliding_window", "--window", "1.5"], "argument --window: invalid int value"),
    (["draw", "sliding_window", "--window", "nan"], "argument --window: invalid int value"),
    (["draw", "sliding_window", "--window", "0"], "window must be in [1, 16], got 0"),
    (["draw", "strided", "--stride", "x"], "argument --stride: invalid int value"),
    (["draw", "causal", "--dpi", "nan"], "--dpi must be a finite number"),
    (["draw", "causal", "--dpi", "-1"], "--dpi must be a finite number"),
    (["draw", "causal", "--dpi", "x"], "argument --dpi: invalid float value"),
    (["draw", "sliding_window", "--param", "window=1.5"], "window must be an int, got float"),
    (["draw", "causal", "--param", "nokey"], "--param must look like KEY=VALUE"),
    (["draw", "nope"], "unknown pattern 'nope'"),
    (["draw", "causal", "--n", "1.5"], "argument --n: expected an integer"),
    (["draw", "causal", "--layers", "nan"], "argument --layers: expected an integer"),
    (["demo", "--pattern", "nope", "--quiet"], "unknown pattern 'nope'"),
    (["demo", "--text", "", "--quiet"], "text 1 is empty"),
    (["experiment", "--nproc", "0"], "argument --nproc: expected an integer >= 1"),
    (["experiment", "--nproc", "1.5"], "argument --nproc: expected an integer"),
]


@pytest.mark.parametrize("argv, message", WRONG_KIND_OPTIONS)
def test_an_option_of_the_wrong_kind_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    out = {"draw": ["-o", str(tmp_path / "x.png")], "demo": ["--out", str(tmp_path / "o")]}
    assert_refused([*argv, *out.get(argv[0], [])], capsys, message, tmp_path)
