"""The integration's per-call state: one context variable, :func:`current`.

What an attention call of this thread or task must know besides its own
inputs is held in one :class:`HfState` in one ``contextvars.ContextVar``:
the :func:`graphattn.hf.record` blocks open around it, the
:func:`graphattn.hf.edits.edit_attention` edit in force, and the forwards
that :func:`graphattn.hf.attach` is checking. The state is never mutated:
each block sets a changed copy with :func:`enter` and puts the previous one
back with :func:`leave` (also when the block raises), so blocks nest.

A new thread starts from the empty state; an ``asyncio`` task starts from a
copy of the state where it was created, and what it opens stays its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["HfState", "changed", "current", "enter", "leave"]


@dataclass(frozen=True)
class HfState:
    """What the graphattn attention calls of one thread or task share.

    The fields hold objects of the modules that set them (this module
    imports none of them): :class:`graphattn.hf.record.Recording`,
    :class:`graphattn.hf.edits.AttentionEdit`,
    :class:`graphattn.hf.tracking.Tracker`.
    """

    recordings: tuple[Any, ...] = ()  # the open record() blocks' Recordings, innermost last
    edit: Any = None  # the AttentionEdit in force, or None
    trackers: tuple[Any, ...] = ()  # the forwards attach() is checking (Trackers), innermost last


_EMPTY = HfState()  # frozen, so one default serves every thread and task
_STATE: ContextVar[HfState] = ContextVar("graphattn_hf_state", default=_EMPTY)


def current() -> HfState:
    """The state of this thread or task.

    Examples
    --------
    >>> current()
    HfState(recordings=(), edit=None, trackers=())
    """
    return _STATE.get()


def enter(**fields: Any) -> Token:
    """Set the current state with ``fields`` changed; :func:`leave` with the token undoes it."""
    return _STATE.set(replace(_STATE.get(), **fields))


def leave(token: Token) -> None:
    """Put back the state that was current before :func:`enter` returned ``token``."""
    _STATE.reset(token)


@contextmanager
def changed(**fields: Any) -> Iterator[HfState]:
    """The state with ``fields`` changed inside the block, the previous one after it.

    Examples
    --------
    >>> with changed(edit="an edit") as state:
    ...     current().edit
    'an edit'
    >>> current().edit is None
    True
    """
    token = enter(**fields)
    try:
        yield current()
    finally:
        leave(token)
