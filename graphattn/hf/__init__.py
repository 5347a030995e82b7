"""graphattn as an attention implementation of Hugging Face ``transformers``.

``import graphattn.hf`` registers ``attn_implementation="graphattn"``; every
model whose attention goes through transformers' ``AttentionInterface`` then
runs its attention as message passing on a token graph and returns per-edge
weights::

    import graphattn.hf
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="graphattn")
    out = model(**inputs, token_graph=g)        # g: TokenGraph, list per layer, or n -> graph
    with graphattn.hf.record() as rec:
        model(**inputs, token_graph=g)
    rec.self_attention                          # [(graph, weights (B, E, H)), ...]
    graphattn.flow.contributions(model, ids, "value_zeroing")  # "alti", "globenc", ...

Needs ``pip install graphattn[hf]`` (transformers >= 5.24; checked on 5.24 and 5.25, see
:mod:`graphattn.hf.registry`).
"""

from graphattn.flow import ContributionAdapter, register_adapter
from graphattn.hf.attach import attach
from graphattn.hf.contrib import METHODS as CONTRIBUTION_METHODS
from graphattn.hf.contrib import hf_contributions, is_graphattn_model, is_transformers_model
from graphattn.hf.contrib_seq2seq import METHODS as SEQ2SEQ_CONTRIBUTION_METHODS
from graphattn.hf.contrib_seq2seq import hf_seq2seq_contributions, is_graphattn_seq2seq
from graphattn.hf.eager import layers_from_attentions
from graphattn.hf.labels import label_layers, token_labels
from graphattn.hf.perplexity import perplexity
from graphattn.hf.record import Recording, RecordOptions, record
from graphattn.hf.registry import ATTENTION_NAME, register

register()
register_adapter(  # graphattn.flow.contributions takes these models
    is_graphattn_seq2seq,
    ContributionAdapter(compute=hf_seq2seq_contributions, methods=SEQ2SEQ_CONTRIBUTION_METHODS),
)
register_adapter(
    is_transformers_model,
    ContributionAdapter(compute=hf_contributions, methods=CONTRIBUTION_METHODS),
)

__all__ = [
    "ATTENTION_NAME",
    "RecordOptions",
    "Recording",
    "attach",
    "hf_contributions",
    "hf_seq2seq_contributions",
    "is_graphattn_model",
    "is_graphattn_seq2seq",
    "label_layers",
    "layers_from_attentions",
    "perplexity",
    "record",
    "register",
    "token_labels",
]
