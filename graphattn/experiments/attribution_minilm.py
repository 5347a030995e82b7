"""Old module path ``graphattn.experiments.attribution_minilm``, kept as an alias.

Its names live in:

- :mod:`graphattn.experiments.attribution.minilm`

New code imports from there; the alias is listed in ``docs/changelog.md``.
"""

from graphattn.experiments.attribution.minilm import (
    AOPC_METHODS,
    FRACTIONS,
    METHODS,
    aopc_markdown,
    blank_out_importance,
    deletion_curves,
    evaluate,
    leave_one_out_importance,
    mask_token_id,
    removal_count,
    run,
    sentences,
    spearman_markdown,
)

__all__ = [
    "AOPC_METHODS",
    "FRACTIONS",
    "METHODS",
    "aopc_markdown",
    "blank_out_importance",
    "deletion_curves",
    "evaluate",
    "leave_one_out_importance",
    "mask_token_id",
    "removal_count",
    "run",
    "sentences",
    "spearman_markdown",
]
