"""Old path ``graphattn.experiments.report_seq2seq``: an alias.

Its names are in ``seq2seq.report`` now (see the changelog).
"""

from graphattn.experiments.seq2seq import report as _new
from graphattn.experiments.seq2seq.report import *  # noqa: F403 - the alias re-exports every public name

__all__ = _new.__all__
