"""Read a language-model experiment config from TOML or JSON, every field checked at load.

:func:`load_config` reads a file, :func:`config_from_dict` a parsed table;
both build the dataclasses of :mod:`graphattn.experiments.lm.config`, so a bad
config fails before any training with a message naming the offending field
(``train.steps``, ``patterns[2].params``, ...).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from graphattn.experiments.common.config import TrainConfig
from graphattn.experiments.lm.config import ExperimentConfig, ModelConfig, PatternConfig
from graphattn.experiments.lm.tasks import TASKS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["config_from_dict", "load_config"]


def _build(cls: type, table: Any, where: str) -> Any:
    """``cls(**table)`` with unknown or misspelt keys reported as ``where.key``."""
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table, got {type(table).__name__}")
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"{where}: unknown field {unknown[0]!r}; known: {sorted(known)}")
    try:
        return cls(**table)
    except (TypeError, ValueError) as err:
        msg = str(err)
        raise ValueError(msg if msg.startswith(where) else f"{where}: {msg}") from None


def _check_tables(data: dict[str, Any], names: tuple[str, ...]) -> None:
    """Raise unless each of ``names`` present in ``data`` is a table (a dict)."""
    for name in names:
        if name in data and not isinstance(data[name], dict):
            raise ValueError(
                f"{name} must be a table (e.g. [{name}] in TOML), got "
                f"{type(data[name]).__name__} {data[name]!r}"
            )


def _patterns(raw: Any, base: Path | None) -> list[PatternConfig]:
    """The ``patterns`` list of a config; relative graph files start from ``base``."""
    if not isinstance(raw, list):
        raise ValueError(f"patterns must be a list of tables, got {type(raw).__name__}")
    pats = []
    for k, table in enumerate(raw):
        p = _build(PatternConfig, table, f"patterns[{k}]")
        if p.file is not None and base is not None and not Path(p.file).is_absolute():
            p = dataclasses.replace(p, file=str(base / p.file))
        pats.append(p)
    return pats


def config_from_dict(data: dict[str, Any], base: Path | None = None) -> ExperimentConfig:
    """Build and validate an :class:`ExperimentConfig` from a parsed TOML/JSON dict.

    ``base`` is the directory that relative graph-file paths start from.

    Raises
    ------
    ValueError
        Naming the field: an unknown key, an unknown task or pattern, a bad
        value, a window longer than ``task.seq_len``, an impossible budget.

    Examples
    --------
    >>> config_from_dict({"task": {"name": "sorting"}, "patterns": []})
    Traceback (most recent call last):
    ...
    ValueError: task.name: unknown task 'sorting'; known: ['char_lm', 'copy', 'induction', 'recall']
    """
    if not isinstance(data, dict):
        raise ValueError(f"a config must be a table, got {type(data).__name__}")
    known = {"name", "seeds", "task", "model", "train", "patterns"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown top-level field {unknown[0]!r}; known: {sorted(known)}")
    _check_tables(data, ("task", "model", "train"))
    task_table = dict(data.get("task", {"name": "recall"}))
    task_name = task_table.pop("name", None)
    if not isinstance(task_name, str) or task_name not in TASKS:
        raise ValueError(f"task.name: unknown task {task_name!r}; known: {sorted(TASKS)}")
    task = _build(TASKS[task_name], task_table, "task")
    pats = _patterns(data.get("patterns", []), base)
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list):
        raise ValueError(f"seeds must be a list of ints, got {seeds!r}")
    model = _build(ModelConfig, data.get("model", {}), "model")
    train = _build(TrainConfig, data.get("train", {}), "train")
    try:  # the messages of ExperimentConfig name their field (patterns[k], seeds)
        return ExperimentConfig(
            task=task,
            patterns=tuple(pats),
            model=model,
            train=train,
            seeds=tuple(seeds),
            name=str(data.get("name", "experiment")),
        )
    except TypeError as err:
        raise ValueError(str(err)) from None


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment config from a ``.toml`` or ``.json`` file.

    Raises
    ------
    ValueError
        If the file is missing, not valid TOML/JSON, or any field is bad
        (the message names it).

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> p = os.path.join(d, "bad.toml")
    >>> _ = open(p, "w").write('[task]\\nname = "recall"\\nseq_len = 32\\n'
    ...                        '[[patterns]]\\nlabel = "w"\\npattern = "sliding_window"\\n'
    ...                        'params = {window = 64}\\n')
    >>> load_config(p)
    Traceback (most recent call last):
    ...
    ValueError: patterns[0] ('w'): window must be in [1, 32], got 64
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config: no such file {str(path)!r}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        elif path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise ValueError(f"config: expected a .toml or .json file, got {path.name!r}")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"config: {path.name} is not valid {path.suffix[1:]}: {err}") from None
    return config_from_dict(data, base=path.parent)
