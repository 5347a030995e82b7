"""Registration of graphattn with transformers (done once by ``import graphattn.hf``).

Three things make ``attn_implementation="graphattn"`` work in transformers 5:

- the attention function in ``AttentionInterface``;
- the mask function in ``AttentionMaskInterface`` (without it a custom
  implementation gets ``attention_mask=None``: no padding, no sliding window);
- the graph keywords (``token_graph``, ``encoder_graph``, ``decoder_graph``,
  ``cross_graph``, ``decoder_reads_future``) declared as accepted model
  keywords, so that ``generate(token_graph=...)`` does not refuse them as
  unused: :func:`accept_graph_keywords`.

The third is the one change graphattn makes to transformers itself, for the
whole process: ``generate`` checks its keywords against the keys of the
``TransformersKwargs`` typed dict, which has no registry, so its
``__optional_keys__`` gain the graph keywords. It is made only on the
transformers versions it was checked against (:data:`CHECKED_TRANSFORMERS`)
and undone by :func:`withdraw_graph_keywords`.
"""

from __future__ import annotations

import warnings

import transformers
from packaging.version import Version
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface
from transformers.utils.generic import TransformersKwargs

from graphattn.hf.attention import graphattn_attention
from graphattn.hf.keywords import ATTENTION_NAME, FUTURE_FLAG, GRAPH_KWARGS
from graphattn.hf.masks import graph_mask

__all__ = [
    "ATTENTION_NAME",
    "CHECKED_TRANSFORMERS",
    "GRAPH_KWARGS",
    "accept_graph_keywords",
    "is_checked_version",
    "register",
    "withdraw_graph_keywords",
]

MODEL_KWARGS = (*GRAPH_KWARGS, FUTURE_FLAG)  # forward keywords passed down to attention
# transformers versions lo <= v < hi whose generate() reads TransformersKwargs.__optional_keys__
# (checked on 5.24 and 5.25; a later version is added once the tests pass on it)
CHECKED_TRANSFORMERS = ("5.24", "5.26")


def is_checked_version(version: str) -> bool:
    """Whether :func:`accept_graph_keywords` was checked on transformers ``version``.

    A pre-release counts as its release: ``5.26.0.dev0`` is 5.26.

    Examples
    --------
    >>> is_checked_version("5.25.0"), is_checked_version("5.26.0.dev0"), is_checked_version("6.0")
    (True, False, False)
    """
    lo, hi = (Version(v) for v in CHECKED_TRANSFORMERS)
    return lo <= Version(Version(version).base_version) < hi


def _unchecked(version: str) -> str:
    lo, hi = CHECKED_TRANSFORMERS
    return (
        f"graphattn.hf declares its graph keywords to transformers' generate() only on the "
        f"transformers versions it was checked against (>= {lo}, < {hi}), not on the installed "
        f"transformers {version}. A forward given token_graph= and the other graph keywords "
        f"runs as before; generate(token_graph=...) may be refused as an unused keyword. "
        f"Install transformers>={lo},<{hi}"
    )


def accept_graph_keywords() -> None:
    """Declare the graph keywords as accepted model keywords of transformers, process-wide.

    ``generate`` refuses a model keyword that neither the model's forward
    nor ``TransformersKwargs`` declares; the graph keywords are added to the
    latter's ``__optional_keys__``. Idempotent; undone by
    :func:`withdraw_graph_keywords`.

    Raises
    ------
    RuntimeError
        If the installed transformers is not among :data:`CHECKED_TRANSFORMERS`
        (``register`` warns instead and leaves transformers unchanged).

    Examples
    --------
    >>> accept_graph_keywords()
    >>> "token_graph" in TransformersKwargs.__optional_keys__
    True
    """
    if not is_checked_version(transformers.__version__):
        raise RuntimeError(_unchecked(transformers.__version__))
    accepted = TransformersKwargs.__optional_keys__
    if not accepted.issuperset(MODEL_KWARGS):
        TransformersKwargs.__optional_keys__ = frozenset(accepted | set(MODEL_KWARGS))


def withdraw_graph_keywords() -> None:
    """Undo :func:`accept_graph_keywords`: ``TransformersKwargs`` keeps only its own keys.

    Examples
    --------
    >>> withdraw_graph_keywords()
    >>> "token_graph" in TransformersKwargs.__optional_keys__
    False
    >>> accept_graph_keywords()  # as import graphattn.hf left it
    """
    own = frozenset(TransformersKwargs.__annotations__)  # the keys transformers declares
    added = set(MODEL_KWARGS) - own
    TransformersKwargs.__optional_keys__ = frozenset(TransformersKwargs.__optional_keys__ - added)


def register() -> None:
    """Register the attention function, its mask function and the graph keywords.

    Idempotent; ``import graphattn.hf`` calls it. On a transformers version
    outside :data:`CHECKED_TRANSFORMERS` the keywords are not declared
    (``UserWarning``): forwards given a graph work, ``generate`` may refuse one.

    Examples
    --------
    >>> from transformers import AttentionInterface
    >>> register()
    >>> ATTENTION_NAME in AttentionInterface()
    True
    """
    AttentionInterface.register(ATTENTION_NAME, graphattn_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, graph_mask)
    try:
        accept_graph_keywords()
    except RuntimeError as err:  # a transformers version it was not checked against
        warnings.warn(str(err), UserWarning, stacklevel=2)
