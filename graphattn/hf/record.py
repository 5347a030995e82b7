"""Recording the per-edge weights of every attention call: :func:`record`.

Weights are returned by the attention function to whoever asked for them,
never kept on a model: a :class:`Recording` is the caller's own object,
filled only inside its ``with`` block.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from graphattn._validate import check_int
from graphattn.graph import TokenGraph

__all__ = ["RecordedCall", "Recording", "active_recordings", "record"]

_ACTIVE = threading.local()  # .stack: the recordings open in this thread


@dataclass(frozen=True)
class RecordedCall:
    """One attention call: its kind, layer, graph and weights ``(B, E, H)``."""

    cross: bool  # cross-attention (decoder tokens read encoder tokens)
    decoder: bool  # part of a decoder (causal self-attention or cross-attention)
    layer: int | None  # the module's layer_idx
    module: str  # the attention module's class name
    graph: TokenGraph
    weights: torch.Tensor  # (B, E, H), zero where example b's key is padding


@dataclass
class Recording:
    """The attention calls made inside a :func:`record` block, in call order.

    ``self_attention`` and ``cross_attention`` hold ``(graph, weights)``
    pairs with ``weights (B, E, H)`` in ``graph.edge_index`` order;
    ``calls`` holds the same calls with their layer and kind.
    """

    calls: list[RecordedCall] = field(default_factory=list)

    @property
    def self_attention(self) -> list[tuple[TokenGraph, torch.Tensor]]:
        """``[(graph, weights (B, E, H)), ...]``, one pair per self-attention call."""
        return [(c.graph, c.weights) for c in self.calls if not c.cross]

    @property
    def cross_attention(self) -> list[tuple[TokenGraph, torch.Tensor]]:
        """The same for cross-attention calls; ``[]`` for models without them."""
        return [(c.graph, c.weights) for c in self.calls if c.cross]

    def layers(
        self, example: int = 0, *, cross: bool | None = None, decoder: bool | None = None
    ) -> list[tuple[TokenGraph, torch.Tensor]]:
        """One example's ``(graph, weights (E, H))`` pairs, ready for :mod:`graphattn.flow`.

        Parameters
        ----------
        example : int
            Index into the batch.
        cross : bool, optional
            True: cross-attention calls only; False: self-attention calls
            only; default every call in call order. On an encoder-decoder
            model that is, for one forward, the encoder's layers and then
            each decoder layer's self and cross layer: the layout that
            :func:`graphattn.flow.split_cross_layers` reads for
            :func:`graphattn.flow.cross_rollout`. Other models make no
            cross-attention calls.
        decoder : bool, optional
            Keep only decoder (True) or only encoder (False) calls of an
            encoder-decoder model; default all.

        Raises
        ------
        ValueError
            If ``example`` is not an index into the batch of every kept call.

        Examples
        --------
        >>> g = TokenGraph([[0], [0]])
        >>> rec = Recording([RecordedCall(False, False, 0, "Attn", g, torch.ones(2, 1, 4))])
        >>> [tuple(w.shape) for _, w in rec.layers(1)]
        [(1, 4)]
        >>> rec.layers(2)
        Traceback (most recent call last):
            ...
        ValueError: example must be an index into the recorded batch of 2, got 2
        """
        example = check_int(example, "example")
        kept = [
            c
            for c in self.calls
            if (cross is None or c.cross == cross) and (decoder is None or c.decoder == decoder)
        ]
        for c in kept:
            size = c.weights.shape[0]
            if not -size <= example < size:
                raise ValueError(
                    f"example must be an index into the recorded batch of {size}, got {example}"
                )
        return [(c.graph, c.weights[example]) for c in kept]


def active_recordings() -> list[Recording]:
    """The recordings open in this thread (innermost last)."""
    return list(getattr(_ACTIVE, "stack", ()))


@contextmanager
def record() -> Iterator[Recording]:
    """Record the graph and weights of every graphattn attention call in the block.

    Yields
    ------
    Recording
        Filled while the block runs: ``rec.self_attention``,
        ``rec.cross_attention`` and ``rec.layers(example)``.

    Examples
    --------
    >>> with record() as rec:
    ...     pass  # run a model with attn_implementation="graphattn" here
    >>> rec.self_attention, rec.cross_attention
    ([], [])
    """
    stack = getattr(_ACTIVE, "stack", None)
    if stack is None:
        stack = _ACTIVE.stack = []
    recording = Recording()
    stack.append(recording)
    try:
        yield recording
    finally:
        stack.remove(recording)
