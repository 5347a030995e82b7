"""Old path ``graphattn.experiments.parallel``: an alias.

Its names are in ``common.parallel`` now (see the changelog).
"""

from graphattn.experiments.common import parallel as _new
from graphattn.experiments.common.parallel import *  # noqa: F403 - the alias re-exports every public name

__all__ = _new.__all__
