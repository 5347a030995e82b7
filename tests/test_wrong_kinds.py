"""Every public function refuses an argument of the wrong kind, naming it (issue #24).

The sweep is generated, not hand-picked: :data:`BASELINES` gives, for every public
callable of the modules in :data:`MODULES`, one call with valid arguments; for each
of its parameters the wrong kinds are those its annotation does not admit (read by
``inspect.signature``; :data:`ANNOTATIONS` states the real type where the annotation
is ``Any``). Each case replaces one argument of the valid call by a wrong kind and
requires a ``TypeError`` or ``ValueError`` whose message names the parameter.
``test_every_public_callable_is_swept_or_skipped`` keeps the table complete: a new
public name fails until it has a baseline here or a reason in :data:`SKIPPED`.

The command line's options are swept in ``tests/test_cli_errors.py``.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
import torch

import graphattn as ga
from graphattn import patterns
from graphattn.graph import TokenGraph

MODULES = [
    "graphattn", "graphattn.patterns", "graphattn.analysis", "graphattn.flow", "graphattn.plot",
    "graphattn.functional", "graphattn.backends", "graphattn.nn", "graphattn.hf",
    "graphattn.linear", "graphattn.bias", "graphattn.variants",
]  # fmt: skip

#: One value of each wrong kind.
WRONG = {
    "dict": {0: 1},
    "str": "x",
    "none": None,
    "int": 3,
    "float": 1.5,
    "nan": math.nan,
    "bool": True,
    "list": [1, 2],
}

#: Which annotation names admit each kind (``Any``/``object`` admit all and are not swept).
ADMITS = {
    "dict": {"dict", "Mapping"},
    "str": {"str", "PathLike", "Path"},
    "none": {"None"},
    "int": {"int", "float", "Real", "Integral", "bool", "device"},  # torch.device(0): an index
    "float": {"float", "Real"},
    "nan": set(),  # never a valid number
    "bool": {"bool"},
    "list": {"Sequence", "list", "Iterable", "tuple", "Collection"},
}

#: Type aliases of the library, spelled out.
ALIASES = {
    "PatternSpec": "str | tuple | dict | TokenGraph | Callable",
    "CrossSpec": "str | tuple | dict | TokenGraph | Callable",
    "Bias": "Tensor | Callable | Sequence[Tensor] | None",
    "Kernel": "Callable", "Supports": "Callable", "Selector": "Callable | None",
    "Stepper": "Stepper", "Layers": "list", "LayerWeights": "list",
    "ScoreFn": "Callable", "Normalizer": "Callable",
}  # fmt: skip

#: The documented type of parameters annotated ``Any`` (or too loosely).
ANNOTATIONS = {
    ("attention_flow", "targets"): "int | Sequence[int] | Tensor",
    ("attention_rollout", "targets"): "int | Sequence[int] | Tensor | None",
    ("attention_flow", "layers"): "Sequence[tuple]",
    ("attention_rollout", "layers"): "Sequence[tuple]",
    ("flow_graph", "layers"): "Sequence[tuple]",
    ("route_scores", "layers"): "Sequence[tuple]",
    ("routes", "layers"): "Sequence[tuple]",
    ("top_paths", "layers"): "Sequence[tuple]",
    ("cross_rollout", "encoder_layers"): "Sequence[tuple]",
    ("cross_rollout", "decoder_self_layers"): "Sequence[tuple]",
    ("cross_rollout", "decoder_cross_layers"): "Sequence[tuple]",
    ("faithfulness", "attribution"): "Tensor | Sequence[float]",
    ("faithfulness", "importance"): "Tensor | Sequence[float]",
    ("spearman", "x"): "Tensor | Sequence[float]",
    ("spearman", "y"): "Tensor | Sequence[float]",
    ("contributions", "input_ids"): "Tensor | tuple",
    ("contributions", "model"): "Module",
    ("run_model", "model"): "Module",
    ("run_model", "inputs"): "Tensor | tuple",
    ("TokenGraph", "edge_index"): "Tensor | Sequence",
    ("RecordOptions", "layers"): "int | Iterable[int] | None",  # kept as a frozenset
}


# ------------------------------------------------------------------ valid calls
def _graph() -> TokenGraph:
    mask = torch.ones(4, 4, dtype=torch.bool).tril()
    return TokenGraph.from_dense_mask(mask, tokens=list("abcd"))


def _weights(g: TokenGraph, heads: int = 2) -> torch.Tensor:
    """Attention weights ``(E, H)`` of ``g``: uniform over every target's edges."""
    deg = torch.bincount(g.dst, minlength=g.num_nodes).clamp(min=1).double()
    return (1.0 / deg[g.dst]).unsqueeze(1).expand(-1, heads).float().contiguous()


