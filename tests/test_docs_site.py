"""The docs site's landing page runs as written, and the site makes no request outside itself."""

import ast
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# a tag that loads something from elsewhere: a stylesheet, font, script, image or frame
EXTERNAL = re.compile(r"<(link|script|img|iframe|source)\b[^>]*\b(href|src)=\"(https?:)?//", re.I)


def run_blocks(text: str) -> object:
    """Run the page's python blocks in one namespace; the value of the last one's last line."""
    namespace: dict = {}
    value = None
    for k, code in enumerate(re.findall(r"```python\n(.*?)```", text, flags=re.S)):
        tree = ast.parse(code)
        last = tree.body.pop() if isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, f"docs/index.md block {k}", "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "docs/index.md", "eval"), namespace)
    return value


def test_landing_page_quick_start_and_notebook_line_run():
    viewer = run_blocks((DOCS / "index.md").read_text())
    assert type(viewer).__name__ == "Viewer" and viewer._repr_html_().startswith("<iframe")


def test_landing_page_shows_three_pictures_and_the_first_hour_page_first():
    text = (DOCS / "index.md").read_text()
    pictures = re.findall(r"!\[[^\]]*\]\((img/[^)]+)\)", text)
    assert len(pictures) == 3 and all((DOCS / p).is_file() for p in pictures)
    sections = re.findall(r"^## (.+)$", text, flags=re.M)
    assert sections[0] == "Your model in the first hour"
    assert sections[1:4] == ["Install", "Quick start", "What people come for"]
    first_hour = text.split("## Your model in the first hour")[1].split("##")[0]
    assert "](your_model.md)" in first_hour and (DOCS / "your_model.md").is_file()
    for page in ("graphs.md", "patterns.md", "hf.md", "flow.md", "experiments.md"):
        assert f"]({page})" in text and (DOCS / page).is_file()


def test_site_theme_loads_no_font_or_script_from_elsewhere(tmp_path):
    yaml = pytest.importorskip("yaml")
    pytest.importorskip("material", reason="mkdocs-material is not installed (the docs extra)")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    theme = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["theme"]
    assert theme["font"] is False  # no web font service
    docs = tmp_path / "docs"
    shutil.copytree(DOCS / "img", docs / "img")
    shutil.copy(DOCS / "index.md", docs / "index.md")
    config = {"site_name": "graphattn", "docs_dir": str(docs), "site_dir": str(tmp_path / "site"),
              "theme": theme, "plugins": ["search"], "nav": [{"Home": "index.md"}]}
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    build(load_config(str(tmp_path / "mkdocs.yml")))
    pages = list((tmp_path / "site").rglob("*.html"))
    assert pages and [p for p in pages if EXTERNAL.search(p.read_text())] == []


def test_no_page_of_the_docs_loads_anything_from_elsewhere():
    for page in DOCS.rglob("*.md"):
        text = page.read_text()
        assert not EXTERNAL.search(text), page
        assert not re.search(r"!\[[^\]]*\]\((https?:)?//", text), page  # images are local
