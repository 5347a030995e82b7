"""Sizes of the house: code lines per package, long functions, import cycles.

::

    python tests/house_sizes.py

prints the code lines of ``graphattn`` and of each of its packages (docstrings,
comments and blank lines excluded, as ``docs/architecture.md`` counts them), the
functions over 35 code lines, and the cycles between packages in the import
graph (imports inside functions and under ``TYPE_CHECKING`` included). Not
collected by pytest; ``tests/test_architecture.py`` imports its helpers.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "graphattn"


def code_lines(tree: ast.AST, source: str) -> set[int]:
    """Line numbers holding code: not blank, not a comment, not a docstring."""
    doc = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                doc.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines = source.splitlines()
    return {
        i
        for i, line in enumerate(lines, 1)
        if line.strip() and not line.strip().startswith("#") and i not in doc
    }


def package_of(path: Path) -> str:
    """``graphattn/flow/rollout.py`` -> ``flow``; top-level modules are their own package."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def module_path(module: str) -> str | None:
    """The repo-relative file of a dotted ``graphattn`` module, or None if none exists."""
    parts = module.split(".")
    base = ROOT.joinpath(*parts)
    if (base / "__init__.py").exists():
        return f"{'/'.join(parts)}/__init__.py"
    if base.with_suffix(".py").exists():
        return "/".join(parts) + ".py"
    return None


def imported_modules(source: str, relpath: str) -> list[tuple[int, str]]:
    """``(line, dotted module)`` of every graphattn module that ``source`` imports."""
    package = relpath.removesuffix(".py").split("/")[:-1]
    found = []
    for node in ast.walk(ast.parse(source, relpath)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for alias in node.names:  # `from graphattn import plot` names a submodule
                sub = f"{mod}.{alias.name}"
                found.append((node.lineno, sub if module_path(sub) else mod))
    return [(line, m) for line, m in found if m == "graphattn" or m.startswith("graphattn.")]


def imports(source: str, path: Path) -> set[str]:
    """Every ``graphattn`` module that the file at ``path`` imports, anywhere in it."""
    return {m for _, m in imported_modules(source, path.relative_to(ROOT).as_posix())}


def module_package(module: str) -> str | None:
    """The package a ``graphattn.x.y`` module lives in (None for the top-level namespace)."""
    parts = module.split(".")[1:]
    if not parts:
        return None
    if (PACKAGE / parts[0]).is_dir():
        return parts[0]
    return parts[0] if (PACKAGE / f"{parts[0]}.py").exists() else None


def package_graph() -> dict[str, set[str]]:
    """``package -> packages it imports``, every module but ``graphattn/__init__.py``."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":
            continue
        here = package_of(path)
        graph[here]
        for module in imports(path.read_text(), path):
            there = module_package(module)
            if there and there != here:
                graph[here].add(there)
    return dict(graph)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one package (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def sizes() -> tuple[dict[str, int], list[tuple[int, str]]]:
    """Code lines per package and ``(lines, place)`` of every function over 35 code lines."""
    per_package: dict[str, int] = defaultdict(int)
    long_functions = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        tree = ast.parse(source)
        code = code_lines(tree, source)
        per_package[package_of(path)] += len(code)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = len(code & set(range(node.lineno, node.end_lineno + 1)))
                if n > 35:
                    rel = path.relative_to(ROOT)
                    long_functions.append((n, f"{rel}:{node.lineno} {node.name}"))
    return dict(per_package), sorted(long_functions, reverse=True)


def main() -> int:
    per_package, long_functions = sizes()
    total = sum(per_package.values())
    physical = sum(len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py"))
    print(f"graphattn: {total} code lines ({physical} lines in all)")
    for name, n in sorted(per_package.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<14} {n:>6}")
    print(f"functions over 35 code lines: {len(long_functions)}")
    for n, place in long_functions:
        print(f"  {n:>3}  {place}")
    found = cycles(package_graph())
    print(f"import cycles between packages: {len(found)}")
    for group in found:
        print("  " + " <-> ".join(group))
    return 0


if __name__ == "__main__":
    sys.exit(main())
