"""Old path ``graphattn.experiments.attribution_minilm``: an alias.

Its names are in ``attribution.minilm`` now (see the changelog).
"""

from graphattn.experiments.attribution import minilm as _new
from graphattn.experiments.attribution.minilm import *  # noqa: F403 - the alias re-exports every public name

__all__ = _new.__all__
