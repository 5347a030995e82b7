"""Seq2seq studies: train :class:`~graphattn.nn.GraphSeq2Seq` under different graphs.

The same small encoder-decoder is trained on a synthetic translation task
under several cross graphs (and encoder and decoder self graphs), with the
same seeds, data and budget, and scored on exact match, token accuracy and
how well its cross-attention aligns with the known word alignment. Modules:

- :mod:`~graphattn.experiments.seq2seq.tasks`: the language pairs
  (:class:`ReorderTask`, :class:`MonotonicTask`);
- :mod:`~graphattn.experiments.seq2seq.config`: the variants compared and the
  experiment (:class:`Seq2SeqExperiment`, :func:`cross_attention_experiments`);
- :mod:`~graphattn.experiments.seq2seq.training`: one run
  (:func:`new_model`, :func:`train_seq2seq`) and its measures;
- :mod:`~graphattn.experiments.seq2seq.report`: every run of an experiment,
  its table and plot (:func:`run_seq2seq_experiment`).

``diagonal_window``, ``random_cross`` and ``no_cross`` are in
:mod:`graphattn.patterns` now; this package still exports them under their
old path ``graphattn.experiments.seq2seq``.
"""

from graphattn.experiments.seq2seq.config import (
    CROSS_KINDS,
    Seq2SeqExperiment,
    Seq2SeqModel,
    Seq2SeqVariant,
    cross_attention_experiments,
)
from graphattn.experiments.seq2seq.report import run_seq2seq_experiment, seq2seq_table
from graphattn.experiments.seq2seq.tasks import SEQ2SEQ_TASKS, MonotonicTask, ReorderTask
from graphattn.experiments.seq2seq.training import VAL_SEED, new_model, train_seq2seq
from graphattn.patterns.cross_ import diagonal_window, no_cross, random_cross

__all__ = [
    "CROSS_KINDS",
    "SEQ2SEQ_TASKS",
    "VAL_SEED",
    "MonotonicTask",
    "ReorderTask",
    "Seq2SeqExperiment",
    "Seq2SeqModel",
    "Seq2SeqVariant",
    "cross_attention_experiments",
    "diagonal_window",
    "new_model",
    "no_cross",
    "random_cross",
    "run_seq2seq_experiment",
    "seq2seq_table",
    "train_seq2seq",
]
