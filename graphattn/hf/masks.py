"""The mask function registered with transformers' ``AttentionMaskInterface``.

transformers builds one mask per forward (per layer type) and hands it to
every attention call. Without a registered mask function a custom attention
implementation receives ``attention_mask=None`` and loses padding and the
model's own sliding windows. :func:`graph_mask` always materializes the
boolean ``(B, 1, N, M)`` mask (True = may attend, the SDPA convention) and
attaches a :class:`MaskLayout`: the absolute sequence columns of the queries
and keys (a sliding-window cache hands attention only its most recent keys)
and which keys are padding. The attention function reads the layout from the
mask it receives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.masking_utils import causal_mask_function, sdpa_mask

__all__ = ["LAYOUT_ATTRIBUTE", "MaskLayout", "graph_mask", "layout_of"]

LAYOUT_ATTRIBUTE = "graphattn_layout"  # attribute of the mask tensor holding its MaskLayout


@dataclass
class MaskLayout:
    """Where a mask's queries and keys sit in the whole sequence.

    Query ``i`` of the call is column ``q_offset + i`` of the sequence (past
    tokens included), key ``j`` is column ``kv_offset + j``.
    """

    q_offset: int
    kv_offset: int
    key_valid: torch.Tensor | None  # (B, M) bool, False at padded keys; None: no padding mask
    cache: dict = field(default_factory=dict, repr=False)  # graphs built once per mask


def _key_valid(attention_mask: Any, kv_length: int, kv_offset: int) -> torch.Tensor | None:
    """The 2D padding mask's columns of this call's keys, ``(B, M)`` bool."""
    if not isinstance(attention_mask, torch.Tensor) or attention_mask.dim() != 2:
        return None
    valid = attention_mask.bool()  # (B, T)
    missing = kv_offset + kv_length - valid.shape[1]
    if missing > 0:  # keys past the mask's end count as real tokens, as in transformers
        valid = torch.nn.functional.pad(valid, (0, missing), value=True)
    return valid[:, kv_offset : kv_offset + kv_length]  # (B, M)


def graph_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    q_offset: int = 0,
    kv_offset: int = 0,
    mask_function=causal_mask_function,
    attention_mask: torch.Tensor | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """The boolean ``(B, 1, N, M)`` mask of one forward, with its :class:`MaskLayout`.

    Called by transformers' ``create_causal_mask`` and friends with the
    arguments of ``transformers.masking_utils.sdpa_mask``; never skipped, so
    the attention function always sees the model's own structure.

    Examples
    --------
    >>> m = graph_mask(1, 3, 3, attention_mask=torch.tensor([[1, 1, 0]]))
    >>> m[0, 0].int().tolist()
    [[1, 0, 0], [1, 1, 0], [1, 1, 0]]
    >>> layout_of(m).key_valid.tolist()
    [[True, True, False]]
    """
    kwargs.update(allow_is_causal_skip=False, allow_is_bidirectional_skip=False)
    mask = sdpa_mask(
        batch_size=batch_size,
        q_length=q_length,
        kv_length=kv_length,
        q_offset=q_offset,
        kv_offset=kv_offset,
        mask_function=mask_function,
        attention_mask=attention_mask,
        **kwargs,
    )
    layout = MaskLayout(
        int(q_offset), int(kv_offset), _key_valid(attention_mask, kv_length, int(kv_offset))
    )
    setattr(mask, LAYOUT_ATTRIBUTE, layout)
    return mask


def layout_of(mask: Any) -> MaskLayout | None:
    """The :class:`MaskLayout` that :func:`graph_mask` attached to ``mask``, or None."""
    return getattr(mask, LAYOUT_ATTRIBUTE, None)
