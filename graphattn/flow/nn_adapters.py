"""graphattn's own models registered with :func:`~graphattn.flow.adapters.register_adapter`.

``GraphTransformer`` (features ``(B, N, C)``) and ``GraphLM`` (ids
``(B, N)``) run through :func:`~graphattn.flow.nn_models.model_run`;
``GraphSeq2Seq`` (ids ``(src, tgt)``) through
:func:`~graphattn.flow.nn_seq2seq.seq2seq_run`, its AttnLRP through
:func:`~graphattn.flow.lrp_seq2seq.seq2seq_attnlrp`. Their inputs are never
a mapping. Imported with :mod:`graphattn.flow`.
"""

from __future__ import annotations

from graphattn.flow.adapters import ContributionAdapter, register_adapter
from graphattn.flow.lrp_seq2seq import seq2seq_attnlrp
from graphattn.flow.nn_models import model_run
from graphattn.flow.nn_seq2seq import seq2seq_run
from graphattn.nn import GraphLM, GraphSeq2Seq, GraphTransformer

__all__ = ["MODEL", "SEQ2SEQ"]

#: The adapter of ``GraphTransformer`` and ``GraphLM``.
MODEL = ContributionAdapter(run=model_run, mappings=False)
#: The adapter of ``GraphSeq2Seq``.
SEQ2SEQ = ContributionAdapter(run=seq2seq_run, mappings=False, attnlrp=seq2seq_attnlrp)

register_adapter(GraphTransformer, MODEL)
register_adapter(GraphLM, MODEL)
register_adapter(GraphSeq2Seq, SEQ2SEQ)
