"""Old module path ``graphattn.experiments.parallel``, kept as an alias.

Its names live in:

- :mod:`graphattn.experiments.common.parallel`

New code imports from there; the alias is listed in ``docs/changelog.md``.
"""

from graphattn.experiments.common.parallel import (
    barrier,
    is_main,
    launch,
    loss_value,
    rank_and_world,
    step_loss,
    sum_gradients,
)

__all__ = [
    "barrier",
    "is_main",
    "launch",
    "loss_value",
    "rank_and_world",
    "step_loss",
    "sum_gradients",
]
