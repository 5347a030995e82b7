"""Recording the per-edge weights of every attention call: :func:`record`.

Weights are returned by the attention function to whoever asked for them,
never kept on a model: a :class:`Recording` is the caller's own object,
filled only inside its ``with`` block. What it keeps of each call (all heads
or a reduction, the storage dtype, which layers, the strongest ``k`` edges
per target) is decided when the block opens (:class:`RecordOptions`), and
applied by :meth:`Recording.add` as each call ends, so no call's full
``(B, E, H)`` weights outlive the call unless they are asked for.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from graphattn._validate import check_int, check_positive_int
from graphattn.backends.front import repeat_kv_heads
from graphattn.backends.heads import reduce_heads
from graphattn.flow import aggregate_heads, prune_top_k
from graphattn.flow.heads import HEAD_MODES
from graphattn.graph import TokenGraph
from graphattn.hf import state

__all__ = ["RecordOptions", "RecordedCall", "Recording", "active_recordings", "record"]


@dataclass(frozen=True)
class RecordOptions:
    """What a :func:`record` block keeps of each attention call (see :func:`record`).

    The options are checked on construction; ``layers`` may be given as an
    int or any iterable of ints and is kept as a frozenset.
    """

    heads: str | None = None  # None: every head (B, E, H); a mode of aggregate_heads: (B, E)
    dtype: torch.dtype | None = None  # storage dtype; None: the call's own
    layers: frozenset[int] | None = None  # layer_idx values kept; None: every call
    top_k: int | None = None  # strongest incoming edges kept per target; None: all

    def __post_init__(self) -> None:
        if self.heads is not None and (
            not isinstance(self.heads, str) or self.heads not in HEAD_MODES
        ):
            raise ValueError(f"heads must be None or one of {HEAD_MODES}, got {self.heads!r}")
        if self.dtype is not None and (
            not isinstance(self.dtype, torch.dtype) or not self.dtype.is_floating_point
        ):
            raise TypeError(f"dtype must be None or a floating torch.dtype, got {self.dtype!r}")
        if self.top_k is not None:
            object.__setattr__(self, "top_k", check_positive_int(self.top_k, "top_k"))
        if self.layers is not None:
            object.__setattr__(self, "layers", _check_layers(self.layers))


def _check_layers(layers: Any) -> frozenset[int]:
    items = [layers] if isinstance(layers, numbers.Integral) else layers
    if isinstance(layers, (bool, str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise TypeError(f"layers must be an int or an iterable of ints, got {layers!r}")
    items = list(items)
    if any(isinstance(x, bool) or not isinstance(x, numbers.Integral) for x in items):
        raise TypeError(f"layers must hold layer indices (ints), got {layers!r}")
    if not items or min(items) < 0:
        raise ValueError(
            f"layers must be one or more non-negative layer indices (the modules' "
            f"layer_idx), got {layers!r}"
        )
    return frozenset(int(x) for x in items)


@dataclass(frozen=True)
class RecordedCall:
    """One attention call: its kind, layer, graph and weights as the recording kept them."""

    cross: bool  # cross-attention (decoder tokens read encoder tokens)
    decoder: bool  # part of a decoder (causal self-attention or cross-attention)
    layer: int | None  # the module's layer_idx
    module: str  # the attention module's class name
    graph: TokenGraph  # the call's graph, or its pruned subgraph (top_k)
    weights: torch.Tensor  # (B, E, H) or head-reduced (B, E); zero where b's key is padding
    dropped: torch.Tensor | None = None  # top_k: (B, N, H) or (B, N), weight of pruned edges


@dataclass
class Recording:
    """The attention calls made inside a :func:`record` block, in call order.

    ``self_attention`` and ``cross_attention`` hold ``(graph, weights)``
    pairs with ``weights (B, E, H)`` (or ``(B, E)`` when heads are reduced)
    in ``graph.edge_index`` order; ``calls`` holds the same calls with their
    layer and kind; ``options`` says what was kept of each call.
    """

    calls: list[RecordedCall] = field(default_factory=list)
    options: RecordOptions = field(default_factory=RecordOptions)
    skipped: list[int | None] = field(default_factory=list, repr=False)  # layer_idx not kept

    def wants(self, layer: int | None) -> bool:
        """Whether a call of ``layer`` is kept (``layers=`` names it, or keeps every layer)."""
        return self.options.layers is None or layer in self.options.layers

    def add(
        self,
        *,
        cross: bool,
        decoder: bool,
        layer: int | None,
        module: str,
        graph: TokenGraph,
        weights: torch.Tensor | None,
        values: torch.Tensor | None = None,
    ) -> None:
        """Keep what the options ask for of one call's ``weights (B, E, H)``.

        ``values (B, M, H_kv, D)`` are the call's value vectors, read only by
        ``heads="norm"``. A call of a layer that was not asked for is skipped
        (its ``weights`` are None when no open recording wanted them, so the
        attention did not compute them).
        """
        opts = self.options
        if not self.wants(layer):
            self.skipped.append(layer)  # its weights were not computed for this recording
            return
        w = _reduce_heads(weights, opts.heads, values, graph)  # (B, E, H) or (B, E)
        dropped = None
        if opts.top_k is not None:
            graph, w, dropped = prune_top_k(graph, w, opts.top_k)
        if opts.dtype is not None:
            w = w.to(opts.dtype)
            dropped = None if dropped is None else dropped.to(opts.dtype)
        self.calls.append(RecordedCall(cross, decoder, layer, module, graph, w, dropped))

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
        kept = self._select(cross, decoder)
        example = _check_example(example, kept)
        return [(c.graph, c.weights[example]) for c in kept]

    def dropped(
        self, example: int | None = 0, *, cross: bool | None = None, decoder: bool | None = None
    ) -> list[torch.Tensor | None]:
        """The pruned mass of the same calls as :meth:`layers`, for flow's ``dropped=``.

        Parameters
        ----------
        example : int or None
            Index into the batch; None for the whole batch (aligned with
            ``self_attention`` / ``cross_attention``).
        cross, decoder
            Which calls, as in :meth:`layers`.

        Returns
        -------
        list of Tensor or None
            Per call, the summed weight of every target's pruned incoming
            edges, ``(N, H)`` or ``(N,)`` (with a leading ``B`` for
            ``example=None``); None for calls recorded without ``top_k``.

        Examples
        --------
        >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
        >>> with record(top_k=1) as rec:
        ...     rec.add(cross=False, decoder=True, layer=0, module="Attn", graph=g,
        ...             weights=torch.tensor([[[1.0], [0.25], [0.75]]]))   # (B, E, H)
        >>> rec.layers(0)[0][0].edge_index.tolist(), rec.dropped(0)[0].tolist()
        ([[0, 1], [0, 1]], [[0.0], [0.25]])
        """
        kept = self._select(cross, decoder)
        if example is not None:
            example = _check_example(example, kept)
        return [
            c.dropped if c.dropped is None or example is None else c.dropped[example] for c in kept
        ]

    def _select(self, cross: bool | None, decoder: bool | None) -> list[RecordedCall]:
        return [
            c
            for c in self.calls
            if (cross is None or c.cross == cross) and (decoder is None or c.decoder == decoder)
        ]


def _check_example(example: int, calls: list[RecordedCall]) -> int:
    """``example`` checked as an index into the batch of every call."""
    example = check_int(example, "example")
    for c in calls:
        size = c.weights.shape[0]
        if not -size <= example < size:
            raise ValueError(
                f"example must be an index into the recorded batch of {size}, got {example}"
            )
    return example


def _reduce_heads(
    weights: torch.Tensor, heads: str | None, values: torch.Tensor | None, graph: TokenGraph
) -> torch.Tensor:
    """``weights (B, E, H)`` as kept: all heads, or reduced to ``(B, E)``.

    ``(B, E)`` weights are already reduced: the attention call reduced them
    as this recording asked (see ``graphattn.hf.attention``).
    """
    if heads is None or weights.dim() == 2:
        return weights
    if heads != "norm":
        return aggregate_heads(weights, heads)  # (B, E)
    if values is None:
        raise ValueError('record(heads="norm") needs the call\'s values; this call passed none')
    per_head = repeat_kv_heads(values, weights.shape[2])  # (B, M, H, D): query head h reads g
    return reduce_heads(weights, "norm", per_head, graph)  # (B, E): sqrt(sum_h (a ||v_h||)^2)


def active_recordings() -> list[Recording]:
    """The recordings open in this thread or task (innermost last)."""
    return list(state.current().recordings)


def record(
    *,
    heads: str | None = None,
    dtype: torch.dtype | None = None,
    layers: Any = None,
    top_k: int | None = None,
) -> Any:
    """Record the graph and weights of every graphattn attention call in the block.

    The defaults keep every call's weights ``(B, E, H)`` exactly as the
    attention computed them. Each option keeps less, decided here and applied
    as each call ends, so that only what is kept stays in memory. Per recorded
    call, with ``s`` bytes per element of the storage dtype:

    ============================  ==============================================
    options                       bytes kept per call
    ============================  ==============================================
    defaults                      ``B * E * H * s``
    ``heads="mean"`` (or other)   ``B * E * s``
    ``top_k=k``                   ``B * E_k * H * s + 16 * E_k + B * N * H * s``
    ``top_k=k, heads="mean"``     ``B * E_k * s + 16 * E_k + B * N * s``
    ============================  ==============================================

    where ``E_k <= N * min(B * k, max in-degree)`` is the number of kept
    edges (their graph's ``(2, E_k)`` int64 index, ``16 * E_k`` bytes; an
    unpruned call shares the model's graph) and ``B * N [* H] * s`` the
    dropped mass; ``layers`` multiplies by the number of layers kept instead
    of all of them. While a call runs, its full weights ``(B, E, H)`` exist
    once (and ``top_k`` sorts ``(B, E)`` scores: about ``32 * B * E`` bytes
    of indices) before being reduced, except where every open recording
    keeping the call reduces heads the same way: the attention call then
    returns ``(B, E)`` weights (``graph_attention(head_reduction=)``), and
    on a full or causal graph without padding its kernel reduces each batch
    of rows as it computes them, so ``(B, E, H)`` never exists whole.

    Parameters
    ----------
    heads : {None, "mean", "max", "min", "norm"}
        None keeps every head, ``(B, E, H)``. The others keep one weight per
        edge, ``(B, E)``, reduced as :func:`graphattn.flow.aggregate_heads`
        does. ``"norm"`` is Kobayashi et al.'s (2020) norm with the values
        the attention call has: ``|| sum_h alpha_ij^h v_j^h ||`` over the
        concatenated heads, i.e. ``sqrt(sum_h (alpha_ij^h ||v_j^h||)^2)``,
        ``aggregate_heads``' ``"norm"`` with the output projection ``W_O``
        left out (the attention call does not see it; for the norm through
        ``W_O`` record all heads and reduce them with the values of
        :func:`graphattn.hf.hf_blocks`).
    dtype : torch.dtype, optional
        Floating dtype to store weights (and dropped mass) in; default the
        call's own.
    layers : int or iterable of int, optional
        Keep only calls whose module's ``layer_idx`` is listed (non-negative);
        default every call. The other layers' weights are not computed at
        all (unless another open recording keeps them).
    top_k : int, optional
        Keep the ``k`` strongest incoming edges of every target (ranked by
        the kept weights summed over heads; per example, on the union graph
        of the batch, see :func:`graphattn.flow.prune_top_k`), with every
        target's dropped mass in ``RecordedCall.dropped`` and
        :meth:`Recording.dropped`; flow's ``dropped=`` accounts for it.

    Returns
    -------
    context manager
        Yields the :class:`Recording`, filled while the block runs. A block
        that ends (without an exception) having recorded no call warns
        (``UserWarning``) with the likely reason: no graphattn attention
        ran in it (the model is not on ``attn_implementation="graphattn"``,
        or it ran outside the block), or ``layers`` kept none of the calls.

    Raises
    ------
    TypeError, ValueError
        For an option of the wrong type or value, here, before the block runs.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> with record() as rec:  # a model on attn_implementation="graphattn" runs here
    ...     rec.add(cross=False, decoder=True, layer=0, module="Attn", graph=g,
    ...             weights=torch.ones(1, 3, 2))
    >>> [tuple(w.shape) for _, w in rec.self_attention], rec.cross_attention
    ([(1, 3, 2)], [])
    >>> record(heads="mean", dtype=torch.float16, layers=[0, 11], top_k=32).options
    RecordOptions(heads='mean', dtype=torch.float16, layers=frozenset({0, 11}), top_k=32)
    >>> record(top_k=0)
    Traceback (most recent call last):
    ...
    ValueError: top_k must be positive, got 0
    """
    return _Block(RecordOptions(heads, dtype, layers, top_k))  # checks the options


class _Block:
    """The context manager :func:`record` returns: a new recording per ``with``."""

    def __init__(self, options: RecordOptions) -> None:
        self.options = options
        self._open: list = []  # per entered block: its token and recording

    def __enter__(self) -> Recording:
        recording = Recording(options=self.options)
        token = state.enter(recordings=(*state.current().recordings, recording))
        self._open.append((token, recording))
        return recording

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        token, recording = self._open.pop()
        state.leave(token)
        if exc_type is None and not recording.calls:
            warnings.warn(_nothing_recorded(recording), UserWarning, stacklevel=2)


def _nothing_recorded(recording: Recording) -> str:
    """Why a block recorded no call: ``layers`` kept none, or no graphattn attention ran."""
    if recording.skipped:
        ran = sorted({layer for layer in recording.skipped if layer is not None})
        return (
            f"graphattn.hf.record(layers={sorted(recording.options.layers)}) recorded no call: "
            f"{len(recording.skipped)} graphattn attention calls ran in the block, of the "
            f"layers (layer_idx) {ran}; pick layers among those"
        )
    return (
        "graphattn.hf.record() recorded no call: no graphattn attention ran inside the "
        "block. Either the model does not run attn_implementation='graphattn' (load it with "
        "from_pretrained(..., attn_implementation='graphattn') or call "
        "graphattn.hf.attach(model); transformers shares one config among the models built "
        "from it, so building another model from the same config with "
        "attn_implementation='eager' or 'sdpa' switches this one too), or the model ran "
        "outside the with block"
    )
