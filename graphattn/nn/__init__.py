"""Attention modules, transformer layers and models that run on token graphs."""

from graphattn.nn.attention import GraphAttention, padding_bias
from graphattn.nn.layers import ACTIVATIONS, GraphDecoderLayer, GraphTransformerLayer

__all__ = [
    "ACTIVATIONS",
    "GraphAttention",
    "GraphDecoderLayer",
    "GraphTransformerLayer",
    "padding_bias",
]
