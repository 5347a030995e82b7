"""graphattn: transformer attention as message passing on token graphs."""

from graphattn.functional import graph_attention
from graphattn.graph import TokenGraph
from graphattn.nn import GraphAttention

__version__ = "0.1.0"

__all__ = ["GraphAttention", "TokenGraph", "__version__", "graph_attention"]
