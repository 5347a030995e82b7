"""What the offline viewer's page embeds: every layer reduced to a byte budget, as typed arrays.

A layer goes into the page as the incoming edges of every target (CSR
order: an edge count per target, then each edge's source) and its weights
quantized to 16 bits, each array base64-encoded little-endian bytes that
the page decodes into typed arrays when it first shows the layer. Small
inputs go in whole. Above ``max_bytes``, the heads' weights are first
reduced to their mean (what the viewer draws by default); if that is still
too large, every target keeps its ``k`` strongest incoming edges, ``k`` the
largest that fits, and the page records the share of each target's weight
it kept. Each layer's ``note`` says what was left out.

Examples
--------
>>> from graphattn.graph import TokenGraph
>>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
>>> w = torch.tensor([[1.0], [0.25], [0.75]])  # (E, H)
>>> meta, arrays = encode_layer(g, w, Reduction(per_target=1, mean_heads=False))
>>> meta["kept"], meta["mass"]
(2, 0.875)
>>> for part in meta["note"].split("; "):
...     print(part)
kept in the page: the strongest 1 incoming edge per target (87.5% of the weight mass)
1 of 3 edges omitted
>>> decode(arrays["src"]).tolist(), decode(arrays["count"]).tolist()
([0, 1], [1, 1])
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from graphattn.graph import TokenGraph
from graphattn.plot.attention import _rank_in_target

__all__ = [
    "ARRAY_BYTES",
    "MAX_BYTES",
    "LayerShape",
    "Reduction",
    "decode",
    "encode_layer",
    "layer_bytes",
    "plan",
]

MAX_BYTES = 20 * 2**20  # the page's default size: 32k tokens x 12 layers open in about a second
ARRAY_BYTES = 64  # the JSON around one encoded array: its key, dtype and quotes
LEVELS = {"u16": 65535, "i16": 32767}  # quantization steps of the weights' largest magnitude
NUMPY = {"u16": "<u2", "u32": "<u4", "i16": "<i2"}


@dataclass(frozen=True)
class Reduction:
    """How every layer goes into the page.

    Attributes
    ----------
    per_target : int or None
        At most this many incoming edges per target (the strongest); None: all.
    mean_heads : bool
        The weights of the heads reduced to their mean.
    """

    per_target: int | None
    mean_heads: bool


@dataclass(frozen=True)
class LayerShape:
    """What a layer's size in the page depends on: in-degrees, sources and heads (0: none)."""

    in_degree: torch.Tensor  # (N,)
    num_src_nodes: int
    heads: int


def b64_size(nbytes: int) -> int:
    """Characters of the base64 text of ``nbytes`` bytes."""
    return 4 * math.ceil(nbytes / 3)


def index_dtype(largest: int) -> str:
    """The smaller unsigned type that holds ``0 .. largest``."""
    return "u16" if largest <= 65535 else "u32"


def layer_bytes(shape: LayerShape, reduction: Reduction) -> int:
    """Characters the encoded arrays of one layer take in the page."""
    deg = shape.in_degree
    k = reduction.per_target
    kept_deg = deg if k is None else deg.clamp(max=k)  # (N,)
    edges = int(kept_deg.sum())
    index = 2 if index_dtype(shape.num_src_nodes - 1) == "u16" else 4
    count = 2 if index_dtype(int(kept_deg.max()) if len(deg) else 0) == "u16" else 4
    total = b64_size(count * len(deg)) + b64_size(index * edges) + 2 * ARRAY_BYTES
    if shape.heads:
        heads = 1 if reduction.mean_heads else shape.heads
        total += b64_size(2 * heads * edges) + ARRAY_BYTES
    if kept_deg is not deg and bool((kept_deg < deg).any()):
        total += b64_size(2 * len(deg)) + ARRAY_BYTES  # the kept share of every target
    return total


