"""Experiments: train the same small model under different token-graph patterns.

One config (TOML, JSON or dataclasses) names a task, a model size, a budget,
seeds and the patterns to compare; :func:`run_experiment` trains each pattern
with the same seeds and budget and writes a JSON file, a Markdown table and
plots. The command line is ``graphattn experiment``. Encoder-decoder (translation)
experiments, comparing cross graphs, are :class:`Seq2SeqExperiment` and
:func:`run_seq2seq_experiment`.
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
from graphattn.experiments.report_seq2seq import run_seq2seq_experiment
from graphattn.experiments.runner import RunResult, run_experiment, train_run
from graphattn.experiments.seq2seq import (
    Seq2SeqExperiment,
    Seq2SeqModel,
    Seq2SeqVariant,
    cross_attention_experiments,
    train_seq2seq,
)
from graphattn.experiments.tasks import TASKS, CharLMTask, CopyTask, InductionTask, RecallTask
from graphattn.experiments.tasks_seq2seq import SEQ2SEQ_TASKS, MonotonicTask, ReorderTask

__all__ = [
    "TASKS",
    "CharLMTask",
    "CopyTask",
    "ExperimentConfig",
    "InductionTask",
    "ModelConfig",
    "MonotonicTask",
    "PatternConfig",
    "RecallTask",
    "ReorderTask",
    "RunResult",
    "SEQ2SEQ_TASKS",
    "Seq2SeqExperiment",
    "Seq2SeqModel",
    "Seq2SeqVariant",
    "TrainConfig",
    "config_from_dict",
    "cross_attention_experiments",
    "default_config",
    "load_config",
    "markdown_table",
    "run_experiment",
    "run_seq2seq_experiment",
    "train_run",
    "train_seq2seq",
    "write_report",
]
