"""Old module path ``graphattn.experiments.tasks_seq2seq``, kept as an alias.

Its names live in:

- :mod:`graphattn.experiments.seq2seq.tasks`

New code imports from there; the alias is listed in ``docs/changelog.md``.
"""

from graphattn.experiments.seq2seq.tasks import (
    BOS,
    EOS,
    PAD,
    SEQ2SEQ_TASKS,
    MonotonicTask,
    ReorderTask,
    Seq2SeqBatch,
)

__all__ = [
    "BOS",
    "EOS",
    "MonotonicTask",
    "PAD",
    "ReorderTask",
    "SEQ2SEQ_TASKS",
    "Seq2SeqBatch",
]
