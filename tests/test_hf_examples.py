"""examples/hf_any_model.py and examples/hf_perplexity.py run and give what they promise."""

import re
import runpy
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers", reason="hf extra not installed")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_hf_any_model_example_runs(tmp_path, capsys):
    main = runpy.run_path(str(EXAMPLES / "hf_any_model.py"))["main"]
    result = main(["--out", str(tmp_path)])
    assert (tmp_path / "hf_weights.png").stat().st_size > 0
    assert set(result["rollouts"]) == {"window 3", "sinks + window 2", "window 2 + 'cat'"}
    for rollout in result["rollouts"].values():
        assert rollout.shape == (11, 11)
        assert torch.allclose(rollout.sum(-1), torch.ones(11))
    assert result["generated"].shape == (1, 15)
    printed = capsys.readouterr().out
    assert "attach: BloomForCausalLM computes attention itself (BloomAttention)" in printed


def test_hf_perplexity_command_prints_the_table(capsys):
    main = runpy.run_path(str(EXAMPLES / "hf_perplexity.py"))["main"]
    result = main(["--steps", "3"])
    assert list(result)[0] == "full (causal)" and len(result) == 5
    assert all(1.0 < v < 200 for v in result.values())
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| graph (256 tokens) | edges vs causal | perplexity (3 steps)")
    assert len(lines) == 7


def test_docs_blocks_run():
    text = (EXAMPLES.parent / "docs" / "hf.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 6
    namespace: dict = {}
    for k, block in enumerate(blocks):
        exec(compile(block, f"docs/hf.md block {k}", "exec"), namespace)
    assert namespace["rollout"].shape == (12, 12)
