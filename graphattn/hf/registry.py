"""Registration of graphattn with transformers (done once by ``import graphattn.hf``).

Three things make ``attn_implementation="graphattn"`` work in transformers 5:

- the attention function in ``AttentionInterface``;
- the mask function in ``AttentionMaskInterface`` (without it a custom
  implementation gets ``attention_mask=None``: no padding, no sliding window);
- the graph keywords (``token_graph``, ``encoder_graph``, ``decoder_graph``,
  ``cross_graph``, ``decoder_reads_future``) declared as accepted model
  keywords, so that ``generate(token_graph=...)`` does not refuse them as unused.
"""

from __future__ import annotations

from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface
from transformers.utils.generic import TransformersKwargs

from graphattn.hf.attention import graphattn_attention
from graphattn.hf.keywords import ATTENTION_NAME, FUTURE_FLAG, GRAPH_KWARGS
from graphattn.hf.masks import graph_mask

__all__ = ["ATTENTION_NAME", "GRAPH_KWARGS", "register"]

MODEL_KWARGS = (*GRAPH_KWARGS, FUTURE_FLAG)  # forward keywords passed down to attention


def register() -> None:
    """Register the attention function, its mask function and the graph keywords.

    Idempotent; ``import graphattn.hf`` calls it.

    Examples
    --------
    >>> from transformers import AttentionInterface
    >>> register()
    >>> ATTENTION_NAME in AttentionInterface()
    True
    """
    AttentionInterface.register(ATTENTION_NAME, graphattn_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, graph_mask)
    accepted = TransformersKwargs.__optional_keys__
    if not accepted.issuperset(MODEL_KWARGS):
        # generate() validates model_kwargs against this set of TypedDict keys
        TransformersKwargs.__optional_keys__ = frozenset(accepted | set(MODEL_KWARGS))