def _layers(n_layers: int = 2) -> list:
    g = _graph()
    return [(g, _weights(g)) for _ in range(n_layers)]


def _qkv(n: int = 4) -> dict:
    return {name: torch.randn(n, 2, 4) for name in "qkv"}


@cache
def _lm() -> ga.GraphLM:
    return ga.GraphLM(10, 8, 1, 2, max_len=8).eval()


def _cross_layers() -> tuple[list, list, list]:
    enc = TokenGraph([[0, 1, 0, 1], [0, 0, 1, 1]])
    dec = TokenGraph([[0], [0]], num_nodes=1)
    crs = TokenGraph([[0, 1], [0, 0]], num_nodes=1, num_src_nodes=2)
    return ([(enc, torch.full((4,), 0.5))], [(dec, torch.tensor([1.0]))],
            [(crs, torch.tensor([0.9, 0.1]))])  # fmt: skip


class _Stepper:
    def next_logits(self, seqs):
        return torch.nn.functional.one_hot((seqs[:, -1] + 1).clamp(max=5), 6).float()

    def reorder(self, index):
        pass


class _Chars:
    def convert_ids_to_tokens(self, ids):
        return [chr(96 + i) for i in ids]


def _block():
    from graphattn.flow import run_model

    return run_model(_lm(), torch.tensor([[1, 2, 3]])).blocks[0]


def _mod(name: str):
    return importlib.import_module(name)


