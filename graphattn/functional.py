"""Functional attention on token graphs: :func:`graph_attention`.

The dispatcher validates the inputs (before any work) and brings them to the
kernel contract of :mod:`graphattn.backends.base` through the kernels' front
door, :class:`~graphattn.backends.front.AttentionInputs` (a batch dimension,
one key head per query head, a single graph), adds the ``(B, E, H)`` bias and
runs the chosen backend on the resulting
:class:`~graphattn.backends.base.KernelCall`. Per-head graphs run as one head
over a head-major batched graph (cached in
:data:`~graphattn.backends.front.HEAD_MAJOR_GRAPHS` while the graphs live).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from graphattn._validate import check_bool
from graphattn.backends import Backend, KernelCall, get_backend, select_backend
from graphattn.backends.base import accumulation_dtype, edges_on
from graphattn.backends.checks import check_backend, check_scale
from graphattn.backends.front import HEAD_MAJOR_GRAPHS as HEAD_MAJOR_GRAPHS  # its old home
from graphattn.backends.front import AttentionInputs
from graphattn.backends.heads import check_head_reduction, reduce_heads
from graphattn.graph import TokenGraph

__all__ = ["graph_attention"]

BiasFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Bias = torch.Tensor | BiasFn | Sequence[torch.Tensor] | None


def _check_options(
    scale, dropout_p, return_weights, backend, generator, check_inputs
) -> Backend | None:
    """Check the options of :func:`graph_attention`; return the named backend (None: auto)."""
    check_scale(scale)
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, (int, float)):
        raise TypeError(f"dropout_p must be a float, got {type(dropout_p).__name__}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    check_bool(return_weights, "return_weights")
    check_bool(check_inputs, "check_inputs")
    chosen = check_backend(backend)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    return chosen


def _edge_bias(
    value: torch.Tensor, where: str, b: int, e: int, h: int, device: torch.device
) -> torch.Tensor:
    """Validate one bias tensor and return it as a ``(B, E, H)`` view (``h`` may be 1)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{where} must be a tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{where} must be a floating-point tensor, got dtype {value.dtype}")
    if value.device != device:
        raise ValueError(f"{where} must be on q's device {device}, got {value.device}")
    shapes = {1: (e,), 2: (e, h), 3: (b, e, h)}
    if value.dim() not in shapes or tuple(value.shape) != shapes[value.dim()]:
        raise ValueError(
            f"{where} must have shape (E,)={(e,)}, (E, H)={(e, h)} or (B, E, H)={(b, e, h)}, "
            f"got {tuple(value.shape)}"
        )
    if value.dim() == 1:
        value = value.unsqueeze(-1)  # (E, 1)
    return value.expand(b, e, h)  # (B, E, H)


def _call_bias(fn: BiasFn, g: TokenGraph, device: torch.device, where: str) -> torch.Tensor:
    src, dst = edges_on(g, device)  # (E,)
    value = fn(src, dst)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{where}(src, dst) must return a tensor, got {type(value).__name__}")
    return value


def _bias_tensor(bias: Bias, graph: TokenGraph, b: int, h: int, device) -> torch.Tensor:
    """The bias of a single graph as ``(B, E, H)``."""
    e = graph.num_edges
    if callable(bias) and not isinstance(bias, torch.Tensor):
        value = _call_bias(bias, graph, device, "bias")
        if value.dim() == 3:
            raise ValueError(f"bias(src, dst) must return (E,) or (E, H), got {tuple(value.shape)}")
        return _edge_bias(value, "bias(src, dst)", b, e, h, device)
    return _edge_bias(bias, "bias", b, e, h, device)


def _edge_bias_of(bias: Bias, inputs: AttentionInputs) -> torch.Tensor | None:
    """The bias as ``(B, E, H)``, or ``(B, E_total, 1)`` in head order for per-head graphs."""
    if bias is None:
        return None
    b, device = inputs.q.shape[0], inputs.q.device
    if inputs.graphs is None:
        return _bias_tensor(bias, inputs.graph, b, inputs.num_heads, device)
    return _per_head_bias(bias, inputs.graphs, b, device)


