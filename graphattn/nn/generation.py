"""Greedy and beam-search decoding over any next-token scorer.

Both functions drive a :class:`Stepper`: an object that gives the logits of
the next token for every sequence so far and can keep only some of its rows
(the surviving beams). :class:`~graphattn.nn.GraphSeq2Seq` builds one per
call of ``generate``, with or without a key/value cache.
"""

from __future__ import annotations

from typing import Protocol

import torch

from graphattn._validate import check_int, check_positive_int

__all__ = ["Stepper", "beam_search", "greedy_search"]


class Stepper(Protocol):
    """What the decoding loops need from a model."""

    def next_logits(self, seqs: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, V)`` of the token after ``seqs (B, T)``."""

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows ``index`` of every per-sequence state (in that order)."""


def _check_search(
    stepper: object, methods: tuple[str, ...], batch: object, bos_id: object, eos_id: object,
    pad_id: object,
) -> None:
    """The arguments both searches share: a stepper with ``methods``, a batch size, three ids."""
    for method in methods:
        if not callable(getattr(stepper, method, None)):
            raise TypeError(
                f"stepper must have a {method}() method (a Stepper), got {type(stepper).__name__}"
            )
    check_positive_int(batch, "batch")
    for name, value in (("bos_id", bos_id), ("eos_id", eos_id), ("pad_id", pad_id)):
        check_int(value, name)


def greedy_search(
    stepper: Stepper, batch: int, *, max_new_tokens: int, bos_id: int, eos_id: int, pad_id: int
) -> torch.Tensor:
    """Pick the most likely token at every step until each sequence has emitted ``eos_id``.

    Returns
    -------
    LongTensor ``(B, T)``
        The tokens after ``bos_id``, ``T <= max_new_tokens``; ``pad_id``
        after a sequence's ``eos_id``.

    Examples
    --------
    >>> class Count:  # always prefers the token after the last one
    ...     def next_logits(self, seqs):
    ...         return torch.nn.functional.one_hot(seqs[:, -1] + 1, 6).float()
    ...     def reorder(self, index):
    ...         pass
    >>> greedy_search(Count(), 2, max_new_tokens=5, bos_id=1, eos_id=4, pad_id=0).tolist()
    [[2, 3, 4], [2, 3, 4]]
    """
    _check_search(stepper, ("next_logits",), batch, bos_id, eos_id, pad_id)
    check_positive_int(max_new_tokens, "max_new_tokens")
    seqs = torch.full((batch, 1), bos_id, dtype=torch.long)  # (B, 1)
    done = torch.zeros(batch, dtype=torch.bool)  # (B,)
    for _ in range(max_new_tokens):
        tok = stepper.next_logits(seqs).argmax(-1).cpu().masked_fill(done, pad_id)  # (B,)
        seqs = torch.cat([seqs, tok[:, None]], dim=1)  # (B, T + 1)
        done |= tok == eos_id
        if done.all():
            break
    return seqs[:, 1:]


def beam_search(
    stepper: Stepper,
    batch: int,
    *,
    num_beams: int,
    max_new_tokens: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
) -> torch.Tensor:
    """The most likely sequence (sum of log-probabilities) found by beam search.

    Keeps the ``num_beams`` best prefixes per batch element; a finished
    prefix (ended by ``eos_id``) keeps its score and competes with the
    running ones, so ``num_beams=1`` is :func:`greedy_search`. No length
    penalty. The stepper is first reordered to hold ``num_beams`` copies of
    each batch row.

    Returns
    -------
    LongTensor ``(B, T)``
        As :func:`greedy_search`: the best beam's tokens after ``bos_id``.

    Raises
    ------
    TypeError, ValueError
        If ``num_beams`` or ``max_new_tokens`` is not a positive int.

    Examples
    --------
    >>> class Fixed:  # after bos: token 2 (p=.6) leads nowhere good; 3 (p=.4) then eos surely
    ...     def next_logits(self, seqs):
    ...         last = seqs[:, -1:]
    ...         p = torch.where(last == 1, torch.tensor([0, 0, .6, .4, 0]),
    ...             torch.where(last == 2, torch.tensor([0, 0, .5, 0, .5]),
    ...                         torch.tensor([0, 0, 0, 0, 1.])))
    ...         return p.clamp_min(1e-9).log()
    ...     def reorder(self, index):
    ...         pass
    >>> kw = dict(max_new_tokens=3, bos_id=1, eos_id=4, pad_id=0)
    >>> greedy_search(Fixed(), 1, **kw).tolist()
    [[2, 2, 2]]
    >>> beam_search(Fixed(), 1, num_beams=2, **kw).tolist()  # stops: every beam has ended
    [[3, 4]]
    """
    _check_search(stepper, ("next_logits", "reorder"), batch, bos_id, eos_id, pad_id)
    k = check_positive_int(num_beams, "num_beams")
    check_positive_int(max_new_tokens, "max_new_tokens")
    stepper.reorder(torch.arange(batch).repeat_interleave(k))  # B*K rows, beams of a row together
    seqs = torch.full((batch * k, 1), bos_id, dtype=torch.long)  # (B*K, 1)
    scores = torch.full((batch, k), -torch.inf)
    scores[:, 0] = 0.0  # one live beam at the start: the others would only repeat it
    done = torch.zeros(batch * k, dtype=torch.bool)  # (B*K,)
    first_row = torch.arange(batch)[:, None] * k  # (B, 1)
    for _ in range(max_new_tokens):
        logp = torch.log_softmax(stepper.next_logits(seqs).float().cpu(), dim=-1)  # (B*K, V)
        vocab = logp.shape[-1]
        logp[done] = -torch.inf
        logp[done, pad_id] = 0.0  # a finished beam only pads, at no cost
        cand = (scores.reshape(-1, 1) + logp).reshape(batch, k * vocab)  # (B, K*V)
        scores, idx = cand.topk(k, dim=-1)  # (B, K)
        rows = (first_row + idx // vocab).flatten()  # (B*K,) beam each new one extends
        tok = (idx % vocab).flatten()  # (B*K,)
        seqs = torch.cat([seqs[rows], tok[:, None]], dim=1)  # (B*K, T + 1)
        done = done[rows] | (tok == eos_id)
        stepper.reorder(rows)
        if done.all():
            break
    return seqs.reshape(batch, k, -1)[:, 0, 1:]
