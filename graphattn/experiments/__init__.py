"""Experiments: train the same small model under different token-graph patterns.

One config (TOML, JSON or dataclasses) names a task, a model size, a budget,
seeds and the patterns to compare; :func:`run_experiment` trains each pattern
with the same seeds and budget and writes a JSON file, a Markdown table and
plots. The command line is ``graphattn experiment``.
"""

from graphattn.experiments.config import (
    ExperimentConfig,
    ModelConfig,
    PatternConfig,
    TrainConfig,
    config_from_dict,
    default_config,
    load_config,
)
from graphattn.experiments.report import markdown_table, write_report
from graphattn.experiments.runner import RunResult, run_experiment, train_run
from graphattn.experiments.tasks import TASKS, CharLMTask, CopyTask, InductionTask, RecallTask

__all__ = [
    "TASKS",
    "CharLMTask",
    "CopyTask",
    "ExperimentConfig",
    "InductionTask",
    "ModelConfig",
    "PatternConfig",
    "RecallTask",
    "RunResult",
    "TrainConfig",
    "config_from_dict",
    "default_config",
    "load_config",
    "markdown_table",
    "run_experiment",
    "train_run",
    "write_report",
]
