"""What a sparse graph costs a causal language model: :func:`perplexity`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from graphattn._validate import check_int

__all__ = ["perplexity"]


def _ids(tokenizer: Any, text: Any) -> torch.Tensor:
    """The text's token ids as a ``(T,)`` LongTensor."""
    if tokenizer is None:
        ids = torch.as_tensor(text)
    else:
        ids = torch.as_tensor(tokenizer(text, return_tensors="pt")["input_ids"])
    ids = ids.reshape(-1) if ids.dim() == 2 and ids.shape[0] == 1 else ids
    if ids.dim() != 1 or ids.dtype != torch.long or ids.numel() < 2:
        raise ValueError(
            f"text must tokenize to at least 2 ids in one sequence, got {tuple(ids.shape)} "
            f"of dtype {ids.dtype}"
        )
    return ids


def perplexity(
    model: Any,
    tokenizer: Any,
    text: Any,
    graphs: Mapping[str, Any],
    *,
    max_length: int | None = None,
) -> dict[str, float]:
    """Perplexity of a causal LM on ``text`` under each token graph.

    The text is cut into consecutive chunks of ``max_length`` tokens; each
    chunk runs with ``token_graph=graph`` and the next-token losses of all
    chunks are averaged (chunks shorter than 2 tokens are dropped).

    Parameters
    ----------
    model : transformers causal LM with ``attn_implementation="graphattn"``
        Called as ``model(input_ids=..., labels=..., token_graph=...)``.
    tokenizer : transformers tokenizer or None
        Called as ``tokenizer(text, return_tensors="pt")``; None when ``text``
        already holds token ids.
    text : str or LongTensor (T,)
        The text (or its ids).
    graphs : mapping of name -> graph
        ``None`` (the model's own graph), a ``TokenGraph``, a callable
        ``n -> TokenGraph`` or a per-layer list, as ``token_graph`` takes them.
    max_length : int, optional
        Tokens per chunk; default the whole text in one chunk.

    Returns
    -------
    dict of name -> float
        ``exp(mean next-token negative log-likelihood)`` per graph.

    Raises
    ------
    TypeError
        If ``graphs`` is not a mapping or ``max_length`` not an int.
    ValueError
        If the text has fewer than 2 tokens or ``max_length < 2``.

    Examples
    --------
    >>> class Uniform(torch.nn.Module):  # a model that knows nothing: perplexity = vocabulary
    ...     def forward(self, input_ids, labels, token_graph=None):
    ...         logits = torch.zeros(*input_ids.shape, 10)
    ...         loss = torch.nn.functional.cross_entropy(logits[0, :-1], labels[0, 1:])
    ...         return type("Out", (), {"loss": loss})()
    >>> perplexity(Uniform(), None, torch.arange(6), {"full": None}, max_length=3)
    {'full': 10.0}
    """
    if not isinstance(graphs, Mapping):
        raise TypeError(f"graphs must be a mapping name -> graph, got {type(graphs).__name__}")
    ids = _ids(tokenizer, text)
    size = ids.numel() if max_length is None else check_int(max_length, "max_length", low=2)
    device = next(iter(model.parameters()), torch.empty(0)).device
    chunks = [c for c in ids.split(size) if c.numel() >= 2]
    results = {}
    for name, graph in graphs.items():
        total, count = 0.0, 0
        for chunk in chunks:
            x = chunk.unsqueeze(0).to(device)  # (1, n)
            with torch.no_grad():
                loss = model(input_ids=x, labels=x, token_graph=graph).loss
            total += float(loss) * (chunk.numel() - 1)
            count += chunk.numel() - 1
        results[name] = math.exp(total / count)
    return results
