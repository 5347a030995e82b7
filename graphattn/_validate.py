"""Argument validators shared by every layer (private: import, never re-export).

Each returns the checked value in its plain Python type, or raises a
``TypeError`` (wrong type) or ``ValueError`` (out of range) whose message
starts with the argument's name, so ``pytest.raises(match="window must be")``
reads the same everywhere.

Examples
--------
>>> check_int(3, "window", low=1)
3
>>> check_int(0, "window", low=1)
Traceback (most recent call last):
    ...
ValueError: window must be >= 1, got 0
>>> check_positive_int(True, "num_heads")
Traceback (most recent call last):
    ...
TypeError: num_heads must be an int, got bool True
>>> check_probability(0.1, "dropout")
0.1
>>> check_bool("no", "use_cache")
Traceback (most recent call last):
    ...
TypeError: use_cache must be a bool, got str 'no'
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import torch

__all__ = [
    "check_allocation",
    "check_bool",
    "check_float_dtype",
    "check_int",
    "check_number",
    "check_positive_int",
    "check_probability",
    "check_str",
    "check_token_ids",
]


INT64_MAX = 2**63 - 1  # every count and index ends up in an int64 tensor


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise ValueError(f"{name} must fit in an int64 (|{name}| < 2**63), got {value}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a ``bool``: ``True``, ``False`` or a numpy/torch boolean scalar.

    A string (``"no"`` is truthy), a number, None or a container is a ``TypeError``.
    """
    if isinstance(value, bool):
        return value
    if type(value).__name__ == "bool_" or (  # numpy.bool_
        isinstance(value, torch.Tensor) and value.dtype == torch.bool and value.numel() == 1
    ):
        return bool(value)
    raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")


def check_str(value: Any, name: str, *, optional: bool = False) -> str | None:
    """``value`` as a ``str`` (or ``None`` where ``optional``), else a ``TypeError``.

    Examples
    --------
    >>> check_str("mean", "head")
    'mean'
    >>> check_str(None, "title", optional=True) is None
    True
    >>> check_str(3, "title", optional=True)
    Traceback (most recent call last):
        ...
    TypeError: title must be a str or None, got int 3
    """
    if isinstance(value, str) or (optional and value is None):
        return value
    kind = "a str or None" if optional else "a str"
    raise TypeError(f"{name} must be {kind}, got {type(value).__name__} {value!r}")


def check_float_dtype(value: Any, name: str, *, optional: bool = False) -> torch.dtype | None:
    """``value`` if it is a floating ``torch.dtype`` (or ``None`` where ``optional``).

    Examples
    --------
    >>> check_float_dtype(torch.float16, "dtype")
    torch.float16
    >>> check_float_dtype(torch.int64, "dtype", optional=True)
    Traceback (most recent call last):
        ...
    TypeError: dtype must be a floating torch.dtype or None, got torch.int64
    """
    if (optional and value is None) or (
        isinstance(value, torch.dtype) and value.is_floating_point
    ):
        return value
    kind = "a floating torch.dtype" + (" or None" if optional else "")
    raise TypeError(f"{name} must be {kind}, got {value!r}")


def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either bound may be ``None``).

    Raises
    ------
    TypeError
        ``value`` is not an integer (``bool`` counts as not one).
    ValueError
        ``value`` lies outside the bounds; the message names them.
    """
    value = _integer(value, name)
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            bound = f">= {low}"
        elif low is None:
            bound = f"<= {high}"
        else:
            bound = f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an ``int`` > 0 ("must be positive" in the message)."""
    value = _integer(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def check_number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` between ``low`` and ``high``.

    ``low_open`` / ``high_open`` exclude the bound itself.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    too_low = low is not None and (value < low or (low_open and value == low))
    too_high = high is not None and (value > high or (high_open and value == high))
    if not math.isfinite(value) or too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(f"{name} must be a finite number in {left}{lo}, {hi}{right}, got {value}")
    return value


def _memory_bytes() -> int | None:
    """This machine's physical memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def check_allocation(nbytes: int, what: str) -> None:
    """Refuse, before allocating, a request of ``nbytes`` that this machine's memory cannot hold.

    ``what`` names the request (``"the edge list of causal(n=10000000)"``);
    the message gives its size, so a huge pattern or mask fails with a
    ``ValueError`` that says what was asked for instead of the allocator's
    ``RuntimeError``.

    Examples
    --------
    >>> check_allocation(16, "two edges")
    >>> check_allocation(2**80, "a mask of (2**40, 2**40)")
    Traceback (most recent call last):
        ...
    ValueError: a mask of (2**40, 2**40) needs 1208925819614629174706176 bytes (...), more ...
    """
    total = _memory_bytes()
    if total is not None and nbytes > total:
        raise ValueError(
            f"{what} needs {nbytes} bytes ({nbytes / 2**30:.3g} GiB), more than this "
            f"machine's memory ({total / 2**30:.3g} GiB)"
        )


def check_probability(value: Any, name: str) -> float:
    """A dropout probability: a number in ``[0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float, got {type(value).__name__} {value!r}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def check_token_ids(
    ids: Any, name: str, vocab_size: int, max_len: int, *, vocab_name: str | None = None
) -> torch.Tensor:
    """``ids`` is an integer ``(B, N)`` tensor of ids in ``[0, vocab_size)``.

    ``B >= 1`` and ``1 <= N <= max_len``.

    ``vocab_name``, if given, names the bound in the message (``[0, vocab_size=5)``).

    Examples
    --------
    >>> check_token_ids(torch.tensor([[1, 4]]), "idx", 5, 8).shape
    torch.Size([1, 2])
    >>> check_token_ids(torch.tensor([[1, 5]]), "idx", 5, 8)
    Traceback (most recent call last):
        ...
    ValueError: idx holds ids outside [0, 5): min 1, max 5
    """
    if not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.dtype == torch.bool:
        got = getattr(ids, "dtype", type(ids).__name__)
        raise TypeError(f"{name} must be an integer tensor (B, N), got {got}")
    if ids.dim() != 2 or ids.shape[0] < 1 or not 1 <= ids.shape[1] <= max_len:
        raise ValueError(
            f"{name} must have shape (B, N) with B >= 1 and 1 <= N <= max_len={max_len}, "
            f"got {tuple(ids.shape)}"
        )
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        bound = vocab_size if vocab_name is None else f"{vocab_name}={vocab_size}"
        raise ValueError(
            f"{name} holds ids outside [0, {bound}): min {int(ids.min())}, max {int(ids.max())}"
        )
    return ids
