"""What the trainer asks of a task: the :class:`Task` protocol.

A task makes batches of token ids for a decoder-only language model. The
runner (:mod:`graphattn.experiments.lm.runner`) and the attribution benchmark
(:mod:`graphattn.experiments.attribution.ground_truth`) read a task only
through these members, so a new task is a dataclass that has them (see "A new
task" in ``docs/architecture.md``); nothing asks whether a task has a member.

Examples
--------
>>> from graphattn.experiments.lm.tasks import CopyTask, RecallTask
>>> isinstance(CopyTask(seq_len=8), Task), isinstance(RecallTask(), Task)
(True, True)
>>> CopyTask(seq_len=8).chance is None, RecallTask(n_values=8).chance
(True, 0.125)
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["IGNORE", "Task"]

IGNORE = -100  # target value of unscored positions (torch cross_entropy's ignore_index)


@runtime_checkable
class Task(Protocol):
    """A language-model task: training and validation batches, and what each answer reads.

    Attributes
    ----------
    seq_len : int
        Tokens per sequence ``N``.
    vocab_size : int
        Token ids are ``0 .. vocab_size - 1``.
    chance : float or None
        Validation accuracy of guessing (drawn in the report's plots), or
        None where no simple guess rate exists.
    """

    seq_len: int

    @property
    def vocab_size(self) -> int: ...

    @property
    def chance(self) -> float | None: ...

    def batch(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training inputs and targets, each ``(B, N)``; unscored targets are :data:`IGNORE`."""
        ...

    def val_batch(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validation inputs and targets, like :meth:`batch` (the same draw where none differs)."""
        ...

    def sources(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
        """``(B, N)``: the input position each scored target needs (``-1`` where unscored).

        None for a task whose answers depend on no single position (``char_lm``).
        """
        ...