CPU = {"device": "cpu", "dtype": torch.float32}
P, F, PL, N = "graphattn.patterns", "graphattn.flow", "graphattn.plot", "graphattn.nn"
G, AN, B, V = "graphattn", "graphattn.analysis", "graphattn.backends", "graphattn.variants"
#: ``module:name`` -> ``tmp_path -> kwargs`` of one valid call (by parameter name).
BASELINES: dict[str, Callable[[Path], dict]] = {
    # patterns
    f"{P}:attention_sink": lambda t: {"n": 8, "sinks": 1, "window": 2},
    f"{P}:bigbird": lambda t: {"n": 16, "window": 3, "num_global": 1, "num_random": 1,
                               "seed": 0, "block": 2},
    f"{P}:block_diagonal": lambda t: {"n": 8, "sizes": 4, "causal": False},
    f"{P}:causal": lambda t: {"n": 4},
    f"{P}:cross": lambda t: {"n_dst": 3, "n_src": 4},
    f"{P}:cross_window": lambda t: {"n_dst": 3, "n_src": 4, "window": 2, "causal": False},
    f"{P}:diagonal_window": lambda t: {"n_dst": 3, "n_src": 4, "window": 2},
    f"{P}:documents": lambda t: {"lengths": [2, 3], "causal": True},
    f"{P}:fixed": lambda t: {"n": 8, "stride": 4, "c": 1, "causal": True},
    f"{P}:from_predicate": lambda t: {"fn": lambda i, j: i >= j, "n_dst": 4, "n_src": 4,
                                      "name": "tri"},
    f"{P}:full": lambda t: {"n": 4},
    f"{P}:get": lambda t: {"name": "causal", "n": 4},
    f"{P}:global_tokens": lambda t: {"n": 6, "globals": 1, "symmetric": True},
    f"{P}:longformer": lambda t: {"n": 8, "window": 2, "globals": 1, "dilation": 1},
    f"{P}:no_cross": lambda t: {"n_dst": 3, "n_src": 4},
    f"{P}:prefix_lm": lambda t: {"n": 6, "prefix": 2},
    f"{P}:random": lambda t: {"n": 6, "k": 2, "seed": 0, "causal": False},
    f"{P}:random_cross": lambda t: {"n_dst": 3, "n_src": 4, "k": 2, "seed": 0},
    f"{P}:sliding_window": lambda t: {"n": 6, "window": 2, "causal": True, "dilation": 1},
    f"{P}:star": lambda t: {"n": 4},
    f"{P}:strided": lambda t: {"n": 8, "stride": 2, "causal": True},
    # analysis
    f"{AN}:block_density": lambda t: {"graph": _graph(), "block_size": 2},
    f"{AN}:degree_stats": lambda t: {"graph": _graph()},
    f"{AN}:density": lambda t: {"graph": _graph()},
    f"{AN}:describe": lambda t: {"graph": _graph(), "block_size": 2, "reach_limit": 16},
    f"{AN}:is_causal": lambda t: {"graph": _graph()},
    f"{AN}:layers_to_reach": lambda t: {"graph": _graph(), "max_layers": 3},
    f"{AN}:reach": lambda t: {"graph": _graph(), "layers": 2},
    f"{AN}:reach_coverage": lambda t: {"graph": _graph(), "layers": 2},
    f"{AN}:sparse_transformer_valid": lambda t: {"graph": _graph()},
    # kernels
    f"{G}:graph_attention": lambda t: {**_qkv(), "graph": _graph(), "scale": 0.5,
                                       "bias": torch.zeros(10), "dropout_p": 0.0,
                                       "return_weights": False, "backend": "auto",
                                       "generator": torch.Generator(), "check_inputs": False,
                                       "head_reduction": None},
    f"{G}:graph_linear_attention": lambda t: {**_qkv(), "graph": _graph(),
                                              "return_weights": False},
    f"{G}:explain_backend": lambda t: {"graph": _graph(), "batch": 1, "num_heads": 2,
                                       "head_dim": 4, "value_dim": 4, "device": "cpu",
                                       "dtype": torch.float32, "needs_grad": False,
                                       "return_weights": False, "has_bias": False,
                                       "dropout": 0.0},
    f"{G}:to_block_mask": lambda t: {"graph": _graph(), "block_size": 2, "device": "cpu"},
    f"{B}:get_backend": lambda t: {"name": "edge"},
    f"{V}:cosine": lambda t: {"tau": 10.0},
    f"{V}:sigmoid_attention": lambda t: {"offset": 0.0},
    f"{V}:variant_attention": lambda t: {**_qkv(), "graph": _graph(), "variant": ga.variants.COSINE,
                                         "edge_attr": None, "scale": 0.5,
                                         "return_weights": False, "chunk_elements": 1024},
    "graphattn.bias:alibi": lambda t: {"num_heads": 2},
    "graphattn.bias:alibi_slopes": lambda t: {"num_heads": 2},
    "graphattn.bias:ALiBi": lambda t: {"num_heads": 2},
    "graphattn.bias:relative_position_bias": lambda t: {"table": torch.zeros(7, 2)},
    "graphattn.bias:RelativePositionBias": lambda t: {"table": torch.zeros(7, 2)},
    "graphattn.bias:T5RelativePositionBias": lambda t: {"table": torch.zeros(8, 2),
                                                        "bidirectional": True,
                                                        "max_distance": 16},
    "graphattn.bias:t5_bucket": lambda t: {"relative_position": torch.arange(-3, 4),
                                           "bidirectional": True, "num_buckets": 8,
                                           "max_distance": 16},
    # modules
    f"{G}:GraphAttention": lambda t: {**CPU, "embed_dim": 8, "num_heads": 2, "dropout": 0.0,
                                      "bias": True, "kdim": 8, "vdim": 8, "num_kv_heads": 1},
    f"{G}:GraphTransformerLayer": lambda t: {**CPU, "d_model": 8, "num_heads": 2,
                                             "dim_feedforward": 16,
                                             "dropout": 0.0, "activation": "relu",
                                             "layer_norm_eps": 1e-5, "norm_first": False,
                                             "bias": True, "num_kv_heads": 1},
    f"{G}:GraphDecoderLayer": lambda t: {**CPU, "d_model": 8, "num_heads": 2, "dim_feedforward": 16,
                                         "dropout": 0.0, "activation": "relu",
                                         "layer_norm_eps": 1e-5, "norm_first": False,
                                         "bias": True, "num_kv_heads": 1},
    f"{G}:GraphTransformer": lambda t: {**CPU, "d_model": 8, "num_heads": 2, "num_layers": 1,
                                        "dim_feedforward": 16, "dropout": 0.0,
                                        "activation": "relu", "layer_norm_eps": 1e-5,
                                        "norm_first": False, "bias": True, "num_kv_heads": 1,
                                        "final_norm": False},
    f"{G}:GraphLM": lambda t: {"vocab_size": 10, "d_model": 8, "num_layers": 1, "num_heads": 2,
                               "pattern": "causal", "pattern_params": None, "max_len": 8,
                               "dim_feedforward": 16, "dropout": 0.0, "activation": "gelu",
                               "layer_norm_eps": 1e-5, "bias": True, "tie_weights": True,
                               "num_kv_heads": 1},
    f"{G}:GraphSeq2Seq": lambda t: {"src_vocab_size": 10, "tgt_vocab_size": 10, "d_model": 8,
                                    "num_heads": 2, "num_encoder_layers": 1,
                                    "num_decoder_layers": 1, "encoder_graph": "full",
                                    "decoder_graph": "causal", "cross_graph": "cross",
                                    "max_len": 8, "dim_feedforward": 16, "dropout": 0.0,
                                    "activation": "relu", "layer_norm_eps": 1e-5,
                                    "norm_first": False, "bias": True, "pad_id": 0,
                                    "bos_id": 1, "eos_id": 2},
    f"{N}:greedy_search": lambda t: {"stepper": _Stepper(), "batch": 2, "max_new_tokens": 3,
                                     "bos_id": 1, "eos_id": 4, "pad_id": 0},
    f"{N}:beam_search": lambda t: {"stepper": _Stepper(), "batch": 2, "num_beams": 2,
                                   "max_new_tokens": 3, "bos_id": 1, "eos_id": 4, "pad_id": 0},
    f"{N}:padding_bias": lambda t: {"graph": _graph(), "valid": torch.ones(1, 4, dtype=bool),
                                    "num_heads": 2, "dtype": torch.float32},
    f"{N}:rows_graph": lambda t: {"graph": patterns.causal(4), "start": 1, "stop": 3,
                                  "num_src": 3},
    # flow
    f"{F}:aggregate_heads": lambda t: {"weights": _weights(_graph()), "mode": "mean",
                                       "values": None, "graph": None},
    f"{F}:attention_flow": lambda t: {"layers": _layers(), "targets": [1], "residual": 0.5,
                                      "head_reduce": "mean", "prune": 0.0, "normalize": True,
                                      "dropped": None},
    f"{F}:attention_rollout": lambda t: {"layers": _layers(), "residual": 0.5,
                                         "head_reduce": "mean", "targets": None,
                                         "dropped": None, "normalize": True},
    f"{F}:flow_graph": lambda t: {"layers": _layers(), "residual": 0.5, "head_reduce": "mean",
                                  "prune": 0.0, "dropped": None},
    f"{F}:prune_top_k": lambda t: {"graph": _graph(), "weights": _weights(_graph()), "k": 2},
    f"{F}:route_scores": lambda t: {"layers": _layers(), "target": 1, "residual": 0.5,
                                    "head_reduce": "mean"},
    f"{F}:routes": lambda t: {"layers": _layers(), "target": 1, "threshold": 0.04,
                              "residual": 0.5, "head_reduce": "mean"},
    f"{F}:top_paths": lambda t: {"layers": _layers(), "target": 1, "source": 0, "k": 2,
                                 "residual": 0.5, "head_reduce": "mean", "dropped": None},
    f"{F}:cross_rollout": lambda t: dict(zip(
        ("encoder_layers", "decoder_self_layers", "decoder_cross_layers"), _cross_layers(),
        strict=True), head_reduce="mean", normalize=True),
    f"{F}:faithfulness": lambda t: {"attribution": torch.tensor([0.1, 0.5, 0.4]),
                                    "importance": torch.tensor([0.0, 2.0, 1.0])},
    f"{F}:spearman": lambda t: {"x": torch.tensor([0.1, 0.5, 0.4]),
                                "y": torch.tensor([0.0, 2.0, 1.0])},
    f"{F}:ablation_importance": lambda t: {
        "model_fn": lambda x: (x * torch.tensor([1.0, 0.0, 2.0])).sum(),
        "inputs": torch.ones(3), "target": (), "replace_with": 0.0},
    f"{F}:contributions": lambda t: {"model": _lm(), "input_ids": torch.tensor([[1, 2, 3]]),
                                     "method": "alti", "graph": None, "normalize": True},
    f"{F}:run_model": lambda t: {"model": _lm(), "inputs": torch.tensor([[1, 2, 3]]),
                                 "graph": None},
    f"{F}:block_contributions": lambda t: {"block": _block(), "method": "alti",
                                           "normalize": True},
    f"{F}:normalize_per_target": lambda t: {"graph": _graph(), "c": _weights(_graph(), 1).T,
                                            "live": None},
    f"{F}:split_cross_layers": lambda t: {
        "layers": ga.flow.contributions(
            ga.GraphSeq2Seq(9, 9, 8, 2, num_encoder_layers=1, num_decoder_layers=1).eval(),
            (torch.tensor([[3, 4, 5]]), torch.tensor([[1, 6]]))), "example": 0, "b": None},
    # plot
    f"{PL}:compute_layout": lambda t: {"graphs": _graph(), "layout": "auto"},
    f"{PL}:draw_attention": lambda t: {"graph": _graph(), "weights": _weights(_graph()),
                                       "example": None, "head": "mean", "layout": "auto",
                                       "ax": None, "title": "t", "top_k": 2, "threshold": 0.1,
                                       "max_edges": 100},
    f"{PL}:draw_flow": lambda t: {"layers": _layers(), "example": None, "flow": None,
                                  "relevance": None, "relevance_row": 0, "target": 1,
                                  "head": "mean", "ax": None, "title": "t", "max_edges": 100},
    f"{PL}:draw_graph": lambda t: {"graph": _graph(), "layout": "auto", "ax": None,
                                   "title": "t", "max_edges": 100},
    f"{PL}:draw_heads": lambda t: {"layers": _layers(1), "example": None, "view": "matrix",
                                   "ax": None, "share_scale": True, "max_tokens": 16,
                                   "max_edges": 100},
    f"{PL}:draw_matrix": lambda t: {"graph": _graph(), "weights": _weights(_graph()),
                                    "example": None, "head": "mean", "ax": None,
                                    "cmap": "viridis", "vmin": 0.0, "vmax": 1.0,
                                    "colorbar": True, "title": "t", "labels": True,
                                    "legend": True, "max_tokens": 16},
    f"{PL}:draw_pattern": lambda t: {"graph": _graph(), "ax": None, "title": "t",
                                     "legend": True, "max_tokens": 16},
    f"{PL}:draw_patterns": lambda t: {"graphs": [_graph()], "ncols": 2, "ax": None,
                                      "max_tokens": 16},
    f"{PL}:draw_reach": lambda t: {"graph": _graph(), "layers": 2, "share": "all", "ax": None,
                                   "title": "t"},
    f"{PL}:draw_rollout": lambda t: {"rollout": torch.eye(4), "tokens": list("abcd"),
                                     "example": None, "src_tokens": None, "gamma": 0.5,
                                     "clip_sink": True, "method": "attention", "ax": None,
                                     "title": "t"},
    f"{PL}:draw_routes": lambda t: {"routes": ga.flow.routes(_layers(), 1), "example": None,
                                    "all_tokens": False, "ax": None, "title": "t"},
    f"{PL}:head_color": lambda t: {"head": 1},
    f"{PL}:prune": lambda t: {"graph": _graph(), "values": _weights(_graph(), 1)[:, 0],
                              "top_k": 2, "threshold": 0.1, "max_edges": 100},
    f"{PL}:save_figure": lambda t: {"fig": _figure(), "path": t / "f.png", "dpi": 50},
    f"{PL}:show": lambda t: {"layers": _layers(), "tokens": list("abcd"), "example": None,
                             "src_tokens": None, "title": "t", "max_edges_per_target": 2,
                             "max_bytes": 10**6},
    f"{PL}:to_html": lambda t: {"layers": _layers(), "path": t / "v.html", "example": None,
                                "tokens": list("abcd"), "src_tokens": None, "title": "t",
                                "max_edges_per_target": 2, "max_bytes": 10**6},
    f"{PL}:Viewer": lambda t: {"page": "<p>x</p>", "title": "t", "height": 300},
    # hf
    "graphattn.hf:label_layers": lambda t: {"layers": _layers(), "tokens": list("abcd"),
                                            "src_tokens": None},
    "graphattn.hf:layers_from_attentions": lambda t: {
        "attentions": [torch.full((1, 2, 4, 4), 0.25)], "attention_mask": None},
    "graphattn.hf:record": lambda t: {"heads": "mean", "dtype": torch.float32, "layers": [0],
                                      "top_k": 2},
    "graphattn.hf:RecordOptions": lambda t: {"heads": "mean", "dtype": torch.float32,
                                             "layers": frozenset({0}), "top_k": 2},
    "graphattn.hf:token_labels": lambda t: {"tokenizer": _Chars(),
                                            "encoding": {"input_ids": torch.tensor([[1, 2]])},
                                            "example": 0},
}  # fmt: skip


