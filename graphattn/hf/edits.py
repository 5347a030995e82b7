"""Edits of the attention call that contribution methods need: :func:`edit_attention`.

Inside an ``edit_attention`` block, every graphattn attention call of this
thread or task (a) zeroes the value vectors that ``zero`` names, (b) with
``explicit=True`` recomputes its output as ``out_i = sum_e w_e v_{src_e}``
from the weights it returns, so that gradients reach those weights, and (c)
with ``lrp=True`` divides the gradients of queries, keys and values as
AttnLRP does (:func:`attnlrp_inputs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from graphattn.backends.front import repeat_kv_heads
from graphattn.flow.lrp_rules import KEY_QUERY_FACTOR, VALUE_FACTOR, divide_gradient
from graphattn.graph import TokenGraph
from graphattn.hf import state

__all__ = [
    "AttentionEdit",
    "apply_edit",
    "attnlrp_inputs",
    "current_edit",
    "edit_attention",
    "zero_values",
]

# zero(layer, batch, num_sources) -> bool (B, M) of the value vectors to zero, or None
ZeroRule = Callable[[int | None, int, int], torch.Tensor | None]


@dataclass(frozen=True)
class AttentionEdit:
    """What :func:`edit_attention` changes in each attention call (self and cross)."""

    zero: ZeroRule | None = None
    explicit: bool = False
    lrp: bool = False  # AttnLRP: gradients of queries and keys / 4, of values / 2


def current_edit() -> AttentionEdit | None:
    """The edit in force in this thread or task, or None."""
    return state.current().edit


@contextmanager
def edit_attention(
    zero: ZeroRule | None = None, explicit: bool = False, lrp: bool = False
) -> Iterator[None]:
    """Apply an :class:`AttentionEdit` to the graphattn attention calls in the block.

    Examples
    --------
    >>> with edit_attention(explicit=True):
    ...     current_edit().explicit
    True
    >>> current_edit() is None
    True
    """
    with state.changed(edit=AttentionEdit(zero, explicit, lrp)):
        yield


def zero_values(v: torch.Tensor, edit: AttentionEdit | None, layer: int | None) -> torch.Tensor:
    """``v (B, M, H_kv, D)`` with the value vectors ``edit.zero`` names set to 0."""
    if edit is None or edit.zero is None:
        return v
    drop = edit.zero(layer, v.shape[0], v.shape[1])  # (B, M) or None
    if drop is None:
        return v
    return v.masked_fill(drop.to(v.device)[:, :, None, None], 0.0)


def attnlrp_inputs(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys and values with AttnLRP's gradient division, as ``lxt`` wraps attention."""
    return (
        divide_gradient(q, KEY_QUERY_FACTOR),
        divide_gradient(k, KEY_QUERY_FACTOR),
        divide_gradient(v, VALUE_FACTOR),
    )


def apply_edit(
    out: torch.Tensor, weights: torch.Tensor, v: torch.Tensor, graph: TokenGraph
) -> tuple[torch.Tensor, torch.Tensor]:
    """``out (B, N, H, Dv)`` recomputed from ``weights (B, E, H)``, which then carry gradients."""
    if not weights.requires_grad:
        weights = weights.detach().requires_grad_()
    v = repeat_kv_heads(v, weights.shape[2])  # (B, M, H, Dv)
    src, dst = graph.src.to(v.device), graph.dst.to(v.device)  # (E,)
    msg = weights.to(v.dtype)[..., None] * v[:, src]  # (B, E, H, Dv)
    new = torch.zeros_like(out).index_add_(1, dst, msg.to(out.dtype))  # (B, N, H, Dv)
    return new, weights
