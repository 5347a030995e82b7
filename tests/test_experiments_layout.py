"""The experiments package by concept: its subpackages, the Task protocol, the old paths."""

import ast
import importlib
from pathlib import Path

import pytest
import torch

from graphattn.experiments import TASKS, Task
from graphattn.experiments.lm.tasks import CharLMTask, CopyTask, InductionTask, RecallTask

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "graphattn" / "experiments"

#: old module path -> the module(s) its names live in now
OLD_PATHS = {
    "config": ["common.config", "lm.config", "lm.loading"],
    "tasks": ["common.task", "lm.tasks"],
    "runner": ["lm.runner"],
    "report": ["common.files", "lm.report"],
    "schedule": ["common.schedule"],
    "parallel": ["common.parallel"],
    "tasks_seq2seq": ["seq2seq.tasks"],
    "report_seq2seq": ["seq2seq.report"],
    "seq2seq": ["seq2seq.config", "seq2seq.report", "seq2seq.tasks", "seq2seq.training"],
    "attribution": ["attribution.ground_truth"],
    "attribution_cross": ["attribution.cross"],
    "attribution_lrp": ["attribution.lrp"],
    "attribution_minilm": ["attribution.minilm"],
    "attribution_summary": ["attribution.summary"],
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_every_old_module_path_still_gives_the_same_objects(old):
    alias = importlib.import_module(f"graphattn.experiments.{old}")
    homes = [importlib.import_module(f"graphattn.experiments.{m}") for m in OLD_PATHS[old]]
    assert alias.__all__
    for name in alias.__all__:
        obj = getattr(alias, name)
        owners = [h for h in homes if getattr(h, name, None) is obj]
        if old == "seq2seq" and name in ("diagonal_window", "no_cross", "random_cross"):
            assert obj is getattr(importlib.import_module("graphattn.patterns"), name)
            continue
        assert owners, f"graphattn.experiments.{old}.{name} is in none of {OLD_PATHS[old]}"


def test_the_old_paths_keep_the_names_they_had():
    from graphattn.experiments import attribution, attribution_minilm, config, seq2seq, tasks

    assert {"CONFIG", "DEFAULT_OUT", "METHODS", "main", "run", "score_model"} <= set(
        attribution.__all__)
    assert {"evaluate", "run", "sentences", "METHODS"} <= set(attribution_minilm.__all__)
    assert {"ExperimentConfig", "TrainConfig", "config_from_dict", "load_config",
            "default_config"} <= set(config.__all__)
    assert {"Seq2SeqVariant", "new_model", "diagonal_window", "train_seq2seq"} <= set(
        seq2seq.__all__)
    assert {"IGNORE", "RecallTask", "TASKS"} <= set(tasks.__all__)


def _imported_experiments_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[:2] == ["graphattn", "experiments"] and len(parts) > 2:
                found.add(parts[2])
    return found


# what each subpackage may import of its siblings (itself always)
ALLOWED = {
    "common": set(),
    "lm": {"common"},
    "seq2seq": {"common"},
    "attribution": {"common", "lm", "seq2seq"},
}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_subpackage_reads_on_its_own(package):
    for path in sorted((PACKAGE / package).rglob("*.py")):
        imported = _imported_experiments_packages(path) - {package}
        assert imported <= ALLOWED[package], f"{path.relative_to(ROOT)} imports {imported}"


def test_every_task_is_a_task_and_nothing_asks_a_task_what_it_has():
    for cls in TASKS.values():
        assert isinstance(cls(), Task), cls.__name__
    assert not isinstance(object(), Task)
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
                "hasattr", "getattr"
            ):
                target = ast.unparse(node.args[0])
                assert "task" not in target, f"{path.relative_to(ROOT)}: {ast.unparse(node)}"


def test_the_protocols_members_on_every_task():
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    for task in (CopyTask(seq_len=8), InductionTask(seq_len=8)):
        assert task.chance is None
        x, y = task.val_batch(2, gen())
        x2, y2 = task.batch(2, gen())
        assert torch.equal(x, x2) and torch.equal(y, y2)  # no held-out data: drawn alike
        assert task.sources(x, y).shape == x.shape
    assert RecallTask(n_values=8).chance == 1 / 8
    char = CharLMTask(seq_len=8)
    x, y = char.val_batch(2, gen())
    assert char.chance is None and char.sources(x, y) is None


def test_nothing_in_the_package_imports_an_old_path():
    old = {f"graphattn.experiments.{name}" for name in OLD_PATHS} - {
        "graphattn.experiments.seq2seq", "graphattn.experiments.attribution"}  # packages now
    for path in sorted((ROOT / "graphattn").rglob("*.py")):
        if path.parent == PACKAGE and path.stem in OLD_PATHS:
            continue  # the aliases themselves
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                names = {a.name for a in node.names}
            else:
                continue
            assert not names & old, f"{path.relative_to(ROOT)} imports {names & old}"
