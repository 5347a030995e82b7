"""The language-model experiment's configuration: dataclasses, validated when built.

An experiment is a task, a model size, a training budget, a list of seeds and
a list of patterns; every pattern is trained with the same seeds and budget.
A config is written as a TOML or JSON file (see
``examples/experiment_default.toml``, read by
:mod:`graphattn.experiments.lm.loading`) or built from these dataclasses.
Every check runs when the config is built, so a bad config fails before any
training, with a message naming the offending field (``train.steps``,
``patterns[2].params``, ...).

Every pattern is made causal (``graph & causal``) because the experiment model
is a decoder-only language model: a pattern that lets a token see later tokens
would let it read the answers it must predict.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from graphattn import patterns
from graphattn._validate import check_int
from graphattn.experiments.common.config import TrainConfig
from graphattn.experiments.lm.tasks import TASKS, RecallTask
from graphattn.graph import TokenGraph

# one batch (training or validation) may need at most this many bytes for its attention
# scores and activations: a larger request is refused at load, not by the allocator mid-run
MAX_BATCH_BYTES = 16 * 2**30

__all__ = [
    "ExperimentConfig",
    "ModelConfig",
    "PatternConfig",
    "default_config",
]


@dataclass(frozen=True)
class ModelConfig:
    """Size of the :class:`~graphattn.nn.GraphLM` trained for every pattern.

    Examples
    --------
    >>> ModelConfig(d_model=32, n_layers=1, n_heads=2).tie_weights
    False
    """

    d_model: int = 64  # channels C
    n_layers: int = 2  # transformer layers L (a pattern may override it)
    n_heads: int = 4  # heads H; must divide d_model
    tie_weights: bool = False  # share input embedding and output head

    def __post_init__(self) -> None:
        for name in ("d_model", "n_layers", "n_heads"):
            check_int(getattr(self, name), f"model.{name}", low=1)
        if self.d_model % self.n_heads:
            raise ValueError(
                f"model.n_heads ({self.n_heads}) must divide model.d_model ({self.d_model})"
            )
        if not isinstance(self.tie_weights, bool):
            raise TypeError(f"model.tie_weights must be a bool, got {self.tie_weights!r}")


@dataclass(frozen=True)
class PatternConfig:
    """One pattern to train: a library name, a saved graph file, or a Python function.

    Exactly one of ``pattern``, ``file`` and ``function`` is given.
    ``function`` is ``"module:function"``, importable from the working
    directory, called as ``function(n)`` and returning a
    :class:`~graphattn.graph.TokenGraph` on ``n`` tokens. A config with a
    ``function`` runs code, like a Python script: the module is imported
    (its top-level code runs) when the experiment starts, not when the config
    is loaded. The graph used is always made causal (``graph & causal``).

    Examples
    --------
    >>> p = PatternConfig("window 4", pattern="sliding_window", params={"window": 4})
    >>> p.build(8, "patterns[0]").num_edges
    26
    """

    label: str  # name in tables and plots; unique in an experiment
    pattern: str | None = None  # a name from graphattn.patterns.available()
    params: dict[str, Any] = field(default_factory=dict)  # the pattern's parameters
    file: str | None = None  # a graph saved with TokenGraph.save (.json or .npz)
    function: str | None = None  # "module:function", called as function(n)
    n_layers: int | None = None  # overrides model.n_layers for this pattern

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label.strip():
            raise ValueError(f"label must be a non-empty string, got {self.label!r}")
        given = [k for k in ("pattern", "file", "function") if getattr(self, k) is not None]
        for name in given:
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a string, got {type(value).__name__} {value!r}")
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of pattern, file, function for {self.label!r}, got "
                f"{given or 'none'}"
            )
        if not isinstance(self.params, dict):
            raise TypeError(f"params must be a table/dict, got {type(self.params).__name__}")
        if self.params and self.pattern is None:
            raise ValueError(f"params apply only to a library pattern, not to {given[0]}")
        if self.function is not None and self.function.count(":") != 1:
            raise ValueError(f"function must be 'module:function', got {self.function!r}")
        if self.n_layers is not None:
            check_int(self.n_layers, "n_layers", low=1)

    def build(self, n: int, where: str) -> TokenGraph:
        """The causal graph of this pattern on ``n`` tokens.

        ``where`` names the config entry (e.g. ``"patterns[2]"``) in errors.

        Raises
        ------
        ValueError
            If the pattern is unknown, its parameters are bad for ``n`` tokens
            (a window longer than the sequence), the file cannot be read, the
            function cannot be imported, or the graph is not a self graph on
            ``n`` tokens.
        """
        try:
            if self.pattern is not None:
                graph = patterns.get(self.pattern, n, **self.params)
            elif self.file is not None:
                graph = TokenGraph.load(self.file)
            else:
                graph = _call_function(self.function, n)
        except (ValueError, TypeError, OSError, ImportError, AttributeError) as err:
            raise ValueError(f"{where} ({self.label!r}): {err}") from None
        if not isinstance(graph, TokenGraph):
            raise ValueError(f"{where} ({self.label!r}): expected a TokenGraph, got {graph!r}")
        if graph.is_cross or graph.num_nodes != n:
            raise ValueError(
                f"{where} ({self.label!r}): expected a self graph on task.seq_len={n} "
                f"tokens, got {graph!r}"
            )
        causal = graph & patterns.causal(n)
        causal.name = graph.name
        return causal


def _import_function(spec: str) -> Any:
    """The function ``"module:function"``, importing the module from the working directory first.

    The working directory is put at the front of ``sys.path`` for the import
    (and taken out again), so the installed ``graphattn`` command, whose
    ``sys.path[0]`` is its own script folder, finds a module next to the user.
    """
    module, name = spec.split(":")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return getattr(importlib.import_module(module), name)
    finally:
        if added:
            sys.path.remove(cwd)


def _call_function(spec: str, n: int) -> Any:
    """``function(n)`` of ``spec = "module:function"``; any failure of the user's code is an error.

    Importing the module runs its top-level code: a ``SyntaxError``, an
    exception or a ``sys.exit()`` there (or in the call) becomes a
    ``ValueError`` naming ``spec``, so a broken module never ends the
    experiment with a traceback, nor with exit status 0 having done nothing.
    """
    try:
        return _import_function(spec)(n)
    except SystemExit as err:
        raise ValueError(f"function {spec!r} called sys.exit({err.code!r})") from None
    except Exception as err:
        raise ValueError(f"function {spec!r} failed: {type(err).__name__}: {err}") from None


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment: task, model, budget, seeds and the patterns to compare.

    Raises
    ------
    ValueError
        On an empty or duplicated pattern list or seed list, or a pattern that
        cannot be built for the task's sequence length (checked here, before
        any training).

    Examples
    --------
    >>> cfg = ExperimentConfig(
    ...     task=RecallTask(seq_len=16, distance=4),
    ...     patterns=(PatternConfig("causal", pattern="causal"),),
    ...     train=TrainConfig(steps=2, warmup=0, eval_every=2, log_every=1),
    ... )
    >>> cfg.layers_of(cfg.patterns[0])
    2
    """

    task: Any = field(default_factory=RecallTask)  # one of tasks.TASKS' dataclasses
    patterns: tuple[PatternConfig, ...] = ()  # the patterns compared
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seeds: tuple[int, ...] = (0,)  # every pattern is trained once per seed
    name: str = "experiment"  # title of the report

    def __post_init__(self) -> None:
        if not isinstance(self.task, tuple(TASKS.values())):
            raise TypeError(f"task must be one of {sorted(TASKS)}, got {type(self.task).__name__}")
        object.__setattr__(self, "patterns", tuple(self.patterns))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        if not self.patterns:
            raise ValueError("patterns: at least one pattern is needed")
        labels = [p.label for p in self.patterns]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"patterns: labels must be unique, repeated: {dup}")
        if not self.seeds:
            raise ValueError("seeds: at least one seed is needed")
        for s in self.seeds:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ValueError(f"seeds: each seed must be an int >= 0, got {s!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: must be distinct, got {list(self.seeds)}")
        self._check_batch_memory()  # before any pattern is built on task.seq_len tokens
        for k, p in enumerate(self.patterns):
            if p.function is None:  # a function runs code: imported when the run starts
                p.build(self.task.seq_len, f"patterns[{k}]")  # fails now, not after training

    def batch_bytes(self) -> int:
        """An estimate of the bytes one batch needs: attention scores and activations.

        The larger of ``train.batch_size`` and ``train.eval_batch_size``
        sequences, every pattern at most causal (``seq_len * (seq_len + 1) / 2``
        edges), fp32 scores per edge and head, and per token about 16
        ``d_model``-wide activations and one row of logits.

        Examples
        --------
        >>> default_config().batch_bytes() < MAX_BATCH_BYTES
        True
        """
        n = self.task.seq_len
        batch = max(self.train.batch_size, self.train.eval_batch_size)
        per_token = 16 * self.model.d_model + self.task.vocab_size
        return 4 * batch * (n * (n + 1) // 2 * self.model.n_heads + n * per_token)

    def _check_batch_memory(self) -> None:
        """Refuse a batch larger than :data:`MAX_BATCH_BYTES` (naming the fields to lower)."""
        need = self.batch_bytes()
        if need > MAX_BATCH_BYTES:
            batch = max(self.train.batch_size, self.train.eval_batch_size)
            raise ValueError(
                f"train.batch_size / train.eval_batch_size ({batch:,} sequences) and "
                f"task.seq_len ({self.task.seq_len:,} tokens): one batch would need about "
                f"{need / 2**30:,.0f} GiB of attention scores and activations, more than "
                f"{MAX_BATCH_BYTES / 2**30:.0f} GiB; lower them"
            )

    def layers_of(self, pattern: PatternConfig) -> int:
        """Number of layers of the model trained on ``pattern``."""
        return pattern.n_layers or self.model.n_layers

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :func:`config_from_dict` reads back.

        Examples
        --------
        >>> from graphattn.experiments.lm.loading import config_from_dict
        >>> config_from_dict(default_config().to_dict()) == default_config()
        True
        """
        task = dataclasses.asdict(self.task)
        task = {"name": _task_name(self.task), **task}
        return {
            "name": self.name,
            "seeds": list(self.seeds),
            "task": task,
            "model": dataclasses.asdict(self.model),
            "train": dataclasses.asdict(self.train),
            "patterns": [
                {k: v for k, v in dataclasses.asdict(p).items() if v not in (None, {})}
                for p in self.patterns
            ],
        }


def _task_name(task: Any) -> str:
    return next(name for name, cls in TASKS.items() if isinstance(task, cls))


def default_config() -> ExperimentConfig:
    """The default experiment: recall of one key-value pair from 16..30 tokens away.

    The same as ``examples/experiment_default.toml`` (a test checks it).

    Examples
    --------
    >>> [p.label for p in default_config().patterns][:2]
    ['full causal', 'window 8']
    """
    return ExperimentConfig(
        name="far recall: one pair, query >= 16 tokens after it",
        task=RecallTask(
            seq_len=32, n_pairs=1, n_queries=1, distance=16, train_distance=1, n_keys=8, n_values=8
        ),
        patterns=(
            PatternConfig("full causal", pattern="causal"),
            PatternConfig("window 8", pattern="sliding_window", params={"window": 8}),
            PatternConfig("window 24", pattern="sliding_window", params={"window": 24}),
            PatternConfig("strided 6", pattern="strided", params={"stride": 6}),
            PatternConfig(
                "bigbird", pattern="bigbird", params={"window": 4, "num_global": 2, "num_random": 4}
            ),
            PatternConfig(
                "window 8 + global", pattern="longformer", params={"window": 8, "globals": [22]}
            ),
            PatternConfig(
                "window 8, 5 layers", pattern="sliding_window", params={"window": 8}, n_layers=5
            ),
        ),
        model=ModelConfig(d_model=64, n_layers=2, n_heads=4),
        train=TrainConfig(steps=2000, batch_size=16, lr=3e-3, warmup=30, eval_every=250),
        seeds=(0, 1),
    )
