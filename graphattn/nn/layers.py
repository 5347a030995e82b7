"""Transformer layers on token graphs: encoder and decoder blocks.

:class:`GraphTransformerLayer` and :class:`GraphDecoderLayer` mirror
``nn.TransformerEncoderLayer`` and ``nn.TransformerDecoderLayer`` (with
``batch_first=True``) down to their parameter names, so ``from_torch`` and
``to_torch`` copy state dicts unchanged; the attention runs on graphs instead
of dense masks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from graphattn._validate import check_bool, check_number, check_positive_int, check_probability
from graphattn.graph import TokenGraph
from graphattn.nn.attention import GraphAttention
from graphattn.nn.config import LayerConfig, config_kwargs

__all__ = ["ACTIVATIONS", "GraphDecoderLayer", "GraphTransformerLayer", "LayerKVCache"]

#: Feed-forward activations by name; ``"gelu"`` is the exact (erf) GELU.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "gelu": F.gelu}


def _check_activation(activation: object) -> str:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return activation


def _torch_activation_name(fn: object) -> str:
    """Name of a torch layer's activation, for ``from_torch``."""
    if fn is F.relu or isinstance(fn, nn.ReLU):
        return "relu"
    if fn is F.gelu or (isinstance(fn, nn.GELU) and fn.approximate == "none"):
        return "gelu"
    raise ValueError(f"activation {fn!r} has no graphattn counterpart; use relu or gelu")


def _attention(c: LayerConfig, dropout: float, factory: dict) -> GraphAttention:
    """One attention of a layer (its self- or cross-attention)."""
    return GraphAttention(c.d_model, c.num_heads, dropout=dropout, bias=c.bias,
                          num_kv_heads=c.num_kv_heads, **factory)


_L = TypeVar("_L", bound="_LayerBase")
_T = TypeVar("_T", bound=nn.Module)


