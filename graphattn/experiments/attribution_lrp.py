"""Old path ``graphattn.experiments.attribution_lrp``: an alias.

Its names are in ``attribution.lrp`` now (see the changelog).
"""

from graphattn.experiments.attribution import lrp as _new
from graphattn.experiments.attribution.lrp import *  # noqa: F403 - the alias re-exports every public name

__all__ = _new.__all__
