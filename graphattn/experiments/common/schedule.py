"""The training schedule shared by every trainer of :mod:`graphattn.experiments`.

A learning rate with linear warm-up and cosine decay, and one random
generator per step, so that a resumed or re-run training draws exactly the
batches an uninterrupted one draws.

Examples
--------
>>> from graphattn.experiments.common.config import TrainConfig
>>> t = TrainConfig(steps=10, lr=1e-3, warmup=2, eval_every=5)
>>> [round(learning_rate(s, t), 6) for s in (0, 1, 2, 10)]
[0.0005, 0.001, 0.001, 0.0]
>>> torch.equal(torch.rand(2, generator=step_generator(0, 5)),
...             torch.rand(2, generator=step_generator(0, 5)))
True
"""

from __future__ import annotations

import math

import torch

__all__ = ["learning_rate", "step_generator"]


def learning_rate(step: int, train) -> float:
    """Linear warm-up to ``train.lr``, then cosine decay to 0 at ``train.steps``.

    ``train`` is any config with ``lr``, ``warmup`` and ``steps`` (a
    :class:`~graphattn.experiments.common.config.TrainConfig`).
    """
    if step < train.warmup:
        return train.lr * (step + 1) / train.warmup
    progress = (step - train.warmup) / max(1, train.steps - train.warmup)
    return train.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator that draws the batch of ``step`` in the run of ``seed``."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % (2**63))
