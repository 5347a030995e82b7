"""Old module path ``graphattn.experiments.tasks``, kept as an alias.

Its names live in:

- :mod:`graphattn.experiments.common.task`
- :mod:`graphattn.experiments.lm.tasks`

New code imports from there; the alias is listed in ``docs/changelog.md``.
"""

from graphattn.experiments.common.task import IGNORE
from graphattn.experiments.lm.tasks import (
    DEFAULT_TEXT,
    TASKS,
    CharLMTask,
    CopyTask,
    InductionTask,
    RecallTask,
)

__all__ = [
    "CharLMTask",
    "CopyTask",
    "DEFAULT_TEXT",
    "IGNORE",
    "InductionTask",
    "RecallTask",
    "TASKS",
]
