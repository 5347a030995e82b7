"""Which attention modules ran, and received the graph keywords, during a forward.

Every attention module that runs graphattn attention once (and every one
that :func:`graphattn.hf.attach` finds) gets a forward pre-hook,
:func:`watch`: it refuses a graph keyword when the module's model no longer
runs on graphattn (transformers shares one config among the models built
from it, so building a twin with ``attn_implementation="eager"`` switches
this one too), and notes the run for the :class:`Tracker` that ``attach``
opens around each forward given a graph. A cross-attention module also gets
:func:`graphattn.hf.offsets.pass_cross_offset`, which tells its calls where
their queries sit in the decoder sequence.
"""

from __future__ import annotations

import torch

from graphattn.hf import state
from graphattn.hf.graphs import is_cross_attention
from graphattn.hf.keywords import ATTENTION_NAME, GRAPH_KWARGS
from graphattn.hf.offsets import pass_cross_offset, passes_keywords

__all__ = ["Tracker", "current", "received", "watch"]

_WATCHED = "_graphattn_watched"  # marks a module that has the pre-hook of watch()


class Tracker:
    """The attention modules that ran and those that received the graph keywords."""

    def __init__(self) -> None:
        self.ran: list[torch.nn.Module] = []
        self.received: set[int] = set()
        self._tokens: list = []  # per entered block, the token that leaves it

    def __enter__(self) -> Tracker:
        self._tokens.append(state.enter(trackers=(*state.current().trackers, self)))
        return self

    def __exit__(self, *exc) -> None:
        state.leave(self._tokens.pop())

    def missed(self) -> list[torch.nn.Module]:
        """Modules that ran without receiving the graph, in run order, each once."""
        out, seen = [], set()
        for module in self.ran:
            if id(module) not in self.received and id(module) not in seen:
                seen.add(id(module))
                out.append(module)
        return out


def current() -> Tracker | None:
    """The innermost tracker of this thread or task, or None."""
    trackers = state.current().trackers
    return trackers[-1] if trackers else None


def received(module: torch.nn.Module) -> None:
    """Note that ``module``'s attention call was given a graph keyword."""
    tracker = current()
    if tracker is not None:
        tracker.received.add(id(module))


def _check_implementation(module: torch.nn.Module, kwargs: dict) -> None:
    given = [k for k in GRAPH_KWARGS if kwargs.get(k) is not None]
    config = getattr(module, "config", None)
    impl = getattr(config, "_attn_implementation", ATTENTION_NAME)
    if given and impl != ATTENTION_NAME:
        raise ValueError(
            f"{given[0]} was given, but {type(module).__name__} runs "
            f"attn_implementation={impl!r}, which ignores it. transformers shares one config "
            "among the models built from it, so building a model from the same config with "
            f"attn_implementation={impl!r} switches this one too; switch back with "
            "graphattn.hf.attach(model) or model.set_attn_implementation('graphattn')"
        )


def _before(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
    _check_implementation(module, kwargs)
    tracker = current()
    if tracker is not None:
        tracker.ran.append(module)


def watch(module: torch.nn.Module) -> None:
    """Give ``module`` the pre-hook that checks its implementation and notes its runs (once),
    and a cross-attention module the one that passes on its decoder offset.

    Examples
    --------
    >>> m = torch.nn.Linear(2, 2); m.config = type("C", (), {"_attn_implementation": "eager"})()
    >>> watch(m)
    >>> m(torch.ones(2), token_graph=object())
    Traceback (most recent call last):
        ...
    ValueError: token_graph was given, but Linear runs attn_implementation='eager', which ...
    """
    if not getattr(module, _WATCHED, False):
        module.register_forward_pre_hook(_before, with_kwargs=True)
        if is_cross_attention(module) and passes_keywords(module):
            module.register_forward_pre_hook(pass_cross_offset, with_kwargs=True)
        setattr(module, _WATCHED, True)
