"""The ``backend="auto"`` policy, the hook that replaces it, and :func:`explain_backend`.

:func:`select_backend` names the backend that ``backend="auto"`` runs. The
policy is this module's :func:`auto_selector`, unless a selector registered
with :func:`register_selector` replaces it (``register_selector(None)``
restores it); :func:`explain_backend` says which backend the policy in force
picks for a call, and why. The policy, in order (the first rule whose backend accepts the
call wins; each backend's ``supports`` is asked at most once per call):

1. **dropout** -> ``"edge"``: the only fast backend that draws per-edge masks.
   **Full and causal graphs** without bias or returned weights -> ``"dense"``:
   SDPA runs them without a mask on its fused kernels.
2. **tiny calls** (``B * H * N * M <= 2**16``) or **short sequences**
   (``N * M <= 2**14`` per graph, at any batch size, while the dense scores fit
   :data:`graphattn.backends.dense.MAX_ELEMENTS`) -> ``"dense"``: one SDPA
   call beats any sparse bookkeeping at this size, and the sparse kernels'
   per-head work grows with ``B * H`` (a 32-token window, B = 32, H = 4:
   dense 6 ms against the sparse kernels' 186 ms, forward + backward).
3. **few edges** (``B * H * E <= 2**14``) -> ``"edge"``: its sparse kernels
   are cheaper than building tiles or dense scores.
4. **full and causal graphs whose weights are returned** with no bias and
   no gradient (a recording) -> ``"block"``: one fused call and the weights
   from its log-sum-exp, never the explicit scores. Then **dense graphs**
   (density >= 0.25 and the dense scores fit
   :data:`graphattn.backends.dense.MAX_ELEMENTS`) -> ``"dense"``.
5. **locally dense graphs** (block fill >= :data:`MIN_BLOCK_FILL`: the share of
   computed tile positions that are edges, at the block backend's tile size)
   -> ``"block"``: windows, blocked BigBird, documents, causal.
6. **a dense band plus scattered edges** (at least :data:`MIN_SPLIT_SHARE` of
   the edges in tiles at least a quarter full, see
   :func:`graphattn.backends.split.split_plan`) -> ``"split"``: strided
   (Sparse Transformer), a window plus random edges. Without bias, weights
   or dropout.
7. **everything else** (random, scattered edges) -> ``"edge"``.
8. ``"reference"`` where none of those runs.

``"flex"`` is never picked automatically: ``torch.compile`` takes seconds to
minutes per new shape, which only pays off for a long run on one graph;
choose it with ``backend="flex"``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from graphattn._validate import (
    check_bool,
    check_float_dtype,
    check_int,
    check_positive_int,
    check_probability,
)
from graphattn.backends.base import AttentionRequest, backend_names, get_backend
from graphattn.backends.dense import MAX_ELEMENTS, mask_structure
from graphattn.backends.split import tile_share
from graphattn.backends.tiles import BLOCK_SIZE, tile_counts
from graphattn.graph import TokenGraph

__all__ = [
    "MIN_BLOCK_FILL",
    "MIN_SPLIT_SHARE",
    "BackendChoice",
    "auto_selector",
    "explain_backend",
    "register_selector",
    "select_backend",
]

TINY_ELEMENTS = 2**16  # B * H * N * M at or below which dense always wins
SHORT_ELEMENTS = 2**14  # N * M per graph at or below which dense wins at any batch size
FEW_EDGES = 2**14  # B * H * E at or below which the edge kernel wins
DENSE_DENSITY = 0.25  # density from which dense attention wastes little
MIN_BLOCK_FILL = 0.25  # block fill from which tiles beat sparse kernels
MIN_SPLIT_SHARE = 0.5  # share of edges in well-filled tiles from which "split" beats "edge"

Selector = Callable[[AttentionRequest], str]


@dataclass(frozen=True)
class BackendChoice:
    """What ``backend="auto"`` runs for a call, and why.

    ``refusals`` maps every other registered backend to the reason it cannot
    run the call (None where it could).
    """

    backend: str
    reason: str
    refusals: dict[str, str | None] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"auto -> {self.backend!r}: {self.reason}"]
        for name, why in self.refusals.items():
            lines.append(f"  {name}: {'could run' if why is None else 'refuses: ' + why}")
        return "\n".join(lines)


def _acceptance(request: AttentionRequest) -> Callable[[str], bool]:
    """``ok(name)``: whether backend ``name`` is registered and accepts ``request``.

    Each backend's ``supports`` is asked once, however often ``ok`` is called.
    """
    verdicts: dict[str, bool] = {}

    def ok(name: str) -> bool:
        if name not in verdicts:
            found = name in backend_names()
            verdicts[name] = found and get_backend(name).supports(request) is None
        return verdicts[name]

    return ok


def _decide(request: AttentionRequest) -> tuple[str, str]:
    """``(backend, reason)`` for ``request`` by the rules of the module docstring.

    Only a backend whose ``supports`` accepts the request is returned. The
    rules run in their order, in groups: :func:`_small_call` (1 to 3),
    :func:`_by_structure` (4, then :func:`_by_tiles`: 5 to 7), then 7's and
    8's fallbacks here; a new rule goes in the group of its number.

    Raises
    ------
    RuntimeError
        If no registered backend accepts the request.
    """
    ok = _acceptance(request)
    choice = _small_call(request, ok) or _by_structure(request, ok)
    if choice is not None:
        return choice
    if ok("edge"):
        return "edge", "sparse kernels run this call"
    if ok("reference"):
        return "reference", "no other backend accepts this call"
    raise RuntimeError("no registered backend accepts this call")


def _small_call(request: AttentionRequest, ok: Callable[[str], bool]) -> tuple[str, str] | None:
    """Rules 1 to 3: dropout, maskless full and causal graphs, tiny and short calls, few edges."""
    g = request.graph
    if request.dropout > 0 and ok("edge"):
        return "edge", f"dropout {request.dropout} needs per-edge masks"
    plain = not (request.has_bias or request.return_weights)
    if plain and mask_structure(g) != "general" and ok("dense"):
        return "dense", f"{mask_structure(g)} graph: SDPA needs no mask"
    size = request.batch * request.num_heads * g.num_nodes * g.num_src_nodes
    if size <= TINY_ELEMENTS and ok("dense"):
        return "dense", f"tiny call (B*H*N*M = {size} <= {TINY_ELEMENTS})"
    pairs = g.num_nodes * g.num_src_nodes
    if pairs <= SHORT_ELEMENTS and size <= MAX_ELEMENTS and ok("dense"):
        return "dense", f"short sequences (N*M = {pairs} <= {SHORT_ELEMENTS})"
    if request.batch * request.num_heads * g.num_edges <= FEW_EDGES and ok("edge"):
        return "edge", f"few edges (B*H*E = {request.batch * request.num_heads * g.num_edges})"
    return None


def _by_structure(request: AttentionRequest, ok: Callable[[str], bool]) -> tuple[str, str] | None:
    """Rules 4 to 7: recordings of full and causal graphs, dense graphs, then by tile fill."""
    g = request.graph
    recording = request.return_weights and not (request.has_bias or request.needs_grad)
    if recording and mask_structure(g) != "general" and ok("block"):
        return "block", f"{mask_structure(g)} graph: fused, weights from its log-sum-exp"
    size = request.batch * request.num_heads * g.num_nodes * g.num_src_nodes
    if g.density >= DENSE_DENSITY and size <= MAX_ELEMENTS and ok("dense"):
        return "dense", f"dense graph (density {g.density:.3g} >= {DENSE_DENSITY})"
    if g.num_edges and ok("block"):
        return _by_tiles(g, ok)
    return None


def _by_tiles(g: TokenGraph, ok: Callable[[str], bool]) -> tuple[str, str] | None:
    """Rules 5 to 7 for a graph the block backend accepts: block, split or edge by tile fill."""
    # the block plan's fill, from tile counts: no plan is built for a graph that won't use it
    fill = g.num_edges / (tile_counts(g, BLOCK_SIZE)[1].numel() * BLOCK_SIZE**2)
    if fill >= MIN_BLOCK_FILL:
        return "block", f"locally dense (block fill {fill:.3g} >= {MIN_BLOCK_FILL})"
    if ok("split"):
        share = tile_share(g, BLOCK_SIZE)
        if share >= MIN_SPLIT_SHARE:
            return "split", (
                f"band plus scattered edges ({share:.3g} of the edges in well-filled tiles)"
            )
    if ok("edge"):
        return "edge", f"scattered edges (block fill {fill:.3g} < {MIN_BLOCK_FILL})"
    return None


def auto_selector(request: AttentionRequest) -> str:
    """The selector registered for ``backend="auto"`` (see the module docstring).

    Examples
    --------
    >>> from graphattn import patterns
    >>> r = AttentionRequest(patterns.sliding_window(4096, 128), batch=1, num_heads=4,
    ...                      head_dim=64, value_dim=64, device=torch.device("cpu"),
    ...                      dtype=torch.float32)
    >>> auto_selector(r)
    'block'
    """
    return _decide(request)[0]


_selector: Selector | None = None  # a replacement of the policy; None: auto_selector


def register_selector(selector: Selector | None) -> Selector:
    """Replace the policy behind ``backend="auto"``; ``None`` restores :func:`auto_selector`.

    ``selector(request) -> str`` must return the name of a registered backend
    whose ``supports(request)`` is ``None``; :func:`select_backend` checks it.

    Returns
    -------
    callable
        The selector that was active before, so a temporary change can be undone.

    Raises
    ------
    TypeError
        If ``selector`` is neither callable nor None.

    Examples
    --------
    >>> previous = register_selector(lambda request: "reference")
    >>> g = TokenGraph([[0], [1]])
    >>> select_backend(AttentionRequest(g, 1, 1, 2, 2, torch.device("cpu"), torch.float32))
    'reference'
    >>> _ = register_selector(None)  # back to the auto policy
    >>> previous is auto_selector
    True
    """
    global _selector
    if selector is not None and not callable(selector):
        raise TypeError(f"selector must be callable or None, got {type(selector).__name__}")
    previous = auto_selector if _selector is None else _selector
    _selector = None if selector is auto_selector else selector
    return previous


def select_backend(request: AttentionRequest) -> str:
    """Name of the backend that ``backend="auto"`` runs for ``request``.

    The policy in force picks only a backend whose ``supports`` accepts
    ``request``: :func:`auto_selector` by its rules, a registered selector by
    the check made here. Either way ``supports`` is not asked again.

    Raises
    ------
    RuntimeError
        If a registered selector returns a backend that is unknown or refuses
        the request (a bug in the selector, not in the caller's input).

    Examples
    --------
    >>> g = TokenGraph([[0], [1]], 1000)
    >>> request = AttentionRequest(g, 1, 1, 2, 2, torch.device("cpu"), torch.float32)
    >>> select_backend(request)
    'edge'
    """
    return _choose(request)[0]


def _choose(request: AttentionRequest) -> tuple[str, str]:
    """``(backend, reason)`` from the policy in force: :func:`auto_selector` or the registered one.

    A registered selector's choice is checked as :func:`select_backend` says.
    """
    if _selector is None:
        return _decide(request)
    name = _selector(request)
    if name not in backend_names():
        raise RuntimeError(f"the backend selector returned unknown backend {name!r}")
    reason = get_backend(name).supports(request)
    if reason is not None:
        raise RuntimeError(f"the backend selector chose {name!r}, which refuses: {reason}")
    label = getattr(_selector, "__qualname__", None) or repr(_selector)
    return name, f"chosen by the registered selector {label} (register_selector)"


def _explained_request(graph: object, *, batch, num_heads, head_dim, value_dim, device, dtype,
                       dropout, **flags) -> AttentionRequest:  # fmt: skip
    """The arguments of :func:`explain_backend`, checked, as the request they describe."""
    if not isinstance(graph, TokenGraph):
        raise TypeError(f"graph must be a TokenGraph, got {type(graph).__name__}")
    check_int(batch, "batch", low=0)
    check_positive_int(num_heads, "num_heads")
    check_positive_int(head_dim, "head_dim")
    if value_dim is not None:
        check_positive_int(value_dim, "value_dim")
    check_float_dtype(dtype, "dtype")
    check_probability(dropout, "dropout")
    for name, flag in flags.items():  # needs_grad, return_weights, has_bias
        check_bool(flag, name)
    value_dim = head_dim if value_dim is None else value_dim
    return AttentionRequest(graph, batch, num_heads, head_dim, value_dim, torch.device(device),
                            dtype, dropout=float(dropout), **flags)  # fmt: skip


def explain_backend(
    graph: TokenGraph,
    *,
    batch: int = 1,
    num_heads: int = 1,
    head_dim: int = 64,
    value_dim: int | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    needs_grad: bool = False,
    return_weights: bool = False,
    has_bias: bool = False,
    dropout: float = 0.0,
) -> BackendChoice:
    """Which backend ``graph_attention(..., backend="auto")`` runs for such a call, and why.

    It explains the policy in force: the rule of :func:`auto_selector` that
    decided, or, while a selector registered with :func:`register_selector`
    replaces it, that selector's choice.

    Parameters
    ----------
    graph : TokenGraph
        The graph of the call.
    batch, num_heads, head_dim, value_dim : int
        Sizes of the call (``value_dim`` defaults to ``head_dim``).
    device, dtype
        Device and dtype of the inputs.
    needs_grad, return_weights, has_bias : bool
        Whether gradients, the weights, or a per-edge bias are involved.
    dropout : float
        Dropout probability on the weights.

    Returns
    -------
    BackendChoice
        ``backend``, ``reason`` and, for every other backend, why it could
        or could not run; ``print`` it for a readable summary.

    Raises
    ------
    TypeError
        If ``graph`` is not a TokenGraph.
    RuntimeError
        If a registered selector returns a backend that is unknown or refuses
        the call (as :func:`select_backend` does).

    Examples
    --------
    >>> from graphattn import patterns
    >>> choice = explain_backend(patterns.random(4096, 128, causal=True), num_heads=4)
    >>> choice.backend, choice.reason
    ('edge', 'scattered edges (block fill 0.0606 < 0.25)')
    >>> choice.refusals["flex"] is None
    True
    >>> def always_reference(request):
    ...     return "reference"
    >>> previous = register_selector(always_reference)
    >>> explain_backend(patterns.causal(8)).reason
    'chosen by the registered selector always_reference (register_selector)'
    >>> _ = register_selector(previous)
    """
    request = _explained_request(
        graph, batch=batch, num_heads=num_heads, head_dim=head_dim, value_dim=value_dim,
        device=device, dtype=dtype, dropout=dropout, needs_grad=needs_grad,
        return_weights=return_weights, has_bias=has_bias,
    )
    name, reason = _choose(request)
    refusals = {
        other: get_backend(other).supports(request) for other in backend_names() if other != name
    }
    return BackendChoice(name, reason, refusals)

