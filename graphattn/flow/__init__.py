"""Information flow through layers of graph attention.

Rollout and max-flow attention flow (Abnar & Zuidema 2020), the layered flow
graph as a ``networkx.DiGraph``, the strongest paths, relevance through
encoder -> decoder graphs (Chefer et al. 2021b), head aggregation including
the norm-based weighting of Kobayashi et al. (2020), and ablation-based
faithfulness checks; contribution-based attribution (ALTI, GlobEnc,
Value Zeroing, gradient x attention) of real models, per edge; and the
information-flow routes of one prediction (Ferrando & Voita 2024).

Every function takes ``layers``: one ``(graph, weights)`` pair per layer,
first layer first, with ``weights (E,)`` or ``(E, H)`` in the graph's edge
order, as ``graph_attention(..., return_weights=True)`` returns them, or a
batch of them, ``(B, E)`` or ``(B, E, H)``, giving one result per example
(the rule in :mod:`graphattn.flow.batch`). Layers pruned to their strongest
incoming edges (:func:`prune_top_k`) pass their dropped mass as
``dropped=``, so that rollout, paths and flow account for it exactly.
"""

from graphattn.flow.adapters import ContributionAdapter, register_adapter, unregister_adapter
from graphattn.flow.blocks import AttentionBlock, ContributionModel, ContributionRun
from graphattn.flow.contributions import (
    METHODS,
    block_contributions,
    contributions,
    register_contributions,
    run_model,
)
from graphattn.flow.cross import CrossRelevance, cross_rollout
from graphattn.flow.decompose import normalize_per_target
from graphattn.flow.evaluation import ablation_importance, faithfulness, spearman
from graphattn.flow.heads import aggregate_heads
from graphattn.flow.maxflow import attention_flow, flow_graph
from graphattn.flow.nn_seq2seq import split_cross_layers
from graphattn.flow.paths import FlowPath, top_paths
from graphattn.flow.prune import PrunedLayer, prune_top_k
from graphattn.flow.rollout import attention_rollout
from graphattn.flow.routes import RouteLayer, Routes, route_scores, routes

__all__ = [
    "METHODS",
    "AttentionBlock",
    "ContributionAdapter",
    "ContributionModel",
    "ContributionRun",
    "block_contributions",
    "contributions",
    "normalize_per_target",
    "register_adapter",
    "register_contributions",
    "run_model",
    "split_cross_layers",
    "unregister_adapter",
    "CrossRelevance",
    "FlowPath",
    "PrunedLayer",
    "RouteLayer",
    "Routes",
    "ablation_importance",
    "aggregate_heads",
    "attention_flow",
    "attention_rollout",
    "cross_rollout",
    "faithfulness",
    "flow_graph",
    "prune_top_k",
    "spearman",
    "route_scores",
    "routes",
    "top_paths",
]
