"""Where a cross-attention call's queries sit in the decoder sequence: :func:`cross_offset`.

A cross-attention call reads ``cross_graph``'s rows ``q_offset .. q_offset + N``:
during cached generation its ``N`` queries are the newest decoder tokens.
Nothing that reaches the attention function says which: transformers builds
the cross-attention mask without the cache (its layout always starts at
column 0), and the module keeps the cache to itself. The module's own call
does hold it, so a forward pre-hook (:func:`pass_cross_offset`, installed
with the others by :func:`graphattn.hf.tracking.watch`) reads the decoder
column from that call's ``cache`` and hands it to the attention function as
the keyword :data:`CROSS_OFFSET`, which the module passes on with its other
keywords. Nothing is kept between calls.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from transformers.cache_utils import EncoderDecoderCache

from graphattn.hf.keywords import ATTENTION_NAME

__all__ = ["CROSS_OFFSET", "cross_offset", "pass_cross_offset", "passes_keywords"]

CROSS_OFFSET = "graphattn_cross_offset"  # keyword: decoder column of the call's first query


def cross_offset(module: torch.nn.Module, args: tuple, kwargs: dict) -> int:
    """The decoder column of the first query of a cross-attention module's call.

    The decoder's self-attention of the same layer has already added this
    step's ``N`` tokens to the self-attention half of the call's
    ``EncoderDecoderCache``, so the queries start ``N`` before its end; 0
    without such a cache (the whole decoder sequence is the query).

    Examples
    --------
    >>> from transformers import DynamicCache
    >>> cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    >>> _ = cache.self_attention_cache.update(torch.ones(1, 2, 4, 8), torch.ones(1, 2, 4, 8), 0)
    >>> m = torch.nn.Module(); m.layer_idx = 0
    >>> cross_offset(m, (torch.ones(1, 1, 16),), {"cache": cache})  # token 3 of 4
    3
    >>> cross_offset(m, (torch.ones(1, 4, 16),), {})
    0
    """
    cache = kwargs.get("cache", kwargs.get("past_key_values"))
    hidden = args[0] if args else kwargs.get("hidden_states")
    if not isinstance(cache, EncoderDecoderCache) or not isinstance(hidden, torch.Tensor):
        return 0
    layer = getattr(module, "layer_idx", None)
    seen = cache.self_attention_cache.get_seq_length(layer if isinstance(layer, int) else 0)
    return max(int(seen) - hidden.shape[1], 0)


def passes_keywords(module: torch.nn.Module) -> bool:
    """Whether ``module``'s forward takes ``**kwargs`` (transformers' attention modules
    pass them on to the attention function).

    Examples
    --------
    >>> passes_keywords(torch.nn.Linear(2, 2))
    False
    """
    try:
        parameters = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def pass_cross_offset(module: torch.nn.Module, args: tuple, kwargs: dict) -> Any:
    """Forward pre-hook of a cross-attention module: its call gets :data:`CROSS_OFFSET`."""
    config = getattr(module, "config", None)
    if getattr(config, "_attn_implementation", None) != ATTENTION_NAME:
        return None  # another implementation would not know the keyword
    return args, {**kwargs, CROSS_OFFSET: cross_offset(module, args, kwargs)}
