"""Attribution benchmarks: which attribution method finds what a model's answer rests on.

Modules, one per part of the benchmark (``graphattn attribution`` runs them
all and writes the summary):

- :mod:`~graphattn.experiments.attribution.ground_truth`: ``GraphLM`` models
  trained on associative recall, where the token an answer was copied from
  is known;
- :mod:`~graphattn.experiments.attribution.cross`: the source word each
  target word translates, through the cross-attention of translation models;
- :mod:`~graphattn.experiments.attribution.minilm`: agreement with blank-out
  importance and deletion curves on all-MiniLM-L6-v2 (the model is passed in);
- :mod:`~graphattn.experiments.attribution.lrp`: AttnLRP relevance as the
  papers report it;
- :mod:`~graphattn.experiments.attribution.summary`: which method wins,
  computed from the tables the parts wrote.

The names below are the ground-truth part's, importable from here as they
were from the old module ``graphattn.experiments.attribution``.
"""

from graphattn.experiments.attribution import ground_truth as _ground_truth
from graphattn.experiments.attribution.ground_truth import *  # noqa: F403 - its names, listed below

__all__ = _ground_truth.__all__
