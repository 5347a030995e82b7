"""``output_attentions=True`` on graphattn: dense weights, and a pointer to :func:`record`.

transformers collects ``out.attentions`` from what each attention call
returns; in transformers 5 a forward's ``output_attentions`` reaches some
attention calls as a keyword (T5) and others only through transformers'
output capture (GPT-2), so :func:`wants_dense_weights` reads both. graphattn
then returns dense ``(B, H, N, M)`` weights, zero off the graph, and warns
that :func:`graphattn.hf.record` gives the same weights per edge with their
graph.
"""

from __future__ import annotations

import warnings

from transformers.utils import output_capturing

__all__ = ["DENSE_WARNING", "wants_dense_weights"]

DENSE_WARNING = (
    "output_attentions=True on attn_implementation='graphattn' returns dense (B, H, N, M) "
    "weights, zero off the token graph; graphattn.hf.record() gives each call's "
    "(graph, weights (B, E, H)) per edge, ready for graphattn.flow and graphattn.plot"
)


def _captured() -> bool:
    """Whether transformers' output capture of the running forward collects attentions."""
    collector = getattr(output_capturing, "_active_collector", None)
    active = collector.get() if collector is not None else None
    return isinstance(active, dict) and ("attentions" in active or "cross_attentions" in active)


def wants_dense_weights(kwargs: dict) -> bool:
    """Whether the forward asked for ``out.attentions``; warns (once per place) if so.

    Examples
    --------
    >>> wants_dense_weights({})
    False
    """
    wanted = bool(kwargs.get("output_attentions")) or _captured()
    if wanted:
        warnings.warn(DENSE_WARNING, UserWarning, stacklevel=3)
    return wanted
