"""Per-object caches owned by the layer that computes what they hold (private).

A :class:`ObjectCache` keeps values derived from an object (a kernel plan
built from a :class:`~graphattn.TokenGraph`, say) for as long as that object
lives, without storing anything on the object itself: each layer keeps its
own cache, so the graph layer never hosts kernel state. Entries are keyed by
the object's identity and dropped by a ``weakref.finalize`` when it is
garbage-collected. A value must not hold a strong reference to its own key
object (it would then never be collected); hold a ``weakref`` instead.

Examples
--------
>>> class Thing:
...     pass
>>> cache = ObjectCache("example")
>>> t = Thing()
>>> cache.get(t, "answer", lambda: 42)
42
>>> len(cache)
1
>>> del t
>>> len(cache)
0
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["ObjectCache"]

T = TypeVar("T")


class ObjectCache:
    """Values built from objects, keyed by ``(id(obj), key)``, freed with the object.

    Parameters
    ----------
    name : str
        Shown by ``repr``; names the layer that owns the cache.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._store: dict[int, dict[Hashable, Any]] = {}

    def get(self, obj: object, key: Hashable, build: Callable[[], T]) -> T:
        """The value stored for ``obj`` under ``key``, built once with ``build()``."""
        entry = self._store.get(id(obj))
        if entry is None:
            entry = {}
            self._store[id(obj)] = entry
            weakref.finalize(obj, self._store.pop, id(obj), None)
        if key not in entry:
            entry[key] = build()
        return entry[key]

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        return f"ObjectCache({self.name!r}, objects={len(self._store)})"
