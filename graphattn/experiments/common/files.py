"""Files every study writes: text whole or not at all, and JSON without NaN.

:func:`write_text` writes through :func:`graphattn._files.atomic_write` (an
interrupted write leaves the previous file or none); :func:`strict_json`
makes a result JSON-ready (``NaN`` and infinities become ``null``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from graphattn._files import atomic_write

__all__ = ["strict_json", "write_text"]


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN).

    Examples
    --------
    >>> strict_json({"a": [1.0, float("nan")], "b": float("inf")})
    {'a': [1.0, None], 'b': None}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all; return the path.

    Through :func:`graphattn._files.atomic_write`: an interrupted write leaves
    the previous file (or none), never a half-written one.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> write_text(pathlib.Path(tempfile.mkdtemp()) / "t.md", "| a |").read_text()
    '| a |'
    """
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
