"""Old module path ``graphattn.experiments.attribution_cross``, kept as an alias.

Its names live in:

- :mod:`graphattn.experiments.attribution.cross`

New code imports from there; the alias is listed in ``docs/changelog.md``.
"""

from graphattn.experiments.attribution.cross import (
    CROSS_METHODS,
    run,
    score_translation,
    translation_markdown,
)

__all__ = [
    "CROSS_METHODS",
    "run",
    "score_translation",
    "translation_markdown",
]
