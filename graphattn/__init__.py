"""graphattn: transformer attention as message passing on token graphs.

The core (graphs, patterns, analysis, kernels, modules, flow) is imported with
the package. The subpackages with heavier dependencies (``plot`` needs
matplotlib, ``pretrained`` and ``experiments`` safetensors, ``hf`` transformers)
are attributes too, imported on first use (PEP 562), so ``import graphattn``
alone imports none of those dependencies.

Examples
--------
>>> import graphattn as ga
>>> "plot" in dir(ga)
True
>>> ga.plot.draw_graph.__module__
'graphattn.plot.graph'
"""

import importlib
import importlib.util
from typing import TYPE_CHECKING

from graphattn import (
    analysis,  # graphattn.analysis.describe, reach, layers_to_reach, ...
    flow,  # graphattn.flow.attention_rollout, attention_flow, ...
    patterns,  # graphattn.patterns.get("sliding_window", n, window=w), ...
)
from graphattn.backends import explain_backend
from graphattn.backends.flex import to_block_mask
from graphattn.functional import graph_attention
from graphattn.graph import TokenGraph
from graphattn.linear import graph_linear_attention
from graphattn.nn import (
    GraphAttention,
    GraphDecoderLayer,
    GraphLM,
    GraphSeq2Seq,
    GraphTransformer,
    GraphTransformerLayer,
)
from graphattn.nn.display import register_layers_html

if TYPE_CHECKING:  # type checkers see the lazy subpackages; at run time __getattr__ loads them
    from graphattn import experiments as experiments
    from graphattn import hf as hf
    from graphattn import plot as plot
    from graphattn import pretrained as pretrained

__version__ = "0.1.0"

#: Subpackages imported on first attribute access (``hf``: the Hugging Face
#: integration, needs the ``hf`` extra).
_LAZY_SUBPACKAGES = ("experiments", "hf", "plot", "pretrained")

__all__ = [
    "GraphAttention",
    "GraphDecoderLayer",
    "GraphLM",
    "GraphSeq2Seq",
    "GraphTransformer",
    "GraphTransformerLayer",
    "TokenGraph",
    "__version__",
    "analysis",
    "explain_backend",
    "flow",
    "graph_attention",
    "graph_linear_attention",
    "patterns",
    "to_block_mask",
]


def _layers_html(layers):  # model outputs in a notebook; plot is imported on first display
    from graphattn.plot.notebook import layers_html

    return layers_html(layers)


register_layers_html(_layers_html)


def _present(name: str) -> bool:
    return importlib.util.find_spec(f"{__name__}.{name}") is not None


def __getattr__(name: str) -> object:
    """Import a lazy subpackage on first access (``graphattn.plot``, ...)."""
    if name in _LAZY_SUBPACKAGES and _present(name):
        return importlib.import_module(f"{__name__}.{name}")  # also binds it in globals()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {name for name in _LAZY_SUBPACKAGES if _present(name)})
