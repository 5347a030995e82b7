"""Old path ``graphattn.experiments.attribution_cross``: an alias.

Its names are in ``attribution.cross`` now (see the changelog).
"""

from graphattn.experiments.attribution import cross as _new
from graphattn.experiments.attribution.cross import *  # noqa: F403 - the alias re-exports every public name

__all__ = _new.__all__