def _per_head_bias(bias: Bias, graphs: list[TokenGraph], b: int, device) -> torch.Tensor:
    """The biases of per-head graphs, concatenated in head order as ``(B, E_total, 1)``."""
    h = len(graphs)
    parts = []
    if callable(bias) and not isinstance(bias, torch.Tensor):
        for idx, g in enumerate(graphs):
            value = _call_bias(bias, g, device, "bias")
            if value.dim() == 2 and value.shape == (g.num_edges, h):
                value = value[:, idx]  # (E_h,) this head's column
            if value.dim() != 1:
                raise ValueError(
                    f"bias(src, dst) on graph[{idx}] must return (E,)={(g.num_edges,)} or "
                    f"(E, H)={(g.num_edges, h)}, got {tuple(value.shape)}"
                )
            parts.append(_edge_bias(value, "bias(src, dst)", b, g.num_edges, 1, device))
    elif isinstance(bias, (list, tuple)) and len(bias) == h:
        for idx, (value, g) in enumerate(zip(bias, graphs, strict=True)):
            if isinstance(value, torch.Tensor) and value.dim() == 2:
                value = value.unsqueeze(-1)  # (B, E_h, 1)
            parts.append(_edge_bias(value, f"bias[{idx}]", b, g.num_edges, 1, device))
    else:
        raise TypeError(
            "with per-head graphs, bias must be a callable or a sequence of H tensors "
            "(E_h,) or (B, E_h), one per graph"
        )
    return torch.cat(parts, 1)  # (B, E_total, 1)


def _run(call: KernelCall, chosen: Backend | None):
    """Run ``call`` on ``chosen``, or on the backend ``backend="auto"`` selects (None).

    ``supports`` is asked once: here for a named backend, by the policy for ``"auto"``.
    """
    request = call.request()
    if chosen is None:
        return get_backend(select_backend(request)).kernel(call)
    reason = chosen.supports(request)
    if reason is not None:
        raise ValueError(f"backend {chosen.name!r} cannot run this call: {reason}")
    return chosen.kernel(call)


def _check_head_reduction(mode, return_weights: bool, inputs: AttentionInputs) -> str | None:
    """``mode`` checked: a known reduction, asked with ``return_weights`` of one graph."""
    mode = check_head_reduction(mode)
    if mode is not None and not return_weights:
        raise ValueError(
            f"head_reduction={mode!r} reduces the returned weights; set return_weights=True"
        )
    if mode is not None and inputs.graphs is not None:
        raise ValueError(
            "head_reduction needs one graph for every head; per-head graphs have different edges"
        )
    return mode


def _reduced(call: KernelCall, out: torch.Tensor, weights: torch.Tensor | None):
    """``(out, weights)`` with ``(B, E, H)`` weights reduced as the call asks (``(B, E)``)."""
    if call.head_reduction is None or weights is None or weights.dim() == 2:
        return out, weights  # nothing asked, or the kernel reduced them itself
    return out, reduce_heads(weights, call.head_reduction, call.v, call.graph)


def _check_finite(q, k, v, bias: torch.Tensor | None) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} holds NaN or inf values (check_inputs=True)")
    if bias is not None and (torch.isnan(bias).any() or (bias == math.inf).any()):
        raise ValueError("bias holds NaN or +inf values (check_inputs=True); -inf is allowed")


