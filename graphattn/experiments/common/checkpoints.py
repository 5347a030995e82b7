"""Checkpoints of a training run: model, optimizer state and the run's record in one file.

A checkpoint is a safetensors file (no pickle): the model's tensors as
``model.*``, the AdamW state as ``optim.<i>.<name>``, and in its metadata the
format version, the fingerprint of the config that made it, the optimizer's
param groups and the run's record so far. The language-model runner saves one
every ``train.checkpoint_every`` steps and resumes from it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from graphattn._files import atomic_write

__all__ = ["CHECKPOINT_VERSION", "load_checkpoint", "load_model", "save_checkpoint"]

CHECKPOINT_VERSION = 1
_MODEL = "model."  # prefix of the model's tensors in a checkpoint


def save_checkpoint(
    path: Path, model: nn.Module, opt: torch.optim.Optimizer, result: dict, fingerprint: str
) -> None:
    """Write the model, the optimizer state and ``result`` (a JSON-ready dict) to ``path``.

    One safetensors file, written whole or not at all; ``fingerprint`` names
    the config that made it (:func:`load_checkpoint` refuses another).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> model = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.AdamW(model.parameters())
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.safetensors"
    >>> save_checkpoint(path, model, opt, {"steps_done": 0}, "abc")
    >>> load_checkpoint(path, model, opt, "abc")
    {'steps_done': 0}
    """
    tensors = {_MODEL + k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    state = opt.state_dict()
    for i, s in state["state"].items():
        for k, v in s.items():
            tensors[f"optim.{i}.{k}"] = torch.as_tensor(v).detach().cpu().clone()
    meta = {
        "version": CHECKPOINT_VERSION,
        "fingerprint": fingerprint,
        "param_groups": state["param_groups"],
        "result": result,
    }
    metadata = {"graphattn.experiment": json.dumps(meta)}
    # the bytes, written by atomic_write: save_file would rename a temp file of its own
    # (mode 0600, left behind when killed) over the one atomic_write prepared
    data = save(tensors, metadata=metadata)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def load_checkpoint(
    path: Path, model: nn.Module, opt: torch.optim.Optimizer, fingerprint: str
) -> dict:
    """Load ``path`` into ``model`` and ``opt``; return the ``result`` dict saved with them.

    Raises
    ------
    ValueError
        If the file cannot be read, is not a graphattn experiment
        checkpoint, or was made under another ``fingerprint``.
    """
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("graphattn.experiment", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iter
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(
            f"checkpoint {path} cannot be read ({err}); delete it or start afresh (--fresh)"
        ) from err
    if meta.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"checkpoint {path} is not a graphattn experiment checkpoint; start afresh (--fresh)"
        )
    if meta["fingerprint"] != fingerprint:
        raise ValueError(
            f"checkpoint {path} was made with a different config; use another output "
            "directory or start afresh (--fresh)"
        )
    model.load_state_dict(_model_state(tensors))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, i, name = k.split(".", 2)
            state.setdefault(int(i), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta["result"]


def load_model(path: Path, model: nn.Module) -> nn.Module:
    """Load the model tensors of the checkpoint ``path`` into ``model``; return ``model``.

    Only the model: the optimizer state, the fingerprint and the record stay
    in the file (:func:`load_checkpoint` reads them all to resume a run).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> model = torch.nn.Linear(2, 1)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.safetensors"
    >>> save_checkpoint(path, model, torch.optim.AdamW(model.parameters()), {}, "abc")
    >>> twin = load_model(path, torch.nn.Linear(2, 1))
    >>> torch.equal(twin.weight, model.weight)
    True
    """
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys() if k.startswith(_MODEL)}  # noqa: SIM118
    model.load_state_dict(_model_state(tensors))
    return model


def _model_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's state dict from a checkpoint's tensors (those under ``model.``)."""
    return {k[len(_MODEL) :]: v for k, v in tensors.items() if k.startswith(_MODEL)}
