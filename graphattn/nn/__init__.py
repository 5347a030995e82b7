"""Attention modules, transformer layers and models that run on token graphs."""

from graphattn.nn.attention import GraphAttention, padding_bias
from graphattn.nn.config import (
    CrossSpec,
    GraphLMConfig,
    GraphSeq2SeqConfig,
    GraphTransformerConfig,
    LayerConfig,
    PatternSpec,
)
from graphattn.nn.generation import beam_search, greedy_search
from graphattn.nn.layers import ACTIVATIONS, GraphDecoderLayer, GraphTransformerLayer, LayerKVCache
from graphattn.nn.models import GraphLM, GraphTransformer, LMOutput, ModelOutput
from graphattn.nn.seq2seq import GraphSeq2Seq, Seq2SeqOutput, rows_graph

__all__ = [
    "ACTIVATIONS",
    "CrossSpec",
    "GraphAttention",
    "GraphDecoderLayer",
    "GraphLM",
    "GraphLMConfig",
    "GraphSeq2Seq",
    "GraphSeq2SeqConfig",
    "GraphTransformer",
    "GraphTransformerConfig",
    "GraphTransformerLayer",
    "LMOutput",
    "LayerConfig",
    "LayerKVCache",
    "ModelOutput",
    "PatternSpec",
    "Seq2SeqOutput",
    "beam_search",
    "greedy_search",
    "padding_bias",
    "rows_graph",
]
