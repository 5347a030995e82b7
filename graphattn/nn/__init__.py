"""Attention modules, transformer layers and models that run on token graphs."""

from graphattn.nn.attention import GraphAttention, padding_bias
from graphattn.nn.config import GraphLMConfig, GraphTransformerConfig, PatternSpec
from graphattn.nn.layers import ACTIVATIONS, GraphDecoderLayer, GraphTransformerLayer
from graphattn.nn.models import GraphLM, GraphTransformer, LMOutput, ModelOutput

__all__ = [
    "ACTIVATIONS",
    "GraphAttention",
    "GraphDecoderLayer",
    "GraphLM",
    "GraphLMConfig",
    "GraphTransformer",
    "GraphTransformerConfig",
    "GraphTransformerLayer",
    "LMOutput",
    "ModelOutput",
    "PatternSpec",
    "padding_bias",
]
