"""Token labels from a tokenizer's output, for drawings and flows: :func:`token_labels`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from graphattn._validate import check_int
from graphattn.flow.batch import check_pairs
from graphattn.graph import TokenGraph

__all__ = ["label_layers", "token_labels"]


def token_labels(tokenizer: Any, encoding: Any, example: int = 0) -> list[str]:
    """The token strings of one example of a tokenizer's output, one per column.

    Parameters
    ----------
    tokenizer : transformers tokenizer
        Anything with ``convert_ids_to_tokens``.
    encoding : Mapping with ``input_ids``, or a LongTensor (B, N) or (N,)
        What the tokenizer returned (``tokenizer(texts, return_tensors="pt")``).
    example : int
        Index into the batch.

    Returns
    -------
    list of str
        Labels for the ``N`` columns, padding included (graphs cover them).

    Raises
    ------
    ValueError
        If ``example`` is not an index into the batch or the ids are not
        ``(B, N)`` or ``(N,)``.

    Examples
    --------
    >>> class Chars:
    ...     def convert_ids_to_tokens(self, ids): return [chr(96 + i) for i in ids]
    >>> token_labels(Chars(), {"input_ids": torch.tensor([[1, 2, 3]])})
    ['a', 'b', 'c']
    """
    ids = encoding["input_ids"] if isinstance(encoding, Mapping) else encoding
    ids = torch.as_tensor(ids)
    if ids.dim() == 2:
        example = check_int(example, "example")
        if not -ids.shape[0] <= example < ids.shape[0]:
            raise ValueError(
                f"example must be an index into the batch of {ids.shape[0]}, got {example}"
            )
        ids = ids[example]
    if ids.dim() != 1:
        raise ValueError(f"input_ids must be (B, N) or (N,), got {tuple(ids.shape)}")
    return [str(t) for t in tokenizer.convert_ids_to_tokens(ids.tolist())]


def label_layers(
    layers: Sequence[tuple[TokenGraph, torch.Tensor]],
    tokens: Sequence[str],
    src_tokens: Sequence[str] | None = None,
) -> list[tuple[TokenGraph, torch.Tensor]]:
    """The same ``(graph, weights)`` pairs with labelled graphs.

    ``src_tokens`` labels the sources of cross graphs (the encoder's tokens).

    Raises
    ------
    TypeError
        If ``tokens`` or ``src_tokens`` is a string rather than a sequence of
        labels (one per token).

    Examples
    --------
    >>> layers = [(TokenGraph([[0], [1]]), torch.ones(1, 2))]
    >>> label_layers(layers, ["a", "b"])[0][0].tokens
    ['a', 'b']
    """
    check_pairs(layers)
    for name, labels in (("tokens", tokens), ("src_tokens", src_tokens)):
        if labels is None and name == "src_tokens":
            continue
        if isinstance(labels, (str, bytes, Mapping)) or not isinstance(labels, Iterable):
            got = "the string" if isinstance(labels, (str, bytes)) else type(labels).__name__
            raise TypeError(
                f"{name} must be a sequence of labels, one per token (e.g. token_labels(...)), "
                f"got {got} {labels!r:.80}"
            )
    return [
        (g.with_tokens(list(tokens), list(src_tokens) if g.is_cross and src_tokens else None), w)
        for g, w in layers
    ]
