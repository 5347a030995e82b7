"""Old path ``graphattn.experiments.tasks_seq2seq``: an alias.

Its names are in ``seq2seq.tasks`` now (see the changelog).
"""

from graphattn.experiments.seq2seq import tasks as _new
from graphattn.experiments.seq2seq.tasks import *  # noqa: F403 - the alias re-exports every public name

__all__ = _new.__all__
