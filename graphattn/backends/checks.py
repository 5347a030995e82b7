"""Input checks shared by the attention functions of the kernels layer.

:func:`graphattn.graph_attention`, :func:`graphattn.variants.variant_attention`
and :func:`graphattn.distributed.graph_attention` take queries, keys, values,
graphs and a score scale alike; they check them here (through
:class:`graphattn.backends.front.AttentionInputs`, the kernels' front door,
where they can) before doing any work, with errors that name the argument and
the expected shape.
"""

from __future__ import annotations

import math

import torch

from graphattn._validate import check_str
from graphattn.backends.base import Backend, get_backend
from graphattn.graph import TokenGraph

__all__ = ["check_backend", "check_graphs", "check_qkv", "check_scale"]


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Check queries, keys and values as :func:`graphattn.graph_attention` takes them.

    ``q (N, H, D)``, ``k (M, H_kv, D)`` and ``v (M, H_kv, Dv)``, or all three
    with a leading batch dim ``B``: floating-point tensors of one dtype and
    device, ``H_kv`` dividing ``H``, no empty dim.

    Raises
    ------
    TypeError
        If one is not a floating-point tensor, or the dtypes differ.
    ValueError
        If the shapes or devices do not match.

    Examples
    --------
    >>> check_qkv(torch.zeros(4, 2, 8), torch.zeros(6, 1, 8), torch.zeros(6, 1, 3))
    >>> check_qkv(torch.zeros(4, 2, 8), torch.zeros(6, 3, 8), torch.zeros(6, 3, 8))
    Traceback (most recent call last):
    ...
    ValueError: k/v heads H_kv=3 must divide the query heads H=2
    """
    _check_alike(q, k, v)
    _check_sizes(q, k, v)


def _check_alike(q: object, k: object, v: object) -> None:
    """``q``, ``k``, ``v`` are floating-point tensors with q's dtype, device and 3 or 4 dims."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if q.dim() not in (3, 4):
        raise ValueError(f"q must have shape (N, H, D) or (B, N, H, D), got {tuple(q.shape)}")
    for name, t in (("k", k), ("v", v)):
        if t.dim() != q.dim():
            raise ValueError(
                f"{name} must have {q.dim()} dims like q {tuple(q.shape)}, got {tuple(t.shape)}"
            )
        if t.dtype != q.dtype:
            raise TypeError(f"{name} must have q's dtype {q.dtype}, got {t.dtype}")
        if t.device != q.device:
            raise ValueError(f"{name} must be on q's device {q.device}, got {t.device}")


def _check_sizes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """The sizes agree: batch ``B``, head dim ``D`` of q and k, ``(M, H_kv)`` of k and v, heads."""
    lead = "(B, M, H_kv, " if q.dim() == 4 else "(M, H_kv, "
    if q.dim() == 4 and not q.shape[0] == k.shape[0] == v.shape[0]:
        raise ValueError(
            f"q, k, v must share the batch size B, got {q.shape[0]}, {k.shape[0]}, {v.shape[0]}"
        )
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k must have shape {lead}D={q.shape[-1]}), got {tuple(k.shape)}")
    if v.shape[:-1] != k.shape[:-1]:
        raise ValueError(
            f"v must have shape {tuple(k.shape[:-1])} + (Dv,) like k, got {tuple(v.shape)}"
        )
    h, h_kv = q.shape[-2], k.shape[-2]
    if h_kv == 0 or h % h_kv:
        raise ValueError(f"k/v heads H_kv={h_kv} must divide the query heads H={h}")
    if min(q.shape) == 0 or min(k.shape) == 0 or min(v.shape) == 0:
        raise ValueError(
            f"q, k, v must not have empty dims, got {tuple(q.shape)}, {tuple(k.shape)}, "
            f"{tuple(v.shape)}"
        )


def check_backend(backend: object) -> Backend | None:
    """The registered backend named ``backend``, or None for ``"auto"``.

    Raises
    ------
    TypeError
        If ``backend`` is not a string.
    ValueError
        If no backend of that name is registered.

    Examples
    --------
    >>> check_backend("auto") is None, check_backend("edge").name
    (True, 'edge')
    """
    check_str(backend, "backend")
    return None if backend == "auto" else get_backend(backend)


def check_scale(scale: object) -> None:
    """Check a score scale: a finite float, or None for ``1 / sqrt(D)``.

    Examples
    --------
    >>> check_scale(0.5)
    >>> check_scale(float("inf"))
    Traceback (most recent call last):
    ...
    ValueError: scale must be finite, got inf
    """
    if scale is None:
        return
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"scale must be a float or None, got {type(scale).__name__}")
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")


def check_graphs(graph: object, n: int, m: int, h: int) -> list[TokenGraph] | None:
    """Check a graph, or one graph per head, for ``N`` targets, ``M`` sources and ``H`` heads.

    Returns
    -------
    list of TokenGraph or None
        The per-head graphs, or None when ``graph`` is a single TokenGraph.

    Raises
    ------
    TypeError
        If ``graph`` is neither a TokenGraph nor a sequence of them.
    ValueError
        If the sizes do not match, a sequence does not hold one graph per
        head, or it mixes cross and self graphs.

    Examples
    --------
    >>> g = TokenGraph([[0, 1], [1, 1]])
    >>> check_graphs(g, 2, 2, 4) is None
    True
    >>> len(check_graphs([g, g], 2, 2, 2))
    2
    >>> check_graphs(g, 3, 3, 1)
    Traceback (most recent call last):
    ...
    ValueError: graph has N=2 targets and M=2 sources, but q has N=3 tokens and k/v have M=3 (...)
    """
    if isinstance(graph, TokenGraph):
        graphs, per_head = [graph], False
    elif isinstance(graph, (list, tuple)) and all(isinstance(g, TokenGraph) for g in graph):
        graphs, per_head = list(graph), True
        if len(graphs) != h:
            raise ValueError(
                f"graph as a sequence needs one graph per head (H={h}), got {len(graphs)}"
            )
        if len({g.is_cross for g in graphs}) != 1:
            raise ValueError("graph: per-head graphs must all be cross graphs or all self graphs")
    else:
        raise TypeError(
            f"graph must be a TokenGraph or a sequence of H TokenGraphs, got {type(graph).__name__}"
        )
    for idx, g in enumerate(graphs):
        where = f"graph[{idx}]" if per_head else "graph"
        if g.num_nodes != n or g.num_src_nodes != m:
            raise ValueError(
                f"{where} has N={g.num_nodes} targets and M={g.num_src_nodes} sources, but q has "
                f"N={n} tokens and k/v have M={m}{_layout_hint(g, n, h)}"
            )
    return graphs if per_head else None


LAYOUT = (
    "q, k, v are node-major (N, H, D) or (B, N, H, D); a head-major (H, N, D) or (B, H, N, D) "
    "tensor must be transposed first (with H == N it cannot be told apart)"
)


def _layout_hint(graph: TokenGraph, n: int, h: int) -> str:
    """The layout reminder added to a size mismatch, naming head-major input where it looks so."""
    if graph.num_nodes == h and n != h:
        return f" (q looks head-major, with its H={h} and N={n} swapped: {LAYOUT})"
    return f" ({LAYOUT})"
