"""The layer rule of docs/architecture.md, checked on the code with ``ast``.

The layer order is read from the architecture page (its one written copy);
every module of ``graphattn`` is placed in a layer by the longest listed path
prefix, and every import of a ``graphattn`` module, at module level or inside
a function, must point to the same layer or one above it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from house_sizes import cycles, imported_modules, module_path, package_graph
from house_sizes import imports as house_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "graphattn"
PAGE = ROOT / "docs" / "architecture.md"


def read_layers(text: str) -> list[tuple[int, str, list[str]]]:
    """``(rank, layer, paths)`` rows of the table between the layers markers."""
    match = re.search(r"<!-- layers:start -->(.*?)<!-- layers:end -->", text, re.S)
    if match is None:
        raise ValueError("docs/architecture.md has no <!-- layers:start/end --> table")
    rows = []
    for line in match.group(1).strip().splitlines()[2:]:  # skip header and rule
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append((int(cells[0]), cells[1], re.findall(r"`([^`]+)`", cells[2])))
    return rows


LAYERS = read_layers(PAGE.read_text())


def layer_of(relpath: str) -> tuple[int, str]:
    """The ``(rank, layer)`` of a path relative to the repo root (longest prefix)."""
    best: tuple[int, int, str] | None = None
    for rank, name, paths in LAYERS:
        for p in paths:
            if relpath == p or (p.endswith("/") and relpath.startswith(p)):
                if best is None or len(p) > best[0]:
                    best = (len(p), rank, name)
    if best is None:
        raise LookupError(f"{relpath} is in no layer of docs/architecture.md")
    return best[1], best[2]


def violations(source: str, relpath: str) -> list[str]:
    """Imports in ``source`` (the file ``relpath``) of a layer below its own."""
    rank, _ = layer_of(relpath)
    wrong = []
    for line, module in imported_modules(source, relpath):
        target = module_path(module)
        if target is None:
            wrong.append(f"line {line}: {module} does not exist")
            continue
        their_rank, their_layer = layer_of(target)
        if their_rank > rank:
            wrong.append(f"line {line}: {module} ({their_layer}, rank {their_rank})")
    return wrong


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_table_is_read():
    names = [name for _, name, _ in LAYERS]
    assert names[:3] == ["utilities", "graph", "patterns"]
    assert [rank for rank, _, _ in LAYERS] == sorted(rank for rank, _, _ in LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_points_down_the_layer_table(path):
    rel = str(path.relative_to(ROOT))
    wrong = violations(path.read_text(), rel)
    assert not wrong, f"{rel} ({layer_of(rel)[1]}) imports a lower layer:\n" + "\n".join(wrong)


def test_the_checker_finds_lazy_and_relative_imports():
    lazy = "def f():\n    from graphattn.plot import draw_graph\n"
    assert violations(lazy, "graphattn/analysis.py") == ["line 2: graphattn.plot (plot, rank 8)"]
    package = "from graphattn import flow\n"
    assert violations(package, "graphattn/nn/attention.py") == [
        "line 1: graphattn.flow (flow, rank 7)"
    ]
    relative = "from ..functional import graph_attention\n"
    assert violations(relative, "graphattn/nn/attention.py") == []
    upward = "from .plot import draw_graph\n"
    assert violations(upward, "graphattn/analysis.py") == ["line 1: graphattn.plot (plot, rank 8)"]


def test_no_import_cycle_between_the_packages_parts():
    # imports inside functions and under TYPE_CHECKING count (tests/house_sizes.py)
    graph = package_graph()
    assert {"flow", "experiments", "pretrained", "commands", "graph"} <= set(graph)
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle_through_a_function_import():
    graph = {"flow": {"graph"}, "graph": set(), "experiments": {"flow", "pretrained"},
             "pretrained": {"experiments"}, "demo": {"pretrained", "flow"}}
    assert cycles(graph) == [["experiments", "pretrained"]]
    assert cycles({**graph, "flow": {"graph", "demo"}}) == [
        ["demo", "experiments", "flow", "pretrained"]
    ]
    lazy = "def f():\n    from graphattn.experiments import attribution\n"
    found = house_imports(lazy, PACKAGE / "flow" / "rollout.py")
    assert "graphattn.experiments.attribution" in found
    typing_only = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from graphattn.nn import GraphLM\n"
    )
    found = house_imports(typing_only, PACKAGE / "flow" / "rollout.py")
    assert "graphattn.nn" in found


def test_every_command_lives_in_the_app():
    from graphattn.cli import COMMANDS

    for name in COMMANDS:
        assert layer_of(f"graphattn/commands/{name}.py") == (12, "app")
    assert "attribution" in COMMANDS
    assert not (PACKAGE / "flow" / "benchmark.py").exists()
    assert all(layer_of(str(p.relative_to(ROOT)))[1] == "flow"
               for p in (PACKAGE / "flow").rglob("*.py"))
