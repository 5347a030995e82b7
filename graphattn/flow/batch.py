"""The batch rule of flow: weights with a leading batch dimension, one result per example.

Every function of :mod:`graphattn.flow` that takes layers accepts, besides
``(E,)`` and ``(E, H)`` weights, a batch of them: ``(B, E)`` or ``(B, E, H)``,
as :func:`graphattn.hf.record` and :func:`graphattn.flow.contributions` hold
them. A 2-D tensor is read against the graph's edge count ``E``:

- ``(E, H)`` (one example) when its first dimension is ``E``, also when its
  second is ``E`` too (``B == E``: pass ``(B, E, 1)`` to mean a batch);
- ``(B, E)`` (a batch of single-head weights) when only its second
  dimension is ``E``.

All layers of one call are batched alike (the same ``B``) or not at all.
Tensor results are stacked along a new leading dimension (``(B, ...)``);
results that are Python objects (paths, graphs) come as a list with one
entry per example.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from graphattn.graph import TokenGraph

__all__ = ["edge_batch", "split_examples"]


def edge_batch(weights: Any, graph: TokenGraph) -> int | None:
    """The batch size of per-edge ``weights`` by the batch rule, or None for one example.

    Parameters
    ----------
    weights : Tensor
        ``(E,)``, ``(E, H)``, ``(B, E)`` or ``(B, E, H)`` in ``graph.edge_index`` order.
    graph : TokenGraph
        The graph the weights belong to (its ``num_edges`` decides 2-D shapes).

    Returns
    -------
    int or None
        ``B`` for ``(B, E, H)`` and for a 2-D ``(B, E)`` whose first dimension
        is not ``E``; None otherwise (also for anything that is not such a
        tensor: the flow functions' own checks name what is wrong with it).

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])   # E = 3
    >>> edge_batch(torch.ones(3, 4), g), edge_batch(torch.ones(2, 3), g)
    (None, 2)
    >>> edge_batch(torch.ones(3, 3), g), edge_batch(torch.ones(3, 3, 1), g)  # (E, H) wins
    (None, 3)
    """
    if not isinstance(weights, torch.Tensor) or not isinstance(graph, TokenGraph):
        return None
    e = graph.num_edges
    if weights.dim() == 3 and weights.shape[1] == e:
        return weights.shape[0]
    if weights.dim() == 2 and weights.shape[0] != e and weights.shape[1] == e:
        return weights.shape[0]
    return None


def split_examples(
    layers: Any, name: str = "layers", dropped: Any = None
) -> list[tuple[list, Any]] | None:
    """``[(layers_b, dropped_b), ...]`` for batched layers, None for one example.

    ``layers`` is a sequence of ``(graph, weights[, grad])`` entries; each
    example's entries hold ``weights[b]`` (and ``grad[b]``), and its
    ``dropped`` holds ``dropped[l][b]`` (``(B, N)`` or ``(B, N, H)``) for
    every layer ``l`` that has one.
    Anything malformed is left for the flow function's own checks, except a
    mix of batched and unbatched layers or of batch sizes.
    """
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        return None
    sizes = [_entry_batch(item) for item in layers]
    batched = [(l, b) for l, b in enumerate(sizes) if b is not None]
    if not batched:
        return None
    first = batched[0][1]
    for l, b in enumerate(sizes):
        if b != first:
            raise ValueError(
                f"{name}[{l}] has batch size {b} but {name}[{batched[0][0]}] has {first} "
                "(None: one example); batch all layers alike"
            )
    if first == 0:
        raise ValueError(f"{name} holds a batch of 0 examples")
    return [(_example(layers, b), _example_dropped(dropped, b)) for b in range(first)]


def _entry_batch(item: Any) -> int | None:
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        return None
    return edge_batch(item[1], item[0])


def _example(layers: Sequence[Any], b: int) -> list[tuple]:
    """Example ``b``'s entries: every tensor after the graph indexed at ``b``."""
    return [
        (item[0], *(t[b] if isinstance(t, torch.Tensor) else t for t in item[1:]))
        for item in layers
    ]


def _example_dropped(dropped: Any, b: int) -> Any:
    if isinstance(dropped, (str, bytes)) or not isinstance(dropped, Sequence):
        return dropped  # None, or malformed: the flow function's checks name it
    return [d[b] if isinstance(d, torch.Tensor) and d.dim() > 0 else d for d in dropped]
