"""What the studies share: the task protocol, the budget, the schedule, checkpoints, files.

- :mod:`~graphattn.experiments.common.task`: the :class:`Task` protocol a
  language-model task implements, and ``IGNORE`` (unscored targets);
- :mod:`~graphattn.experiments.common.config`: :class:`TrainConfig`, the
  training budget;
- :mod:`~graphattn.experiments.common.schedule`: learning rate and the
  per-step batch generator;
- :mod:`~graphattn.experiments.common.checkpoints`: a run's model,
  optimizer state and record in one safetensors file;
- :mod:`~graphattn.experiments.common.parallel`: data-parallel training
  over processes;
- :mod:`~graphattn.experiments.common.files`: text written whole or not at
  all, JSON without NaN.

Nothing here knows a particular study; the studies import from here, never
the other way round.
"""

from graphattn.experiments.common.config import TrainConfig
from graphattn.experiments.common.task import IGNORE, Task

__all__ = ["IGNORE", "Task", "TrainConfig"]
