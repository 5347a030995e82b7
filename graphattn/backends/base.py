"""The backend contract: what a kernel receives, and the registry of backends.

A *backend* is a kernel plus a ``supports`` predicate. The dispatcher
:func:`graphattn.graph_attention` validates and normalizes its inputs, then
calls the kernel with one :class:`KernelCall`

    kernel(call) -> (out, weights | None)

where ``call.q (B, N, H, D)``, ``call.k (B, M, H, D)`` and ``call.v (B, M, H,
Dv)`` already have ``H`` heads (grouped-query heads are expanded by the
dispatcher), ``call.graph`` is a single :class:`~graphattn.graph.TokenGraph`
with ``graph.num_nodes == N`` and ``graph.num_src_nodes == M``, ``call.bias``
is ``None`` or a float tensor ``(B, E, H)`` in the accumulation dtype (see
:func:`accumulation_dtype`; it may be an expanded view), ``out (B, N, H, Dv)``
has ``q``'s dtype and ``weights (B, E, H)`` (post-softmax, pre-dropout, in
``graph.edge_index`` column order) has the accumulation dtype. A target
without incoming edges, or whose edges all carry a ``-inf`` bias, gets an
exact zero output and zero weights. A call with ``call.head_reduction`` set
(see :mod:`graphattn.backends.heads`) may return its weights already reduced
over heads, ``(B, E)``; a kernel that returns ``(B, E, H)`` leaves the
reduction to the dispatcher.

Non-finite inputs follow one contract on every backend. A NaN or inf entry of
``q``, ``k`` or ``v`` makes its (token, head) row *bad*; a NaN or ``+inf``
bias makes its edge bad; a ``-inf`` bias removes its edge, which then reads
nothing (not even a bad source). A target's output in a head is NaN exactly
when it reads something bad through an edge that is not removed: its own
query (once it has such an edge), the key or value of the edge's source, or
the edge's bias. Its weights are NaN, on all its edges, when its scores read
it (a query, key or bias; a bad value leaves the weights finite). Every other
output and weight is what it would be without the bad inputs, so a target
with no edge left gets zeros, whatever its query. Gradients are those of the
finite outputs: a NaN output passes no gradient back, a bad row or bias entry
gets a zero gradient, and no bad input makes any gradient non-finite. Each
built-in kernel runs through :func:`contain_nonfinite`, which gives this at the
cost of one sum per input when every input is finite.

A backend may take options of its own as keyword arguments after ``call`` (a
block size, a chunk budget).

``supports(request) -> str | None`` answers whether the kernel can run a call
described by an :class:`AttentionRequest`: ``None`` when it can, otherwise a
short reason. Which backend ``backend="auto"`` runs is decided by the policy of
:mod:`graphattn.backends.auto`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, replace
from typing import Protocol

import torch

from graphattn._cache import ObjectCache
from graphattn._validate import check_str
from graphattn.graph import TokenGraph

__all__ = [
    "AttentionRequest",
    "Backend",
    "Kernel",
    "KernelCall",
    "PLANS",
    "accumulation_dtype",
    "backend_names",
    "contain_nonfinite",
    "dropout_keep",
    "edges_on",
    "get_backend",
    "register_backend",
    "safe_total",
    "segment_softmax",
    "unregister_backend",
]

# Plans built from a graph (index tensors on a device, chunks, tiles, masks), kept while it lives.
PLANS = ObjectCache("graphattn.backends")


@dataclass(frozen=True)
class AttentionRequest:
    """Everything a backend's ``supports`` and the selector may look at.

    It describes the call *as the kernel will see it*: for per-head graphs the
    dispatcher runs one head over a head-major batched graph, so ``graph`` is
    that graph and ``num_heads`` is 1.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> r = AttentionRequest(g, batch=1, num_heads=2, head_dim=8, value_dim=8,
    ...                      device=torch.device("cpu"), dtype=torch.float32)
    >>> r.needs_grad, r.dropout
    (False, 0.0)
    """

    graph: TokenGraph
    batch: int
    num_heads: int
    head_dim: int
    value_dim: int
    device: torch.device
    dtype: torch.dtype
    needs_grad: bool = False  # some input requires grad and grad mode is on
    return_weights: bool = False  # the caller asked for the (B, E, H) weights
    has_bias: bool = False  # a per-edge bias is added to the scores
    dropout: float = 0.0  # dropout probability on the weights


@dataclass(frozen=True, eq=False)
class KernelCall:
    """Everything a kernel receives: one call, brought to the contract of the module docstring.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> q = torch.zeros(1, 2, 2, 4)
    >>> call = KernelCall(q, q, q, g, scale=0.5)
    >>> request = call.request()
    >>> request.batch, request.num_heads, request.head_dim, request.has_bias
    (1, 2, 4, False)
    """

    q: torch.Tensor  # (B, N, H, D) queries
    k: torch.Tensor  # (B, M, H, D) keys, one per query head
    v: torch.Tensor  # (B, M, H, Dv) values
    graph: TokenGraph  # N targets, M sources
    _: KW_ONLY
    scale: float  # score scale
    bias: torch.Tensor | None = None  # (B, E, H) in the accumulation dtype, or None
    return_weights: bool = False  # also return the (B, E, H) weights
    dropout_p: float = 0.0  # dropout probability on the weights
    generator: torch.Generator | None = None  # source of the dropout mask
    head_reduction: str | None = None  # weights reduced over heads (B, E): see backends.heads

    def request(self) -> AttentionRequest:
        """The :class:`AttentionRequest` that describes this call to ``supports`` and the policy."""
        tensors = (self.q, self.k, self.v, self.bias)
        needs_grad = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in tensors
        )
        return AttentionRequest(
            graph=self.graph,
            batch=self.q.shape[0],
            num_heads=self.q.shape[2],
            head_dim=self.q.shape[-1],
            value_dim=self.v.shape[-1],
            device=self.q.device,
            dtype=self.q.dtype,
            needs_grad=needs_grad,
            return_weights=self.return_weights,
            has_bias=self.bias is not None,
            dropout=float(self.dropout_p),
        )


class Kernel(Protocol):
    """Call signature of a backend kernel (see the module docstring)."""

    def __call__(self, call: KernelCall) -> tuple[torch.Tensor, torch.Tensor | None]: ...


Supports = Callable[[AttentionRequest], "str | None"]


@dataclass(frozen=True)
class Backend:
    """A registered backend: its name, kernel and ``supports`` predicate."""

    name: str
    kernel: Kernel
    supports: Supports


_REGISTRY: dict[str, Backend] = {}


def register_backend(
    name: str, kernel: Kernel, supports: Supports, *, replace: bool = False
) -> Backend:
    """Register a kernel under ``name`` so that ``graph_attention(backend=name)`` finds it.

    Parameters
    ----------
    name : str
        Backend name; ``"auto"`` is reserved for the selector.
    kernel : callable
        The kernel, called as described in the module docstring.
    supports : callable
        ``supports(request) -> str | None``: ``None`` when the kernel can run
        the request, otherwise the reason it cannot.
    replace : bool
        Allow replacing an existing backend of the same name.

    Returns
    -------
    Backend
        The registered entry.

    Raises
    ------
    ValueError
        If ``name`` is empty, ``"auto"``, or already registered without ``replace``.
    TypeError
        If ``name`` is not a string or ``kernel``/``supports`` are not callable.

    Examples
    --------
    >>> def kernel(call):
    ...     return get_backend("reference").kernel(call)
    >>> register_backend("mine", kernel, lambda request: None).name
    'mine'
    >>> "mine" in backend_names()
    True
    >>> unregister_backend("mine")
    """
    check_str(name, "name")
    if not name or name == "auto":
        raise ValueError(f"name must be a non-empty string other than 'auto', got {name!r}")
    if not callable(kernel) or not callable(supports):
        raise TypeError("kernel and supports must both be callable")
    if name in _REGISTRY and not replace:
        raise ValueError(f"backend {name!r} is already registered (pass replace=True)")
    entry = Backend(name, kernel, supports)
    _REGISTRY[name] = entry
    return entry


def unregister_backend(name: str) -> None:
    """Remove the backend called ``name`` from the registry.

    Raises
    ------
    ValueError
        If ``name`` is unknown (as :func:`get_backend` raises).

    Examples
    --------
    >>> register_backend("tmp", get_backend("reference").kernel, lambda r: None).name
    'tmp'
    >>> unregister_backend("tmp")
    >>> "tmp" in backend_names()
    False
    """
    get_backend(name)
    del _REGISTRY[name]


def get_backend(name: str) -> Backend:
    """The registered backend called ``name``.

    Raises
    ------
    ValueError
        If no backend of that name is registered.

    Examples
    --------
    >>> get_backend("reference").name
    'reference'
    """
    check_str(name, "name")
    if name not in _REGISTRY:
        raise ValueError(f"unknown backend {name!r}; registered: {backend_names()} or 'auto'")
    return _REGISTRY[name]


def backend_names() -> list[str]:
    """Names of the registered backends, in registration order.

    Examples
    --------
    >>> {"reference", "edge", "dense"} <= set(backend_names())
    True
    """
    return list(_REGISTRY)


# ----------------------------------------------------------- kernel helpers
def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """dtype in which scores and softmax are computed: float64 for float64, else float32.

    Examples
    --------
    >>> accumulation_dtype(torch.bfloat16), accumulation_dtype(torch.float64)
    (torch.float32, torch.float64)
    """
    return torch.float64 if dtype == torch.float64 else torch.float32


def edges_on(graph: TokenGraph, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(src, dst)`` index tensors ``(E,)`` of ``graph`` on ``device``, cached in :data:`PLANS`.

    Examples
    --------
    >>> src, dst = edges_on(TokenGraph([[0, 0], [0, 1]]), torch.device("cpu"))
    >>> src.tolist(), dst.tolist()
    ([0, 0], [0, 1])
    """
    device = torch.device(device)
    return PLANS.get(
        graph, ("edges_on", str(device)), lambda: (graph.src.to(device), graph.dst.to(device))
    )


