"""The kernels' front door: the arguments of an attention function as one request.

:func:`graphattn.graph_attention`, :func:`graphattn.variants.variant_attention`,
:func:`graphattn.distributed.graph_attention` and the Hugging Face integration
(through the first two) take queries, keys and values alike: unbatched
``(N, H, D)`` or batched ``(B, N, H, D)``, with ``H_kv`` key heads shared by
groups of query heads, and one graph or one graph per head. Each builds one
:class:`AttentionInputs` with :meth:`AttentionInputs.of`, which checks them
(before any work, with errors naming the argument and the expected shape) and
adds the batch dimension; the request then repeats the key heads, folds
per-head graphs into one head over a head-major batched graph (cached in
:data:`HEAD_MAJOR_GRAPHS` while the graphs live) to make the
:class:`~graphattn.backends.base.KernelCall`, and brings the kernel's result
back to the caller's layout with :meth:`AttentionInputs.finish`.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from graphattn.backends.base import KernelCall
from graphattn.backends.checks import check_graphs, check_qkv
from graphattn.graph import TokenGraph

__all__ = [
    "HEAD_MAJOR_GRAPHS",
    "AttentionInputs",
    "HeadMajorGraphs",
    "add_batch_dim",
    "drop_batch_dim",
    "repeat_kv_heads",
]


class HeadMajorGraphs:
    """Per-head graphs batched head-major, kept while every member graph lives.

    An entry is keyed by the ``id`` of each member and dropped as soon as any
    member is garbage-collected (``weakref.finalize``), so an ``id`` in a key
    always belongs to the live graph it was taken from. The cache holds no
    reference to the members themselves.

    Examples
    --------
    >>> cache = HeadMajorGraphs()
    >>> a, b = TokenGraph([[0], [1]]), TokenGraph([[1], [0]])
    >>> cache.get([a, b]).edge_index.tolist()
    [[0, 3], [1, 2]]
    >>> cache.get([a, b]) is cache.get([a, b]), len(cache)
    (True, 1)
    >>> del b
    >>> len(cache)
    0
    """

    def __init__(self) -> None:
        self._store: dict[tuple[int, ...], TokenGraph] = {}

    def get(self, graphs: Sequence[TokenGraph]) -> TokenGraph:
        """``TokenGraph.batch(graphs)``, built once per list of live graphs."""
        key = tuple(id(g) for g in graphs)
        if key not in self._store:
            self._store[key] = TokenGraph.batch(graphs)
            for g in {id(g): g for g in graphs}.values():
                weakref.finalize(g, self._store.pop, key, None)
        return self._store[key]

    def entries(self, graph: TokenGraph) -> list[TokenGraph]:
        """The batched graphs held for lists that contain ``graph``."""
        return [batched for key, batched in self._store.items() if id(graph) in key]

    def __len__(self) -> int:
        return len(self._store)


# The head-major batched graphs of per-head calls, reused across calls on the same graphs.
HEAD_MAJOR_GRAPHS = HeadMajorGraphs()


def repeat_kv_heads(x: torch.Tensor, heads: int, dim: int = 2) -> torch.Tensor:
    """``x`` with each of its key/value heads (dim ``dim``) repeated for its group of query heads.

    Grouped-query attention: query head ``h`` reads key head ``h // (H // H_kv)``.
    With ``H_kv == heads`` this is ``x`` itself.

    Examples
    --------
    >>> k = torch.arange(2.0).view(1, 1, 2, 1)  # (B, M, H_kv=2, D)
    >>> repeat_kv_heads(k, 4).flatten().tolist()
    [0.0, 0.0, 1.0, 1.0]
    """
    group = heads // x.shape[dim]
    return x if group == 1 else x.repeat_interleave(group, dim=dim)


def add_batch_dim(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
    """``(q, k, v, batched)``: the tensors with a batch dim (added when ``q`` has 3 dims).

    Examples
    --------
    >>> q, k, v, batched = add_batch_dim(*[torch.zeros(2, 1, 4)] * 3)
    >>> tuple(q.shape), batched
    ((1, 2, 1, 4), False)
    """
    if q.dim() == 4:
        return q, k, v, True
    return q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0), False  # (1, *, H, D)


def drop_batch_dim(out: torch.Tensor, weights):
    """The first (only) batch element of ``out`` and of the weights (a tensor, a tuple or None).

    Examples
    --------
    >>> out, w = drop_batch_dim(torch.zeros(1, 2, 1, 3), (torch.zeros(1, 5),))
    >>> tuple(out.shape), tuple(w[0].shape)
    ((2, 1, 3), (5,))
    """
    if isinstance(weights, tuple):
        return out[0], tuple(w[0] for w in weights)
    return out[0], (None if weights is None else weights[0])


@dataclass(frozen=True, eq=False)
class AttentionInputs:
    """Checked queries, keys, values and graphs of one attention call, batched.

    Build it with :meth:`of`; it holds the tensors with a batch dimension and
    the key heads as given, and knows whether the caller's were batched and
    whether each head has its own graph.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> q, k = torch.zeros(2, 4, 8), torch.zeros(2, 2, 8)  # 4 query heads, 2 key heads
    >>> inputs = AttentionInputs.of(q, k, k, g)
    >>> inputs.batched, inputs.num_heads, inputs.scale_or_default(None)
    (False, 4, 0.3535533905932738)
    >>> call = inputs.kernel_call(scale=1.0)
    >>> tuple(call.k.shape)  # (B, M, H, D): one key head per query head
    (1, 2, 4, 8)
    >>> out, _ = inputs.finish(torch.zeros(1, 2, 4, 8), None)
    >>> tuple(out.shape)
    (2, 4, 8)
    """

    q: torch.Tensor  # (B, N, H, D) queries
    k: torch.Tensor  # (B, M, H_kv, D) keys, heads as given
    v: torch.Tensor  # (B, M, H_kv, Dv) values
    graph: TokenGraph | None  # the call's graph, or None with per-head graphs
    graphs: list[TokenGraph] | None  # one graph per head, or None
    batched: bool  # whether the caller's tensors had the batch dim

    @classmethod
    def of(cls, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, graph) -> AttentionInputs:
        """Check ``q``, ``k``, ``v`` and ``graph`` (see :func:`check_qkv`, :func:`check_graphs`).

        Raises
        ------
        TypeError, ValueError
            As :func:`~graphattn.backends.checks.check_qkv` and
            :func:`~graphattn.backends.checks.check_graphs` do.
        """
        check_qkv(q, k, v)
        graphs = check_graphs(graph, q.shape[-3], k.shape[-3], q.shape[-2])  # or None
        q, k, v, batched = add_batch_dim(q, k, v)
        return cls(q, k, v, graph if graphs is None else None, graphs, batched)

    @property
    def num_heads(self) -> int:
        """``H``, the query heads."""
        return self.q.shape[2]

    def scale_or_default(self, scale: float | None) -> float:
        """``scale`` as a float, ``1 / sqrt(D)`` when None."""
        return 1.0 / math.sqrt(self.q.shape[-1]) if scale is None else float(scale)

    def expanded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``k (B, M, H, D)`` and ``v (B, M, H, Dv)`` with one key head per query head."""
        h = self.num_heads
        return repeat_kv_heads(self.k, h), repeat_kv_heads(self.v, h)

    def kernel_call(self, *, scale: float, bias: torch.Tensor | None = None,
                    return_weights: bool = False, dropout_p: float = 0.0,
                    generator: torch.Generator | None = None,
                    head_reduction: str | None = None) -> KernelCall:  # fmt: skip
        """The :class:`KernelCall`; per-head graphs as one head over their head-major graph.

        ``bias`` is ``(B, E, H)``, or ``(B, E_total, 1)`` in head order for
        per-head graphs.
        """
        q, graph = self.q, self.graph
        k, v = self.expanded()  # (B, M, H, D), (B, M, H, Dv)
        if self.graphs is not None:
            q, k, v = (_head_major(t) for t in (q, k, v))  # (B, H*N | H*M, 1, *)
            graph = HEAD_MAJOR_GRAPHS.get(self.graphs)
        return KernelCall(q, k, v, graph, scale=scale, bias=bias, return_weights=return_weights,
                          dropout_p=dropout_p, generator=generator,
                          head_reduction=head_reduction)  # fmt: skip

    def finish(self, out: torch.Tensor, weights):
        """A kernel's ``out (B, N', H', Dv)`` and weights in the caller's layout.

        Per-head graphs: ``out (B, N, H, Dv)`` and a tuple of ``H`` weights
        ``(B, E_h)``; then the batch dim is dropped where the caller had none.
        """
        if self.graphs is not None:
            b, h = out.shape[0], len(self.graphs)
            out = out.view(b, h, self.graphs[0].num_nodes, -1).transpose(1, 2)  # (B, N, H, Dv)
            if weights is not None:
                sizes = [g.num_edges for g in self.graphs]
                weights = tuple(weights[..., 0].split(sizes, dim=1))  # H x (B, E_h)
        return (out, weights) if self.batched else drop_batch_dim(out, weights)


def _head_major(t: torch.Tensor) -> torch.Tensor:
    """``t (B, N, H, D)`` as one head over ``H * N`` tokens, head-major: ``(B, H*N, 1, D)``."""
    b, n, h, d = t.shape
    return t.transpose(1, 2).reshape(b, h * n, 1, d)
