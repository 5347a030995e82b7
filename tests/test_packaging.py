"""Packaging metadata in the form current build backends expect."""

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")
ROOT = Path(__file__).resolve().parents[1]


def test_license_is_an_spdx_expression_and_the_backend_reads_it():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["license"] == "MIT"  # not the deprecated {text = ...} table
    assert "setuptools>=77" in data["build-system"]["requires"][0]  # the first to read it