def dropout_keep(
    shape: tuple[int, ...],
    p: float,
    generator: torch.Generator | None,
    device: torch.device,
) -> torch.Tensor:
    """Bool mask of kept weights, drawn the same way by every backend.

    The uniforms come from ``generator`` (on its own device) or, without one,
    from the default generator of ``device``; so a seeded generator gives the
    same mask, hence the same output, on every backend.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> dropout_keep((2, 3, 1), 0.5, g, torch.device("cpu")).shape
    torch.Size([2, 3, 1])
    """
    where = generator.device if generator is not None else device
    u = torch.rand(shape, generator=generator, device=where)
    return (u >= p).to(device)


def safe_total(total: torch.Tensor) -> torch.Tensor:
    """A softmax denominator with its zeros (targets without a finite score) replaced by 1.

    After subtracting the row maximum a row's total is either 0 (no edge, or
    all ``-inf``) or at least 1, so dividing by this gives exact zero weights
    for the empty rows and, unlike clamping to a tiny number, a finite
    gradient (``d(p / t) / dp = 1 / t`` stays 1 there, and ``exp(-inf) = 0``
    then zeroes it).

    Examples
    --------
    >>> safe_total(torch.tensor([0.0, 1.5])).tolist()
    [1.0, 1.5]
    """
    return total.masked_fill(total == 0, 1.0)


