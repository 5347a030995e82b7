"""Old module path ``graphattn.experiments.config``, kept as an alias.

Its names live in:

- :mod:`graphattn.experiments.common.config`
- :mod:`graphattn.experiments.lm.config`
- :mod:`graphattn.experiments.lm.loading`

New code imports from there; the alias is listed in ``docs/changelog.md``.
"""

from graphattn.experiments.common.config import TrainConfig
from graphattn.experiments.lm.config import (
    MAX_BATCH_BYTES,
    ExperimentConfig,
    ModelConfig,
    PatternConfig,
    default_config,
)
from graphattn.experiments.lm.loading import config_from_dict, load_config

__all__ = [
    "MAX_BATCH_BYTES",
    "ExperimentConfig",
    "ModelConfig",
    "PatternConfig",
    "TrainConfig",
    "config_from_dict",
    "default_config",
    "load_config",
]
