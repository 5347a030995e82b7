"""Which rank owns each token: the ``"contiguous"`` and ``"metis"`` methods.

Both return an owner per target and per source (the same tensor for a self
graph) and depend on nothing but the graph and their arguments, so every rank
computes the same assignment on its own.
"""

from __future__ import annotations

import numpy as np
import torch

from graphattn.graph import TokenGraph

__all__ = ["METHODS", "contiguous_owner", "contiguous_owners", "metis_owner", "metis_owners"]

# The partition methods, in the order the docs list them.
METHODS = ("contiguous", "metis")


def contiguous_owner(weights: torch.Tensor, world_size: int) -> torch.Tensor:
    """Cut ``len(weights)`` tokens in order into ``world_size`` pieces of equal weight.

    Token ``i`` goes to the rank whose share of the total weight holds the
    midpoint of its own weight, so ranks own contiguous, ascending ranges
    (some empty where ``world_size`` exceeds the number of tokens).

    Examples
    --------
    >>> contiguous_owner(torch.ones(6), 3).tolist()
    [0, 0, 1, 1, 2, 2]
    >>> contiguous_owner(torch.tensor([4.0, 1, 1, 1, 1]), 2).tolist()
    [0, 1, 1, 1, 1]
    >>> contiguous_owner(torch.ones(2), 4).tolist()
    [1, 3]
    """
    if weights.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    w = weights.to(torch.float64)
    mid = w.cumsum(0) - w / 2  # (N,) midpoint of each token's weight
    owner = torch.floor(mid * world_size / w.sum()).long()
    return owner.clamp_(0, world_size - 1)


def _load(graph: TokenGraph) -> torch.Tensor:
    """Per-target weight: the target itself plus its incoming edges."""
    return 1.0 + graph.in_degree().to(torch.float64)  # (N,)


def contiguous_owners(graph: TokenGraph, world_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Owners of targets (balanced by targets and edges) and of sources (by count)."""
    owner = contiguous_owner(_load(graph), world_size)  # (N,)
    if not graph.is_cross:
        return owner, owner
    return owner, contiguous_owner(torch.ones(graph.num_src_nodes), world_size)  # (M,)


def _symmetric_csr(graph: TokenGraph) -> tuple[np.ndarray, np.ndarray, int]:
    """The undirected graph METIS cuts: ``(xadj, adjncy, num_vertices)``.

    Self graph: one vertex per token, no self loops. Cross graph: targets are
    vertices ``0..N-1`` and sources ``N..N+M-1``.
    """
    src, dst = graph.src, graph.dst
    n = graph.num_nodes
    if graph.is_cross:
        src = src + n
        nv = n + graph.num_src_nodes
    else:
        keep = src != dst
        src, dst = src[keep], dst[keep]
        nv = n
    a = torch.cat([src, dst])
    b = torch.cat([dst, src])  # (2E,) both directions
    pairs = torch.unique(a * nv + b)  # sorted by (a, b), no duplicates
    a, b = pairs // nv, pairs % nv
    xadj = torch.zeros(nv + 1, dtype=torch.long)
    xadj[1:] = torch.bincount(a, minlength=nv).cumsum(0)
    return xadj.numpy(), b.numpy(), nv


def _vertex_weights(graph: TokenGraph, nv: int) -> list[int]:
    """Two balance constraints per vertex: one per vertex, and targets weighted by edges."""
    w = np.ones((nv, 2), dtype=np.int64)
    w[: graph.num_nodes, 1] = 1 + graph.in_degree().numpy()
    return w.reshape(-1).tolist()  # interleaved [c0, c1] per vertex (METIS ncon = 2)


def metis_owners(
    graph: TokenGraph, world_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Owners from METIS (``pymetis``) on the symmetrized graph, with a fixed seed.

    Raises
    ------
    ImportError
        If ``pymetis`` is not installed (the ``distributed`` extra).
    """
    try:
        import pymetis
    except ImportError as err:
        raise ImportError(
            "method='metis' needs pymetis: pip install 'graphattn[distributed]' "
            "(or use method='contiguous')"
        ) from err
    xadj, adjncy, nv = _symmetric_csr(graph)
    if world_size == 1 or len(adjncy) == 0 or world_size >= nv:
        return contiguous_owners(graph, world_size)  # nothing to cut, or a vertex per rank
    options = pymetis.Options()
    options.seed = seed
    part = pymetis.part_graph(
        world_size, pymetis.CSRAdjacency(xadj, adjncy),
        vweights=_vertex_weights(graph, nv), options=options,
    )  # fmt: skip
    owner = torch.as_tensor(np.asarray(part.vertex_part, dtype=np.int64))  # (nv,)
    n = graph.num_nodes
    return (owner[:n], owner[n:]) if graph.is_cross else (owner, owner)


def metis_owner(graph: TokenGraph, world_size: int, seed: int = 0) -> torch.Tensor:
    """The METIS owner of each target (see :func:`metis_owners`).

    Examples
    --------
    >>> from graphattn import patterns
    >>> owner = metis_owner(patterns.sliding_window(8, 2, causal=False), 2)
    >>> sorted(torch.bincount(owner).tolist())
    [4, 4]
    """
    return metis_owners(graph, world_size, seed)[0]
