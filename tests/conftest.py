"""Test-wide settings.

The unit tests run small tensors, where torch's intra-op threads cost more in
synchronisation than they save; one thread keeps the suite fast and its timings
independent of how busy the machine is. Benchmarks (benchmarks/) do not import
this file and keep torch's default.

The ``refused`` fixture runs a benchmark script on options it must refuse.
"""

import subprocess
import sys

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)


@pytest.fixture
def refused(tmp_path):
    """``run(script, *options, **subprocess_kw)``: the script's stderr, once it has exited
    with status 2 (argparse's refusal) without writing its ``--out``."""

    def run(script, *options, **kw):
        out = tmp_path / "refused.json"
        cmd = [sys.executable, str(script), *options, "--out", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)
        assert done.returncode == 2, done.stderr
        assert not out.exists()
        return done.stderr

    return run
