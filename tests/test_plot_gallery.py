"""Every gallery script runs and writes its pictures (smoke tests of examples/gallery_*.py)."""

import importlib
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p.stem for p in EXAMPLES.glob("gallery_*.py") if p.stem != "gallery_common")
MAGIC = {".png": b"\x89PNG", ".html": b"<!DOCTYPE html>"}


@pytest.fixture
def examples_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


@pytest.mark.parametrize("name", [s for s in SCRIPTS if s != "gallery_all"])
def test_gallery_script_writes_its_pictures(examples_path, tmp_path, name):
    written = importlib.import_module(name).main(tmp_path)
    assert written, f"{name} wrote nothing"
    for path in written:
        assert path.parent == tmp_path
        assert path.read_bytes().startswith(MAGIC[path.suffix]), path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)
    assert plt.get_fignums() == []  # every figure closed after saving


def test_gallery_all_lists_every_script_and_the_docs_pictures(examples_path):
    gallery_all = importlib.import_module("gallery_all")
    assert sorted(m.__name__ for m in gallery_all.SCRIPTS) == [
        s for s in SCRIPTS if s != "gallery_all"
    ]
    docs = (EXAMPLES.parent / "docs" / "gallery.md").read_text()
    img = EXAMPLES.parent / "docs" / "img"
    for ref in re.findall(r"\(img/([\w.]+)\)", docs):
        assert (img / ref).is_file(), f"docs/gallery.md shows img/{ref}, which is missing"


def test_plotting_docs_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write their files into the working folder
    text = (EXAMPLES.parent / "docs" / "plotting.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 4  # drawings, one example of a batch, to_html, show in a notebook
    namespace: dict = {}
    for k, block in enumerate(blocks):
        exec(compile(block, f"docs/plotting.md block {k}", "exec"), namespace)
    assert (tmp_path / "attention.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "attention.html").read_text().startswith("<!DOCTYPE html>")
