"""Experiment runner: config validation, task generators, determinism, resume, end to end."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from graphattn import cli, patterns
from graphattn.experiments import (
    CharLMTask,
    CopyTask,
    ExperimentConfig,
    InductionTask,
    ModelConfig,
    PatternConfig,
    RecallTask,
    TrainConfig,
    config_from_dict,
    default_config,
    load_config,
    run_experiment,
)
from graphattn.experiments.tasks import IGNORE

ROOT = Path(__file__).resolve().parents[1]


def tiny_dict() -> dict:
    """A config that trains in well under a second per pattern."""
    return {
        "name": "tiny",
        "seeds": [0],
        "task": {"name": "recall", "seq_len": 12, "n_pairs": 2, "n_queries": 2, "distance": 4,
                 "n_keys": 4, "n_values": 4},
        "model": {"d_model": 16, "n_layers": 1, "n_heads": 2},
        "train": {"steps": 6, "batch_size": 4, "lr": 0.01, "warmup": 1, "eval_every": 3,
                  "eval_batches": 1, "eval_batch_size": 8, "log_every": 1, "checkpoint_every": 2},
        "patterns": [
            {"label": "causal", "pattern": "causal"},
            {"label": "window 2", "pattern": "sliding_window", "params": {"window": 2}},
        ],
    }


def tiny() -> ExperimentConfig:
    return config_from_dict(tiny_dict())


def numbers(results: dict) -> list:
    """Everything in the results that must be reproducible (not timings or memory)."""
    return [
        (r["label"], r["seed"], r["status"], r["steps_done"], r["curve"], r["evals"],
         r["val_loss"], r["val_acc"])
        for e in results["patterns"] for r in e["runs"]
    ]


# ------------------------------------------------------------------ config


def test_default_toml_equals_default_config():
    assert load_config(ROOT / "examples" / "experiment_default.toml") == default_config()


def test_config_round_trips_through_json(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(tiny().to_dict()))
    assert load_config(path) == tiny()


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda d: d["task"].update(name="sorting"), "task.name"),
        (lambda d: d["task"].update(seq_lenn=12), "task: unknown field 'seq_lenn'"),
        (lambda d: d["task"].update(distance=20), "task.distance"),
        (lambda d: d["task"].update(train_distance=5), "task.train_distance (5) must be <="),
        (lambda d: d["task"].update(train_distance=0), "task.train_distance must be >= 1"),
        (lambda d: d["task"].update(n_queries=3), "task.n_queries"),
        (lambda d: d["patterns"][1].update(pattern="zigzag"), "patterns[1] ('window 2')"),
        (lambda d: d["patterns"][1]["params"].update(window=13), "patterns[1] ('window 2')"),
        (lambda d: d["patterns"][1]["params"].update(size=3), "patterns[1] ('window 2')"),
        (lambda d: d["patterns"][0].update(file="g.json"), "patterns[0]: give exactly one"),
        (lambda d: d["patterns"][0].update(pattern=None, file="g.json", params={"window": 2}),
         "patterns[0]: params apply only"),
        (lambda d: d["patterns"][0].update(params={"window": 2}), "patterns[0] ('causal')"),
        (lambda d: d["patterns"].append({"label": "causal", "pattern": "full"}), "labels"),
        (lambda d: d.update(patterns=[]), "patterns: at least one"),
        (lambda d: d["train"].update(steps=0), "train.steps"),
        (lambda d: d["train"].update(warmup=6), "train.warmup"),
        (lambda d: d["train"].update(eval_every=7), "train.eval_every"),
        (lambda d: d["train"].update(lr=0), "train.lr"),
        (lambda d: d["train"].update(batch_size=2.5), "train.batch_size"),
        (lambda d: d["train"].update(device="tpu"), "train.device"),
        (lambda d: d["train"].update(stepz=3), "train: unknown field 'stepz'"),
        (lambda d: d["model"].update(n_heads=3), "model.n_heads"),
        (lambda d: d.update(seeds=[]), "seeds"),
        (lambda d: d.update(seeds=[1, 1]), "seeds"),
        (lambda d: d.update(budget=3), "top-level field 'budget'"),
    ],
)
def test_bad_config_fails_at_load_naming_the_field(edit, field):
    d = tiny_dict()
    edit(d)
    with pytest.raises(ValueError) as err:
        config_from_dict(d)
    assert field in str(err.value)


def test_bad_files_fail_at_load(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[task\nname = 1")
    with pytest.raises(ValueError, match="not valid toml"):
        load_config(bad)
    yaml = tmp_path / "c.yaml"
    yaml.write_text("x: 1")
    with pytest.raises(ValueError, match=r"\.toml or \.json"):
        load_config(yaml)


def test_pattern_from_saved_file_and_from_function(tmp_path):
    patterns.strided(12, 3).save(tmp_path / "g.json")
    d = tiny_dict()
    d["patterns"] = [
        {"label": "file", "file": "g.json"},  # relative to the config file
        {"label": "function", "function": "graphattn.patterns:full"},
    ]
    (tmp_path / "c.json").write_text(json.dumps(d))
    cfg = load_config(tmp_path / "c.json")
    g_file = cfg.patterns[0].build(12, "p")
    assert g_file == patterns.strided(12, 3)  # already causal
    # the bidirectional full pattern is made causal
    assert cfg.patterns[1].build(12, "p") == patterns.causal(12)
    d["patterns"] = [{"label": "bad", "function": "graphattn.patterns:no_such"}]
    bad = config_from_dict(d)  # a function is imported when the run starts, not at load
    with pytest.raises(ValueError, match=r"patterns\[0\] \('bad'\)"):
        run_experiment(bad, tmp_path / "out", progress=False)
    d["patterns"] = [{"label": "small", "file": str(tmp_path / "g.json")}]
    d["task"]["seq_len"] = 16
    with pytest.raises(ValueError, match="task.seq_len=16"):
        config_from_dict(d)


def test_every_pattern_is_made_causal():
    g = PatternConfig("bb", pattern="bigbird", params={"window": 2}).build(10, "p")
    assert bool((g.src <= g.dst).all())
    expected = patterns.bigbird(10, window=2) & patterns.causal(10)
    assert g.edge_index.tolist() == expected.edge_index.tolist()


# ------------------------------------------------------------------ tasks


def test_recall_generator_layout_and_answers():
    task = RecallTask(seq_len=32, n_pairs=4, n_queries=3, distance=16, n_keys=8, n_values=5)
    x, y = task.batch(64, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (64, 32) and x.dtype == torch.long
    assert 0 <= int(x.min()) and int(x.max()) < task.vocab_size
    q_id, a_id = 8 * 5, 8 * 5 + 8
    for b in range(64):
        pair_pos = (x[b] < q_id).nonzero()[:, 0]
        assert len(pair_pos) == 4
        pairs = {int(t) // 5: int(t) % 5 for t in x[b, pair_pos]}
        assert len(pairs) == 4  # distinct keys
        scored = (y[b] != IGNORE).nonzero()[:, 0].tolist()
        assert scored == [26, 28, 30]
        for i in scored:
            key = int(x[b, i]) - q_id
            assert y[b, i] == a_id + pairs[key] == x[b, i + 1]
            where = int(pair_pos[(x[b, pair_pos] // 5 == key)][0])
            assert i - where >= 16
    asked = {int(x[b, 26]) for b in range(64)}
    assert len(asked) > 1  # queries vary


def test_recall_distance_is_controllable():
    task = RecallTask(seq_len=40, n_pairs=2, n_queries=1, distance=37)
    x, _ = task.batch(16, torch.Generator().manual_seed(1))
    # the only layout that fits: pairs at 0 and 1, query at 38
    assert bool((x[:, :2] < task.n_keys * task.n_values).all())


def _pair_distances(task: RecallTask, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    src = task.sources(x, y)  # (B, N)
    i = torch.arange(x.shape[1]).expand_as(x)
    return (i - src)[src >= 0]


def test_recall_train_distance_mixes_near_pairs_into_training_only():
    task = RecallTask(seq_len=32, n_pairs=2, n_queries=2, distance=16, train_distance=1)
    gen = torch.Generator().manual_seed(0)
    train = _pair_distances(task, *task.batch(256, gen))
    val = _pair_distances(task, *task.val_batch(256, gen))
    assert int(val.min()) >= 16
    assert int(train.min()) < 16 and int(train.min()) >= 1
    assert int((train >= 16).sum()) > 0  # far pairs are still trained on
    # without train_distance, training is as far as validation
    far = RecallTask(seq_len=32, n_pairs=2, n_queries=2, distance=16)
    assert int(_pair_distances(far, *far.batch(256, gen)).min()) >= 16


def test_copy_generator():
    task = CopyTask(seq_len=11, n_symbols=3)
    x, y = task.batch(8, torch.Generator().manual_seed(0))
    assert x.shape == (8, 11)
    assert bool((x[:, 5] == 3).all())  # separator
    assert bool((y[:, 5:10] == x[:, :5]).all())
    assert bool((y[:, :5] == IGNORE).all()) and bool((y[:, 10] == IGNORE).all())


def test_induction_generator():
    task = InductionTask(seq_len=10, n_symbols=6)
    x, y = task.batch(8, torch.Generator().manual_seed(0))
    assert bool((x[:, :5] == x[:, 5:]).all())
    assert bool((y[:, 5:9] == x[:, 6:10]).all())
    assert bool((y[:, :5] == IGNORE).all()) and bool((y[:, 9] == IGNORE).all())


def test_char_lm_generator_reads_the_shipped_text():
    task = CharLMTask(seq_len=20)
    text = task.path.read_text(encoding="utf-8")
    assert "COMEDY OF ERRORS" in text and len(text) < 300_000
    x, y = task.batch(4, torch.Generator().manual_seed(0))
    assert bool((x[:, 1:] == y[:, :-1]).all())
    n_train = len(text) - int(len(text) * task.val_fraction)
    for row in x:
        assert task.decode(row) in text[:n_train]
    xv, _ = task.val_batch(4, torch.Generator().manual_seed(0))
    for row in xv:
        assert task.decode(row) in text[n_train:]
    with pytest.raises(ValueError, match="task.text"):
        CharLMTask(text="no-such-file.txt")


@pytest.mark.parametrize(
    "task",
    [CopyTask(), RecallTask(), InductionTask(), CharLMTask(seq_len=16)],
    ids=lambda t: type(t).__name__,
)
def test_task_batches_are_seeded(task):
    a = task.batch(3, torch.Generator().manual_seed(5))
    b = task.batch(3, torch.Generator().manual_seed(5))
    c = task.batch(3, torch.Generator().manual_seed(6))
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    assert int(a[0].max()) < task.vocab_size
    with pytest.raises(ValueError, match="batch_size"):
        task.batch(0, torch.Generator())


# ------------------------------------------------------------------ runs


def test_two_runs_give_the_same_numbers(tmp_path):
    a = run_experiment(tiny(), tmp_path / "a", progress=False)
    b = run_experiment(tiny(), tmp_path / "b", progress=False)
    assert a["status"] == b["status"] == "complete"
    assert numbers(a) == numbers(b)
    run = a["patterns"][0]["runs"][0]
    assert run["steps_done"] == 6 and len(run["curve"]) == 6 and len(run["evals"]) == 2
    assert run["tokens_per_s"] > 0 and run["peak_memory_mb"] > 0
    c = run_experiment(replace(tiny(), seeds=(1,)), tmp_path / "c", progress=False)
    assert numbers(c) != numbers(a)


class InterruptingRecall(RecallTask):
    """Sends the process a SIGINT (Ctrl-C) while drawing the batch of one step."""

    calls = 0

    def batch(self, batch_size, generator):
        if batch_size == 4:  # a training batch (validation batches have 8 sequences)
            InterruptingRecall.calls += 1
            if InterruptingRecall.calls == 3:  # Ctrl-C while step 3 is drawing its data
                os.kill(os.getpid(), signal.SIGINT)
        return super().batch(batch_size, generator)


def test_ctrl_c_leaves_a_partial_result_and_resume_matches(tmp_path):
    ref = run_experiment(tiny(), tmp_path / "ref", progress=False)
    InterruptingRecall.calls = 0
    cfg = replace(tiny(), task=InterruptingRecall(**_recall_fields()))
    out = tmp_path / "run"
    part = run_experiment(cfg, out, progress=False)
    assert part["status"] == "interrupted"
    saved = json.loads((out / "results.json").read_text())
    assert saved["status"] == "interrupted"
    first = saved["patterns"][0]["runs"][0]
    assert first["status"] == "interrupted" and first["steps_done"] == 3  # ends its step
    assert saved["patterns"][1]["runs"][0]["status"] == "pending"
    assert (out / "checkpoints" / "causal-seed0.safetensors").exists()
    assert "interrupted" in (out / "results.md").read_text()
    done = run_experiment(tiny(), out, progress=False)  # resumes from the checkpoint
    assert done["status"] == "complete"
    assert numbers(done) == numbers(ref)


def _recall_fields() -> dict:
    return {k: v for k, v in tiny_dict()["task"].items() if k != "name"}


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    run_experiment(tiny(), tmp_path, progress=False)
    other = replace(tiny(), train=replace(tiny().train, lr=0.02))
    with pytest.raises(ValueError, match="different config"):
        run_experiment(other, tmp_path, progress=False)
    fresh = run_experiment(other, tmp_path, resume=False, progress=False)
    assert fresh["status"] == "complete"


def test_cli_end_to_end(tmp_path, capsys):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(tiny_dict()))
    out = tmp_path / "out"
    assert cli.main(["experiment", str(cfg), "--out", str(out), "--no-progress"]) == 0
    for name in ("results.json", "results.md", "loss_curves.png", "accuracy.png"):
        assert (out / name).stat().st_size > 0
    table = (out / "results.md").read_text()
    assert "| causal | 1 |" in table and "| window 2 | 1 |" in table
    assert "| causal |" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tiny_dict() | {"task": {"name": "sorting"}}))
    assert cli.main(["experiment", str(bad), "--out", str(out)]) == 2
    assert "task.name" in capsys.readouterr().err


def test_model_config_and_layers_override():
    cfg = replace(tiny(), patterns=(PatternConfig("deep", pattern="causal", n_layers=3),))
    assert cfg.layers_of(cfg.patterns[0]) == 3
    assert ExperimentConfig(
        task=RecallTask(seq_len=12, n_pairs=2, n_queries=2, distance=4),
        patterns=(PatternConfig("c", pattern="causal"),),
        model=ModelConfig(d_model=8, n_layers=1, n_heads=2),
        train=TrainConfig(steps=2, warmup=0, eval_every=1, log_every=1),
    ).layers_of(PatternConfig("c", pattern="causal")) == 1


@pytest.mark.parametrize(
    "task, decode",
    [
        (CopyTask(seq_len=11, n_symbols=3), lambda t, s: s),
        (InductionTask(seq_len=10, n_symbols=6), lambda t, s: s),
        (RecallTask(seq_len=32, n_pairs=4, n_queries=3, distance=16, n_keys=8, n_values=5),
         lambda t, s: t.n_keys * t.n_values + t.n_keys + s % t.n_values),
    ],
    ids=["copy", "induction", "recall"],
)
def test_sources_point_at_the_token_each_target_needs(task, decode):
    x, y = task.batch(16, torch.Generator().manual_seed(3))
    src = task.sources(x, y)
    scored = y != IGNORE
    assert bool(((src >= 0) == scored).all())
    b, i = scored.nonzero(as_tuple=True)
    assert bool((src[b, i] < i).all())  # always an earlier position
    assert torch.equal(decode(task, x[b, src[b, i]]), y[b, i])


def test_direct_links_match_the_window_geometry(tmp_path):
    d = tiny_dict()
    d["patterns"].append({"label": "window 3, 3 layers", "pattern": "sliding_window",
                          "params": {"window": 3}, "n_layers": 3})
    d["train"].update(steps=1, warmup=0, eval_every=1, log_every=1, checkpoint_every=1)
    res = run_experiment(config_from_dict(d), tmp_path, progress=False)
    links = {e["label"]: (e["direct_links"], e["reachable_links"]) for e in res["patterns"]}
    # distances 4..10: window 3 links 2 back per layer, 6 back in three layers
    direct, reachable = links["window 3, 3 layers"]
    assert direct == 0.0 and 0.0 < reachable < 1.0
    assert links["causal"] == (1.0, 1.0)  # every earlier token is one hop away
    # queries sit >= 4 tokens after their pair; one layer of window 2 reaches 1 back
    assert links["window 2"] == (0.0, 0.0)


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("experiment_*.toml")),
                         ids=lambda p: p.name)
def test_example_configs_load(path):
    cfg = load_config(path)
    assert cfg.patterns and cfg.train.steps >= 1


def test_table_shows_every_seed_when_there_are_several():
    from graphattn.experiments.report import markdown_table

    run = {"val_loss": 1.0, "tokens_per_s": 5.0, "peak_memory_mb": 1.0, "status": "complete"}
    entry = {"label": "w", "n_layers": 2, "edges_per_token": 2.0, "density": 0.5,
             "layers_to_reach": None, "reach_fraction": 0.5,
             "runs": [run | {"val_acc": 1.0}, run | {"val_acc": 0.25}]}
    row = markdown_table({"patterns": [entry]}).splitlines()[2]
    assert "| 0.625 ± 0.530 (1.000 / 0.250) |" in row and "| never |" in row
    one = markdown_table({"patterns": [entry | {"runs": [run | {"val_acc": 0.25}]}]})
    assert "| 0.250 |" in one.splitlines()[2]


# ------------------------------------------------ experiments say what they ran

@pytest.mark.parametrize("lr", ["inf", "nan", "-inf"])
def test_non_finite_learning_rate_is_refused_at_load(tmp_path, lr):
    path = tmp_path / "c.toml"
    path.write_text(f'[task]\nname = "copy"\n[train]\nlr = {lr}\n'
                    '[[patterns]]\nlabel = "c"\npattern = "causal"\n')
    with pytest.raises(ValueError, match="train.lr must be a finite number"):
        load_config(path)


def test_nan_loss_stops_the_run_with_a_clear_error(tmp_path):
    d = tiny_dict()
    d["train"]["lr"] = 1e30  # finite, but the weights overflow within a few steps
    with pytest.raises(FloatingPointError, match="training loss became (nan|inf) at step"):
        run_experiment(config_from_dict(d), tmp_path, progress=False)


def test_results_json_is_strict_json(tmp_path):
    from graphattn.experiments.report import write_report

    res = {"name": "n", "status": "complete", "chance": float("nan"), "patterns": []}
    write_report(res, tmp_path, plots=False)
    text = (tmp_path / "results.json").read_text()
    assert "NaN" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c))["chance"] is None


DOC = ROOT / "docs" / "experiments.md"


def test_every_config_on_the_experiments_page_is_one_whose_results_it_shows():
    import re

    tomllib = pytest.importorskip("tomllib")
    shown = [default_config(), load_config(ROOT / "examples" / "experiment_four_pairs.toml")]
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        assert config_from_dict(tomllib.loads(block)) in shown


def test_every_task_field_default_is_documented():
    import dataclasses

    from graphattn.experiments import SEQ2SEQ_TASKS
    from graphattn.experiments.tasks import TASKS

    text = DOC.read_text()
    for cls in [*TASKS.values(), *SEQ2SEQ_TASKS.values()]:
        for f in dataclasses.fields(cls):
            if f.init:
                value = f'"{f.default}"' if isinstance(f.default, str) else f.default
                assert f"`{f.name} = {value}`" in text, (cls.__name__, f.name)


def test_function_is_imported_from_the_working_directory_only_when_the_run_starts(
    tmp_path, monkeypatch
):
    (tmp_path / "my_patterns_mod.py").write_text(
        "import pathlib\n"
        "pathlib.Path('imported.txt').write_text('yes')\n"
        "from graphattn import patterns\n"
        "def local(n):\n    return patterns.sliding_window(n, 2)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", ".")])
    d = tiny_dict()
    d["patterns"] = [{"label": "mine", "function": "my_patterns_mod:local"}]
    cfg = config_from_dict(d)
    assert not (tmp_path / "imported.txt").exists()  # loading ran no code
    res = run_experiment(cfg, tmp_path / "out", progress=False)
    assert (tmp_path / "imported.txt").exists() and res["status"] == "complete"
    assert str(tmp_path) not in __import__("sys").path


def test_plots_show_task_parameters_and_label_chance():
    import matplotlib

    matplotlib.use("Agg")
    from graphattn.experiments.report import plot_accuracy, plot_loss_curves

    res = {"name": "demo", "chance": 0.125, "config": default_config().to_dict(), "patterns": [
        {"label": "causal", "density": 0.5, "layers_to_reach": 1, "n_layers": 2,
         "runs": [{"val_acc": 1.0, "val_loss": 0.0, "status": "complete",
                   "curve": [[1, 2.0]]}]}]}
    left, right = plot_accuracy(res)
    title = left.figure._suptitle.get_text()
    assert "task recall: seq_len=32, n_pairs=1, n_queries=1, distance=16" in title
    for ax in (left, right):
        assert "chance (0.125)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert "n_keys=8" in plot_loss_curves(res).get_title()


def test_cli_reports_a_nan_loss_as_an_error(tmp_path, capsys):
    d = tiny_dict()
    d["train"]["lr"] = 1e30
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(d))
    assert cli.main(["experiment", str(cfg), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "training loss became" in capsys.readouterr().err


def test_load_model_reads_only_the_model_of_a_checkpoint(tmp_path):
    from graphattn.experiments.common.checkpoints import (
        load_checkpoint,
        load_model,
        save_checkpoint,
    )
    from graphattn.nn import GraphLM

    torch.manual_seed(0)
    model = GraphLM(12, 8, 1, 2, max_len=6)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randint(12, (2, 6))).logits.sum().backward()
    opt.step()  # the checkpoint holds optimizer state too
    path = tmp_path / "run.safetensors"
    save_checkpoint(path, model, opt, {"steps_done": 1}, "fp")
    torch.manual_seed(1)
    fresh = GraphLM(12, 8, 1, 2, max_len=6)
    assert not torch.equal(fresh.lm_head.weight, model.lm_head.weight)
    assert load_model(path, fresh) is fresh
    want, got = model.state_dict(), fresh.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    again = GraphLM(12, 8, 1, 2, max_len=6)  # the same tensors as load_checkpoint loads
    load_checkpoint(path, again, torch.optim.AdamW(again.parameters()), "fp")
    assert all(torch.equal(again.state_dict()[k], got[k]) for k in got)
