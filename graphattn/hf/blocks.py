"""The attention blocks of Hugging Face models: ALTI and GlobEnc through :mod:`graphattn.flow`.

:func:`hf_blocks` runs a transformers model on ``attn_implementation="graphattn"``
once, records every layer's weights ``(B, E, H)`` (:func:`graphattn.hf.record`)
and its input ``x`` (a forward pre-hook on the layer), and reads the rest of
the layer from its modules into an :class:`~graphattn.flow.AttentionBlock`;
:func:`graphattn.flow.decompose.alti` and ``globenc`` then apply the formulas.
Per head ``h`` the value of source ``j`` after the output projection is

    V[j, h] = W_O[:, h] (W_V^g n(x_j) + b_V^g),      g = h // (H / H_kv)

with ``n`` the pre-attention norm of a pre-LN layer (identity in BERT) and
``g`` the key/value head that query head ``h`` reads (grouped-query attention,
as transformers' ``repeat_kv``). Supported families (``config.model_type``):

* post-LN ``bert``, ``roberta``: ``norm1`` = ``attention.output.LayerNorm``,
  ``ffn`` = ``output.dense(intermediate(u))``, ``norm2`` = ``output.LayerNorm``;
* pre-LN ``gpt2`` (``Conv1D``, fused ``c_attn``), ``llama``, ``mistral``,
  ``qwen2``: no norm on the stream, ``ffn(u) = mlp(norm2(u))``.

Every block is checked before use: its :meth:`~AttentionBlock.output` must
reproduce the layer's actual output (a forward hook), else the call is
refused. Other families (Gemma2's sandwich norms, encoder-decoders, layers
with cross-attention) are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from graphattn._validate import check_bool
from graphattn.backends.front import repeat_kv_heads
from graphattn.flow import AttentionBlock
from graphattn.hf.record import record

__all__ = ["FAMILIES", "UnreadableBlocks", "hf_blocks", "reads_blocks"]


class UnreadableBlocks(ValueError):
    """A model whose layers :func:`hf_blocks` cannot read as blocks, or whose blocks
    do not reproduce its layers (ALTI and GlobEnc are refused with it)."""


#: The ``config.model_type`` values whose blocks :func:`hf_blocks` reads.
FAMILIES = ("bert", "roberta", "gpt2", "llama", "mistral", "qwen2")


@dataclass(frozen=True)
class _Parts:
    """How one layer's terms are read from its modules."""

    pre_norm: Callable[[torch.Tensor], torch.Tensor] | None  # n(x) before the values
    value: Callable[[torch.Tensor], torch.Tensor]  # n(x) (B, N, C) -> (B, N, H_kv * D)
    out_weight: torch.Tensor  # (C, H * D): W_O as an nn.Linear weight
    out_bias: torch.Tensor | None  # (C,)
    norm1: nn.LayerNorm | None
    ffn: Callable[[torch.Tensor], torch.Tensor]
    norm2: nn.Module | None  # a LayerNorm, or the final norm of a pre-LN model


def _bert(layer: nn.Module) -> _Parts:
    """BertLayer / RobertaLayer: post-LN, ``LayerNorm(dense(ctx) + x)`` twice."""
    attn_out, out = layer.attention.output, layer.output
    return _Parts(
        pre_norm=None,
        value=layer.attention.self.value,
        out_weight=attn_out.dense.weight,
        out_bias=attn_out.dense.bias,
        norm1=attn_out.LayerNorm,
        ffn=lambda u: out.dense(layer.intermediate(u)),
        norm2=out.LayerNorm,
    )


def _gpt2(layer: nn.Module) -> _Parts:
    """GPT2Block: pre-LN; ``Conv1D`` weights are ``(in, out)``, ``c_attn`` holds q, k, v."""
    attn = layer.attn
    c = attn.c_proj.weight.shape[1]
    return _Parts(
        pre_norm=layer.ln_1,
        value=lambda h: attn.c_attn(h)[..., 2 * c : 3 * c],  # (B, N, C) the value part
        out_weight=attn.c_proj.weight.T,
        out_bias=attn.c_proj.bias,
        norm1=None,
        ffn=lambda u: layer.mlp(layer.ln_2(u)),
        norm2=None,
    )


def _llama(layer: nn.Module) -> _Parts:
    """LlamaDecoderLayer and its Mistral / Qwen2 copies: pre-LN RMSNorm, ``v_proj``, ``o_proj``."""
    attn = layer.self_attn
    return _Parts(
        pre_norm=layer.input_layernorm,
        value=attn.v_proj,
        out_weight=attn.o_proj.weight,
        out_bias=attn.o_proj.bias,
        norm1=None,
        ffn=lambda u: layer.mlp(layer.post_attention_layernorm(u)),
        norm2=None,
    )


