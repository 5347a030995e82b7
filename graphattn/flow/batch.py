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

A drawing shows one example: the functions of :mod:`graphattn.plot` take
the same batched layers (and batched results) with an ``example=`` keyword
that :func:`select_example` and :func:`check_example` read, the same rule
everywhere: ``example=b`` picks example ``b``, and left out it picks the
only example of a batch of one; a larger batch without it is a
``ValueError`` that names the batch size.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch

from graphattn._validate import check_int
from graphattn.graph import TokenGraph

__all__ = [
    "check_example",
    "check_pairs",
    "edge_batch",
    "layers_batch",
    "per_example",
    "select_example",
    "split_examples",
]


def check_pairs(layers: Any, name: str = "layers") -> None:
    """``TypeError`` unless ``layers`` is a sequence of ``(TokenGraph, weights)`` pairs.

    Examples
    --------
    >>> check_pairs([(TokenGraph([[0], [0]]), torch.ones(1))])
    >>> check_pairs(None)
    Traceback (most recent call last):
        ...
    TypeError: layers must be a sequence of (graph, weights) pairs, got NoneType
    """
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise TypeError(
            f"{name} must be a sequence of (graph, weights) pairs, got {type(layers).__name__}"
        )
    for k, pair in enumerate(layers):
        if not (
            isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[0], TokenGraph)
        ):
            raise TypeError(f"{name}[{k}] must be a (graph, weights) pair, got {pair!r:.80}")


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


def layers_batch(layers: Any, name: str = "layers") -> int | None:
    """The batch size ``B`` shared by every entry of ``layers``, or None for one example.

    ``layers`` is a sequence of ``(graph, weights[, ...])`` entries. Anything
    malformed counts as unbatched (the caller's own checks name it), but a
    mix of batched and unbatched layers, of batch sizes, or a batch of 0 is
    a ``ValueError``.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> layers_batch([(g, torch.ones(3))]), layers_batch([(g, torch.ones(2, 3, 4))] * 2)
    (None, 2)
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
    return first


def split_examples(
    layers: Any, name: str = "layers", dropped: Any = None
) -> list[tuple[list, Any]] | None:
    """``[(layers_b, dropped_b), ...]`` for batched layers, None for one example.

    ``layers`` is a sequence of ``(graph, weights[, grad])`` entries; each
    example's entries hold ``weights[b]`` (and ``grad[b]``), and its
    ``dropped`` holds ``dropped[l][b]`` (``(B, N)`` or ``(B, N, H)``) for
    every layer ``l`` that has one.
    Anything malformed is left for the flow function's own checks, except
    what :func:`layers_batch` refuses.
    """
    size = layers_batch(layers, name)
    if size is None:
        return None
    return [(_example(layers, b), _example_dropped(dropped, b)) for b in range(size)]


def per_example(combine: Callable[[list], Any]) -> Callable[[Callable], Callable]:
    """Decorate a flow function of ``layers`` to run once per example of batched layers.

    The decorated function's ``layers`` (and ``dropped``, where it takes one)
    are split by :func:`split_examples`; every other argument reaches each
    example's call as it was given, so no option is lost on the way. The
    results are ``combine``-d: ``torch.stack`` for tensors, ``list`` for
    objects. Unbatched layers go to the function as they are.

    Examples
    --------
    >>> @per_example(torch.stack)
    ... def total(layers, *, scale=1.0):
    ...     return sum(w.sum() for _, w in layers) * scale
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> total([(g, torch.ones(2, 3))], scale=2.0)  # a batch of two examples
    tensor([6., 6.])
    """

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn)
        takes_dropped = "dropped" in signature.parameters

        @functools.wraps(fn)
        def run(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            given = bound.arguments
            examples = split_examples(given["layers"], dropped=given.get("dropped"))
            if examples is None:
                return fn(*args, **kwargs)
            results = []
            for layers, dropped in examples:
                given["layers"] = layers
                if takes_dropped:
                    given["dropped"] = dropped
                results.append(fn(*bound.args, **bound.kwargs))
            return combine(results)

        return run

    return decorate


def check_example(example: Any, size: int | None, what: str = "layers") -> int | None:
    """``example`` as an index into a batch of ``size`` (None: ``what`` is one example).

    Parameters
    ----------
    example : int or None
        The example asked for; negative indices count from the end.
    size : int or None
        The batch size of ``what``; None when it has no batch dimension.
    what : str
        The argument holding the batch, for messages.

    Returns
    -------
    int or None
        The index in ``[0, size)``; None for an unbatched ``what`` (where
        ``example`` may be left out or be 0, a batch of one).

    Raises
    ------
    TypeError, ValueError
        For a non-integer ``example``, one out of range, one other than 0
        for an unbatched ``what``, none for a batch of more than one, or an
        empty batch.

    Examples
    --------
    >>> check_example(None, 1), check_example(-1, 3), check_example(None, None)
    (0, 2, None)
    >>> check_example(None, 3)
    Traceback (most recent call last):
    ...
    ValueError: layers hold a batch of 3 examples; pass example=b with 0 <= b < 3 to choose one
    """
    if example is not None:
        example = check_int(example, "example")
    if size is None:
        if example not in (None, 0):
            raise ValueError(
                f"example={example} picks from a batch, but {what} hold one example "
                "(no batch dimension); leave example out"
            )
        return None
    if size == 0:
        raise ValueError(f"{what} hold a batch of 0 examples")
    if example is None:
        if size == 1:
            return 0
        raise ValueError(
            f"{what} hold a batch of {size} examples; pass example=b with 0 <= b < {size} "
            "to choose one"
        )
    if not -size <= example < size:
        raise ValueError(
            f"example must be in [-{size}, {size}) for the batch of {size} in {what}, "
            f"got {example}"
        )
    return example % size


def select_example(layers: Any, example: Any = None, name: str = "layers") -> Any:
    """One example's layers: ``layers`` itself when unbatched, else example ``example``'s entries.

    Every tensor after the graph of each entry is indexed at the example
    (the weights, a gradient); :func:`check_example` checks ``example``.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> w = torch.arange(6.0).reshape(2, 3)          # (B, E): two examples
    >>> select_example([(g, w)], example=1)[0][1]
    tensor([3., 4., 5.])
    >>> select_example([(g, w[0])])[0][1]            # one example: as given
    tensor([0., 1., 2.])
    """
    b = check_example(example, layers_batch(layers, name), name)
    return layers if b is None else _example(layers, b)


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
