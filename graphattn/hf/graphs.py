"""Which graph one attention call of a transformers model runs on.

A call sees ``N`` queries and ``M`` keys. With a KV cache the queries are the
newest columns of the sequence and, under a sliding-window cache, the keys
only its most recent columns; :class:`Call` holds those absolute offsets.
The graph of the call is then

- the model's own structure, read from the mask transformers built (causal
  or full, its sliding windows), when no graph was given;
- the rows ``q_offset .. q_offset + N`` and columns ``kv_offset .. + M`` of
  the graph the call's keyword gives (:mod:`graphattn.hf.keywords` picks the
  keyword, :mod:`graphattn.hf.resolve` builds the graph): :func:`rows`.

Errors name the layer and the sizes.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from graphattn import patterns
from graphattn._cache import ObjectCache
from graphattn.graph import TokenGraph

__all__ = [
    "Call",
    "default_graph",
    "is_cross_attention",
    "mask_graph",
    "num_layers",
    "prefix_max",
    "union_graph",
    "rows",
    "stack_of",
]

# Per-graph prefix maxima of the edges (see prefix_max), kept while the graph lives.
_PREFIX = ObjectCache("graphattn.hf")


@dataclass(frozen=True)
class Call:
    """One attention call: its module, kind, sizes and absolute offsets."""

    module: torch.nn.Module
    cross: bool  # cross-attention (decoder queries, encoder keys)
    n: int  # queries N
    m: int  # keys M
    q_offset: int  # column of query 0 in the (decoder) sequence
    kv_offset: int  # column of key 0

    @property
    def layer(self) -> int | None:
        """The module's ``layer_idx`` (None where the model does not set one)."""
        idx = getattr(self.module, "layer_idx", None)
        return int(idx) if isinstance(idx, int) else None

    @property
    def where(self) -> str:
        """``layer 3 (LlamaAttention, self-attention)``, for error messages.

        In an encoder-decoder model the stack is named too:
        ``layer 0 (T5Attention, decoder self-attention)``.
        """
        kind = "cross-attention" if self.cross else "self-attention"
        stack = stack_of(self.module)
        kind = kind if stack is None or self.cross else f"{stack} {kind}"
        return f"layer {self.layer} ({type(self.module).__name__}, {kind})"


def stack_of(module: torch.nn.Module) -> str | None:
    """``"encoder"`` or ``"decoder"`` for a module of an encoder-decoder model, else None.

    Reads ``config.is_encoder_decoder`` (T5's and BART's stacks keep the
    model's config flag) and the module's ``is_decoder``.

    Examples
    --------
    >>> m = torch.nn.Module(); m.is_decoder = True
    >>> m.config = type("Config", (), {"is_encoder_decoder": True})()
    >>> stack_of(m)
    'decoder'
    """
    if not getattr(getattr(module, "config", None), "is_encoder_decoder", False):
        return None
    return "decoder" if getattr(module, "is_decoder", False) else "encoder"


def is_cross_attention(module: torch.nn.Module) -> bool:
    """Whether ``module`` attends from decoder tokens to encoder tokens.

    transformers does not flag the call, so this reads the module: an
    ``is_cross_attention`` attribute (GPT-2, BERT's wrapper), a class named
    ``*Cross*`` (BERT), or a non-causal attention inside a decoder
    (BART/Marian ``encoder_attn``, T5 ``EncDecAttention``).

    Examples
    --------
    >>> m = torch.nn.Module(); m.is_decoder, m.is_causal = True, False
    >>> is_cross_attention(m)
    True
    """
    flag = getattr(module, "is_cross_attention", None)
    if isinstance(flag, bool):
        return flag
    if "cross" in type(module).__name__.lower():
        return True
    return (
        bool(getattr(module, "is_decoder", False)) and getattr(module, "is_causal", True) is False
    )


