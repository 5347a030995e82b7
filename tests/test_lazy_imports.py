"""``import graphattn`` stays light; the heavier subpackages load on first attribute access."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter: this test process has long imported matplotlib.
PROBE = """
import importlib.util, json, sys
import graphattn as ga

heavy = ("matplotlib", "safetensors", "transformers", "graphattn.plot",
         "graphattn.pretrained", "graphattn.experiments", "graphattn.hf")
found = {"after_import": sorted(m for m in heavy if m in sys.modules), "dir": dir(ga)}
found["draw_graph"] = ga.plot.draw_graph.__module__
found["load_bert"] = ga.pretrained.load_bert.__module__
found["run_experiment"] = ga.experiments.run_experiment.__module__
found["hf_exists"] = importlib.util.find_spec("graphattn.hf") is not None
found["record"] = ga.hf.record.__module__ if found["hf_exists"] else None
found["after_access"] = sorted(m for m in heavy if m in sys.modules)
found["hasattr_hf"] = hasattr(ga, "hf")
try:
    ga.no_such_subpackage
except AttributeError as err:
    found["missing"] = str(err)
print(json.dumps(found))
"""


def test_subpackages_are_attributes_loaded_lazily():
    pytest.importorskip("matplotlib")
    pytest.importorskip("safetensors")
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["after_import"] == []  # no matplotlib, safetensors, transformers, lazy subpackage
    assert {"plot", "pretrained", "experiments"} <= set(found["dir"])
    assert found["draw_graph"] == "graphattn.plot.graph"
    assert found["load_bert"] == "graphattn.pretrained.loading"
    assert found["run_experiment"] == "graphattn.experiments.lm.runner"
    assert {"matplotlib", "safetensors", "graphattn.plot"} <= set(found["after_access"])
    if found["hf_exists"]:
        assert found["record"] == "graphattn.hf.record"
        assert {"transformers", "graphattn.hf"} <= set(found["after_access"])
    # hf is reserved: an attribute once graphattn/hf/ exists, a plain AttributeError before
    assert found["hasattr_hf"] == found["hf_exists"]
    assert ("hf" in found["dir"]) == found["hf_exists"]
    assert found["missing"] == "module 'graphattn' has no attribute 'no_such_subpackage'"


def test_flow_does_not_import_its_benchmark_command():
    # flow ranks below experiments and pretrained (docs/architecture.md); the attribution
    # benchmark command that uses all three is graphattn.commands.attribution (app)
    probe = (
        "import json, sys, graphattn.flow\n"
        "heavy = ('graphattn.flow.benchmark', 'graphattn.experiments', 'graphattn.pretrained',\n"
        "         'safetensors', 'matplotlib', 'tokenizers')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
