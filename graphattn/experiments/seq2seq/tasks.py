"""Translation-like tasks for encoder-decoder experiments, generated offline, alignment known.

Every task is a frozen dataclass with ``src_vocab_size``, ``tgt_vocab_size``,
``max_src_len`` and ``max_tgt_len`` and two samplers, ``batch`` (training)
and ``val_batch`` (held-out validation), each ``(batch_size, generator) ->``
:class:`Seq2SeqBatch`. A batch depends only on its generator's state. Ids
0, 1, 2 are :data:`PAD`, :data:`BOS` and :data:`EOS` in both vocabularies.
For every target token the batch says which source token it translates
(``align``), so a model's cross-attention can be checked against it.

The tasks:

- :class:`ReorderTask`: a small synthetic language pair with a word-order
  change, English-like SVO with adjectives before nouns into a language
  with Spanish-like words in Japanese-like SOV order with adjectives after
  nouns (``big dog sees cat`` -> ``perro grande gato ve``). Word for word,
  so each target word translates exactly one source word, but not in order.
- :class:`MonotonicTask`: transliteration of letter strings, one target
  letter per source letter in the same order; some consonants' forms depend
  on the letter after them (``g`` is ``G``, but ``g`` before ``e`` or
  ``i``), so a target letter needs its source letter and that one's neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from graphattn._validate import check_int, check_number

__all__ = ["BOS", "EOS", "PAD", "SEQ2SEQ_TASKS", "MonotonicTask", "ReorderTask", "Seq2SeqBatch"]

PAD, BOS, EOS = 0, 1, 2  # special ids of both vocabularies
SPECIALS = ["<pad>", "<bos>", "<eos>"]


class Seq2SeqBatch(NamedTuple):
    """One batch of a translation task (``M``: source width, ``N``: target width)."""

    src: torch.Tensor  # (B, M) source ids, then EOS, then PAD
    tgt: torch.Tensor  # (B, N + 2) BOS, target ids, EOS, then PAD
    align: torch.Tensor  # (B, N + 1) source position translated by tgt[:, 1:]; -1 at padding


def _check_batch(batch_size: int, generator: object) -> None:
    check_int(batch_size, "batch_size", low=1)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")


def _pack(rows: list[tuple[list[int], list[int], list[int]]]) -> Seq2SeqBatch:
    """Pad ``(source ids, target ids, source position of each target)`` rows into a batch."""
    m = max(len(s) for s, _, _ in rows) + 1  # + EOS
    n = max(len(t) for _, t, _ in rows)
    src = torch.full((len(rows), m), PAD)
    tgt = torch.full((len(rows), n + 2), PAD)
    align = torch.full((len(rows), n + 1), -1)
    for b, (s, t, a) in enumerate(rows):
        src[b, : len(s) + 1] = torch.tensor([*s, EOS])
        tgt[b, : len(t) + 2] = torch.tensor([BOS, *t, EOS])
        align[b, : len(t) + 1] = torch.tensor([*a, len(s)])  # EOS translates the source EOS
    return Seq2SeqBatch(src, tgt, align)


SRC_NOUNS = ["cat", "dog", "bird", "fish", "man", "girl", "boy", "horse"]
TGT_NOUNS = ["gato", "perro", "pajaro", "pez", "hombre", "nina", "nino", "caballo"]
SRC_VERBS = ["sees", "likes", "eats", "finds", "chases", "helps"]
TGT_VERBS = ["ve", "quiere", "come", "encuentra", "persigue", "ayuda"]
SRC_ADJS = ["big", "small", "red", "old"]
TGT_ADJS = ["grande", "pequeno", "rojo", "viejo"]


class _Vocabularies:
    """Sizes and word lookups shared by the tasks, from their ``src_vocab``/``tgt_vocab``."""

    src_vocab: list[str]
    tgt_vocab: list[str]

    @property
    def src_vocab_size(self) -> int:
        return len(self.src_vocab)

    @property
    def tgt_vocab_size(self) -> int:
        return len(self.tgt_vocab)

    def src_words(self, ids: torch.Tensor) -> list[str]:
        """Words of source ids (padding dropped)."""
        return [self.src_vocab[int(t)] for t in ids if int(t) != PAD]

    def tgt_words(self, ids: torch.Tensor) -> list[str]:
        """Words of target ids (padding dropped)."""
        return [self.tgt_vocab[int(t)] for t in ids if int(t) != PAD]


@dataclass(frozen=True)
class ReorderTask(_Vocabularies):
    """Translate SVO sentences with adjectives before nouns into SOV with adjectives after.

    A source sentence is ``[adj] noun verb [adj] noun`` (each adjective
    present with probability ``p_adj``); its translation is ``noun [adj]
    noun [adj] verb``, each word replaced by its fixed counterpart
    (:data:`SRC_NOUNS` -> :data:`TGT_NOUNS` and so on; the first
    ``n_nouns`` nouns, ``n_verbs`` verbs, ``n_adjs`` adjectives are used).
    The verb moves from the middle to the end, the object one place forward,
    each adjective one place back.

    Validation holds out every sentence whose subject and object pair
    ``(s, o)`` has ``(s + 2 * o) % holdout == 0``: such pairs never occur in
    training, so exact-match validation accuracy measures translation of
    unseen sentences (each word, and each word in each role, is still seen).

    Parameters
    ----------
    n_nouns, n_verbs, n_adjs : int
        Vocabulary used, at most 8, 6 and 4 (defaults: all).
    p_adj : float
        Probability of each adjective, in ``[0, 1]`` (default 0.5).
    holdout : int
        Subject-object pairs kept for validation, one in ``holdout`` (>= 2, default 5).

    Examples
    --------
    >>> task = ReorderTask()
    >>> b = task.val_batch(1, torch.Generator().manual_seed(1))
    >>> " ".join(task.src_words(b.src[0]))
    'small bird sees red man <eos>'
    >>> " ".join(task.tgt_words(b.tgt[0]))
    '<bos> pajaro pequeno hombre rojo ve <eos>'
    >>> b.align[0].tolist()  # source position of each target token after <bos>
    [1, 0, 4, 3, 2, 5]
    """

    n_nouns: int = 8  # nouns used (<= 8); subject and object are drawn from them
    n_verbs: int = 6  # verbs used (<= 6)
    n_adjs: int = 4  # adjectives used (<= 4)
    p_adj: float = 0.5  # probability of each of the two adjectives
    holdout: int = 5  # one subject-object pair in `holdout` is kept for validation

    def __post_init__(self) -> None:
        check_int(self.n_nouns, "task.n_nouns", low=2, high=len(SRC_NOUNS))
        check_int(self.n_verbs, "task.n_verbs", low=1, high=len(SRC_VERBS))
        check_int(self.n_adjs, "task.n_adjs", low=1, high=len(SRC_ADJS))
        check_number(self.p_adj, "task.p_adj", low=0.0, high=1.0)
        check_int(self.holdout, "task.holdout", low=2)

    @property
    def src_vocab(self) -> list[str]:
        """Source words by id (specials first)."""
        return SPECIALS + SRC_NOUNS[: self.n_nouns] + SRC_VERBS[: self.n_verbs] + SRC_ADJS[
            : self.n_adjs
        ]

    @property
    def tgt_vocab(self) -> list[str]:
        """Target words by id (specials first); id ``k`` translates source id ``k``."""
        return SPECIALS + TGT_NOUNS[: self.n_nouns] + TGT_VERBS[: self.n_verbs] + TGT_ADJS[
            : self.n_adjs
        ]

    @property
    def max_src_len(self) -> int:
        """Longest source, EOS included."""
        return 6

    @property
    def max_tgt_len(self) -> int:
        """Longest decoder input or output (BOS or EOS included)."""
        return 6

    def _sentence(self, g: torch.Generator, val: bool) -> tuple[list[int], list[int], list[int]]:
        """Source ids, target ids and the source position of each target word."""
        noun0, verb0, adj0 = 3, 3 + self.n_nouns, 3 + self.n_nouns + self.n_verbs
        while True:
            s, o = torch.randint(self.n_nouns, (2,), generator=g).tolist()
            if ((s + 2 * o) % self.holdout == 0) == val:
                break
        v = int(torch.randint(self.n_verbs, (1,), generator=g))
        adjs = torch.randint(self.n_adjs, (2,), generator=g).tolist()
        has = (torch.rand(2, generator=g) < self.p_adj).tolist()
        subj = ([adj0 + adjs[0]] if has[0] else []) + [noun0 + s]  # [adj] noun
        obj = ([adj0 + adjs[1]] if has[1] else []) + [noun0 + o]
        src = subj + [verb0 + v] + obj
        pos_s = list(range(len(subj)))  # source positions of the subject phrase
        pos_v = len(subj)
        pos_o = list(range(pos_v + 1, len(src)))
        tgt_pos = pos_s[::-1] + pos_o[::-1] + [pos_v]  # noun [adj] noun [adj] verb
        return src, [src[j] for j in tgt_pos], tgt_pos

    def batch(self, batch_size: int, generator: torch.Generator) -> Seq2SeqBatch:
        """Training sentences (held-out subject-object pairs excluded)."""
        _check_batch(batch_size, generator)
        return _pack([self._sentence(generator, False) for _ in range(batch_size)])

    def val_batch(self, batch_size: int, generator: torch.Generator) -> Seq2SeqBatch:
        """Validation sentences: held-out subject-object pairs only."""
        _check_batch(batch_size, generator)
        return _pack([self._sentence(generator, True) for _ in range(batch_size)])


CONSONANTS = "bcdgklmnprst"
VOWELS = "aeiou"
FRONT = "ei"  # vowels that change the consonant before them


@dataclass(frozen=True)
class MonotonicTask(_Vocabularies):
    """Transliterate letter strings, letter by letter, with a context rule.

    The source is a string of ``min_len`` to ``max_len`` letters (consonants
    and vowels alternating from a random start, so every consonant has a
    vowel or the end after it). Vowel ``v`` becomes upper-case ``V``; the
    first ``n_soft`` consonants have two forms, ``"{c}"`` before a front
    vowel (``e``, ``i``) and ``"{C}"`` elsewhere (``ce`` -> ``cE``, ``ca``
    -> ``CA``); the other consonants one form, ``"{C}"``. Target letter ``i``
    translates source letter ``i``: the alignment is the diagonal, but a
    soft consonant's form needs the letter after its source too.
    Validation strings are drawn from a separate generator; with 17 letters
    and lengths 4 to 8 most are not in training.

    Parameters
    ----------
    min_len, max_len : int
        Source length range, ``2 <= min_len <= max_len <= 16`` (defaults 4 and 8).
    n_soft : int
        Consonants with a soft form, ``0..12`` (default 4: ``b c d g``).

    Examples
    --------
    >>> task = MonotonicTask(min_len=4, max_len=4)
    >>> b = task.batch(1, torch.Generator().manual_seed(6))
    >>> "".join(task.src_words(b.src[0])[:-1]), " ".join(task.tgt_words(b.tgt[0])[1:-1])
    ('gisi', 'g I S I')
    >>> b.align[0].tolist()
    [0, 1, 2, 3, 4]
    """

    min_len: int = 4  # shortest source string
    max_len: int = 8  # longest source string (<= 16)
    n_soft: int = 4  # consonants whose form depends on the next letter (the first n_soft)

    def __post_init__(self) -> None:
        check_int(self.min_len, "task.min_len", low=2, high=16)
        check_int(self.max_len, "task.max_len", low=self.min_len, high=16)
        check_int(self.n_soft, "task.n_soft", low=0, high=len(CONSONANTS))

    @property
    def src_vocab(self) -> list[str]:
        """Source letters by id (specials first)."""
        return SPECIALS + list(CONSONANTS + VOWELS)

    @property
    def tgt_vocab(self) -> list[str]:
        """Target forms by id: upper-case letters, then the soft forms."""
        return SPECIALS + list((CONSONANTS + VOWELS).upper()) + list(CONSONANTS[: self.n_soft])

    @property
    def max_src_len(self) -> int:
        return self.max_len + 1

    @property
    def max_tgt_len(self) -> int:
        return self.max_len + 1

    def _string(self, g: torch.Generator) -> tuple[list[int], list[int], list[int]]:
        length = int(torch.randint(self.min_len, self.max_len + 1, (1,), generator=g))
        vowel_first = bool(torch.rand(1, generator=g) < 0.5)
        letters = []
        for k in range(length):
            pool = VOWELS if (k % 2 == 0) == vowel_first else CONSONANTS
            letters.append(pool[int(torch.randint(len(pool), (1,), generator=g))])
        soft0 = 3 + len(CONSONANTS) + len(VOWELS)
        src = [3 + (CONSONANTS + VOWELS).index(c) for c in letters]
        tgt = []
        for k, c in enumerate(letters):
            nxt = letters[k + 1] if k + 1 < length else ""
            soft = c in CONSONANTS[: self.n_soft] and nxt in FRONT and nxt != ""
            tgt.append(soft0 + CONSONANTS.index(c) if soft else src[k])
        return src, tgt, list(range(length))

    def batch(self, batch_size: int, generator: torch.Generator) -> Seq2SeqBatch:
        """Training strings."""
        _check_batch(batch_size, generator)
        return _pack([self._string(generator) for _ in range(batch_size)])

    def val_batch(self, batch_size: int, generator: torch.Generator) -> Seq2SeqBatch:
        """Validation strings (the same distribution; the runner gives them their own seed)."""
        return self.batch(batch_size, generator)


SEQ2SEQ_TASKS = {"reorder": ReorderTask, "monotonic": MonotonicTask}
