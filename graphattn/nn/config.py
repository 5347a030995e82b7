"""Configuration dataclasses of the graph transformer layers and models.

Every field has the same name and default as the constructor argument;
``Model.from_config(config)`` builds a model and ``model.config`` gives its
configuration back. :class:`LayerConfig` holds the options of one layer,
which every model passes to its layers. The models name their sizes as
``torch.nn.Transformer`` does (``num_heads``, ``num_layers``);
:func:`renamed_keywords` keeps the older names working, deprecated.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar, Union

from graphattn.graph import TokenGraph

__all__ = [
    "CrossSpec",
    "GraphLMConfig",
    "GraphSeq2SeqConfig",
    "GraphTransformerConfig",
    "LayerConfig",
    "PatternSpec",
    "config_from",
    "config_kwargs",
    "renamed_keywords",
]

_F = TypeVar("_F", bound=Callable[..., Any])


def renamed_keywords(**renames: str) -> Callable[[_F], _F]:
    """Decorate a constructor so that old keyword names still work, with a DeprecationWarning.

    ``renames`` maps each old name to its new one; positional calls are
    untouched, and the signature shown is the new one.

    Examples
    --------
    >>> class Box:
    ...     @renamed_keywords(n_heads="num_heads")
    ...     def __init__(self, num_heads):
    ...         self.num_heads = num_heads
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     Box(n_heads=2).num_heads, caught[0].category.__name__
    (2, 'DeprecationWarning')
    """

    def wrap(init: _F) -> _F:
        @functools.wraps(init)
        def renamed(self: Any, *args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"got both {new} and its deprecated name {old}")
                    warnings.warn(f"{type(self).__name__}({old}=...) is deprecated; pass {new}=",
                                  DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return init(self, *args, **kwargs)

        return renamed  # type: ignore[return-value]

    return wrap


def _renamed_attribute(old: str, new: str) -> property:
    """A deprecated attribute ``old`` that reads and writes ``new``."""

    def warn() -> None:
        warnings.warn(f".{old} is deprecated; use .{new}", DeprecationWarning, stacklevel=3)

    def get(self: Any) -> Any:
        warn()
        return getattr(self, new)

    def put(self: Any, value: Any) -> None:
        warn()
        setattr(self, new, value)

    return property(get, put, doc=f"Deprecated name of ``{new}``.")


def config_kwargs(config: Any) -> dict[str, Any]:
    """A config dataclass's fields as keyword arguments (values not copied).

    Examples
    --------
    >>> config_kwargs(LayerConfig(8, 2))["dim_feedforward"]
    2048
    """
    return {f.name: getattr(config, f.name) for f in fields(config)}


_C = TypeVar("_C")


def config_from(cls: type[_C], arguments: Mapping[str, Any], **changes: Any) -> _C:
    """The config ``cls`` from the entries of ``arguments`` named as its fields, ``changes`` on top.

    A constructor passes its ``locals()``, so that its arguments are listed
    once, in its signature.

    Examples
    --------
    >>> config_from(LayerConfig, {"d_model": 8, "num_heads": 2, "other": 0}, bias=False).bias
    False
    """
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in arguments.items() if k in names} | changes)


@dataclass
class LayerConfig:
    """Sizes and options of one transformer layer, the arguments of ``GraphTransformerLayer``.

    ``GraphTransformerLayer``, ``GraphDecoderLayer`` (the same arguments) and
    every model build their layers from one; :meth:`of` reads it from a
    model's configuration.

    Examples
    --------
    >>> LayerConfig(d_model=8, num_heads=2).activation
    'relu'
    >>> LayerConfig.of(GraphTransformerConfig(8, 2, 3, dropout=0.0)).dropout
    0.0
    """

    d_model: int  # model dimension C
    num_heads: int  # attention heads; must divide d_model
    dim_feedforward: int = 2048  # hidden size of the feed-forward block (torch's default)
    dropout: float = 0.1  # attention-weight, residual and feed-forward dropout (torch's default)
    activation: str = "relu"  # "relu" or "gelu" (exact erf GELU)
    layer_norm_eps: float = 1e-5  # epsilon of every layer norm
    norm_first: bool = False  # pre-norm instead of post-norm
    bias: bool = True  # biases in linear layers and layer norms
    num_kv_heads: int | None = None  # grouped-query attention; None = num_heads

    @classmethod
    def of(cls, config: Any, **changes: Any) -> LayerConfig:
        """The layer options in a model's ``config`` (fields of these names), with ``changes``."""
        return config_from(cls, config_kwargs(config), **changes)

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
    >>> GraphLMConfig(vocab_size=50, d_model=16, num_layers=2, num_heads=2).pattern
    'causal'

    ``n_layers`` and ``n_heads``, the older names of ``num_layers`` and
    ``num_heads``, still work (as keywords and attributes), deprecated.
    """

    vocab_size: int  # number of token ids V
    d_model: int  # model dimension C
    num_layers: int  # number of pre-norm GraphTransformerLayers
    num_heads: int  # attention heads per layer; must divide d_model
    pattern: PatternSpec | Sequence[PatternSpec] = "causal"  # one for all layers or one per layer
    pattern_params: dict[str, Any] = field(default_factory=dict)  # for plain pattern names
    max_len: int = 1024  # longest sequence: size of the learned position embedding
    dim_feedforward: int | None = None  # feed-forward hidden size; None = 4 * d_model
    dropout: float = 0.0  # embedding, attention-weight, residual and feed-forward dropout
    activation: str = "gelu"  # "relu" or "gelu" (exact erf GELU)
    layer_norm_eps: float = 1e-5  # epsilon of every layer norm
    bias: bool = True  # biases in linear layers and layer norms (never in the output head)
    tie_weights: bool = True  # output head shares the token embedding matrix
    num_kv_heads: int | None = None  # grouped-query attention; None = num_heads

    n_layers = _renamed_attribute("n_layers", "num_layers")
    n_heads = _renamed_attribute("n_heads", "num_heads")


#: The older keyword names of :class:`~graphattn.nn.GraphLM` and its config.
LM_RENAMES = {"n_layers": "num_layers", "n_heads": "num_heads"}
GraphLMConfig.__init__ = renamed_keywords(**LM_RENAMES)(GraphLMConfig.__init__)  # type: ignore[method-assign]


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