def num_layers(module: torch.nn.Module, cross: bool) -> int | None:
    """Number of layers of the stack ``module`` belongs to, from its config."""
    config = getattr(module, "config", None)
    if config is None:
        return None
    in_decoder = getattr(config, "is_encoder_decoder", False) and (
        cross or getattr(module, "is_decoder", False)
    )
    names = ("decoder_layers", "num_decoder_layers") if in_decoder else ("encoder_layers",)
    for name in (*names, "num_hidden_layers", "num_layers", "n_layer"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def prefix_max(graph: TokenGraph, targets: int, ahead: bool = False) -> int:
    """The largest source (``ahead``: ``src - dst``) over the edges of targets ``0 .. targets``.

    A running maximum over the canonical edge order, built once per graph, so
    each generation step checks its graph in O(1) rather than over all edges.
    ``-1`` (``ahead``: ``-N``) where those targets have no edge.

    Examples
    --------
    >>> g = TokenGraph([[0, 2, 1], [0, 0, 1]], 3)  # token 0 reads tokens 0 and 2
    >>> prefix_max(g, 1), prefix_max(g, 1, ahead=True), prefix_max(g, 0)
    (2, 2, -1)
    """
    stop = int(graph.indptr[targets])
    if stop == 0:
        return -graph.num_nodes if ahead else -1

    def build() -> torch.Tensor:
        value = graph.src - graph.dst if ahead else graph.src  # (E,)
        return torch.cummax(value, 0).values  # (E,)

    return int(_PREFIX.get(graph, ("prefix_max", ahead), build)[stop - 1])


def _check_cached(graph: TokenGraph, call: Call, name: str) -> None:
    """Refuse a graph in which a token already in the KV cache reads a newer token.

    The cache holds what those tokens computed when the newer ones did not
    exist yet, so such a graph would give other results with and without the
    cache (a fixed graph reading ahead is refused for the same reason).
    """
    if call.q_offset == 0 or prefix_max(graph, call.q_offset) < call.q_offset:
        return
    late = (graph.dst < call.q_offset) & (graph.src >= call.q_offset)  # (E,)
    k = int(late.nonzero()[0, 0])
    i, j = int(graph.dst[k]), int(graph.src[k])
    raise ValueError(
        f"{name}: in {call.where}, token {i} reads token {j}, but token {i} comes from the "
        f"KV cache, computed before token {j} existed; generation with a cache needs a "
        "graph in which no token reads a later one (e.g. a causal graph), or use_cache=False"
    )


def rows(graph: TokenGraph, call: Call, total: int, name: str) -> TokenGraph:
    """Rows ``q_offset .. + N`` and columns ``kv_offset .. + M`` of ``graph``, relabelled.

    ``graph`` covers ``total`` tokens (past ones included) or more: a larger
    graph is used for its first ``total`` tokens as long as those read no later
    token (so one graph serves every step of generation).

    Examples
    --------
    >>> g = patterns.causal(4)
    >>> rows(g, Call(torch.nn.Module(), False, 1, 3, 2, 0), 3, "g").edge_index.tolist()
    [[0, 1, 2], [0, 0, 0]]
    """
    if graph.num_nodes < total:
        raise ValueError(
            f"{name} has {graph.num_nodes} nodes but {call.where} attends over a sequence of "
            f"{total} tokens ({call.n} new, {total - call.n} cached); it needs at least {total}"
        )
    first, stop, sources = _key_range(graph, call, total, name)
    if (graph.num_nodes, sources, call.q_offset, first) == (call.n, call.m, 0, 0):
        return graph  # the call reads the whole graph
    lo, hi = (int(graph.indptr[t]) for t in (call.q_offset, call.q_offset + call.n))
    src, dst = graph.src[lo:hi], graph.dst[lo:hi] - call.q_offset  # (E_rows,) the call's rows
    _check_readable(src, dst, first, stop, call, total, name)
    edge_index = torch.stack([src - first, dst])  # (2, E_rows), still canonical
    return TokenGraph(edge_index, call.n, num_src_nodes=call.m, cross=True)


def _key_range(graph: TokenGraph, call: Call, total: int, name: str) -> tuple[int, int, int]:
    """The keys ``first .. stop`` the call holds, and the sources of ``graph``; checked.

    Cross-attention holds every encoder token; self-attention the keys from
    ``call.kv_offset`` on, up to the sequence's end.
    """
    if call.cross:
        if graph.num_src_nodes != call.m:
            raise ValueError(
                f"{name} has M={graph.num_src_nodes} sources but {call.where} has {call.m} "
                "encoder tokens"
            )
        return 0, call.m, graph.num_src_nodes
    _check_cached(graph, call, name)
    # a static cache hands over keys past the sequence's end: they are not tokens yet
    return call.kv_offset, min(call.kv_offset + call.m, total), graph.num_nodes


def _check_readable(
    src: torch.Tensor, dst: torch.Tensor, first: int, stop: int, call: Call, total: int, name: str
) -> None:
    """Refuse an edge ``src -> dst (E_rows,)`` whose source is not a key ``first .. stop - 1``."""
    outside = (src < first) | (src >= stop)  # (E_rows,)
    if not bool(outside.any()):
        return
    k = int(outside.nonzero()[0, 0])
    j, i = int(src[k]), int(dst[k]) + call.q_offset
    why = (
        "a token this layer's sliding-window cache has dropped; generate with a full cache "
        "(past_key_values=transformers.DynamicCache()) or use_cache=False"
        if j < first
        else f"a token not in the sequence yet (it has {total} tokens)"
    )
    raise ValueError(f"{name}: in {call.where}, token {i} reads token {j}, {why}")


def default_graph(call: Call, causal: bool) -> TokenGraph:
    """The model's own graph where transformers passed no mask: causal or full.

    Examples
    --------
    >>> default_graph(Call(torch.nn.Module(), False, 1, 3, 2, 0), causal=True).num_edges
    3
    """
    if call.cross or not causal:
        return patterns.cross(call.n, call.m)
    total = call.kv_offset + call.m
    return rows(patterns.causal(total), call, total, "causal graph")


MASK_GRAPHS = 8  # union masks whose graphs are kept across forwards (least recently used out)
_MASK_GRAPHS: OrderedDict[tuple, TokenGraph] = OrderedDict()


def union_graph(union: torch.Tensor, cross: bool) -> TokenGraph:
    """The graph of a boolean ``(N, M)`` mask, the same object for the same mask.

    A model's mask is built anew at every forward; keeping its graph (keyed by
    a digest of the mask's bits, for the last :data:`MASK_GRAPHS` masks) keeps
    the plans the kernels cache on the graph, so they are built once per
    sequence length, not once per forward.

    Examples
    --------
    >>> tril = torch.ones(3, 3, dtype=torch.bool).tril()
    >>> union_graph(tril, cross=False) is union_graph(tril.clone(), cross=False)
    True
    """
    bits = np.packbits(union.cpu().numpy())  # (N * M / 8,) uint8
    key = (cross, *union.shape, hashlib.blake2b(bits.tobytes(), digest_size=16).digest())
    graph = _MASK_GRAPHS.pop(key, None)
    if graph is None:
        graph = TokenGraph.from_dense_mask(union.cpu(), cross=cross)
    _MASK_GRAPHS[key] = graph  # most recently used last
    while len(_MASK_GRAPHS) > MASK_GRAPHS:
        _MASK_GRAPHS.popitem(last=False)
    return graph


def mask_graph(allowed: torch.Tensor, cross: bool) -> tuple[TokenGraph, torch.Tensor | None]:
    """The union graph of a boolean mask and the per-example ``-inf`` bias of its holes.

    Parameters
    ----------
    allowed : Tensor, shape (B, h, N, M), bool
        True where example ``b`` (head ``h``, ``h`` is 1 or H) may attend.
    cross : bool
        Make a cross (bipartite) graph even where ``N == M``.

    Returns
    -------
    graph : TokenGraph
        Edge ``j -> i`` where any example may attend (see :func:`union_graph`).
    bias : Tensor (B, E, h) or None
        ``-inf`` where example ``b`` may not use the edge; None if all may.

    Examples
    --------
    >>> allowed = torch.tensor([[1, 0], [1, 1]]).bool().expand(2, 1, 2, 2).clone()
    >>> allowed[1, 0, 1, 1] = False  # example 1: token 1 is padding
    >>> g, bias = mask_graph(allowed, cross=False)
    >>> g.num_edges, bias[:, :, 0].tolist()
    (3, [[0.0, 0.0, 0.0], [0.0, 0.0, -inf]])
    """
    n, m = allowed.shape[-2:]
    one = allowed.shape[0] == 1 and allowed.shape[1] == 1  # one mask: it is its own union
    union = allowed[0, 0] if one else allowed.any(dim=(0, 1))  # (N, M)
    graph = union_graph(union, cross=cross or n != m)
    if one:
        return graph, None
    dst, src = graph.dst.to(allowed.device), graph.src.to(allowed.device)  # (E,)
    holes = ~allowed[:, :, dst, src]  # (B, h, E)
    if not bool(holes.any()):
        return graph, None
    bias = torch.zeros(holes.shape, dtype=torch.float32, device=allowed.device)
    bias = bias.masked_fill(holes, float("-inf")).transpose(1, 2)  # (B, E, h)
    return graph, bias
