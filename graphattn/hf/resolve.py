"""From what a graph keyword holds to the graph of one attention call.

A keyword (``token_graph``, ``encoder_graph``, ``decoder_graph``,
``cross_graph``) holds a :class:`~graphattn.TokenGraph`, a list with one
graph per layer, or a callable that builds one for the sizes of the call:
``n -> TokenGraph`` for self-attention (``n`` tokens, cached ones included),
``(n, m) -> TokenGraph`` for cross-attention (``m`` encoder tokens). The rule
for callables, everywhere: their number of parameters is checked before they
are called, and an error they raise (a window larger than a 1-token
sequence, say) comes back as a ``ValueError`` naming the keyword, the sizes
and the call site, the original error chained.

Each graph is then checked for its kind (a self graph for self-attention, a
cross graph for cross-attention) and, in a decoder of an encoder-decoder
model, for reading no later token unless ``decoder_reads_future=True``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from graphattn.graph import TokenGraph
from graphattn.hf.graphs import Call, num_layers, prefix_max, rows

__all__ = ["graph_of"]


def _per_layer(spec: Sequence[Any], call: Call, name: str) -> Any:
    expected = num_layers(call.module, call.cross)
    if expected is not None and len(spec) != expected:
        raise ValueError(
            f"{name} as a list needs one graph per layer ({expected} layers), got {len(spec)}"
        )
    if call.layer is None or not 0 <= call.layer < len(spec):
        raise ValueError(
            f"{name} as a list needs the layer index of every attention module; "
            f"{call.where} has layer_idx={call.layer}"
        )
    return spec[call.layer]


def _check_arity(fn: Callable, count: int, name: str) -> None:
    """A TypeError unless ``fn`` can be called with ``count`` positional arguments."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to read (some builtins): calling tells
        return
    try:
        signature.bind(*range(count))
    except TypeError:
        wanted = "n (the number of tokens)" if count == 1 else "n, m (target and source tokens)"
        label = getattr(fn, "__name__", type(fn).__name__)
        raise TypeError(
            f"{name} as a callable must take {count} argument(s), {wanted}; "
            f"got {label}{signature}"
        ) from None


def _called(fn: Callable, sizes: tuple[int, ...], name: str, call: Call) -> Any:
    """``fn(*sizes)``; what it raises comes back naming the keyword, sizes and call site."""
    _check_arity(fn, len(sizes), name)
    try:
        return fn(*sizes)
    except Exception as err:
        at = ", ".join(f"{k}={v}" for k, v in zip("nm", sizes, strict=False))
        raise ValueError(
            f"your {name} callable failed at {at} in {call.where}: {type(err).__name__}: {err}. "
            "It is called with every length the model sees (n = 1 at a decoder's first "
            "generation step, n = the prompt's length at the first forward): keep its sizes "
            "within n, e.g. lambda n: patterns.sliding_window(n, min(n, 3))"
        ) from err


def _check_kind(graph: Any, call: Call, total: int, name: str) -> TokenGraph:
    if not isinstance(graph, TokenGraph):
        raise TypeError(
            f"{name} must be a TokenGraph, a list of them or a callable returning one; "
            f"for {call.where} got {type(graph).__name__}"
        )
    if call.cross and not graph.is_cross:
        raise ValueError(
            f"{name} must be a cross graph (decoder tokens x encoder tokens, e.g. "
            f"patterns.cross(n, m)), got a self graph over {graph.num_nodes} tokens; "
            f"{call.where} needs {total} targets x {call.m} sources"
        )
    if not call.cross and graph.is_cross:
        raise ValueError(
            f"{name} must be a self graph over the sequence's tokens, got a cross graph with "
            f"N={graph.num_nodes} targets and M={graph.num_src_nodes} sources; {call.where} "
            f"needs a self graph over {total} tokens (a cross graph goes to cross_graph=)"
        )
    return graph


def _check_no_future(graph: TokenGraph, call: Call, total: int, name: str) -> None:
    if prefix_max(graph, min(total, graph.num_nodes), ahead=True) > 0:
        ahead = (graph.src > graph.dst) & (graph.dst < total)  # (E,)
        k = int(ahead.nonzero()[0, 0])
        raise ValueError(
            f"{name}: in {call.where}, token {int(graph.dst[k])} reads the later token "
            f"{int(graph.src[k])}, so the decoder sees tokens it is to predict; pass "
            "decoder_reads_future=True with the graph if that is what you want"
        )


def graph_of(name: str, spec: Any, call: Call, *, future: bool = True) -> TokenGraph:
    """The graph of one call under keyword ``name`` holding ``spec``, checked.

    ``future=False`` refuses a self graph in which a token reads a later one.

    Examples
    --------
    >>> import torch
    >>> from graphattn import patterns
    >>> call = Call(torch.nn.Module(), False, 4, 4, 0, 0)
    >>> graph_of("token_graph", lambda n: patterns.sliding_window(n, 2), call).num_edges
    7
    >>> graph_of("token_graph", lambda n: patterns.sliding_window(n, 5), call)
    Traceback (most recent call last):
        ...
    ValueError: your token_graph callable failed at n=4 in layer None (Module, self-attention): ...
    """
    total = call.q_offset + call.n
    if isinstance(spec, (list, tuple)):
        spec = _per_layer(spec, call, name)
    if callable(spec) and not isinstance(spec, TokenGraph):
        spec = _called(spec, (total, call.m) if call.cross else (total,), name, call)
    graph = _check_kind(spec, call, total, name)
    if not future:
        _check_no_future(graph, call, total, name)
    return rows(graph, call, total, name)