def graph_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    graph: TokenGraph | Sequence[TokenGraph],
    *,
    scale: float | None = None,
    bias: Bias = None,
    dropout_p: float = 0.0,
    return_weights: bool = False,
    backend: str = "auto",
    generator: torch.Generator | None = None,
    check_inputs: bool = False,
    head_reduction: str | None = None,
):
    """Multi-head scaled dot-product attention along the edges of ``graph``.

    For every edge ``j -> i`` and head ``h``,
    ``score = <q_ih, k_jh> * scale (+ bias)``; the scores are softmax-normalized
    over the incoming edges of each target ``i`` and ``out_ih = sum_j w_ijh v_jh``.
    A target with no incoming edge (or whose edges all have a ``-inf`` bias)
    gets an exact zero output. On a full graph this is
    ``softmax(Q K^T / sqrt(D)) V``.

    Parameters
    ----------
    q : Tensor, shape (N, H, D) or (B, N, H, D)
        Queries of the ``N`` target tokens. All tensors are *node-major*
        (tokens before heads); a head-major ``(B, H, N, D)`` tensor (as
        ``scaled_dot_product_attention`` takes) must be ``transpose(1, 2)``-ed
        first: where ``H == N`` the shapes cannot tell the two apart.
    k : Tensor, shape (M, H_kv, D) or (B, M, H_kv, D)
        Keys of the ``M`` source tokens; ``H_kv`` divides ``H`` (grouped-query
        attention: query head ``h`` uses key head ``h // (H // H_kv)``).
    v : Tensor, shape (M, H_kv, Dv) or (B, M, H_kv, Dv)
        Values of the source tokens.
    graph : TokenGraph or sequence of H TokenGraphs
        Who attends to whom: ``N`` targets, ``M`` sources (``M == N`` for self
        graphs). A sequence gives each head its own graph. Batches of different
        graphs are one :meth:`TokenGraph.batch` graph over concatenated tokens.
    scale : float, optional
        Score scale, default ``1 / sqrt(D)``.
    bias : Tensor or callable, optional
        Added to the scores: a tensor ``(E,)``, ``(E, H)`` or ``(B, E, H)`` in
        ``graph.edge_index`` column order, or ``bias(src, dst) -> (E,) | (E, H)``
        called with the edges' source and target indices (see
        :mod:`graphattn.bias`). ``-inf`` removes an edge. With per-head graphs:
        a callable (called once per graph; an ``(E, H)`` result gives head ``h``
        its column ``h``) or a sequence of ``H`` tensors ``(E_h,)``/``(B, E_h)``.
    dropout_p : float
        Dropout probability on the weights (after the softmax).
    return_weights : bool
        Also return the post-softmax, pre-dropout weights.
    backend : str
        ``"auto"`` (see :func:`graphattn.backends.select_backend`) or a
        registered backend name (``"reference"``, ``"edge"``, ``"dense"``, ...).
    generator : torch.Generator, optional
        Source of the dropout mask; a seeded generator makes dropout
        deterministic and the same on every backend.
    check_inputs : bool
        Also reject NaN/inf in ``q``, ``k``, ``v`` and NaN/+inf in ``bias``
        (costs a pass over the data).
    head_reduction : {None, "mean", "max", "min", "norm"}
        Return the weights reduced over heads, ``(E,)`` or ``(B, E)``, as
        :func:`graphattn.flow.aggregate_heads` reduces them; ``"norm"`` is
        ``|| sum_h w_ijh v_jh ||`` over the concatenated heads (the values'
        norms, no output projection). Needs ``return_weights`` and one graph
        for every head. On a full or causal graph returned without a
        gradient the kernel reduces each batch of rows as it computes them,
        so the ``(B, E, H)`` weights never exist whole.

    Returns
    -------
    out : Tensor, shape (N, H, Dv) or (B, N, H, Dv)
        In ``q``'s dtype and device.
    weights : Tensor, shape (E, H) or (B, E, H), only with ``return_weights``
        Float32 (float64 for float64 inputs), in ``graph.edge_index`` column
        order; ``(E,)`` or ``(B, E)`` with ``head_reduction``. With per-head
        graphs, a tuple of ``H`` tensors ``(E_h,)`` or ``(B, E_h)``, one per
        head in its own graph's edge order.

    Raises
    ------
    TypeError
        If an argument has the wrong type or dtype.
    ValueError
        If shapes, head counts, graph sizes or devices do not match, an option
        is out of range, the backend is unknown or cannot run the call, or
        (with ``check_inputs``) the inputs hold NaN.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])  # token 1 attends to 0 and 1
    >>> q = k = torch.zeros(2, 1, 4)
    >>> v = torch.tensor([[[1.0]], [[3.0]]])
    >>> out, w = graph_attention(q, k, v, g, return_weights=True)
    >>> out.flatten().tolist(), w.flatten().tolist()
    ([1.0, 2.0], [1.0, 0.5, 0.5])
    """
    inputs = AttentionInputs.of(q, k, v, graph)  # (B, *, H | H_kv, D), per-head graphs
    chosen = _check_options(scale, dropout_p, return_weights, backend, generator, check_inputs)
    reduction = _check_head_reduction(head_reduction, return_weights, inputs)
    edge_bias = _edge_bias_of(bias, inputs)  # (B, E, H or 1)
    if check_inputs:
        _check_finite(inputs.q, inputs.k, inputs.v, edge_bias)
    if edge_bias is not None:
        edge_bias = edge_bias.to(accumulation_dtype(inputs.q.dtype))
    call = inputs.kernel_call(scale=inputs.scale_or_default(scale), bias=edge_bias,
                              return_weights=return_weights, dropout_p=float(dropout_p),
                              generator=generator, head_reduction=reduction)  # fmt: skip
    out, weights = inputs.finish(*_reduced(call, *_run(call, chosen)))  # (.., N, H, Dv)
    return (out, weights) if return_weights else out
