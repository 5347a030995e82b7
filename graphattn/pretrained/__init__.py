"""Real pretrained BERT encoders with their attention run on token graphs.

Load all-MiniLM-L6-v2 (or any BERT checkpoint folder), reproduce its outputs
on its own full graph, and swap in any other token graph to see what changes.
"""

from graphattn.flow import ContributionAdapter, register_adapter
from graphattn.pretrained.bert import BertConfig, BertLayer, BertModel, BertOutput, GraphSpec
from graphattn.pretrained.contrib import bert_run
from graphattn.pretrained.drift import Drift, Pattern, drift_table, measure_drift
from graphattn.pretrained.loading import load_bert, load_minilm, minilm_dir, tiny_bert
from graphattn.pretrained.tokenize import BertTokenizer

register_adapter(BertModel, ContributionAdapter(run=bert_run))  # graphattn.flow.contributions

__all__ = [
    "BertConfig",
    "BertLayer",
    "BertModel",
    "BertOutput",
    "BertTokenizer",
    "Drift",
    "GraphSpec",
    "Pattern",
    "drift_table",
    "load_bert",
    "load_minilm",
    "measure_drift",
    "minilm_dir",
    "tiny_bert",
]
