"""What a seq2seq study compares: variants (cross and self graphs), model size, experiment.

One :class:`Seq2SeqExperiment` names a translation task
(:mod:`graphattn.experiments.seq2seq.tasks`), a model size
(:class:`Seq2SeqModel`), a budget (:class:`~graphattn.experiments.common.config.TrainConfig`),
seeds and the :class:`Seq2SeqVariant` s to compare: cross graphs (full, a
diagonal window of some width, a few random sources per target, none; the
builders are in :mod:`graphattn.patterns.cross_`) and decoder and encoder
self graphs. :func:`cross_attention_experiments` are the documented ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from graphattn._validate import check_int
from graphattn.experiments.common.config import TrainConfig
from graphattn.experiments.seq2seq.tasks import SEQ2SEQ_TASKS, MonotonicTask, ReorderTask
from graphattn.patterns.cross_ import diagonal_window, no_cross, random_cross

__all__ = [
    "CROSS_KINDS",
    "Seq2SeqExperiment",
    "Seq2SeqModel",
    "Seq2SeqVariant",
    "cross_attention_experiments",
]

CROSS_KINDS = ("full", "window", "random", "none")


@dataclass(frozen=True)
class Seq2SeqVariant:
    """One graph setting to train: a cross graph and a decoder self graph.

    Examples
    --------
    >>> Seq2SeqVariant("window 2", cross="window", window=2).cross_spec()(3, 4).num_edges
    8
    """

    label: str  # name in tables and plots; unique in an experiment
    cross: str = "full"  # "full", "window" (diagonal), "random" or "none"
    window: int | None = None  # cross="window": |j - i| < window
    num_random: int | None = None  # cross="random": sources per decoder token
    decoder_window: int | None = None  # a causal decoder window; None = full causal
    encoder_window: int | None = None  # encoder self graph |i - j| < w; None = full

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label.strip():
            raise ValueError(f"label must be a non-empty string, got {self.label!r}")
        if self.cross not in CROSS_KINDS:
            raise ValueError(f"cross must be one of {CROSS_KINDS}, got {self.cross!r}")
        needs = {"window": "window", "random": "num_random"}.get(self.cross)
        for name in ("window", "num_random"):
            if (getattr(self, name) is not None) != (name == needs):
                kind = "window" if name == "window" else "random"
                raise ValueError(
                    f"{self.label!r}: {name} goes with cross={kind!r} only, got "
                    f"cross={self.cross!r}, {name}={getattr(self, name)!r}"
                )
            if name == needs:
                check_int(getattr(self, name), name, low=1)
        for name in ("decoder_window", "encoder_window"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, low=1)

    def cross_spec(self) -> Any:
        """The model's ``cross_graph`` argument."""
        if self.cross == "window":
            return lambda n, m: diagonal_window(n, m, self.window)
        if self.cross == "random":
            return lambda n, m: random_cross(n, m, self.num_random)
        return "cross" if self.cross == "full" else no_cross

    def encoder_spec(self) -> Any:
        """The model's ``encoder_graph`` argument."""
        if self.encoder_window is None:
            return "full"
        return ("sliding_window", {"window": self.encoder_window, "causal": False})

    def decoder_spec(self) -> Any:
        """The model's ``decoder_graph`` argument."""
        if self.decoder_window is None:
            return "causal"
        return ("sliding_window", {"window": self.decoder_window, "causal": True})


@dataclass(frozen=True)
class Seq2SeqModel:
    """Size of the :class:`~graphattn.nn.GraphSeq2Seq` trained for every variant."""

    d_model: int = 32  # channels C
    num_heads: int = 2  # heads of every attention; must divide d_model
    num_encoder_layers: int = 2  # encoder layers
    num_decoder_layers: int = 2  # decoder layers
    dim_feedforward: int = 64  # feed-forward hidden size

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check_int(getattr(self, f.name), f"model.{f.name}", low=1)
        if self.d_model % self.num_heads:
            raise ValueError(
                f"model.num_heads ({self.num_heads}) must divide model.d_model ({self.d_model})"
            )


@dataclass(frozen=True)
class Seq2SeqExperiment:
    """A task, a model, a budget, seeds and the variants to compare.

    Examples
    --------
    >>> exp = Seq2SeqExperiment(variants=(Seq2SeqVariant("full"),))
    >>> exp.task, exp.train.steps
    (ReorderTask(n_nouns=8, n_verbs=6, n_adjs=4, p_adj=0.5, holdout=5), 600)
    """

    task: Any = field(default_factory=ReorderTask)  # one of SEQ2SEQ_TASKS' dataclasses
    variants: tuple[Seq2SeqVariant, ...] = ()
    model: Seq2SeqModel = field(default_factory=Seq2SeqModel)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=32, eval_every=600))
    seeds: tuple[int, ...] = (0,)
    name: str = "seq2seq experiment"

    def __post_init__(self) -> None:
        if not isinstance(self.task, tuple(SEQ2SEQ_TASKS.values())):
            raise TypeError(
                f"task must be one of {sorted(SEQ2SEQ_TASKS)}, got {type(self.task).__name__}"
            )
        object.__setattr__(self, "variants", tuple(self.variants))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        if not self.variants:
            raise ValueError("variants: at least one variant is needed")
        labels = [v.label for v in self.variants]
        if len(set(labels)) != len(labels):
            raise ValueError(f"variants: labels must be unique, got {labels}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: at least one, all distinct, got {list(self.seeds)}")
        for s in self.seeds:
            check_int(s, "seeds", low=0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the whole experiment, the task's name included."""
        name = next(k for k, cls in SEQ2SEQ_TASKS.items() if isinstance(self.task, cls))
        return {
            "name": self.name,
            "seeds": list(self.seeds),
            "task": {"name": name, **dataclasses.asdict(self.task)},
            "model": dataclasses.asdict(self.model),
            "train": dataclasses.asdict(self.train),
            "variants": [
                {k: v for k, v in dataclasses.asdict(x).items() if v is not None}
                for x in self.variants
            ],
        }


def cross_attention_experiments() -> dict[str, Seq2SeqExperiment]:
    """The experiments of ``docs/experiments.md``: the same variants on both tasks.

    Run by ``python examples/experiment_seq2seq.py`` (a test checks that the
    committed results are these configs).

    Examples
    --------
    >>> sorted(cross_attention_experiments())
    ['monotonic', 'reorder']
    """
    variants = (
        Seq2SeqVariant("full"),
        Seq2SeqVariant("window 1", cross="window", window=1),
        Seq2SeqVariant("random 2", cross="random", num_random=2),
        Seq2SeqVariant("none", cross="none"),
        Seq2SeqVariant("full, enc 1", encoder_window=1),
        Seq2SeqVariant("window 1, enc 1", cross="window", window=1, encoder_window=1),
        Seq2SeqVariant("window 2, enc 1", cross="window", window=2, encoder_window=1),
        Seq2SeqVariant("window 3, enc 1", cross="window", window=3, encoder_window=1),
    )
    train = TrainConfig(steps=300, batch_size=32, lr=3e-3, warmup=30, eval_every=300,
                        log_every=25, eval_batches=2, eval_batch_size=64)
    return {
        name: Seq2SeqExperiment(task=task, variants=variants, train=train, seeds=(0, 1),
                                name=f"cross graphs on the {name} task")
        for name, task in (("reorder", ReorderTask()), ("monotonic", MonotonicTask()))
    }
