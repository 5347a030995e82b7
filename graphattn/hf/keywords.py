"""Which graph keyword an attention call reads: :func:`graph_keyword`.

- decoder-only (GPT-2, Llama) and encoder-only (BERT) models:
  ``token_graph`` for self-attention;
- encoder-decoder models (T5, BART, Marian): ``encoder_graph`` for the
  encoder's self-attention, ``decoder_graph`` for the decoder's,
  ``cross_graph`` for cross-attention.

A keyword given to a model it does not belong to is refused, naming the
keywords that do belong: one ``token_graph`` in an encoder-decoder would
apply to encoder and decoder alike. A decoder's self graph that reads a
later token is refused unless the forward also gets
``decoder_reads_future=True``.
"""

from __future__ import annotations

from typing import Any

import torch

from graphattn.hf.graphs import Call, stack_of

__all__ = ["ATTENTION_NAME", "FUTURE_FLAG", "GRAPH_KWARGS", "graph_keyword"]

ATTENTION_NAME = "graphattn"  # the attn_implementation name
GRAPH_KWARGS = ("token_graph", "encoder_graph", "decoder_graph", "cross_graph")
FUTURE_FLAG = "decoder_reads_future"  # lets decoder_graph read later tokens


def _has_cross_attention(module: torch.nn.Module) -> bool:
    config = getattr(module, "config", None)
    flags = ("is_encoder_decoder", "add_cross_attention")
    return any(getattr(config, flag, False) for flag in flags)


def _refuse_misplaced(call: Call, stack: str | None, kwargs: dict) -> None:
    owner = type(call.module).__name__
    if stack is not None and kwargs.get("token_graph") is not None:
        raise ValueError(
            f"token_graph is for decoder-only and encoder-only models, but {owner} belongs to "
            "an encoder-decoder model, whose encoder and decoder need different graphs: pass "
            "encoder_graph= and decoder_graph= (and cross_graph= for cross-attention)"
        )
    given = [k for k in ("encoder_graph", "decoder_graph") if kwargs.get(k) is not None]
    if stack is None and given:
        raise ValueError(
            f"{given[0]} is for encoder-decoder models, but {owner} belongs to a decoder-only "
            "or encoder-only model: pass token_graph="
        )
    if kwargs.get("cross_graph") is not None and not call.cross and not _has_cross_attention(
        call.module
    ):
        raise ValueError(
            f"cross_graph was given, but {owner} belongs to a model without "
            "cross-attention (decoder-only or encoder-only); use token_graph"
        )


def graph_keyword(call: Call, kwargs: dict) -> tuple[str, Any, bool]:
    """The keyword of ``call``, its value (None: the model's own graph), and whether
    the graph may read later tokens.

    Raises
    ------
    ValueError
        If the forward was given a keyword that does not belong to the model.

    Examples
    --------
    >>> call = Call(torch.nn.Module(), False, 3, 3, 0, 0)
    >>> graph_keyword(call, {"token_graph": "g"})
    ('token_graph', 'g', True)
    >>> graph_keyword(call, {"decoder_graph": "g"})
    Traceback (most recent call last):
        ...
    ValueError: decoder_graph is for encoder-decoder models, but Module belongs to ...
    """
    stack = stack_of(call.module)
    _refuse_misplaced(call, stack, kwargs)
    if call.cross:
        return "cross_graph", kwargs.get("cross_graph"), True
    if stack is None:
        return "token_graph", kwargs.get("token_graph"), True
    name = f"{stack}_graph"
    return name, kwargs.get(name), stack == "encoder" or bool(kwargs.get(FUTURE_FLAG))
