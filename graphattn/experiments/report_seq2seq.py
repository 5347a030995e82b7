"""Old module path ``graphattn.experiments.report_seq2seq``, kept as an alias.

Its names live in:

- :mod:`graphattn.experiments.seq2seq.report`

New code imports from there; the alias is listed in ``docs/changelog.md``.
"""

from graphattn.experiments.seq2seq.report import (
    plot_alignments,
    run_seq2seq_experiment,
    seq2seq_table,
    write_seq2seq_report,
)

__all__ = [
    "plot_alignments",
    "run_seq2seq_experiment",
    "seq2seq_table",
    "write_seq2seq_report",
]