# model_type -> (the base model's layers, how a layer is read)
_READERS: dict[str, tuple[Callable[[Any], Any], Callable[[nn.Module], _Parts]]] = {
    "bert": (lambda base: base.encoder.layer, _bert),
    "roberta": (lambda base: base.encoder.layer, _bert),
    "gpt2": (lambda base: base.h, _gpt2),
    "llama": (lambda base: base.layers, _llama),
    "mistral": (lambda base: base.layers, _llama),
    "qwen2": (lambda base: base.layers, _llama),
}

# model_type -> the norm a pre-LN base model applies after its last layer (the
# last of its ``hidden_states``); BERT and RoBERTa end on their layers' own norm
_FINAL_NORMS: dict[str, Callable[[Any], nn.Module]] = {
    "gpt2": lambda base: base.ln_f,
    "llama": lambda base: base.norm,
    "mistral": lambda base: base.norm,
    "qwen2": lambda base: base.norm,
}


def reads_blocks(model: Any) -> bool:
    """Whether :func:`hf_blocks` reads ``model``'s layers: a family in :data:`FAMILIES`
    without cross-attention, in float32 or float64."""
    config = getattr(model, "config", None)
    return (
        getattr(config, "model_type", None) in _READERS
        and not getattr(config, "add_cross_attention", False)
        and getattr(model, "dtype", None) in (torch.float32, torch.float64)
    )


def _final_norm(model: Any) -> nn.Module | None:
    """The norm after the model's last layer, or None (a post-LN family)."""
    get = _FINAL_NORMS.get(model.config.model_type)
    try:
        return None if get is None else get(model.base_model)
    except AttributeError as err:
        raise UnreadableBlocks(
            f"{type(model).__name__} does not hold its final norm where "
            f"{model.config.model_type!r} models do ({err})"
        ) from err


def _layers(model: Any) -> tuple[list[nn.Module], Callable[[nn.Module], _Parts]]:
    """The model's layers and their reader; ValueError for a family not in :data:`FAMILIES`."""
    config = model.config
    kind = getattr(config, "model_type", None)
    if kind not in _READERS:
        raise UnreadableBlocks(
            f"ALTI and GlobEnc read the residual, norms and value path of each layer, "
            f"which graphattn.hf knows for the families {FAMILIES}; got model_type "
            f"{kind!r} ({type(model).__name__}); use 'value_zeroing', 'grad_attention' "
            "or 'attention' for it"
        )
    if getattr(config, "add_cross_attention", False):
        raise UnreadableBlocks(
            f"{type(model).__name__} has cross-attention layers (add_cross_attention); "
            "ALTI and GlobEnc are offered for its encoder-only or decoder-only form"
        )
    get_layers, reader = _READERS[kind]

    def read(layer: nn.Module) -> _Parts:
        try:
            return reader(layer)
        except AttributeError as err:
            raise UnreadableBlocks(
                f"a layer of {type(model).__name__} ({type(layer).__name__}) lacks a module "
                f"that graphattn.hf reads for {kind!r} models ({err}); ALTI and GlobEnc refused"
            ) from err

    try:
        layers = list(get_layers(model.base_model))
    except AttributeError as err:
        raise UnreadableBlocks(
            f"{type(model).__name__} does not hold its layers where {kind!r} models do ({err})"
        ) from err
    return layers, read


def _values(parts: _Parts, x: torch.Tensor, heads: int) -> torch.Tensor:
    """``V (B, N, H, C)``: every source's value per query head after the output projection."""
    h = x if parts.pre_norm is None else parts.pre_norm(x)  # (B, N, C)
    v = parts.value(h)  # (B, N, H_kv * D)
    w = parts.out_weight  # (C, H * D)
    d = w.shape[1] // heads
    v = v.unflatten(-1, (-1, d))  # (B, N, H_kv, D)
    v = repeat_kv_heads(v, heads)  # (B, N, H, D) as repeat_kv
    return torch.einsum("bnhd,chd->bnhc", v, w.unflatten(1, (heads, d)))  # (B, N, H, C)


def _capture(layers: list[nn.Module], final: nn.Module | None) -> tuple[list, list, list]:
    """Hooks keeping each layer's input ``x`` and output: ``(inputs, outputs, handles)``.

    With a ``final`` norm, the last output is that norm's (it runs after the last layer).
    """
    inputs: list = [None] * len(layers)
    outputs: list = [None] * len(layers)

    def hooks(l: int):
        def pre(module, args, kwargs):
            inputs[l] = args[0] if args else kwargs["hidden_states"]

        def post(module, args, kwargs, out):
            outputs[l] = out[0] if isinstance(out, tuple) else out

        return pre, post

    handles = []
    for l, layer in enumerate(layers):
        pre, post = hooks(l)
        handles.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(layer.register_forward_hook(post, with_kwargs=True))
    if final is not None:
        handles.append(final.register_forward_hook(hooks(len(layers) - 1)[1], with_kwargs=True))
    return inputs, outputs, handles


