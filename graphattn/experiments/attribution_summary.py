"""Old path ``graphattn.experiments.attribution_summary``: an alias.

Its names are in ``attribution.summary`` now (see the changelog).
"""

from graphattn.experiments.attribution import summary as _new
from graphattn.experiments.attribution.summary import *  # noqa: F403 - the alias re-exports every public name

__all__ = _new.__all__
