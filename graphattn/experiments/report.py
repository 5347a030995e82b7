"""Old module path ``graphattn.experiments.report``, kept as an alias.

Its names live in:

- :mod:`graphattn.experiments.common.files`
- :mod:`graphattn.experiments.lm.report`

New code imports from there; the alias is listed in ``docs/changelog.md``.
"""

from graphattn.experiments.common.files import strict_json, write_text
from graphattn.experiments.lm.report import (
    markdown_table,
    plot_accuracy,
    plot_loss_curves,
    summarize,
    write_report,
)

__all__ = [
    "markdown_table",
    "plot_accuracy",
    "plot_loss_curves",
    "strict_json",
    "summarize",
    "write_report",
    "write_text",
]
