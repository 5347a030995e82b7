"""Value Zeroing by copies of the input: a few sources per batched pass, never all ``M + 1`` copies.

The path for models whose layers :mod:`graphattn.hf.blocks` does not read
(and for encoder-decoders): a pass runs ``1 + S`` copies of each example,
copy 0 intact and copy ``r`` with source ``k0 + r - 1``'s value vector
zeroed in the attention call a rule picks, and compares each zeroed copy's
layer output with the intact copy of the same pass (the same batch, so
their difference is the zeroing and not a change of batch shape).
:data:`COPY_TOKENS` bounds the tokens of one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from graphattn.flow.decompose import cosine_distance

__all__ = ["COPY_TOKENS", "source_chunks", "zeroed_distances", "zeroed_rows"]

COPY_TOKENS = 2**14  # tokens of one batched pass of copies (all examples, all copies)


def source_chunks(sources: int, tokens: int) -> Iterator[tuple[int, int]]:
    """Ranges ``(k0, k1)`` of sources, each zeroed in one pass of ``1 + k1 - k0`` copies.

    ``tokens`` is what one copy of the batch holds (``B`` times its
    lengths); a pass holds at most :data:`COPY_TOKENS` of them, and at
    least one zeroed copy.

    Examples
    --------
    >>> list(source_chunks(5, 2**12))  # 4 copies fit: the intact one and 3 sources
    [(0, 3), (3, 5)]
    """
    size = max(1, COPY_TOKENS // max(1, tokens) - 1)
    for k0 in range(0, sources, size):
        yield k0, min(sources, k0 + size)


def zeroed_rows(rows: int, sources: int, k0: int, size: int) -> torch.Tensor:
    """``(rows, sources)`` bool: copy ``r % (size + 1)`` of each example zeroes ``k0 + r - 1``.

    Copy 0 zeroes nothing. Rows are examples times copies, copies innermost
    (``repeat_interleave``).

    Examples
    --------
    >>> zeroed_rows(3, 4, 2, 2).int()  # one example: intact, source 2, source 3
    tensor([[0, 0, 0, 0],
            [0, 0, 1, 0],
            [0, 0, 0, 1]], dtype=torch.int32)
    """
    drop = torch.zeros(rows, sources, dtype=torch.bool)  # (rows, M)
    k = torch.arange(rows) % (size + 1) - 1  # (rows,) the source each copy zeroes, -1: none
    hit = k >= 0
    drop[hit.nonzero().squeeze(1), k0 + k[hit]] = True
    return drop


def zeroed_distances(
    run: Callable[[dict[str, torch.Tensor], int, int], torch.Tensor],
    inputs: dict[str, torch.Tensor],
    sources: int,
) -> torch.Tensor:
    """``1 - cos`` of each target's layer output with each source zeroed, ``(B, M, N)``.

    ``run(copies, k0, size)`` runs the model on ``copies`` (every input
    repeated ``1 + size`` times per example) with the rule
    :func:`zeroed_rows` ``(rows, M, k0, size)`` in the explained attention
    call, and returns that layer's output ``(B (1 + size), N, C)``.
    """
    b = inputs["input_ids"].shape[0]
    tokens = sum(v.shape[0] * v.shape[-1] for k, v in inputs.items() if k.endswith("input_ids"))
    parts = []
    for k0, k1 in source_chunks(sources, tokens):
        size = k1 - k0
        copies = {k: v.repeat_interleave(1 + size, 0) for k, v in inputs.items()}
        h = run(copies, k0, size).unflatten(0, (b, 1 + size))  # (B, 1 + S, N, C)
        parts.append(cosine_distance(h[:, 1:], h[:, :1]))  # (B, S, N)
    return torch.cat(parts, 1)  # (B, M, N)