def plan(
    shapes: Sequence[LayerShape], *, max_edges_per_target: int | None, budget: int
) -> Reduction:
    """The least reduction whose arrays fit ``budget`` characters, over all layers.

    In order: everything (up to ``max_edges_per_target``); the heads' mean;
    the heads' mean and the largest ``k`` strongest edges per target that fits.

    Raises
    ------
    ValueError
        If even one edge per target does not fit.
    """

    def fits(reduction: Reduction) -> bool:
        return sum(layer_bytes(s, reduction) for s in shapes) <= budget

    cap = max_edges_per_target
    for reduction in (Reduction(cap, False), Reduction(cap, True)):
        if fits(reduction):
            return reduction
    if not fits(Reduction(1, True)):
        need = sum(layer_bytes(s, Reduction(1, True)) for s in shapes)
        raise ValueError(
            f"max_bytes leaves {budget:,} bytes for the layers' data, but one edge per "
            f"target of {len(shapes)} layers needs {need:,}; raise max_bytes"
        )
    low = 1  # fits; the largest k that fits lies in [low, high)
    if cap is None:
        cap = max(int(s.in_degree.max()) for s in shapes if len(s.in_degree))
    high = cap
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(Reduction(mid, True)) else (low, mid)
    return Reduction(low, True)


def encode(values: np.ndarray, dtype: str) -> list[str]:
    """``[dtype, base64 of the little-endian bytes]``, what the page decodes into a typed array."""
    data = np.ascontiguousarray(values, dtype=NUMPY[dtype]).tobytes()
    return [dtype, base64.b64encode(data).decode("ascii")]


def decode(spec: Sequence[str]) -> np.ndarray:
    """The array of an :func:`encode` ``[dtype, base64]`` pair (what the page's script does)."""
    return np.frombuffer(base64.b64decode(spec[1]), dtype=NUMPY[spec[0]])


def encode_layer(
    graph: TokenGraph, weights: torch.Tensor | None, reduction: Reduction
) -> tuple[dict, dict]:
    """The page's record of one layer: its description and its encoded arrays.

    Parameters
    ----------
    graph : TokenGraph
    weights : float tensor (E, H) or None
        Checked weights (:func:`graphattn.plot.style.check_weights`); None: the bare graph.
    reduction : Reduction
        What to keep (:func:`plan`).

    Returns
    -------
    meta : dict
        Sizes, the number of heads in the page (``heads``; ``meanOf`` the
        heads averaged, 0 if none), ``step`` (the weight of one quantization
        step), ``edges``, ``kept``, ``perTarget``, ``mass`` (the share of the
        weight kept) and ``note`` (what was left out, "" if nothing).
    arrays : dict
        ``count`` (N,) and ``src`` (kept edges,), ``w`` (heads x kept edges,
        head-major) and ``mass`` (N,) in 1/65535, or None.
    """
    if weights is None:
        w = torch.ones(graph.num_edges, 1, dtype=torch.float64)  # (E, 1)
    else:
        w = weights.to(torch.float64)  # (E, H), no copy when checked
    mean = w.mean(1)  # (E,)
    mean_of = w.shape[1] if reduction.mean_heads and w.shape[1] > 1 else 0
    if mean_of:
        w = mean[:, None]  # (E, 1)
    keep = _kept(graph, w, reduction.per_target)  # (E,) bool, or None: every edge
    src = graph.src if keep is None else graph.src[keep]  # (E_kept,)
    dst = graph.dst if keep is None else graph.dst[keep]  # (E_kept,)
    count = torch.bincount(dst, minlength=graph.num_nodes)  # (N,)
    share, mass = _kept_mass(graph, mean, keep)  # (N,) or None, float
    arrays = {
        "count": encode(count.numpy(), index_dtype(int(count.max()) if len(count) else 0)),
        "src": encode(src.numpy(), index_dtype(graph.num_src_nodes - 1)),
        "w": None,
        "mass": None if share is None else encode(torch.round(share * 65535).numpy(), "u16"),
    }
    meta = {"heads": w.shape[1], "meanOf": mean_of, "step": 1.0, "edges": graph.num_edges,
            "kept": len(src), "perTarget": None if keep is None else reduction.per_target,
            "mass": mass, "note": _note(graph, weights, keep, reduction.per_target, mass, mean_of)}
    if weights is not None:
        arrays["w"], meta["step"] = _quantized((w if keep is None else w[keep]).t())  # (H', E_kept)
    return meta, arrays


