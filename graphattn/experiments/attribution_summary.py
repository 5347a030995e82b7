"""Old module path ``graphattn.experiments.attribution_summary``, kept as an alias.

Its names live in:

- :mod:`graphattn.experiments.attribution.summary`

New code imports from there; the alias is listed in ``docs/changelog.md``.
"""

from graphattn.experiments.attribution.summary import (
    BASELINES,
    LEARNED_ACCURACY,
    TIE,
    best,
    ground_truth_summary,
    guess_share,
    minilm_summary,
    summary_markdown,
    translation_summary,
    write_summary,
)

__all__ = [
    "BASELINES",
    "LEARNED_ACCURACY",
    "TIE",
    "best",
    "ground_truth_summary",
    "guess_share",
    "minilm_summary",
    "summary_markdown",
    "translation_summary",
    "write_summary",
]
