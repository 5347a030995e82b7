"""``graphattn attribution``, the attribution benchmark: its arguments and a tiny run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from attribution_tiny import TINY_CONFIG

from graphattn.commands import attribution as benchmark
from graphattn.experiments import attribution_minilm

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["the river bank", "the bank by the river", "a bank"]


def corpus(count):
    return TEXTS[:count]


# --- arguments -------------------------------------------------------------------------------


def test_defaults():
    args = benchmark.parse_args([], corpus=lambda n: ["a"] * n)
    assert str(args.out_dir) == "benchmarks/results/attribution"
    assert args.only is None and len(args.texts) == 200


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sentences", "0"], "must be at least 1, got 0"),
        (["--sentences", "two"], "expected a whole number, got 'two'"),
        (["--sentences", "4"], "--sentences 4: only 3 sentences are available"),
        (["--only", "both"], "invalid choice: 'both'"),
        (["--only", "ground-truth", "--sentences", "2"], "which --only ground-truth skips"),
        (["--only", "translation", "--sentences", "2"], "which --only translation skips"),
        (["a", "b"], "unrecognized arguments: a b"),
    ],
)
def test_bad_arguments_stop_before_any_work(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        benchmark.main([str(out), *argv], corpus=corpus, log=pytest.fail)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_out_dir_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    with pytest.raises(SystemExit):
        benchmark.parse_args([str(tmp_path / "f")], corpus)
    assert "exists and is not a folder" in capsys.readouterr().err


def test_help(capsys):
    with pytest.raises(SystemExit) as stop:
        benchmark.main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "graphattn attribution" in text
    assert "--sentences N" in text and "{ground-truth,translation,minilm}" in text


def test_help_of_the_command_line():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "graphattn.cli", "attribution", "--help"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "OUT_DIR" in done.stdout and "--only" in done.stdout


# --- end to end, on a tiny budget --------------------------------------------------------------


def test_one_command_writes_every_table_and_the_summary(tmp_path):
    from graphattn.pretrained import tiny_bert

    lines = []
    done = benchmark.main([str(tmp_path), "--sentences", "2"], log=lines.append, config=TINY_CONFIG,
                          n_seqs=4, lengths=(16,), minilm=tiny_bert(), corpus=corpus,
                          n_translation=2)
    names = {p.name for p in tmp_path.iterdir() if not p.name.endswith(".safetensors")}
    assert names == {f"{stem}.{ext}" for stem in ("attribution", "translation", "minilm_spearman",
                                                  "minilm_aopc", "summary")
                     for ext in ("md", "json")}  # no temporary file left behind
    assert json.loads((tmp_path / "minilm_spearman.json").read_text())["sentences"] == 2
    assert "| 2 |" in (tmp_path / "minilm_spearman.md").read_text()
    summary = (tmp_path / "summary.md").read_text()
    assert lines[-1] == summary
    # three training steps learn nothing: that model is left out, named with its accuracy
    val_acc = done["ground_truth"]["ground_truth"]["full causal (seed 0)"]["val_acc"]
    assert f"full causal (seed 0) ({val_acc:.2f})" in summary
    for criterion in ("spearman", "aopc_comprehensiveness", "aopc_sufficiency"):
        winners = done["summary"]["minilm"][criterion]["single_pass"]["methods"]
        assert winners and set(winners) <= set(attribution_minilm.METHODS)
        assert f"{', '.join(winners)}" in summary
    translation = json.loads((tmp_path / "translation.json").read_text())["translation"]
    assert set(translation) == {"reorder-full", "reorder-window2"}  # the shipped models
    assert all(r["sentences"] == 2 for r in translation.values())
    assert "## Ground truth through cross-attention" in summary
    # the AttnLRP and route rows in every table they belong to (no route through cross layers)
    headers = {name: (tmp_path / f"{name}.md").read_text().splitlines()[0]
               for name in ("attribution", "translation", "minilm_spearman")}
    assert all("| attnlrp |" in h for h in headers.values())
    assert "| routes |" in headers["attribution"] and "| routes |" in headers["minilm_spearman"]
    assert "routes" not in headers["translation"]
    assert {"attnlrp", "routes"} <= set(json.loads(
        (tmp_path / "minilm_aopc.json").read_text())["methods"])
    # one part again: the summary still reads the other part's tables from the folder
    again = benchmark.main([str(tmp_path), "--only", "minilm", "--sentences", "1"],
                           log=lines.append, minilm=tiny_bert(), corpus=corpus)
    assert "ground_truth" not in again
    assert set(again["summary"]) == {"ground_truth", "translation", "minilm"}
    assert again["summary"]["minilm"]["sentences"] == 1


# --- through the graphattn command -----------------------------------------------------------


def test_graphattn_attribution_is_a_subcommand_that_refuses_before_any_work(tmp_path, capsys):
    from graphattn.cli import main

    (tmp_path / "f").write_text("x")
    assert main(["attribution", str(tmp_path / "f"), "--only", "minilm"]) == 2
    err = capsys.readouterr().err
    assert "graphattn attribution: error: OUT_DIR" in err and "is not a folder" in err
    assert main(["attribution", str(tmp_path / "out"), "--only", "translation",
                 "--sentences", "2"]) == 2
    assert "which --only translation skips" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_old_flow_command_is_gone():
    import importlib.util

    assert importlib.util.find_spec("graphattn.flow.benchmark") is None
