"""Old module path ``graphattn.experiments.runner``, kept as an alias.

Its names live in:

- :mod:`graphattn.experiments.lm.runner`

New code imports from there; the alias is listed in ``docs/changelog.md``.
"""

from graphattn.experiments.lm.runner import RunResult, run_experiment, train_run

__all__ = [
    "RunResult",
    "run_experiment",
    "train_run",
]
