"""Random attention (BigBird, Zaheer et al. 2020), seeded and reproducible.

:func:`random` draws ``k`` sources per target, or every edge with chance
``p``. The module is ``random_`` because the package exports the builder
under the name ``random``.
"""

from __future__ import annotations

import torch

from graphattn._validate import check_bool, check_int
from graphattn.graph import TokenGraph
from graphattn.patterns._common import check_nodes, make_graph, union_graph
from graphattn.patterns.predicates import PREDICATE_TILE

__all__ = ["random"]


def _sample_k(allowed: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """``min(k, allowed[i])`` distinct sources from ``0 .. allowed[i]-1`` for each row.

    Robert Floyd's algorithm, vectorized over rows: a uniform ``k``-subset in
    ``k`` steps. Returns ``(2, E)`` (canonical after TokenGraph sorts it).
    """
    n = allowed.numel()
    chosen = torch.full((n, k), -1, dtype=torch.long)  # (N, k), -1 = none
    for s in range(k):
        t = allowed - k + s  # (N,) the candidate upper end of step s
        r = (torch.rand(n, generator=gen, dtype=torch.float64) * (t + 1).clamp(min=1)).long()
        r = torch.minimum(r, t.clamp(min=0))  # uniform in [0, t]; guards float rounding
        seen = (chosen[:, :s] == r[:, None]).any(1)  # (N,)
        chosen[:, s] = torch.where(t >= 0, torch.where(seen, t, r), -1)
    small = allowed <= k  # rows that get all their sources
    ranks = torch.arange(k)[None, :].expand(n, -1)  # (N, k)
    chosen = torch.where(small[:, None], torch.where(ranks < allowed[:, None], ranks, -1), chosen)
    rows = torch.arange(n)[:, None].expand(-1, k)  # (N, k)
    keep = chosen >= 0
    return torch.stack([chosen[keep], rows[keep]])


def random(
    n: int,
    k: int | None = None,
    *,
    p: float | None = None,
    seed: int = 0,
    causal: bool = False,
) -> TokenGraph:
    """Seeded random attention: ``k`` random sources per target, or each edge with chance ``p``.

    With ``k``, every ``i`` attends to ``k`` distinct sources drawn uniformly
    from ``0 .. n-1`` (``0 .. i`` if causal; all of them where fewer than
    ``k`` are allowed). With ``p``, every allowed edge is present
    independently with probability ``p``. The same ``seed`` gives the same
    graph. Random attention as in BigBird (Zaheer et al. 2020).

    Parameters
    ----------
    n : int
        Number of tokens.
    k : int, optional
        Sources per target, in ``[0, n]``.
    p : float, optional
        Probability of every allowed edge, in ``[0, 1]``.
    seed : int
        Seed of the private ``torch.Generator``.
    causal : bool
        Draw only ``j <= i``.

    Returns
    -------
    TokenGraph
        Named ``random(k=..., seed=...)`` or ``random(p=..., seed=...)``.

    Raises
    ------
    ValueError
        If not exactly one of ``k`` and ``p`` is given, ``k`` is not in
        ``[0, n]`` or ``p`` not in ``[0, 1]``.

    Examples
    --------
    >>> g = random(6, 2, seed=1)
    >>> g.in_degree().tolist(), g == random(6, 2, seed=1)
    ([2, 2, 2, 2, 2, 2], True)
    """
    n = check_nodes(n, "n", low=1)
    seed = check_int(seed, "seed", low=0)
    causal = check_bool(causal, "causal")
    if (k is None) == (p is None):
        raise ValueError(f"give exactly one of k and p, got k={k}, p={p}")
    gen = torch.Generator().manual_seed(seed)
    allowed = torch.arange(1, n + 1) if causal else torch.full((n,), n)  # (N,)
    tail = f", seed={seed}" + (", causal=True" if causal else "") + ")"
    if k is not None:
        k = check_int(k, "k", low=0, high=n)
        return make_graph(_sample_k(allowed, k, gen), n, f"random(k={k}" + tail)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    rows = max(1, PREDICATE_TILE // n)
    parts = []
    for r0 in range(0, n, rows):
        i = torch.arange(r0, min(n, r0 + rows))[:, None]  # (R, 1)
        keep = torch.rand(i.shape[0], n, generator=gen, dtype=torch.float64) < p  # (R, N)
        if causal:
            keep &= torch.arange(n)[None, :] <= i
        dst, src = keep.nonzero(as_tuple=True)
        parts.append(torch.stack([src, dst + r0]))
    return union_graph(n, parts, f"random(p={p}" + tail)
