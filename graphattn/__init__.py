"""graphattn: transformer attention as message passing on token graphs."""

from graphattn import flow  # graphattn.flow.attention_rollout, attention_flow, ...
from graphattn.functional import graph_attention
from graphattn.graph import TokenGraph
from graphattn.linear import graph_linear_attention
from graphattn.nn import (
    GraphAttention,
    GraphDecoderLayer,
    GraphLM,
    GraphTransformer,
    GraphTransformerLayer,
)

__version__ = "0.1.0"

__all__ = [
    "GraphAttention",
    "GraphDecoderLayer",
    "GraphLM",
    "GraphTransformer",
    "GraphTransformerLayer",
    "TokenGraph",
    "__version__",
    "flow",
    "graph_attention",
    "graph_linear_attention",
]
