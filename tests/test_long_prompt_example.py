"""examples/long_prompt_flow.py runs end to end (on a short prompt and a 2-layer model)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_long_prompt_example_records_rolls_out_computes_alti_and_writes_the_viewer(tmp_path):
    out = tmp_path / "flow.html"
    args = ["--tokens", "128", "--layers", "2", "--window", "32", "--top-k", "4", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "long_prompt_flow.py"), *args],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("forward + record(heads='mean', top_k=4), 128 tokens")
    kept = int(lines[1].split()[1].replace(",", ""))
    assert 0 < kept <= 2 * 128 * 4  # at most k edges per target and layer
    assert sum("lost share" in line for line in lines) == 4
    assert any(line.startswith("ALTI on a sliding window of 32") for line in lines)
    assert out.is_file() and "graphattn-viewer" in out.read_text()
