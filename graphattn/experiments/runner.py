"""Old path ``graphattn.experiments.runner``: an alias of ``lm.runner`` (see the changelog)."""

from graphattn.experiments.lm import runner as _new
from graphattn.experiments.lm.runner import *  # noqa: F403 - the alias re-exports every public name

__all__ = _new.__all__
