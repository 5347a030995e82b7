"""Old path ``graphattn.experiments.config``, an alias.

Its names are in ``common.config, lm.config, lm.loading`` now (see ``docs/changelog.md``).
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