def _figure():
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(1, 1))


#: Parameters of swept callables that are not swept, and why.
UNSWEPT = {
    (f"{P}:random", "p"): "exclusive with k, which the baseline passes; k's kinds are swept",
}

#: Public callables not swept, and why.
SKIPPED = {
    # result and description records: the library builds them, users read them
    **dict.fromkeys(
        ["graphattn.analysis:BlockDensity", "graphattn.analysis:Description",
         f"{F}:AttentionBlock", f"{F}:ContributionRun", f"{F}:CrossRelevance", f"{F}:FlowPath",
         f"{F}:PrunedLayer", f"{F}:RouteLayer", f"{F}:Routes", f"{PL}:Layout",
         f"{B}:AttentionRequest", f"{B}:Backend", f"{B}:BackendChoice", f"{B}:KernelCall",
         f"{N}:LMOutput", f"{N}:LayerKVCache", f"{N}:ModelOutput", f"{N}:Seq2SeqOutput",
         "graphattn.hf:Recording", f"{V}:Edges", f"{V}:AttentionVariant"],
        "a record the library returns or passes to kernels; its fields are not checked inputs",
    ),
    **dict.fromkeys(
        [f"{N}:GraphLMConfig", f"{N}:GraphSeq2SeqConfig", f"{N}:GraphTransformerConfig",
         f"{N}:LayerConfig"],
        "a plain config dataclass; its values are checked by the model that reads it "
        "(swept through GraphLM, GraphSeq2Seq, GraphTransformer)",
    ),
    **dict.fromkeys(
        [f"{N}:PatternSpec", f"{N}:CrossSpec", f"{F}:ContributionModel"],
        "a type alias or protocol, not a function",
    ),
    **dict.fromkeys(
        [f"{P}:available", f"{B}:backend_names", "graphattn.hf:register"],
        "takes no argument",
    ),
    **dict.fromkeys(
        [f"{P}:union", f"{P}:intersection"],
        "takes *graphs only (covered by tests/test_patterns.py's wrong-operand tests)",
    ),
    **dict.fromkeys(
        [f"{V}:dot_product_score", f"{V}:linear_score", f"{V}:elu_feature_map", f"{V}:linear",
         f"{V}:sigmoid", f"{V}:softmax"],
        "a score or normalizer callback that variant_attention calls with checked tensors",
    ),
    **dict.fromkeys(
        [f"{B}:auto_selector", f"{B}:select_backend"],
        "reads an AttentionRequest that graph_attention/explain_backend build from checked "
        "arguments",
    ),
    **dict.fromkeys(
        [f"{B}:register_backend", f"{B}:unregister_backend", f"{B}:register_selector",
         f"{F}:register_contributions", f"{F}:register_adapter", f"{F}:unregister_adapter",
         f"{F}:ContributionAdapter"],
        "changes a process-wide registry; its argument checks are tested next to it",
    ),
    **dict.fromkeys(
        ["graphattn.hf:attach", "graphattn.hf:hf_contributions",
         "graphattn.hf:hf_seq2seq_contributions", "graphattn.hf:is_graphattn_model",
         "graphattn.hf:is_graphattn_seq2seq", "graphattn.hf:perplexity"],
        "takes a transformers model (tests/test_hf_refusals.py sweeps its wrong inputs); "
        "is_graphattn_* are predicates that answer any object",
    ),
    f"{PL}:find_artist": "a test helper over an Axes the caller drew",
    "graphattn:TokenGraph": "swept by tests/test_input_checks.py and tests/test_graph.py",
}  # fmt: skip


