"""graphattn: transformer attention as message passing on token graphs."""

from graphattn import (
    analysis,  # graphattn.analysis.describe, reach, layers_to_reach, ...
    flow,  # graphattn.flow.attention_rollout, attention_flow, ...
    patterns,  # graphattn.patterns.get("sliding_window", n, window=w), ...
)
from graphattn.backends import explain_backend
from graphattn.backends.flex import to_block_mask
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
    "analysis",
    "explain_backend",
    "flow",
    "graph_attention",
    "graph_linear_attention",
    "patterns",
    "to_block_mask",
]
