"""Attention modules, transformer layers and models that run on token graphs."""

from graphattn.nn.attention import GraphAttention, padding_bias

__all__ = ["GraphAttention", "padding_bias"]
