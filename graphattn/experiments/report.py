"""Old path ``graphattn.experiments.report``, an alias.

Its names are in ``common.files, lm.report`` now (see ``docs/changelog.md``).
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
