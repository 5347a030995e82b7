"""Configuration dataclasses of the graph transformer models.

Every field has the same name and default as the model's constructor
argument; ``Model.from_config(config)`` builds a model and ``model.config``
gives its configuration back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from graphattn.graph import TokenGraph

__all__ = [
    "CrossSpec", "GraphLMConfig", "GraphSeq2SeqConfig", "GraphTransformerConfig", "PatternSpec"
]

#: How a layer of :class:`~graphattn.nn.GraphLM` gets its graph for ``n`` tokens:
#: a pattern name for :func:`graphattn.patterns.get` (with the model's
#: ``pattern_params``), a pair ``(name, params)``, a fixed graph, or a
#: callable ``n -> TokenGraph``.
PatternSpec = Union[  # noqa: UP007 (a runtime alias, needs Union on Python 3.10)
    str, tuple[str, dict[str, Any]], TokenGraph, Callable[[int], TokenGraph]
]


@dataclass
class GraphTransformerConfig:
    """Sizes and options of a :class:`~graphattn.nn.GraphTransformer` encoder stack.

    Examples
    --------
    >>> GraphTransformerConfig(d_model=8, num_heads=2, num_layers=2).dim_feedforward
    2048
    """

    d_model: int  # model dimension C
    num_heads: int  # attention heads per layer; must divide d_model
    num_layers: int  # number of GraphTransformerLayers
    dim_feedforward: int = 2048  # hidden size of each feed-forward block (torch's default)
    dropout: float = 0.1  # attention-weight, residual and feed-forward dropout (torch's default)
    activation: str = "relu"  # "relu" or "gelu" (exact erf GELU)
    layer_norm_eps: float = 1e-5  # epsilon of every layer norm
    norm_first: bool = False  # pre-norm layers instead of post-norm
    bias: bool = True  # biases in linear layers and layer norms
    num_kv_heads: int | None = None  # grouped-query attention; None = num_heads
    final_norm: bool = False  # a LayerNorm after the last layer (usual with pre-norm)


@dataclass
class GraphLMConfig:
    """Sizes and options of a :class:`~graphattn.nn.GraphLM` decoder-only language model.

    Examples
    --------
    >>> GraphLMConfig(vocab_size=50, d_model=16, n_layers=2, n_heads=2).pattern
    'causal'
    """

    vocab_size: int  # number of token ids V
    d_model: int  # model dimension C
    n_layers: int  # number of pre-norm GraphTransformerLayers
    n_heads: int  # attention heads per layer; must divide d_model
    pattern: PatternSpec | Sequence[PatternSpec] = "causal"  # one for all layers or one per layer
    pattern_params: dict[str, Any] = field(default_factory=dict)  # for plain pattern names
    max_len: int = 1024  # longest sequence: size of the learned position embedding
    dim_feedforward: int | None = None  # feed-forward hidden size; None = 4 * d_model
    dropout: float = 0.0  # embedding, attention-weight, residual and feed-forward dropout
    activation: str = "gelu"  # "relu" or "gelu" (exact erf GELU)
    layer_norm_eps: float = 1e-5  # epsilon of every layer norm
    bias: bool = True  # biases in linear layers and layer norms (never in the output head)
    tie_weights: bool = True  # output head shares the token embedding matrix
    num_kv_heads: int | None = None  # grouped-query attention; None = n_heads


#: How a cross layer of :class:`~graphattn.nn.GraphSeq2Seq` gets its graph for
#: ``n`` decoder and ``m`` encoder tokens: a cross pattern name (built as
#: ``patterns.get(name, n, n_src=m)``), a pair ``(name, params)``, a fixed graph
#: with ``num_src_nodes = m``, or a callable ``(n, m) -> TokenGraph``.
CrossSpec = Union[  # noqa: UP007 (a runtime alias, needs Union on Python 3.10)
    str, tuple[str, dict[str, Any]], TokenGraph, Callable[[int, int], TokenGraph]
]


@dataclass
class GraphSeq2SeqConfig:
    """Sizes, graphs and special tokens of a :class:`~graphattn.nn.GraphSeq2Seq`.

    Examples
    --------
    >>> cfg = GraphSeq2SeqConfig(src_vocab_size=20, tgt_vocab_size=30, d_model=16, num_heads=2)
    >>> cfg.cross_graph, cfg.decoder_graph
    ('cross', 'causal')
    """

    src_vocab_size: int  # number of source token ids
    tgt_vocab_size: int  # number of target token ids V
    d_model: int  # model dimension C
    num_heads: int  # attention heads of every attention; must divide d_model
    num_encoder_layers: int = 2  # GraphTransformerLayers of the encoder
    num_decoder_layers: int = 2  # GraphDecoderLayers of the decoder
    encoder_graph: PatternSpec | Sequence[PatternSpec] = "full"  # encoder self graph(s)
    decoder_graph: PatternSpec | Sequence[PatternSpec] = "causal"  # decoder self graph(s)
    cross_graph: CrossSpec | Sequence[CrossSpec] = "cross"  # encoder -> decoder graph(s)
    max_len: int = 256  # longest source and target: size of the position embeddings
    dim_feedforward: int | None = None  # feed-forward hidden size; None = 4 * d_model
    dropout: float = 0.0  # embedding, attention-weight, residual and feed-forward dropout
    activation: str = "relu"  # "relu" or "gelu" (exact erf GELU)
    layer_norm_eps: float = 1e-5  # epsilon of every layer norm
    norm_first: bool = False  # pre-norm layers (torch's Transformer default: post-norm)
    bias: bool = True  # biases in linear layers and layer norms (never in the output head)
    pad_id: int = 0  # padding id of both vocabularies (ignored by attention and loss)
    bos_id: int = 1  # target id that starts every decoder input
    eos_id: int = 2  # target id that ends a translation