def _check(block: AttentionBlock, out: torch.Tensor, layer: int, name: str) -> None:
    """Refuse a block whose recomposed output differs from the layer's actual output."""
    y = block.output()  # (B, N, C)
    tol = 1e-6 if y.dtype == torch.float64 else 1e-3
    err = float((y - out).abs().max())
    scale = float(out.abs().max()) + 1.0
    if not err <= tol * scale:
        raise UnreadableBlocks(
            f"the terms read from layer {layer} of {name} do not reproduce its output "
            f"(max difference {err:.3g}); its layer structure differs from what "
            "graphattn.hf reads for ALTI and GlobEnc, so the methods are refused"
        )


def _block(parts: _Parts, graph, weights: torch.Tensor, x: torch.Tensor) -> AttentionBlock:
    """The :class:`AttentionBlock` of one layer from its parts, weights ``(B, E, H)`` and ``x``."""
    return AttentionBlock(
        graph=graph,
        weights=weights,
        values=_values(parts, x, weights.shape[-1]),
        residual=x,
        out_bias=parts.out_bias,
        norm1=parts.norm1,
        ffn=parts.ffn,
        norm2=parts.norm2,
    )


def hf_blocks(
    model: Any,
    ids: torch.Tensor,
    graph: Any = None,
    *,
    final_norm: bool = False,
    **extra: torch.Tensor,
) -> Iterator[AttentionBlock]:
    """One :class:`~graphattn.flow.AttentionBlock` per layer of a transformers model.

    The model runs once, at the call; the blocks (their values ``(B, M, H,
    C)`` are the large part) are built one at a time as they are iterated.

    Parameters
    ----------
    model : transformers model on ``attn_implementation="graphattn"``
        Of a family in :data:`FAMILIES`, in evaluation mode.
    ids : LongTensor ``(B, N)``
        Token ids.
    graph : optional
        The model's ``token_graph`` argument.
    final_norm : bool
        True: the last block's output is the last of the model's
        ``hidden_states``, with the norm a pre-LN model (GPT-2, Llama,
        Mistral, Qwen2) applies after its last layer as that block's
        ``norm2`` (what Value Zeroing compares); False: every block ends at
        its layer's output (ALTI, GlobEnc).
    **extra : Tensor ``(B, N)``
        More keyword inputs of the model, as given: ``attention_mask`` for
        a padded batch (the weights of edges leaving padding are then 0, so
        those edges are not live), ``position_ids``, ``token_type_ids``.

    Returns
    -------
    iterator of AttentionBlock
        First layer first, each checked to reproduce its layer's output.

    Raises
    ------
    UnreadableBlocks
        A ValueError: for an unsupported family, a model in training mode
        or in half precision (at the call), or a block that does not
        reproduce its layer (when it is reached).
    TypeError
        If ``final_norm`` is not a bool.
    """
    layers, reader = _layers(model)
    name = type(model).__name__
    if model.training:
        raise UnreadableBlocks(f"{name} is in training mode (dropout); call model.eval() first")
    dtype = getattr(model, "dtype", torch.float32)
    if dtype not in (torch.float32, torch.float64):
        raise UnreadableBlocks(
            f"ALTI and GlobEnc of graphattn.hf are computed in the model's dtype and are "
            f"verified in float32 and float64, not {dtype}; call model.float() first"
        )
    parts = [reader(layer) for layer in layers]
    final = _final_norm(model) if check_bool(final_norm, "final_norm") else None
    if final is not None:  # pre-LN: the last layer has no norm2 of its own
        parts[-1] = replace(parts[-1], norm2=final)
    inputs, outputs, handles = _capture(layers, final)
    try:
        with torch.no_grad(), record() as rec:
            model(input_ids=ids, token_graph=graph, **extra)
    finally:
        for h in handles:
            h.remove()
    calls = rec.self_attention
    if rec.cross_attention or len(calls) != len(layers):
        raise UnreadableBlocks(
            f"{name} made {len(calls)} self-attention calls for {len(layers)} layers"
        )
    return _checked_blocks(name, parts, calls, inputs, outputs)


def _checked_blocks(name: str, parts: list, calls: list, inputs: list, outputs: list):
    """Yield each layer's block once it is checked against the layer's output."""
    for l, (p, (g, w)) in enumerate(zip(parts, calls, strict=True)):
        with torch.no_grad():
            block = _block(p, g, w, inputs[l])
            _check(block, outputs[l], l, name)
        inputs[l] = outputs[l] = None  # what the block does not hold is not kept
        yield block
