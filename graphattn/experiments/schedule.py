"""Old path ``graphattn.experiments.schedule``: an alias.

Its names are in ``common.schedule`` now (see the changelog).
"""

from graphattn.experiments.common import schedule as _new
from graphattn.experiments.common.schedule import *  # noqa: F403 - the alias re-exports every public name

__all__ = _new.__all__
