"""The benchmark tables quoted in docs/flow.md are the committed ones, row for row.

``graphattn attribution`` writes the tables into
``benchmarks/results/attribution``; the page copies them. A rerun that
changes a number fails here until the page is brought up to date.
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "attribution"
PAGE = (ROOT / "docs" / "flow.md").read_text()


@pytest.mark.parametrize("name", ["attribution.md", "translation.md", "minilm_spearman.md",
                                  "minilm_aopc.md", "summary.md"])
def test_every_table_row_is_on_the_page(name):
    rows = [line for line in (RESULTS / name).read_text().splitlines() if line.startswith("|")]
    assert rows, f"{name} has no table"
    missing = [row for row in rows if row not in PAGE.splitlines()]
    assert not missing, f"rows of {name} not in docs/flow.md: {missing}"
