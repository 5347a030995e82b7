"""Language-model pattern studies: train the same small ``GraphLM`` under different patterns.

One config (TOML, JSON or dataclasses) names a task, a model size, a budget,
seeds and the patterns to compare; :func:`run_experiment` trains each pattern
with the same seeds and budget and writes a JSON file, a Markdown table and
plots. Modules:

- :mod:`~graphattn.experiments.lm.tasks`: the tasks (copy, associative
  recall, induction, character LM), each a
  :class:`~graphattn.experiments.common.task.Task`;
- :mod:`~graphattn.experiments.lm.config`: the experiment config and its
  patterns; :mod:`~graphattn.experiments.lm.loading` reads it from TOML/JSON;
- :mod:`~graphattn.experiments.lm.runner`: training every run, resumably;
- :mod:`~graphattn.experiments.lm.report`: ``results.json``,
  ``results.md`` and the plots.
"""

from graphattn.experiments.lm.config import (
    ExperimentConfig,
    ModelConfig,
    PatternConfig,
    default_config,
)
from graphattn.experiments.lm.loading import config_from_dict, load_config
from graphattn.experiments.lm.report import markdown_table, write_report
from graphattn.experiments.lm.runner import RunResult, run_experiment, train_run
from graphattn.experiments.lm.tasks import TASKS, CharLMTask, CopyTask, InductionTask, RecallTask

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
    "config_from_dict",
    "default_config",
    "load_config",
    "markdown_table",
    "run_experiment",
    "train_run",
    "write_report",
]