def segment_softmax(score: torch.Tensor, dst: torch.Tensor, num_targets: int) -> torch.Tensor:
    """Softmax of ``score (B, E, H)`` over the edges sharing a target ``dst (E,)``.

    Targets whose scores are all ``-inf`` (or that have no edge) get zero
    weights; no NaN is produced, also in the gradient.

    Examples
    --------
    >>> s = torch.tensor([0.0, 0.0, 5.0, -math.inf]).view(1, 4, 1)
    >>> segment_softmax(s, torch.tensor([0, 0, 1, 2]), 3).flatten().tolist()
    [0.5, 0.5, 1.0, 0.0]
    """
    b, _, h = score.shape
    idx = dst.view(1, -1, 1).expand_as(score)  # (B, E, H)
    smax = score.new_full((b, num_targets, h), -math.inf)
    smax = smax.scatter_reduce(1, idx, score.detach(), "amax", include_self=True)  # (B, N, H)
    smax = smax.masked_fill(smax == -math.inf, 0.0)  # empty / all -inf targets
    p = torch.exp(score - smax.gather(1, idx))  # (B, E, H)
    denom = score.new_zeros((b, num_targets, h)).scatter_add(1, idx, p)  # (B, N, H)
    return p / safe_total(denom).gather(1, idx)  # (B, E, H)


