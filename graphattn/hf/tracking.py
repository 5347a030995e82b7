"""Which attention modules received ``token_graph`` during a forward (for :func:`attach`)."""

from __future__ import annotations

import threading

import torch

__all__ = ["Tracker", "current", "received"]

_STACK = threading.local()  # .trackers: forwards being checked, innermost last


class Tracker:
    """The attention modules that ran and those that received the graph keywords."""

    def __init__(self) -> None:
        self.ran: list[torch.nn.Module] = []
        self.received: set[int] = set()

    def __enter__(self) -> Tracker:
        if not hasattr(_STACK, "trackers"):
            _STACK.trackers = []
        _STACK.trackers.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _STACK.trackers.remove(self)

    def missed(self) -> list[torch.nn.Module]:
        """Modules that ran without receiving the graph, in run order, each once."""
        out, seen = [], set()
        for module in self.ran:
            if id(module) not in self.received and id(module) not in seen:
                seen.add(id(module))
                out.append(module)
        return out


def current() -> Tracker | None:
    """The innermost tracker of this thread, or None."""
    trackers = getattr(_STACK, "trackers", None)
    return trackers[-1] if trackers else None


def received(module: torch.nn.Module) -> None:
    """Note that ``module``'s attention call was given ``token_graph`` or ``cross_graph``."""
    tracker = current()
    if tracker is not None:
        tracker.received.add(id(module))