#: Wrong kinds still accepted, or refused without naming the parameter: none at present
#: (issue #24 closed the last ones). An entry ``{"module:name": {"param": "kind kind"}}``
#: marks those cases as strict xfails, so fixing one makes its case fail until the entry goes.
OPEN: dict[str, dict[str, str]] = {}


def _public() -> list[str]:
    """``module:name`` of every public callable of :data:`MODULES`, under its defining module."""
    names = set()
    for module in MODULES:
        mod = _mod(module)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if callable(obj) and not inspect.ismodule(obj):
                names.add(f"{_home(obj, module)}:{name}")
    return sorted(names)


def _home(obj, module: str) -> str:
    """The first module of :data:`MODULES` that exports ``obj`` (its key in the tables)."""
    for home in MODULES:
        mod = _mod(home)
        if any(getattr(mod, n, None) is obj for n in mod.__all__):
            return home
    return module


def _resolve(key: str) -> Callable:
    module, name = key.split(":")
    return getattr(_mod(module), name)


def _admits(key: str, param: inspect.Parameter) -> set[str] | None:
    """The kinds ``param``'s annotation admits, or None where it admits anything."""
    name = key.split(":")[1]
    text = ANNOTATIONS.get((name, param.name), param.annotation)
    if text is inspect.Parameter.empty:
        return None
    text = str(text)
    for alias, spelled in ALIASES.items():
        text = re.sub(rf"\b{alias}\b", spelled, text)
    words = set(re.findall(r"[A-Za-z_]+", text))
    if words & {"Any", "object"}:
        return None
    kinds = {kind for kind, admits in ADMITS.items() if words & admits}
    if param.default is None:
        kinds.add("none")
    return kinds


