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

__all__ = ["GraphLMConfig", "GraphTransformerConfig", "PatternSpec"]

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
