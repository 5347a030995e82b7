"""The training budget every study shares: :class:`TrainConfig`.

Steps, batch sizes, the learning-rate schedule's peak and warm-up
(:mod:`graphattn.experiments.common.schedule`), evaluation and checkpoint
intervals, device and threads; checked when it is built, each message naming
its field (``train.steps``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from graphattn._validate import check_int, check_number

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """Training budget, the same for every pattern and seed.

    Examples
    --------
    >>> TrainConfig(steps=10, warmup=2, eval_every=5).checkpoint_every
    5
    """

    steps: int = 600  # optimizer steps per run
    batch_size: int = 16  # sequences per step
    lr: float = 3e-3  # peak learning rate (AdamW)
    warmup: int = 30  # linear warm-up steps, then cosine decay to 0
    weight_decay: float = 0.0  # AdamW weight decay
    eval_every: int = 100  # steps between validation evaluations
    eval_batches: int = 4  # validation batches per evaluation
    eval_batch_size: int = 64  # sequences per validation batch
    log_every: int = 10  # steps between recorded training-loss points
    checkpoint_every: int | None = None  # steps between checkpoints; None = eval_every
    device: str = "cpu"  # torch device of the runs
    threads: int | None = 1  # torch CPU threads during a run (restored after); None = unchanged

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "eval_every", "eval_batches", "eval_batch_size"):
            check_int(getattr(self, name), f"train.{name}", low=1)
        check_int(self.log_every, "train.log_every", low=1)
        check_number(self.lr, "train.lr", low=0.0, low_open=True)
        check_number(self.weight_decay, "train.weight_decay", low=0.0)
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"train.warmup must be an int >= 0, got {self.warmup!r}")
        if self.warmup >= self.steps:
            raise ValueError(
                f"train.warmup ({self.warmup}) must be < train.steps ({self.steps}): "
                "the run would never reach the peak learning rate"
            )
        if self.eval_every > self.steps:
            raise ValueError(
                f"train.eval_every ({self.eval_every}) must be <= train.steps ({self.steps})"
            )
        if self.log_every > self.steps:
            raise ValueError(
                f"train.log_every ({self.log_every}) must be <= train.steps ({self.steps})"
            )
        if self.checkpoint_every is None:
            object.__setattr__(self, "checkpoint_every", self.eval_every)
        check_int(self.checkpoint_every, "train.checkpoint_every", low=1)
        if not isinstance(self.device, str) or self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"train.device must be 'cpu' or 'cuda[:k]', got {self.device!r}")
        if self.threads is not None:
            check_int(self.threads, "train.threads", low=1)