def _kept(graph: TokenGraph, w: torch.Tensor, k: int | None) -> torch.Tensor | None:
    """The ``k`` strongest incoming edges of every target (by the largest head), or None: all."""
    widest = int(graph.in_degree().max()) if graph.num_edges else 0
    if k is None or widest <= k:
        return None
    values = w.max(1).values  # (E,)
    if graph.num_nodes * widest > 2 * graph.num_edges:  # uneven in-degrees: rank by sorting
        return _rank_in_target(graph, values) < k
    # even in-degrees (windows): every target's edges in one padded row, top-k along the rows
    slot = torch.arange(graph.num_edges) - graph.indptr[graph.dst]  # (E,) place in its row
    rows = torch.full((graph.num_nodes, widest), -torch.inf, dtype=values.dtype)
    rows[graph.dst, slot] = values
    # stable order: equal values keep edge order, as _rank_in_target does
    best = torch.sort(rows, dim=1, descending=True, stable=True).indices[:, :k]  # (N, k)
    keep = torch.zeros(graph.num_edges, dtype=torch.bool)
    chosen = graph.indptr[:-1, None] + best  # (N, k) edge ids, padding slots included
    real = best < graph.in_degree()[:, None]
    keep[chosen[real]] = True
    return keep


def _kept_mass(
    graph: TokenGraph, mean: torch.Tensor, keep: torch.Tensor | None
) -> tuple[torch.Tensor | None, float]:
    """The share of each target's weight magnitude kept ``(N,)`` (None: all) and of the layer's."""
    if keep is None:
        return None, 1.0
    size = mean.abs()  # (E,)
    total = torch.zeros(graph.num_nodes, dtype=torch.float64).index_add_(0, graph.dst, size)
    kept = torch.zeros_like(total).index_add_(0, graph.dst[keep], size[keep])  # (N,)
    share = torch.where(total > 0, kept / total.clamp(min=1e-300), torch.ones_like(total))
    whole = float(total.sum())
    return share.clamp(0, 1), float(kept.sum()) / whole if whole > 0 else 1.0


def _quantized(w: torch.Tensor) -> tuple[list[str], float]:
    """Weights ``(H, E)`` as 16-bit steps of ``largest magnitude / levels`` and that step."""
    signed = bool((w < 0).any())
    dtype = "i16" if signed else "u16"
    top = float(w.abs().max()) if w.numel() else 0.0
    step = top / LEVELS[dtype] if top > 0 else 1.0
    levels = LEVELS[dtype]
    return encode(torch.round(w / step).clamp(-levels, levels).numpy(), dtype), step


def _note(
    graph: TokenGraph,
    weights: torch.Tensor | None,
    keep: torch.Tensor | None,
    k: int | None,
    mass: float,
    mean_of: int,
) -> str:
    """What the page left out of this layer ("" if nothing)."""
    parts = []
    if keep is not None:
        e, kept = graph.num_edges, int(keep.sum())
        edge = "edge" if k == 1 else "edges"
        which = f"strongest {k} incoming {edge} per target" if weights is not None else (
            f"first {k} incoming {edge} per target (by source)"
        )
        weight = f" ({mass:.1%} of the weight mass)" if weights is not None else ""
        parts.append(
            f"kept in the page: the {which}{weight}; {e - kept:,} of {e:,} edges omitted"
        )
    if mean_of:
        parts.append(f"weights: the mean of {mean_of} heads (per-head weights omitted)")
    return " · ".join(parts)
