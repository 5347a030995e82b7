"""The attribution benchmark's config on a tiny budget, for the tests that run it end to end."""

import dataclasses

from graphattn.experiments import attribution
from graphattn.experiments.config import TrainConfig

#: One pattern, one seed, three training steps: the whole pipeline in seconds.
TINY_CONFIG = dataclasses.replace(
    attribution.CONFIG,
    patterns=attribution.CONFIG.patterns[:1],
    seeds=(0,),
    train=TrainConfig(steps=3, batch_size=4, warmup=1, eval_every=3, eval_batches=1, log_every=1),
)
