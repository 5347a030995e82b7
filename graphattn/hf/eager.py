"""Per-edge layers from the dense attentions any model returns: :func:`layers_from_attentions`.

Models whose attention does not go through transformers' ``AttentionInterface``
still return ``(B, H, N, M)`` weights under ``attn_implementation="eager"``
with ``output_attentions=True``; this turns them into the ``(graph, weights)``
pairs that :mod:`graphattn.flow` and :mod:`graphattn.plot` read.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from graphattn.graph import TokenGraph

__all__ = ["layers_from_attentions"]


def _check(attentions: Sequence[torch.Tensor], attention_mask) -> None:
    if isinstance(attentions, torch.Tensor) or not isinstance(attentions, Sequence):
        raise TypeError(
            f"attentions must be a sequence of (B, H, N, M) tensors (out.attentions), "
            f"got {type(attentions).__name__}"
        )
    for idx, a in enumerate(attentions):
        if not isinstance(a, torch.Tensor) or a.dim() != 4 or not a.is_floating_point():
            got = tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__
            raise ValueError(
                f"attentions[{idx}] must be a float tensor (B, H, N, M), got {got}; "
                "run the model with attn_implementation='eager' and output_attentions=True"
            )
        if not bool(torch.isfinite(a).all()):
            raise ValueError(
                f"attentions[{idx}] holds NaN or infinite weights; attention weights are "
                "finite (a NaN row often means a fully masked query: check the mask)"
            )
    if attention_mask is not None:
        _check_mask(attentions, attention_mask)


def _check_mask(attentions: Sequence[torch.Tensor], mask) -> None:
    """``mask (B, M)``: one entry per example and key of every layer."""
    if not isinstance(mask, torch.Tensor) or mask.dim() != 2:
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(
            f"attention_mask must be a (B, M) tensor of 1 (token) and 0 (padding), got {got}"
        )
    for idx, a in enumerate(attentions):
        b, _, _, m = a.shape
        if tuple(mask.shape) != (b, m):
            raise ValueError(
                f"attention_mask has shape {tuple(mask.shape)}, but attentions[{idx}] covers "
                f"a batch of {b} and {m} keys: it must be ({b}, {m})"
            )


def _layer(a: torch.Tensor, valid: torch.Tensor | None) -> tuple[TokenGraph, torch.Tensor]:
    keep = a.detach() > 0  # (B, H, N, M): eager's masked entries are exactly 0
    n, m = a.shape[-2:]
    if valid is not None:
        keep = keep & valid[:, None, None, :]  # padded keys
        if n == m:
            keep = keep & valid[:, None, :, None]  # padded queries (eager spreads them evenly)
    union = keep.any(dim=(0, 1)).cpu()  # (N, M)
    graph = TokenGraph.from_dense_mask(union, cross=n != m)
    dst, src = graph.dst.to(a.device), graph.src.to(a.device)  # (E,)
    weights = (a[:, :, dst, src] * keep[:, :, dst, src]).transpose(1, 2)  # (B, E, H)
    return graph, weights


def layers_from_attentions(
    attentions: Sequence[torch.Tensor], attention_mask: torch.Tensor | None = None
) -> list[tuple[TokenGraph, torch.Tensor]]:
    """``(graph, weights (B, E, H))`` per layer from dense ``(B, H, N, M)`` attentions.

    The graph of a layer holds every edge with a positive weight in some
    example and head; padded keys (and, for self-attention, padded queries)
    given by ``attention_mask`` get weight 0.

    Parameters
    ----------
    attentions : sequence of Tensor (B, H, N, M)
        ``out.attentions`` (or ``encoder_attentions``, ``cross_attentions``) of
        a model run with ``attn_implementation="eager"`` and ``output_attentions=True``.
    attention_mask : Tensor (B, M), optional
        1 at tokens, 0 at padding, as the tokenizer returns it.

    Returns
    -------
    list of (TokenGraph, Tensor (B, E, H))
        One pair per layer; index an example with ``weights[b]`` for :mod:`graphattn.flow`.

    Raises
    ------
    TypeError, ValueError
        If ``attentions`` is not a sequence of finite ``(B, H, N, M)`` float
        tensors or ``attention_mask`` is not ``(B, M)`` for every layer.

    Examples
    --------
    >>> causal = torch.tensor([[1.0, 0.0], [0.5, 0.5]]).expand(1, 2, 2, 2)  # (B, H, N, M)
    >>> [(g.num_edges, tuple(w.shape)) for g, w in layers_from_attentions([causal])]
    [(3, (1, 3, 2))]
    """
    _check(attentions, attention_mask)
    valid = None if attention_mask is None else attention_mask.bool()
    return [_layer(a, None if valid is None else valid.to(a.device)) for a in attentions]
