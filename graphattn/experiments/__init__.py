"""Experiments: train small models under different token-graph patterns and compare them.

One subpackage per concept, each readable on its own:

- :mod:`~graphattn.experiments.lm`: language-model pattern studies. One
  config (TOML, JSON or dataclasses) names a task, a model size, a budget,
  seeds and the patterns to compare; :func:`run_experiment` trains each
  pattern with the same seeds and budget and writes a JSON file, a Markdown
  table and plots. The command line is ``graphattn experiment``.
- :mod:`~graphattn.experiments.seq2seq`: seq2seq studies, comparing cross
  graphs on a translation task (:class:`Seq2SeqExperiment`,
  :func:`run_seq2seq_experiment`; ``graphattn experiment --cross-attention``).
- :mod:`~graphattn.experiments.attribution`: the attribution benchmarks
  (``graphattn attribution``).
- :mod:`~graphattn.experiments.common`: what they share: the :class:`Task`
  protocol, the training budget, schedule, checkpoints, data-parallel
  training and file writing.

The other modules of this folder (``config``, ``tasks``, ``runner``,
``report``, ``schedule``, ``parallel``, ``tasks_seq2seq``,
``report_seq2seq``, ``attribution_*``) are the old module paths, kept as
aliases of their new homes.
"""

from graphattn.experiments.common import Task, TrainConfig
from graphattn.experiments.lm import (
    TASKS,
    CharLMTask,
    CopyTask,
    ExperimentConfig,
    InductionTask,
    ModelConfig,
    PatternConfig,
    RecallTask,
    RunResult,
    config_from_dict,
    default_config,
    load_config,
    markdown_table,
    run_experiment,
    train_run,
    write_report,
)
from graphattn.experiments.seq2seq import (
    SEQ2SEQ_TASKS,
    MonotonicTask,
    ReorderTask,
    Seq2SeqExperiment,
    Seq2SeqModel,
    Seq2SeqVariant,
    cross_attention_experiments,
    run_seq2seq_experiment,
    train_seq2seq,
)

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
    "Task",
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
