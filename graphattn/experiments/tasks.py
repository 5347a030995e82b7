"""Old path ``graphattn.experiments.tasks``: an alias of ``lm.tasks`` (see the changelog)."""

from graphattn.experiments.lm import tasks as _new
from graphattn.experiments.lm.tasks import *  # noqa: F403 - the alias re-exports every public name

__all__ = _new.__all__