def _case(key: str, param: str, kind: str):
    marks = []
    if kind in OPEN.get(key, {}).get(param, "").split():
        marks = pytest.mark.xfail(strict=True, reason="open: see OPEN")
    return pytest.param(key, param, kind, id=f"{key}-{param}-{kind}", marks=marks)


def _cases() -> list:
    cases = []
    for key in sorted(BASELINES):
        fn = _resolve(key)
        for param in inspect.signature(fn).parameters.values():
            admitted = _admits(key, param)
            varargs = param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
            if admitted is None or varargs or (key, param.name) in UNSWEPT:
                continue
            for kind in WRONG:
                if kind not in admitted and (kind != "nan" or "float" in admitted):
                    cases.append(_case(key, param.name, kind))
    return cases


def test_every_public_callable_is_swept_or_skipped():
    public = set(_public())
    assert public - set(BASELINES) - set(SKIPPED) == set(), "add a baseline or a reason"
    assert set(BASELINES) | set(SKIPPED) <= public, "a table names a callable that is gone"
    assert not set(BASELINES) & set(SKIPPED)
    swept = {case.id for case in _cases()}
    for key, params in OPEN.items():
        for param, kinds in params.items():
            assert {f"{key}-{param}-{kind}" for kind in kinds.split()} <= swept, (key, param)


@pytest.mark.filterwarnings("ignore:graphattn.hf.record.. recorded no call")
@pytest.mark.parametrize("key", sorted(BASELINES))
def test_every_baseline_call_is_valid(key, tmp_path):
    kwargs = BASELINES[key](tmp_path)
    params = inspect.signature(_resolve(key)).parameters
    assert set(kwargs) <= set(params)
    _call(key, kwargs)


def _call(key: str, kwargs: dict):
    fn = _resolve(key)
    out = fn(**kwargs)
    if key == "graphattn.hf:record":  # a context manager: it checks its options on entry
        with out:
            pass
    return out


@pytest.mark.parametrize("key, param, kind", _cases())
def test_a_wrong_kind_is_refused_naming_its_parameter(key, param, kind, tmp_path):
    kwargs = BASELINES[key](tmp_path)
    if param not in kwargs:
        pytest.fail(f"the baseline of {key} does not pass {param}")
    kwargs[param] = WRONG[kind]
    with pytest.raises((TypeError, ValueError)) as info:
        _call(key, kwargs)
    assert re.search(rf"\b{re.escape(param)}\b", str(info.value)), str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "written before refusing"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