class _LayerBase(nn.Module):
    """Shared parts of the encoder and decoder layers: arguments, attention, feed-forward.

    The one signature of both layers: its arguments are the fields of
    :class:`~graphattn.nn.config.LayerConfig`, in their order.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        norm_first: bool = False,
        bias: bool = True,
        *,
        num_kv_heads: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        config = LayerConfig(d_model, num_heads, dim_feedforward, dropout, activation,
                             layer_norm_eps, norm_first, bias, num_kv_heads)
        self._build(config, {"device": device, "dtype": dtype})

    @classmethod
    def from_config(
        cls: type[_L],
        config: LayerConfig,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> _L:
        """A layer built from its :class:`~graphattn.nn.config.LayerConfig`.

        Examples
        --------
        >>> GraphTransformerLayer.from_config(LayerConfig(8, 2, 16)).linear1.out_features
        16
        """
        if not isinstance(config, LayerConfig):
            raise TypeError(f"config must be a LayerConfig, got {type(config).__name__}")
        return cls(**config_kwargs(config), device=device, dtype=dtype)

    def _build(self, c: LayerConfig, factory: dict) -> None:
        """Check ``c`` and create the modules (``factory``: their device and dtype)."""
        self.d_model = check_positive_int(c.d_model, "d_model")
        self.num_heads = check_positive_int(c.num_heads, "num_heads")
        self.dim_feedforward = check_positive_int(c.dim_feedforward, "dim_feedforward")
        self.activation = _check_activation(c.activation)
        self.layer_norm_eps = check_number(c.layer_norm_eps, "layer_norm_eps", low=0,
                                           low_open=True)
        self.norm_first = check_bool(c.norm_first, "norm_first")
        check_bool(c.bias, "bias")
        self.num_kv_heads = c.num_heads if c.num_kv_heads is None else c.num_kv_heads
        p = check_probability(c.dropout, "dropout")
        self.self_attn = _attention(c, p, factory)
        d, ff, bias = c.d_model, c.dim_feedforward, c.bias
        self.linear1 = nn.Linear(d, ff, bias=bias, **factory)
        self.dropout = nn.Dropout(p)
        self.linear2 = nn.Linear(ff, d, bias=bias, **factory)
        self.norm1 = nn.LayerNorm(d, c.layer_norm_eps, bias=bias, **factory)
        self.norm2 = nn.LayerNorm(d, c.layer_norm_eps, bias=bias, **factory)
        self.dropout1 = nn.Dropout(p)
        self.dropout2 = nn.Dropout(p)

    def _ff_block(self, x: torch.Tensor) -> torch.Tensor:
        h = ACTIVATIONS[self.activation](self.linear1(x))  # (..., N, dim_feedforward)
        return self.dropout2(self.linear2(self.dropout(h)))  # (..., N, C)

    def _to_torch(self, torch_type: type[_T]) -> _T:
        """The matching ``torch_type`` layer (``batch_first=True``) holding these weights."""
        ref = torch_type(**self._torch_args())
        ref.load_state_dict(self.state_dict())
        return ref.train(self.training)

    def _torch_args(self) -> dict[str, object]:
        """Constructor arguments of the matching ``torch.nn`` layer."""
        if self.num_kv_heads != self.num_heads:
            raise ValueError(
                f"to_torch needs num_kv_heads == num_heads, got {self.num_kv_heads} != "
                f"{self.num_heads} (torch layers have no grouped-query attention)"
            )
        ref = self.linear1.weight
        return {
            "d_model": self.d_model,
            "nhead": self.num_heads,
            "dim_feedforward": self.dim_feedforward,
            "dropout": self.dropout.p,
            "activation": self.activation,
            "layer_norm_eps": self.layer_norm_eps,
            "batch_first": True,
            "norm_first": self.norm_first,
            "bias": self.linear1.bias is not None,
            "device": ref.device,
            "dtype": ref.dtype,
        }


def _mirror_torch_layer(cls: type[_L], layer: nn.Module, torch_type: type[nn.Module]) -> _L:
    """A ``cls`` layer built like the ``torch_type`` layer ``layer``, holding its weights."""
    if not isinstance(layer, torch_type):
        raise TypeError(
            f"layer must be an nn.{torch_type.__name__}, got {type(layer).__name__}"
        )
    config = LayerConfig(
        layer.self_attn.embed_dim,
        layer.self_attn.num_heads,
        layer.linear1.out_features,
        layer.dropout.p,
        _torch_activation_name(layer.activation),
        layer.norm1.eps,
        layer.norm_first,
        layer.linear1.bias is not None,
    )
    ref = layer.linear1.weight
    out = cls.from_config(config, device=ref.device, dtype=ref.dtype)
    out.load_state_dict(layer.state_dict())
    return out.train(layer.training)


class GraphTransformerLayer(_LayerBase):
    """Transformer encoder layer whose self-attention runs on a token graph.

    Self-attention along ``graph``, then a feed-forward block, each with a
    residual connection and layer norm, exactly as ``nn.TransformerEncoderLayer``
    with ``batch_first=True``: post-norm ``x = norm1(x + sa(x));
    x = norm2(x + ff(x))`` or, with ``norm_first``, pre-norm
    ``x = x + sa(norm1(x)); x = x + ff(norm2(x))``, where
    ``ff(x) = linear2(dropout(activation(linear1(x))))``.

    Parameter names (the ``state_dict`` keys of ``nn.TransformerEncoderLayer``):
    ``self_attn.in_proj_weight``, ``self_attn.in_proj_bias``,
    ``self_attn.out_proj.{weight,bias}``, ``linear1.{weight,bias}``,
    ``linear2.{weight,bias}``, ``norm1.{weight,bias}``, ``norm2.{weight,bias}``
    (with ``num_kv_heads < num_heads`` the attention has
    ``self_attn.{q,k,v}_proj_weight`` instead of ``in_proj_weight``).

    Parameters
    ----------
    d_model : int
        Model dimension ``C``.
    num_heads : int
        Attention heads; must divide ``d_model``.
    dim_feedforward : int, optional
        Hidden size of the feed-forward block (default 2048, as torch).
    dropout : float, optional
        Dropout on the attention weights, after attention, and in the
        feed-forward block; training mode only (default 0.1, as torch).
    activation : {"relu", "gelu"}, optional
        Feed-forward activation; ``"gelu"`` is the exact erf GELU (BERT's).
        Default ``"relu"``.
    layer_norm_eps : float, optional
        Epsilon of both layer norms (default 1e-5; BERT uses 1e-12).
    norm_first : bool, optional
        Pre-norm instead of post-norm (default False).
    bias : bool, optional
        Biases in the linear layers and layer norms (default True).
    num_kv_heads : int, optional
        Grouped-query attention: number of key/value heads (default ``num_heads``).
    device, dtype : optional
        Where and in which dtype to create the parameters.

    Raises
    ------
    TypeError, ValueError
        On a non-positive size, a head count that does not divide, an unknown
        activation or a dropout outside ``[0, 1)``.

    Examples
    --------
    >>> from graphattn import TokenGraph
    >>> layer = GraphTransformerLayer(8, 2, dim_feedforward=16, dropout=0.0)
    >>> g = TokenGraph.from_dense_mask(torch.ones(4, 4, dtype=torch.bool).tril())
    >>> out, w = layer(torch.randn(2, 4, 8), g, need_weights=True)
    >>> out.shape, w.shape
    (torch.Size([2, 4, 8]), torch.Size([2, 10, 2]))
    """

    def _sa_block(
        self,
        x: torch.Tensor,
        graph: TokenGraph | Sequence[TokenGraph],
        bias: torch.Tensor | Sequence[torch.Tensor] | None,
        need_weights: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        h, weights = self.self_attn(x, graph, bias=bias, need_weights=need_weights)
        return self.dropout1(h), weights

    def forward(
        self,
        x: torch.Tensor,
        graph: TokenGraph | Sequence[TokenGraph],
        *,
        bias: torch.Tensor | Sequence[torch.Tensor] | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the layer.

        Parameters
        ----------
        x : Tensor ``(N, C)`` or ``(B, N, C)``
        graph : TokenGraph or sequence of ``num_heads`` TokenGraphs
            Self graph over the ``N`` tokens, or one per head.
        bias : Tensor ``(E,)``, ``(E, H)`` or ``(B, E, H)``, optional
            Per-edge attention bias (e.g. :func:`padding_bias`); with per-head
            graphs a sequence of ``H`` tensors.
        need_weights : bool, optional
            Also return the attention weights.

        Returns
        -------
        out : Tensor, same shape as ``x``
        weights : Tensor ``(E, H)`` / ``(B, E, H)`` or None
            A tuple of ``H`` tensors with per-head graphs.
        """
        if self.norm_first:
            h, weights = self._sa_block(self.norm1(x), graph, bias, need_weights)
            x = x + h
            x = x + self._ff_block(self.norm2(x))
        else:
            h, weights = self._sa_block(x, graph, bias, need_weights)
            x = self.norm1(x + h)
            x = self.norm2(x + self._ff_block(x))
        return x, weights

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> GraphTransformerLayer:
        """Copy an ``nn.TransformerEncoderLayer`` (its weights, sizes, options).

        ``out, _ = GraphTransformerLayer.from_torch(layer)(x, graph)`` equals
        ``layer(x, src_mask=~graph.to_dense_mask())`` for batch-first ``x``
        (torch's boolean mask is True where attention is *blocked*).

        Raises
        ------
        TypeError
            If ``layer`` is not an ``nn.TransformerEncoderLayer``.
        ValueError
            If its activation is not ReLU or exact GELU.

        Examples
        --------
        >>> ref = torch.nn.TransformerEncoderLayer(8, 2, 16, activation="gelu", batch_first=True)
        >>> GraphTransformerLayer.from_torch(ref).activation
        'gelu'
        """
        return _mirror_torch_layer(cls, layer, nn.TransformerEncoderLayer)

    def to_torch(self) -> nn.TransformerEncoderLayer:
        """An ``nn.TransformerEncoderLayer`` (``batch_first=True``) with these weights.

        Raises
        ------
        ValueError
            With grouped-query attention (no torch counterpart).

        Examples
        --------
        >>> GraphTransformerLayer(8, 2, 16).to_torch().linear1.out_features
        16
        """
        return self._to_torch(nn.TransformerEncoderLayer)


@dataclass
class LayerKVCache:
    """Keys and values a :class:`GraphDecoderLayer` keeps between decoding steps.

    Pass one per layer as ``cache=`` and the layer fills it in place. Shapes
    are ``(B, T, H_kv, D)`` for the ``T`` decoder tokens so far and
    ``(B, M, H_kv, D)`` for the memory (without the ``B`` for unbatched input).

    Examples
    --------
    >>> from graphattn import patterns
    >>> layer, cache = GraphDecoderLayer(8, 2, 16, dropout=0.0), LayerKVCache()
    >>> memory, first = torch.randn(1, 5, 8), torch.randn(1, 1, 8)
    >>> _ = layer(first, memory, patterns.get("causal", 1), patterns.cross(1, 5), cache=cache)
    >>> cache.self_kv[0].shape, cache.cross_kv[0].shape
    (torch.Size([1, 1, 2, 4]), torch.Size([1, 5, 2, 4]))
    """

    self_kv: tuple[torch.Tensor, torch.Tensor] | None = None  # decoder tokens so far
    cross_kv: tuple[torch.Tensor, torch.Tensor] | None = None  # the memory, projected once

    def append(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """Append the keys and values of new decoder tokens (token dimension ``-3``)."""
        if self.self_kv is not None:
            k = torch.cat([self.self_kv[0], k], dim=-3)  # (..., T + new, H_kv, D)
            v = torch.cat([self.self_kv[1], v], dim=-3)  # (..., T + new, H_kv, D)
        self.self_kv = (k, v)

    def reorder(self, index: torch.Tensor) -> None:
        """Keep batch rows ``index`` (in that order), e.g. the surviving beams."""
        for name in ("self_kv", "cross_kv"):
            kv = getattr(self, name)
            if kv is not None:
                setattr(self, name, (kv[0][index], kv[1][index]))  # (B', ..., H_kv, D)


class GraphDecoderLayer(_LayerBase):
    """Transformer decoder layer: self-attention on one graph, cross-attention on another.

    Mirrors ``nn.TransformerDecoderLayer`` (``batch_first=True``): post-norm
    ``x = norm1(x + sa(x)); x = norm2(x + ca(x, memory)); x = norm3(x + ff(x))``
    or the pre-norm variant with ``norm_first``. The self graph has the ``N``
    decoder tokens as targets and sources; the cross graph has the ``N``
    decoder tokens as targets and the ``M`` memory (encoder) tokens as sources.

    Parameter names are those of ``nn.TransformerDecoderLayer``: the
    :class:`GraphTransformerLayer` names plus ``multihead_attn.*`` (the
    cross-attention) and ``norm3.*``.

    Parameters
    ----------
    d_model : int
        Model dimension ``C`` of the decoder tokens and of the memory.
    num_heads : int
        Attention heads of both attentions; must divide ``d_model``.
    dim_feedforward : int, optional
        Hidden size of the feed-forward block (default 2048).
    dropout : float, optional
        Dropout, training mode only (default 0.1).
    activation : {"relu", "gelu"}, optional
        Feed-forward activation (default ``"relu"``; ``"gelu"`` is exact).
    layer_norm_eps : float, optional
        Epsilon of the three layer norms (default 1e-5).
    norm_first : bool, optional
        Pre-norm instead of post-norm (default False).
    bias : bool, optional
        Biases in the linear layers and layer norms (default True).
    num_kv_heads : int, optional
        Key/value heads of both attentions (default ``num_heads``).
    device, dtype : optional
        Where and in which dtype to create the parameters.

    Examples
    --------
    >>> from graphattn import TokenGraph
    >>> layer = GraphDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0)
    >>> causal = TokenGraph.from_dense_mask(torch.ones(3, 3, dtype=torch.bool).tril())
    >>> cross = TokenGraph.from_dense_mask(torch.ones(3, 5, dtype=torch.bool))
    >>> out, (w_self, w_cross) = layer(
    ...     torch.randn(3, 8), torch.randn(5, 8), causal, cross, need_weights=True)
    >>> out.shape, w_self.shape, w_cross.shape
    (torch.Size([3, 8]), torch.Size([6, 2]), torch.Size([15, 2]))
    """

    def _build(self, c: LayerConfig, factory: dict) -> None:
        """The encoder layer's modules, then the cross-attention and its norm."""
        super()._build(c, factory)
        self.multihead_attn = _attention(c, self.dropout.p, factory)
        self.norm3 = nn.LayerNorm(c.d_model, c.layer_norm_eps, bias=c.bias, **factory)
        self.dropout3 = nn.Dropout(self.dropout.p)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        graph: TokenGraph,
        cross_graph: TokenGraph,
        *,
        bias: torch.Tensor | None = None,
        cross_bias: torch.Tensor | None = None,
        need_weights: bool = False,
        cache: LayerKVCache | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """Run the layer.

        Parameters
        ----------
        x : Tensor ``(N, C)`` or ``(B, N, C)``
            Decoder tokens.
        memory : Tensor ``(M, C)`` or ``(B, M, C)``
            Encoder output, the sources of ``cross_graph``.
        graph : TokenGraph
            Self graph over the ``N`` decoder tokens (e.g. causal).
        cross_graph : TokenGraph
            ``N`` targets, ``M`` sources (memory -> decoder).
        bias, cross_bias : Tensor, optional
            Per-edge attention biases of the self and the cross graph, e.g.
            :func:`padding_bias` for padded decoder tokens or padded memory.
        need_weights : bool, optional
            Also return both attentions' weights.
        cache : LayerKVCache, optional
            Incremental decoding: ``x`` holds only the new decoder tokens,
            ``graph`` has them as targets and every decoder token so far (the
            cached ones, then the new ones) as sources, and the cache is
            updated in place: the new tokens' keys and values are appended and
            the memory's are projected on the first call and reused.

        Returns
        -------
        out : Tensor, same shape as ``x``
        weights : tuple ``(self_weights (E, H), cross_weights (E_cross, H))`` or None
            With a leading ``B`` for batched input.
        """
        if self.norm_first:
            h, w_self = self._self_block(self.norm1(x), graph, bias, need_weights, cache)
            x = x + self.dropout1(h)
            h, w_cross = self._cross_block(
                self.norm2(x), memory, cross_graph, cross_bias, need_weights, cache
            )
            x = x + self.dropout2(h)
            x = x + self._ff(self.norm3(x))
        else:
            h, w_self = self._self_block(x, graph, bias, need_weights, cache)
            x = self.norm1(x + self.dropout1(h))
            h, w_cross = self._cross_block(x, memory, cross_graph, cross_bias, need_weights, cache)
            x = self.norm2(x + self.dropout2(h))
            x = self.norm3(x + self._ff(x))
        return x, ((w_self, w_cross) if need_weights else None)

    def _self_block(
        self,
        x: torch.Tensor,
        graph: TokenGraph,
        bias: torch.Tensor | None,
        need_weights: bool,
        cache: LayerKVCache | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Self-attention; with a cache, over the cached tokens and the new ones."""
        if cache is None:
            return self.self_attn(x, graph, bias=bias, need_weights=need_weights)
        cache.append(*self.self_attn.project_kv(x))
        return self.self_attn.attend(x, graph, cache.self_kv, bias=bias, need_weights=need_weights)

    def _cross_block(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        cross_graph: TokenGraph,
        cross_bias: torch.Tensor | None,
        need_weights: bool,
        cache: LayerKVCache | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Cross-attention; with a cache, on the memory's keys and values projected once."""
        attn = self.multihead_attn
        if cache is None:
            return attn(x, cross_graph, context=memory, bias=cross_bias, need_weights=need_weights)
        if cache.cross_kv is None:
            cache.cross_kv = attn.project_kv(memory)
        kv = cache.cross_kv
        return attn.attend(x, cross_graph, kv, bias=cross_bias, need_weights=need_weights)

    def _ff(self, x: torch.Tensor) -> torch.Tensor:
        h = ACTIVATIONS[self.activation](self.linear1(x))  # (..., N, dim_feedforward)
        return self.dropout3(self.linear2(self.dropout(h)))  # (..., N, C)

    @classmethod
    def from_torch(cls, layer: nn.TransformerDecoderLayer) -> GraphDecoderLayer:
        """Copy an ``nn.TransformerDecoderLayer`` (its weights, sizes, options).

        ``GraphDecoderLayer.from_torch(layer)(x, memory, graph, cross_graph)[0]``
        equals ``layer(x, memory, tgt_mask=~graph.to_dense_mask(),
        memory_mask=~cross_graph.to_dense_mask())`` for batch-first inputs.

        Raises
        ------
        TypeError
            If ``layer`` is not an ``nn.TransformerDecoderLayer``.
        ValueError
            If its activation is not ReLU or exact GELU.

        Examples
        --------
        >>> ref = torch.nn.TransformerDecoderLayer(8, 2, 16, batch_first=True)
        >>> GraphDecoderLayer.from_torch(ref).norm3.normalized_shape
        (8,)
        """
        return _mirror_torch_layer(cls, layer, nn.TransformerDecoderLayer)

    def to_torch(self) -> nn.TransformerDecoderLayer:
        """An ``nn.TransformerDecoderLayer`` (``batch_first=True``) with these weights.

        Raises
        ------
        ValueError
            With grouped-query attention, as :meth:`GraphTransformerLayer.to_torch`.

        Examples
        --------
        >>> GraphDecoderLayer(8, 2, 16).to_torch().norm_first
        False
        """
        return self._to_torch(nn.TransformerDecoderLayer)