def contain_nonfinite(call: KernelCall, kernel: Kernel) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``kernel(call)`` under the non-finite contract of the module docstring.

    With finite inputs this is ``kernel(call)`` after one cheap test (a sum of
    ``q``, ``k``, ``v`` and the bias, non-finite when an entry is). Otherwise
    the kernel runs on copies whose non-finite head rows of ``q``, ``k``,
    ``v`` and bias entries are zeroed, and the targets that read one through
    an edge without a ``-inf`` bias get a NaN output (and NaN weights when
    their scores read it: a bad ``q``, ``k`` or bias). A kernel that multiplies
    whole tiles (``q k^T``, ``p v``) then never spreads a NaN to the non-edges
    of a tile, in values or gradients: a NaN output is a constant that passes
    no gradient back.

    Examples
    --------
    >>> g = TokenGraph([[0, 1], [0, 1]])  # two self loops
    >>> q = k = torch.zeros(1, 2, 1, 1)
    >>> v = torch.tensor([1.0, math.nan]).view(1, 2, 1, 1)
    >>> def tiles(call):  # p @ v over the whole 2 x 2 tile, as a tile kernel does
    ...     p = torch.eye(2).expand(1, 1, 2, 2)
    ...     return (p @ call.v.transpose(1, 2)).transpose(1, 2), None
    >>> tiles(KernelCall(q, k, v, g, scale=1.0))[0].flatten().tolist()
    [nan, nan]
    >>> contain_nonfinite(KernelCall(q, k, v, g, scale=1.0), tiles)[0].flatten().tolist()
    [1.0, nan]
    """
    if not _suspect(call):
        return kernel(call)
    bad_q, bad_k, bad_v = (~torch.isfinite(t).all(-1) for t in (call.q, call.k, call.v))
    bad_bias = None if call.bias is None else call.bias.isnan() | (call.bias == math.inf)
    if not any(bool(bad.any()) for bad in (bad_q, bad_k, bad_v, bad_bias) if bad is not None):
        return kernel(call)  # the sum overflowed: nothing to contain
    clean = replace(
        call,
        head_reduction=None,  # every head's weights, masked below; the dispatcher reduces them
        q=call.q.masked_fill(bad_q.unsqueeze(-1), 0.0),  # (B, N, H, D)
        k=call.k.masked_fill(bad_k.unsqueeze(-1), 0.0),  # (B, M, H, D)
        v=call.v.masked_fill(bad_v.unsqueeze(-1), 0.0),  # (B, M, H, Dv)
        bias=None if bad_bias is None else call.bias.masked_fill(bad_bias, 0.0),  # (B, E, H)
    )
    out, weights = kernel(clean)
    scores, outputs = _reached(call, bad_q, bad_k, bad_v, bad_bias)  # (B, N, H) each
    out = out.masked_fill(outputs.unsqueeze(-1), math.nan)  # (B, N, H, Dv)
    if weights is not None:
        dst = edges_on(call.graph, call.q.device)[1]  # (E,)
        weights = weights.masked_fill(scores[:, dst], math.nan)  # (B, E, H)
    return out, weights


def _suspect(call: KernelCall) -> bool:
    """Whether ``call`` may hold a non-finite input: NaN or inf in q, k, v, NaN or +inf in bias.

    One sum per tensor: it is non-finite whenever an entry is (and, rarely, on
    overflow, which the exact test of :func:`contain_nonfinite` then clears).
    ``-inf`` biases (removed edges) make the bias sum ``-inf``, which is allowed.
    bfloat16 has float32's range and its sums accumulate in float32 inside, so
    it is summed as it is (a float32 sum would first copy every tensor).
    """
    acc = call.q.dtype if call.q.dtype == torch.bfloat16 else accumulation_dtype(call.q.dtype)
    with torch.no_grad():  # a test, not part of the computation: nothing for autograd to keep
        total = call.q.sum(dtype=acc) + call.k.sum(dtype=acc) + call.v.sum(dtype=acc)
        suspect = ~torch.isfinite(total)
        if call.bias is not None:
            bias = call.bias.sum(dtype=acc)
            suspect = suspect | bias.isnan() | (bias == math.inf)
    return bool(suspect)


def _reached(call: KernelCall, bad_q, bad_k, bad_v, bad_bias) -> tuple[torch.Tensor, ...]:
    """Targets whose scores, and whose outputs, read a non-finite input: ``(B, N, H)`` each.

    ``bad_q (B, N, H)``, ``bad_k``/``bad_v (B, M, H)`` and ``bad_bias (B, E, H)``
    (or None) flag the non-finite rows and entries. An edge with a ``-inf``
    bias is removed, so it reads nothing.
    """
    n = call.q.shape[1]
    src, dst = edges_on(call.graph, call.q.device)  # (E,)
    scores = bad_k[:, src] | bad_q[:, dst]  # (B, E, H)
    if bad_bias is not None:
        scores = scores | bad_bias
    outputs = scores | bad_v[:, src]  # (B, E, H)
    if call.bias is not None:
        live = call.bias != -math.inf  # (B, E, H)
        scores, outputs = scores & live, outputs & live

    def per_target(edges: torch.Tensor) -> torch.Tensor:
        count = edges.new_zeros((edges.shape[0], n, edges.shape[2]), dtype=torch.int32)
        return count.index_add_(1, dst, edges.to(torch.int32)) > 0  # (B, N, H)

    return per_target(scores), per_target(outputs)
