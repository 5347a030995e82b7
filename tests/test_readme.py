"""The README's quick start runs as written, and so does its notebook line pasted after it."""

import ast
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs():
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python quick start"
    namespace: dict = {}
    exec(compile(blocks[0], "README quick start", "exec"), namespace)
    assert namespace["out"].shape == (5, 2, 8)
    assert namespace["w"].shape == (15, 2)


def test_readme_names_the_two_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text


def run_block(code: str, namespace: dict, name: str):
    """Execute ``code`` in ``namespace``; the value of its last line if that is an expression."""
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, name, "exec"), namespace)
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), name, "eval"), namespace)


def test_notebook_line_runs_pasted_after_the_quick_start():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    notebook = next(b for b in blocks if "show(" in b)
    namespace: dict = {}
    run_block(blocks[0], namespace, "README quick start")
    viewer = run_block(notebook, namespace, "README notebook line")
    assert type(viewer).__name__ == "Viewer" and viewer._repr_html_().startswith("<iframe")
