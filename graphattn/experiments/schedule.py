"""Old module path ``graphattn.experiments.schedule``, kept as an alias.

Its names live in:

- :mod:`graphattn.experiments.common.schedule`

New code imports from there; the alias is listed in ``docs/changelog.md``.
"""

from graphattn.experiments.common.schedule import learning_rate, step_generator

__all__ = [
    "learning_rate",
    "step_generator",
]
