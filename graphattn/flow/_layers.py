"""Validation of ``layers`` and the residual-adjusted matrix of one layer.

A *layer* is ``(graph, weights)`` (optionally ``(graph, weights, grad)`` for
gradient-weighted rules): ``weights (E,)`` or ``(E, H)`` in the graph's edge
order. Every public function of :mod:`graphattn.flow` validates its layers
here before doing any work.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from graphattn._cache import ObjectCache
from graphattn.flow.heads import HEAD_MODES, aggregate_heads
from graphattn.graph import TokenGraph

# Per-graph edge orders of the flow layer (the source-major permutation), kept while a graph lives.
_BY_SOURCE = ObjectCache("graphattn.flow")


class Layer(NamedTuple):
    """One validated layer: its graph, weights ``(E, H)`` and optional gradient ``(E, H)``."""

    graph: TokenGraph
    weights: torch.Tensor
    grad: torch.Tensor | None


class LayerMatrix(NamedTuple):
    """A sparse ``(N, M)`` matrix in coalesced COO form, sorted by (row, column)."""

    row: torch.Tensor  # (nnz,) targets i
    col: torch.Tensor  # (nnz,) sources j
    val: torch.Tensor  # (nnz,) entry A[i, j]
    shape: tuple[int, int]


def check_layer(item: Any, where: str, *, allow_grad: bool = False) -> Layer:
    """Validate one ``(graph, weights[, grad])`` entry; ``where`` names it in errors."""
    if not isinstance(item, (tuple, list)) or len(item) not in ((2, 3) if allow_grad else (2,)):
        shape = "(graph, weights) or (graph, weights, grad)" if allow_grad else "(graph, weights)"
        raise TypeError(f"{where} must be a pair {shape}, got {type(item).__name__}")
    graph, weights = item[0], item[1]
    grad = item[2] if len(item) == 3 else None
    if not isinstance(graph, TokenGraph):
        raise TypeError(f"{where}: graph must be a TokenGraph, got {type(graph).__name__}")
    w = _check_edge_tensor(weights, graph, f"{where}: weights")
    if w.numel() and float(w.detach().amin()) < 0:
        raise ValueError(f"{where}: weights must be non-negative attention weights")
    g = None
    if grad is not None:
        g = _check_edge_tensor(grad, graph, f"{where}: grad")
        if g.shape != w.shape:
            raise ValueError(
                f"{where}: grad must have the shape of weights {tuple(w.shape)}, "
                f"got {tuple(g.shape)}"
            )
    return Layer(graph, w, g)


def _check_edge_tensor(t: Any, graph: TokenGraph, where: str) -> torch.Tensor:
    """A floating, finite ``(E,)`` or ``(E, H)`` tensor, returned as ``(E, H)``."""
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        got = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
        raise TypeError(f"{where} must be a floating tensor (E,) or (E, H), got {got}")
    if t.dim() not in (1, 2) or t.shape[0] != graph.num_edges:
        raise ValueError(
            f"{where} must have shape (E,), (E, H), (B, E) or (B, E, H) with E = "
            f"graph.num_edges = {graph.num_edges}, got {tuple(t.shape)}"
        )
    wide = torch.float64 if t.dtype == torch.float64 else torch.float32  # no half overflow
    if t.numel() and not bool(torch.isfinite(t.detach().sum(dtype=wide))):  # NaN/inf propagate
        raise ValueError(f"{where} holds NaN or infinite values")
    return t if t.dim() == 2 else t.unsqueeze(1)  # (E, H)


def check_self_layers(layers: Any, name: str = "layers") -> list[Layer]:
    """Validate a non-empty sequence of self-graph layers over one token set."""
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise TypeError(f"{name} must be a sequence of (graph, weights) pairs")
    if len(layers) == 0:
        raise ValueError(f"{name} is empty; give at least one (graph, weights) layer")
    out = [check_layer(item, f"{name}[{l}]") for l, item in enumerate(layers)]
    n = out[0].graph.num_nodes
    for l, layer in enumerate(out):
        if layer.graph.is_cross:
            raise ValueError(
                f"{name}[{l}] is a cross graph (N={layer.graph.num_nodes}, "
                f"M={layer.graph.num_src_nodes}); self-graph rollout needs self graphs, "
                "use cross_rollout for encoder -> decoder graphs. A recording of generate holds "
                "such graphs (each cached step's new tokens over the cache, N < M): record one "
                "forward over the whole sequence instead"
            )
        if layer.weights.device != out[0].weights.device:
            raise ValueError(
                f"{name}[{l}] weights are on {layer.weights.device} but {name}[0] weights on "
                f"{out[0].weights.device}; put all layers on one device"
            )
        if layer.graph.num_nodes != n:
            raise ValueError(
                f"{name}[{l}] has N={layer.graph.num_nodes} tokens but {name}[0] has N={n}; "
                "all layers must share one token set"
            )
    return out


def check_options(residual: Any, head_reduce: Any) -> float:
    """Validate ``residual`` in [0, 1] and ``head_reduce``; return ``residual`` as float."""
    if isinstance(residual, bool) or not isinstance(residual, numbers.Real):
        raise TypeError(f"residual must be a number in [0, 1], got {type(residual).__name__}")
    if not 0.0 <= float(residual) <= 1.0:
        raise ValueError(f"residual must be in [0, 1], got {residual}")
    check_head_reduce(head_reduce)
    return float(residual)


def check_head_reduce(head_reduce: Any) -> None:
    """Validate ``head_reduce``: one of the reducing modes of :func:`aggregate_heads`."""
    reducing = tuple(m for m in HEAD_MODES if m != "norm")
    if head_reduce not in reducing:
        hint = (
            '; for "norm" call aggregate_heads(weights, "norm", values=..., graph=...) '
            "and pass the (E,) result as the layer's weights"
            if head_reduce == "norm"
            else ""
        )
        raise ValueError(f"head_reduce must be one of {reducing}, got {head_reduce!r}{hint}")


def check_targets(targets: Any, n: int, name: str = "targets") -> torch.Tensor:
    """Validate target token indices: an int, a sequence of ints or a 1-D integer tensor."""
    listing = isinstance(targets, (numbers.Integral, Sequence)) or hasattr(targets, "__array__")
    if not listing or isinstance(targets, (bool, str, bytes)):  # tensors and numpy have __array__
        raise TypeError(
            f"{name} must be an int, a sequence of ints or a LongTensor, "
            f"got {type(targets).__name__} {targets!r}"
        )
    t = torch.as_tensor(targets) if not isinstance(targets, torch.Tensor) else targets
    t = t.reshape(1) if t.dim() == 0 else t  # one index, e.g. an int or a numpy integer
    if t.dim() != 1 or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D index list, got shape {tuple(t.shape)}")
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise TypeError(f"{name} must hold integer token indices, got dtype {t.dtype}")
    t = t.to(device="cpu", dtype=torch.long)
    if int(t.min()) < 0 or int(t.max()) >= n:
        raise ValueError(
            f"{name} must lie in [0, {n}), got values in [{int(t.min())}, {int(t.max())}]"
        )
    return t


def check_dropped(
    dropped: Any, layers: Sequence[Layer], head_reduce: str, name: str = "dropped"
) -> list[torch.Tensor | None]:
    """Validate the per-target dropped mass of every layer; return it head-reduced ``(N,)``.

    ``dropped`` is None or one entry per layer: None, or a non-negative
    ``(N,)`` or ``(N, H)`` tensor (``H`` the layer's heads), as
    :func:`graphattn.flow.prune.prune_top_k` returns it. Per-head dropped
    mass is exact only for the head mean: its rows are averaged over heads.
    """
    if dropped is None:
        return [None] * len(layers)
    if isinstance(dropped, (str, bytes, torch.Tensor)) or not isinstance(dropped, Sequence):
        raise TypeError(
            f"{name} must be a sequence with one (N,) tensor or None per layer, "
            f"got {type(dropped).__name__}"
        )
    if len(dropped) != len(layers):
        raise ValueError(
            f"{name} must hold one entry per layer ({len(layers)}), got {len(dropped)}"
        )
    return [
        None if d is None else _check_dropped_one(d, layer, head_reduce, f"{name}[{l}]")
        for l, (d, layer) in enumerate(zip(dropped, layers, strict=True))
    ]


def _check_dropped_one(d: Any, layer: Layer, head_reduce: str, where: str) -> torch.Tensor:
    n, h = layer.graph.num_nodes, layer.weights.shape[1]
    if not isinstance(d, torch.Tensor) or not d.is_floating_point():
        got = d.dtype if isinstance(d, torch.Tensor) else type(d).__name__
        raise TypeError(f"{where} must be a floating tensor (N,) or (N, H), got {got}")
    if tuple(d.shape) not in ((n,), (n, h)):
        raise ValueError(f"{where} must have shape ({n},) or ({n}, {h}), got {tuple(d.shape)}")
    if d.dim() == 2 and h > 1 and head_reduce != "mean":
        raise ValueError(
            f"{where} is per head, which accounts exactly for head_reduce='mean' only, got "
            f"head_reduce={head_reduce!r}; prune weights reduced with {head_reduce!r} instead"
        )
    if d.numel() and (not bool(torch.isfinite(d).all()) or float(d.detach().amin()) < 0):
        raise ValueError(f"{where} must hold finite, non-negative masses")
    return d.mean(1) if d.dim() == 2 else d  # (N,)


def compute_dtype(layers: Sequence[Layer]) -> torch.dtype:
    """float64 when any layer's weights are float64, else float32."""
    return torch.float64 if any(l.weights.dtype == torch.float64 for l in layers) else torch.float32


class LayerOperator(NamedTuple):
    """``A = diag(diag) + W`` where ``W[dst[e], src[e]] = edge[e]`` over the graph's edges."""

    graph: TokenGraph
    diag: torch.Tensor  # (N,) residual share of every target, r / s_i
    edge: torch.Tensor  # (E,) (1 - r) * w_e / s_{dst[e]}, in graph.edge_index order


def layer_operator(
    layer: Layer,
    residual: float,
    head_reduce: str,
    dtype: torch.dtype,
    dropped: torch.Tensor | None = None,
    normalize: bool = True,
) -> LayerOperator:
    """``A = residual * I + (1 - residual) * W`` with every row renormalized to sum 1.

    ``W[i, j]`` is the head-reduced weight of edge ``j -> i``. Each row ``i``
    (a target) is divided by its own sum ``s_i = residual + (1 - residual) *
    sum_j W[i, j]``, so ``A[i, :]`` is a distribution over the tokens that
    feed ``i``. A target without incoming edges keeps only its identity entry
    (a row of zeros when ``residual == 0``). The identity is kept apart from
    the edges, so nothing is sorted or merged here. ``dropped (N,)``, the
    weight of edges pruned away (:func:`graphattn.flow.prune.prune_top_k`),
    adds to ``s_i`` as those edges would have: the kept entries are then
    those of the unpruned matrix. With ``normalize=False`` the rows keep
    their sums (``s_i = 1``): the raw product of raw scores.
    """
    graph = layer.graph
    w = aggregate_heads(layer.weights, head_reduce).to(dtype)  # (E,)
    dst = graph.dst.to(w.device)  # (E,)
    rowsum = torch.zeros(graph.num_nodes, dtype=dtype, device=w.device)
    rowsum = rowsum.index_add_(0, dst, (1.0 - residual) * w) + residual  # (N,)
    if dropped is not None:
        rowsum = rowsum + (1.0 - residual) * dropped.to(device=w.device, dtype=dtype)
    if not normalize:
        rowsum = torch.ones_like(rowsum)
    inv = 1.0 / torch.where(rowsum > 0, rowsum, torch.ones_like(rowsum))  # (N,)
    return LayerOperator(graph, residual * inv, (1.0 - residual) * w * inv[dst])


def _by_source(graph: TokenGraph) -> torch.Tensor:
    """Permutation sorting the edges by (source, target): the COO order of ``W^T``."""
    return torch.argsort(graph.src * graph.num_nodes + graph.dst)  # (E,)


def apply(op: LayerOperator, x: torch.Tensor, *, transpose: bool = False) -> torch.Tensor:
    """``A @ x`` (or ``A^T @ x``) for ``x (N, T)``, with ``W`` as a sparse COO matrix."""
    g = op.graph
    n = g.num_nodes
    if transpose:
        perm = _BY_SOURCE.get(g, "by_source", lambda: _by_source(g)).to(x.device)
        idx = torch.stack([g.src, g.dst]).to(x.device)[:, perm]  # (2, E) sorted by (src, dst)
        val = op.edge[perm]
    else:
        idx = g.edge_index.flip(0).to(x.device)  # (2, E) rows (dst, src): canonical order
        val = op.edge
    w = torch.sparse_coo_tensor(idx, val, (n, n), is_coalesced=True, check_invariants=False)
    return op.diag.unsqueeze(1) * x + torch.sparse.mm(w, x)  # (N, T)


def merged_entries(op: LayerOperator) -> LayerMatrix:
    """The nonzero pattern of ``A`` with the identity merged into self edges, sorted by row."""
    g = op.graph
    n = g.num_nodes
    dev = op.edge.device
    diag = torch.arange(n, device=dev)
    keys = torch.cat([g.dst.to(dev) * n + g.src.to(dev), diag * n + diag])  # (E + N,)
    vals = torch.cat([op.edge, op.diag])  # (E + N,)
    uniq, inv = torch.unique(keys, sorted=True, return_inverse=True)  # (nnz,)
    val = torch.zeros(uniq.numel(), dtype=vals.dtype, device=dev).index_add_(0, inv, vals)
    keep = val > 0
    return LayerMatrix(uniq[keep] // n, uniq[keep] % n, val[keep], (n, n))
