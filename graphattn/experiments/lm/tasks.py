"""Synthetic and text tasks for pattern experiments, all generated offline.

Every task is a dataclass with a ``seq_len``, a ``vocab_size`` and a
``batch(batch_size, generator)`` method returning ``(inputs, targets)``, both
``LongTensor (B, N)``: ``inputs`` are the tokens a decoder-only model reads and
``targets[b, i]`` is the token it must predict at position ``i``, or
:data:`IGNORE` where position ``i`` is not scored. A batch depends only on the
generator's state, so a seeded generator gives the same batch every time.
The synthetic tasks also say, with ``sources(inputs, targets)``, which input
position holds the information each scored target needs; the runner uses it
to measure how often a pattern links that position to the target directly.

The tasks:

- :class:`CopyTask`: a random string, a separator, then the string again;
  every token of the copy is scored (distance ``len + 1`` back).
- :class:`RecallTask`: associative recall with a controllable key-query
  distance: key-value pairs, a long run of filler, then queries asking for the
  value of a key seen at least ``distance`` positions earlier.
- :class:`InductionTask`: a random sequence repeated once; the second half is
  predictable only by finding the previous occurrence (an induction head).
- :class:`CharLMTask`: next-character prediction on a public-domain text
  shipped with the package (``graphattn/experiments/data``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from graphattn._validate import check_int
from graphattn.experiments.common.task import IGNORE

__all__ = [
    "IGNORE",
    "TASKS",
    "CharLMTask",
    "CopyTask",
    "InductionTask",
    "RecallTask",
    "DEFAULT_TEXT",
]

DATA_DIR = Path(__file__).parents[1] / "data"  # graphattn/experiments/data
DEFAULT_TEXT = "comedy_of_errors.txt"  # Shakespeare, public domain; see data/README.md


def _check_batch(batch_size: int, generator: torch.Generator) -> None:
    check_int(batch_size, "batch_size", low=1)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")


@dataclass(frozen=True)
class CopyTask:
    """Copy a random string: ``s SEP s``, scored on every token of the copy.

    The input of length ``seq_len`` is ``s_0 .. s_{L-1} SEP s_0 .. s_{L-2}``
    with ``L = seq_len // 2``, padded at the end when ``seq_len`` is odd. Scored
    are the separator (target ``s_0``) and each copy token ``s_t`` (target
    ``s_{t+1}``), so each prediction looks ``L`` positions back.

    Parameters
    ----------
    seq_len : int
        Model input length ``N`` (>= 4).
    n_symbols : int
        Alphabet size of the string (>= 2); ids ``0 .. n_symbols-1``, the
        separator is ``n_symbols`` and padding ``n_symbols + 1``.

    Examples
    --------
    >>> task = CopyTask(seq_len=8, n_symbols=4)
    >>> x, y = task.batch(1, torch.Generator().manual_seed(0))
    >>> x.shape, task.vocab_size
    (torch.Size([1, 8]), 6)
    >>> bool((y[0, 4:] == x[0, :4]).all()), int((y != IGNORE).sum())
    (True, 4)
    """

    seq_len: int = 32  # model input length N
    n_symbols: int = 8  # alphabet of the string to copy

    def __post_init__(self) -> None:
        check_int(self.seq_len, "task.seq_len", low=4)
        check_int(self.n_symbols, "task.n_symbols", low=2)

    @property
    def vocab_size(self) -> int:
        """Symbols + separator + padding."""
        return self.n_symbols + 2

    def batch(self, batch_size: int, generator: torch.Generator):
        """``(inputs, targets)``, each ``LongTensor (batch_size, seq_len)``."""
        _check_batch(batch_size, generator)
        half = self.seq_len // 2  # L, the string length
        s = torch.randint(self.n_symbols, (batch_size, half), generator=generator)  # (B, L)
        sep = torch.full((batch_size, 1), self.n_symbols)  # (B, 1)
        full = torch.cat([s, sep, s], dim=1)  # (B, 2L + 1)
        pad = self.seq_len + 1 - full.shape[1]  # 0 or 1
        full = torch.cat([full, torch.full((batch_size, pad), self.n_symbols + 1)], dim=1)
        inputs, targets = full[:, :-1], full[:, 1:].clone()  # (B, N) each
        targets[:, :half] = IGNORE  # the random string is unpredictable, the separator fixed
        targets[:, 2 * half :] = IGNORE  # padding
        return inputs, targets

    chance = None  # no single guess rate

    def val_batch(self, batch_size: int, generator: torch.Generator):
        """Validation ``(inputs, targets)``: drawn like :meth:`batch` (no held-out data)."""
        return self.batch(batch_size, generator)

    def sources(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Position of the input token each scored target copies (``-1`` where unscored)."""
        i = torch.arange(inputs.shape[1]).expand_as(inputs)  # (B, N)
        return torch.where(targets != IGNORE, i - self.seq_len // 2, -1)


@dataclass(frozen=True)
class RecallTask:
    """Associative recall with the query at least ``distance`` tokens after its pair.

    Layout of one sequence of length ``N = seq_len``::

        filler .. (k_1,v_1) .. (k_P,v_P)  filler ... filler  q_1 a_1 .. q_Q a_Q
        |<- random offset ->|            |<- >= distance ->|

    ``P = n_pairs`` distinct keys with random values are shown at a random
    offset, each pair as one token ``(k, v)`` (id ``k * n_values + v``);
    ``Q = n_queries`` of these keys (distinct, random order) are asked in the
    last ``2Q`` positions, each query token ``q_t`` (the key alone) followed
    by its answer ``a_t`` (the value alone). The target of ``q_t`` is its
    value; no other position is scored. In validation (:meth:`val_batch`)
    every query sits at least ``distance`` positions after the pair it asks
    for (``i_query - i_pair >= distance``), so a pattern whose reach after the
    model's layers is shorter than ``distance`` cannot answer better than
    chance (``1 / n_values``). One token per pair makes the lookup a single
    attention hop for a pattern that links the query to the pair directly.

    Training sequences (:meth:`batch`) keep the pairs at least
    ``train_distance`` positions away (default: ``distance``). A smaller
    ``train_distance`` mixes in near pairs, a curriculum: a model whose
    pattern never links a query to its pair directly gets no gradient toward
    the lookup until its relay path already works, and in short budgets it
    stays at chance even when its graph can reach the pair. Near pairs teach
    the lookup; the far validation pairs then test whether the graph can
    carry it over the distance.

    Parameters
    ----------
    seq_len : int
        Model input length ``N``.
    n_pairs : int
        Key-value pairs ``P`` shown per sequence (<= ``n_keys``).
    n_queries : int
        Queries ``Q`` per sequence (<= ``n_pairs``).
    distance : int
        Minimum distance from a pair to any query asking for it in
        validation (>= 1).
    train_distance : int, optional
        The same minimum in training, in ``[1, distance]`` (default
        ``distance``).
    n_keys, n_values : int
        Key and value alphabets. Ids: pairs ``0 .. n_keys*n_values-1``, then
        the query keys, the answer values and the filler token.

    Raises
    ------
    ValueError
        If the layout does not fit: ``P + (distance - 1) + 2Q > seq_len``.

    Examples
    --------
    >>> task = RecallTask(seq_len=24, n_pairs=2, n_queries=2, distance=12)
    >>> x, y = task.batch(2, torch.Generator().manual_seed(0))
    >>> x.shape, int((y != IGNORE).sum()), task.vocab_size
    (torch.Size([2, 24]), 4, 289)
    >>> q = (y[0] != IGNORE).nonzero()[:, 0]        # the query positions
    >>> q.tolist()
    [20, 22]
    """

    seq_len: int = 32  # model input length N
    n_pairs: int = 4  # key-value pairs shown, P
    n_queries: int = 4  # queries asked at the end, Q
    distance: int = 16  # every query is >= this many positions after its pair
    n_keys: int = 16  # key alphabet
    n_values: int = 16  # value alphabet; chance accuracy is 1 / n_values
    train_distance: int | None = None  # minimum distance in training; None: distance

    def __post_init__(self) -> None:
        check_int(self.seq_len, "task.seq_len", low=4)
        check_int(self.n_keys, "task.n_keys", low=1)
        check_int(self.n_values, "task.n_values", low=2)
        check_int(self.n_pairs, "task.n_pairs", low=1)
        check_int(self.n_queries, "task.n_queries", low=1)
        check_int(self.distance, "task.distance", low=1)
        if self.train_distance is not None:
            check_int(self.train_distance, "task.train_distance", low=1)
            if self.train_distance > self.distance:
                raise ValueError(
                    f"task.train_distance ({self.train_distance}) must be <= "
                    f"task.distance ({self.distance})"
                )
        if self.n_pairs > self.n_keys:
            raise ValueError(
                f"task.n_pairs ({self.n_pairs}) must be <= task.n_keys ({self.n_keys}): "
                "keys in one sequence are distinct"
            )
        if self.n_queries > self.n_pairs:
            raise ValueError(
                f"task.n_queries ({self.n_queries}) must be <= task.n_pairs ({self.n_pairs})"
            )
        need = self.n_pairs + self.distance - 1 + 2 * self.n_queries
        if need > self.seq_len:
            raise ValueError(
                f"task.distance ({self.distance}) too large for task.seq_len ({self.seq_len}): "
                f"n_pairs + distance - 1 + 2*n_queries = {need} positions are needed"
            )

    @property
    def vocab_size(self) -> int:
        """Pairs + query keys + answer values + filler."""
        return self.n_keys * self.n_values + self.n_keys + self.n_values + 1

    @property
    def chance(self) -> float:
        """Accuracy of guessing a value: ``1 / n_values``."""
        return 1 / self.n_values

    def batch(self, batch_size: int, generator: torch.Generator):
        """Training ``(inputs, targets)``, pairs >= ``train_distance`` before their queries."""
        _check_batch(batch_size, generator)
        near = self.distance if self.train_distance is None else self.train_distance
        return self._draw(batch_size, generator, near)

    def val_batch(self, batch_size: int, generator: torch.Generator):
        """Validation ``(inputs, targets)``, pairs >= ``distance`` before their queries."""
        _check_batch(batch_size, generator)
        return self._draw(batch_size, generator, self.distance)

    def _draw(self, batch_size: int, generator: torch.Generator, distance: int):
        """``(inputs, targets)``, each ``LongTensor (batch_size, seq_len)``."""
        B, N, P, Q = batch_size, self.seq_len, self.n_pairs, self.n_queries
        query_id = self.n_keys * self.n_values  # first query-key id
        answer_id = query_id + self.n_keys  # first answer-value id
        filler = answer_id + self.n_values
        keys = torch.rand(B, self.n_keys, generator=generator).argsort(1)[:, :P]  # (B, P)
        values = torch.randint(self.n_values, (B, P), generator=generator)  # (B, P)
        asked = torch.rand(B, P, generator=generator).argsort(1)[:, :Q]  # (B, Q)
        q0 = N - 2 * Q  # position of the first query
        last_start = q0 - distance - P + 1  # latest start keeping the distance
        start = torch.randint(last_start + 1, (B, 1), generator=generator)  # (B, 1)
        x = torch.full((B, N), filler)
        rows = torch.arange(B).unsqueeze(1)  # (B, 1)
        x[rows, start + torch.arange(P)] = keys * self.n_values + values  # (B, P) pair tokens
        qpos = q0 + 2 * torch.arange(Q)  # (Q,) query positions
        x[:, qpos] = query_id + keys.gather(1, asked)  # (B, Q)
        x[:, qpos + 1] = answer_id + values.gather(1, asked)  # (B, Q)
        y = torch.full((B, N), IGNORE)
        y[:, qpos] = x[:, qpos + 1]  # the query's target is its answer token
        return x, y

    def sources(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Position of the pair token that answers each query (``-1`` where unscored).

        Examples
        --------
        >>> task = RecallTask(seq_len=24, n_pairs=2, n_queries=2, distance=12)
        >>> x, y = task.batch(1, torch.Generator().manual_seed(0))
        >>> src = task.sources(x, y)[0]
        >>> [int(x[0, j]) // task.n_values == int(x[0, i]) - 256 for i, j in enumerate(src)
        ...  if j >= 0]
        [True, True]
        """
        kv = self.n_keys * self.n_values
        key_at = torch.where(inputs < kv, inputs // self.n_values, -1)  # (B, N) key of a pair
        asked = (inputs - kv).clamp(min=0)  # (B, N) key asked by a query token
        match = key_at.unsqueeze(1) == asked.unsqueeze(2)  # (B, N_query, N_pair)
        src = match.to(torch.int8).argmax(2)  # (B, N) first matching pair position
        return torch.where(targets != IGNORE, src, -1)


@dataclass(frozen=True)
class InductionTask:
    """A random sequence repeated once; the repeat is scored.

    The input is ``s_0 .. s_{L-1} s_0 .. s_{L-1}`` (``L = seq_len // 2``,
    padded by one token when ``seq_len`` is odd). From position ``L`` on the
    next token is predictable by finding the previous occurrence of the
    current token and copying its successor, the induction-head mechanism
    (Olsson et al., 2022).

    Parameters
    ----------
    seq_len : int
        Model input length ``N`` (>= 4).
    n_symbols : int
        Alphabet size (>= 2); padding is ``n_symbols``.

    Examples
    --------
    >>> task = InductionTask(seq_len=8, n_symbols=5)
    >>> x, y = task.batch(1, torch.Generator().manual_seed(0))
    >>> bool((x[0, :4] == x[0, 4:]).all()), int((y != IGNORE).sum())
    (True, 3)
    """

    seq_len: int = 32  # model input length N
    n_symbols: int = 16  # alphabet

    def __post_init__(self) -> None:
        check_int(self.seq_len, "task.seq_len", low=4)
        check_int(self.n_symbols, "task.n_symbols", low=2)

    @property
    def vocab_size(self) -> int:
        """Symbols + padding."""
        return self.n_symbols + 1

    def batch(self, batch_size: int, generator: torch.Generator):
        """``(inputs, targets)``, each ``LongTensor (batch_size, seq_len)``."""
        _check_batch(batch_size, generator)
        half = self.seq_len // 2  # L
        s = torch.randint(self.n_symbols, (batch_size, half), generator=generator)  # (B, L)
        x = torch.cat([s, s], dim=1)  # (B, 2L)
        if x.shape[1] < self.seq_len:
            x = torch.cat([x, torch.full((batch_size, 1), self.n_symbols)], dim=1)  # (B, N)
        y = torch.full_like(x, IGNORE)
        y[:, half : 2 * half - 1] = x[:, half + 1 : 2 * half]  # next token of the repeat
        return x, y

    chance = None  # no single guess rate

    def val_batch(self, batch_size: int, generator: torch.Generator):
        """Validation ``(inputs, targets)``: drawn like :meth:`batch` (no held-out data)."""
        return self.batch(batch_size, generator)

    def sources(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Position of the first occurrence of each scored target (``-1`` where unscored)."""
        i = torch.arange(inputs.shape[1]).expand_as(inputs)  # (B, N)
        return torch.where(targets != IGNORE, i + 1 - self.seq_len // 2, -1)


@dataclass(frozen=True)
class CharLMTask:
    """Character-level language modelling on a shipped public-domain text.

    The text is split into a training part (the first ``1 - val_fraction``)
    and a validation part (the rest); :meth:`batch` samples random windows of
    the training part, :meth:`val_batch` of the validation part. Every
    position is scored (next character).

    Parameters
    ----------
    seq_len : int
        Model input length ``N``.
    text : str
        File name inside ``graphattn/experiments/data`` or a path to a UTF-8
        text file.
    val_fraction : float
        Share of the text kept for validation, in ``(0, 0.5]``.

    Raises
    ------
    ValueError
        If the file is missing or too short for ``seq_len``.

    Examples
    --------
    >>> task = CharLMTask(seq_len=16)
    >>> x, y = task.batch(2, torch.Generator().manual_seed(0))
    >>> x.shape, bool((x[:, 1:] == y[:, :-1]).all())
    (torch.Size([2, 16]), True)
    >>> task.decode(x[0]) == task.decode(x[0])
    True
    """

    seq_len: int = 64  # model input length N
    text: str = DEFAULT_TEXT  # shipped file name, or a path
    val_fraction: float = 0.1  # tail of the text kept for validation
    _data: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_int(self.seq_len, "task.seq_len", low=2)
        if not isinstance(self.val_fraction, (int, float)) or not 0 < self.val_fraction <= 0.5:
            raise ValueError(f"task.val_fraction must be in (0, 0.5], got {self.val_fraction!r}")
        path = self.path
        if not path.is_file():
            raise ValueError(f"task.text: no such file {str(path)!r}")
        raw = path.read_text(encoding="utf-8")
        n_val = int(len(raw) * self.val_fraction)
        if min(n_val, len(raw) - n_val) < self.seq_len + 1:
            raise ValueError(
                f"task.text: {len(raw)} characters are too few for task.seq_len {self.seq_len}"
            )
        ids = torch.tensor([self.alphabet.index(c) for c in raw], dtype=torch.long)
        object.__setattr__(self, "_data", ids)

    @property
    def path(self) -> Path:
        """The text file read."""
        shipped = DATA_DIR / self.text
        return shipped if shipped.is_file() else Path(self.text)

    @cached_property
    def alphabet(self) -> str:
        """The sorted distinct characters of the text; token ``t`` is ``alphabet[t]``."""
        return "".join(sorted(set(self.path.read_text(encoding="utf-8"))))

    @property
    def vocab_size(self) -> int:
        """Number of distinct characters."""
        return len(self.alphabet)

    def decode(self, ids: torch.Tensor) -> str:
        """Characters of a 1-d tensor of token ids."""
        return "".join(self.alphabet[int(t)] for t in ids)

    def _windows(self, data: torch.Tensor, batch_size: int, generator: torch.Generator):
        start = torch.randint(len(data) - self.seq_len, (batch_size, 1), generator=generator)
        idx = start + torch.arange(self.seq_len + 1)  # (B, N + 1)
        chunk = data[idx]  # (B, N + 1)
        return chunk[:, :-1], chunk[:, 1:]

    def batch(self, batch_size: int, generator: torch.Generator):
        """Training windows ``(inputs, targets)``, each ``LongTensor (batch_size, seq_len)``."""
        _check_batch(batch_size, generator)
        n_val = int(len(self._data) * self.val_fraction)
        return self._windows(self._data[: len(self._data) - n_val], batch_size, generator)

    def val_batch(self, batch_size: int, generator: torch.Generator):
        """Validation windows from the held-out tail of the text."""
        _check_batch(batch_size, generator)
        n_val = int(len(self._data) * self.val_fraction)
        return self._windows(self._data[len(self._data) - n_val :], batch_size, generator)

    chance = None  # no single guess rate

    def sources(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """None: every next character depends on the whole context, no single position."""
        return None


TASKS = {
    "copy": CopyTask,
    "recall": RecallTask,
    "induction": InductionTask,
    "char_lm": CharLMTask,
}
