"""Reducing per-head attention weights to one weight per edge."""

from __future__ import annotations

import torch

from graphattn.backends.heads import HEAD_REDUCTIONS, reduce_head_dim
from graphattn.flow.batch import edge_batch
from graphattn.graph import TokenGraph

__all__ = ["HEAD_MODES", "aggregate_heads"]

HEAD_MODES = HEAD_REDUCTIONS  # the reductions the attention call also does itself


def aggregate_heads(
    weights: torch.Tensor,
    mode: str = "mean",
    *,
    values: torch.Tensor | None = None,
    graph: TokenGraph | None = None,
) -> torch.Tensor:
    """Reduce attention weights ``(E, H)`` over heads to one weight per edge ``(E,)``.

    ``"mean"``, ``"max"`` and ``"min"`` reduce the weights of the ``H`` heads
    of every edge. ``"norm"`` is the norm-based weighting of Kobayashi et al.
    (2020), "Attention is Not Only a Weight": edge ``j -> i`` gets
    ``|| sum_h alpha_ij^h f^h(x_j) ||``, the length of what ``j`` actually
    adds to ``i``, where ``f^h(x_j)`` is head ``h``'s transformed value vector
    of source ``j`` (``v_j^h W_O^h``, in the model space, so that the heads'
    vectors can be summed).

    Weights ``(E,)`` are a single head and are returned as they are for the
    reducing modes. A batch ``(B, E, H)`` gives ``(B, E)``; a 2-D tensor is
    ``(E, H)`` unless ``graph`` is given and says it is a batch ``(B, E)``
    of single-head weights (the rule of :mod:`graphattn.flow.batch`), which
    is returned as it is.

    Parameters
    ----------
    weights : Tensor, shape (E,), (E, H), (B, E) or (B, E, H)
        Attention weights in ``graph.edge_index`` column order.
    mode : {"mean", "max", "min", "norm"}
        How the heads are combined.
    values : Tensor, shape (M, H, C) or (B, M, H, C), optional
        Transformed value vectors ``f^h(x_j)`` of every source token; needed
        (only) by ``"norm"``.
    graph : TokenGraph, optional
        The graph the weights belong to; needed by ``"norm"`` to find the
        source of every edge, and to read a 2-D batch ``(B, E)``.

    Returns
    -------
    Tensor, shape (E,) or (B, E)
        One non-negative weight per edge (and example). Rows (targets) of
        ``"max"``, ``"min"`` and ``"norm"`` weights do not sum to 1; the flow
        functions renormalize them.

    Raises
    ------
    TypeError
        If ``weights`` or ``values`` is not a floating tensor.
    ValueError
        If ``mode`` is unknown, shapes do not match, or ``"norm"`` lacks
        ``values``/``graph``.

    Examples
    --------
    >>> w = torch.tensor([[0.2, 0.6], [0.8, 0.4]])
    >>> aggregate_heads(w, "mean").tolist()
    [0.4000000059604645, 0.6000000238418579]
    >>> aggregate_heads(w, "max").tolist()
    [0.6000000238418579, 0.800000011920929]
    >>> g = TokenGraph([[0, 1], [1, 1]])
    >>> v = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 0.0]]])  # (M, H, C)
    >>> aggregate_heads(w, "norm", values=v, graph=g)  # |0.2*(1,0)+0.6*(0,1)|, |0.8*(2,0)|
    tensor([0.6325, 1.6000])
    >>> aggregate_heads(torch.stack([w, 2 * w]), "max").tolist()   # a batch (B, E, H)
    [[0.6000000238418579, 0.800000011920929], [1.2000000476837158, 1.600000023841858]]
    """
    if not isinstance(weights, torch.Tensor) or not weights.is_floating_point():
        raise TypeError(
            f"weights must be a floating tensor (E,) or (E, H), got "
            f"{type(weights).__name__ if not isinstance(weights, torch.Tensor) else weights.dtype}"
        )
    if weights.dim() not in (1, 2, 3):
        raise ValueError(
            f"weights must have shape (E,), (E, H), (B, E) or (B, E, H), got {tuple(weights.shape)}"
        )
    if mode not in HEAD_MODES:
        raise ValueError(f"mode must be one of {HEAD_MODES}, got {mode!r}")
    if values is not None and not isinstance(values, torch.Tensor):
        raise TypeError(f"values must be a tensor or None, got {type(values).__name__}")
    if graph is not None and not isinstance(graph, TokenGraph):
        raise TypeError(f"graph must be a TokenGraph or None, got {type(graph).__name__}")
    if weights.dim() == 3 or edge_batch(weights, graph) is not None:
        return _batched(weights, mode, values, graph)
    w = weights if weights.dim() == 2 else weights.unsqueeze(1)  # (E, H)
    if mode != "norm":
        return reduce_head_dim(w, mode, dim=1)
    return _norm_weights(w, values, graph)


def _norm_weights(
    w: torch.Tensor, values: torch.Tensor | None, graph: TokenGraph | None
) -> torch.Tensor:
    """Kobayashi et al.'s ``|| sum_h w[e, h] * values[src[e], h] ||`` for every edge."""
    if values is None or graph is None:
        raise ValueError('mode="norm" needs values=(M, H, C) and graph= (the weights\' graph)')
    if not isinstance(graph, TokenGraph):
        raise TypeError(f"graph must be a TokenGraph, got {type(graph).__name__}")
    if not isinstance(values, torch.Tensor) or not values.is_floating_point():
        raise TypeError("values must be a floating tensor of shape (M, H, C)")
    expected = (graph.num_src_nodes, w.shape[1])
    if values.dim() != 3 or tuple(values.shape[:2]) != expected:
        raise ValueError(
            f"values must have shape (M, H, C) = ({expected[0]}, {expected[1]}, C), "
            f"got {tuple(values.shape)}"
        )
    if w.shape[0] != graph.num_edges:
        raise ValueError(f"weights has {w.shape[0]} rows but graph has {graph.num_edges} edges")
    src = graph.src.to(values.device)  # (E,)
    moved = (w.unsqueeze(-1) * values[src]).sum(1)  # (E, C): sum_h alpha^h f^h(x_j)
    return torch.linalg.vector_norm(moved, dim=-1)  # (E,)


def _batched(
    weights: torch.Tensor, mode: str, values: torch.Tensor | None, graph: TokenGraph | None
) -> torch.Tensor:
    """:func:`aggregate_heads` of a batch ``(B, E, H)`` or ``(B, E)``: ``(B, E)``."""
    if weights.dim() == 2 and mode != "norm":
        return weights  # (B, E): one head per edge
    w = weights if weights.dim() == 3 else weights.unsqueeze(2)  # (B, E, H)
    if mode != "norm":
        return aggregate_heads(w.reshape(-1, w.shape[2]), mode).reshape(w.shape[:2])  # (B, E)
    if not isinstance(values, torch.Tensor) or values.dim() != 4 or values.shape[0] != w.shape[0]:
        got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(
            f"values must have shape (B, M, H, C) with B = {w.shape[0]} for batched "
            f"weights {tuple(weights.shape)}, got {got}"
        )
    return torch.stack([_norm_weights(wb, vb, graph) for wb, vb in zip(w, values, strict=True)])
