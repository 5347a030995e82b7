"""Old module path ``graphattn.experiments.attribution_lrp``, kept as an alias.

Its names live in:

- :mod:`graphattn.experiments.attribution.lrp`

New code imports from there; the alias is listed in ``docs/changelog.md``.
"""

from graphattn.experiments.attribution.lrp import lm_token_relevance, source_relevance

__all__ = [
    "lm_token_relevance",
    "source_relevance",
]
