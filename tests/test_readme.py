"""The README's quick start runs as written."""

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
