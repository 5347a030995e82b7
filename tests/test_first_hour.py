"""A new user's first hour: the small frictions, each pinned down."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from graphattn import patterns
from graphattn.experiments import (
    config_from_dict,
    load_config,
    markdown_table,
    run_experiment,
)
from graphattn.experiments.runner import train_run
from graphattn.graph import TokenGraph

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "examples" / "experiment_smoke.toml"


# ------------------------------------------------------------------ a ten-second experiment
def test_the_smoke_experiment_is_small_and_shown_first():
    cfg = load_config(SMOKE)
    runs = len(cfg.patterns) * len(cfg.seeds)
    assert runs * cfg.train.steps * cfg.train.batch_size * cfg.task.seq_len <= 100_000
    first = re.search(r"```bash\n(.*?)```", (ROOT / "docs" / "experiments.md").read_text(), re.S)
    assert "graphattn experiment examples/experiment_smoke.toml" in first.group(1)


class Stop:
    """A stop flag already raised: the run saves after its first step and returns."""

    requested = True


def tiny() -> dict:
    return {
        "task": {"name": "copy", "seq_len": 8, "n_symbols": 4},
        "model": {"d_model": 8, "n_layers": 1, "n_heads": 2},
        "train": {"steps": 4, "batch_size": 2, "warmup": 0, "eval_every": 2, "eval_batches": 1,
                  "eval_batch_size": 2, "log_every": 1},
        "patterns": [{"label": "causal", "pattern": "causal"}],
        "seeds": [0, 1],
    }  # fmt: skip


def test_a_resumed_run_says_from_which_step(tmp_path, capsys):
    cfg = config_from_dict(tiny())
    p = cfg.patterns[0]
    ckpt = tmp_path / "checkpoints" / "causal-seed0.safetensors"
    ckpt.parent.mkdir()
    part = train_run(cfg, p, p.build(8, "p"), 0, ckpt, progress=False, stop=Stop())
    assert part.status == "interrupted" and part.steps_done == 1
    capsys.readouterr()
    assert run_experiment(cfg, tmp_path, progress=False)["status"] == "complete"
    assert "resuming causal (seed 0) from step 1 of 4" in capsys.readouterr().err


def test_the_table_marks_each_unfinished_run_with_its_step():
    res = {"config": {"train": {"steps": 2000}}, "patterns": [{
        "label": "w", "n_layers": 2, "edges_per_token": 2.0, "density": 0.5,
        "layers_to_reach": 1, "reach_fraction": 1.0,
        "runs": [
            {"seed": 0, "status": "complete", "steps_done": 2000, "val_acc": 0.9, "val_loss": 0.1},
            {"seed": 1, "status": "interrupted", "steps_done": 300, "val_acc": 0.4,
             "val_loss": 1.0},
            {"seed": 2, "status": "pending", "steps_done": 0},
        ],
    }]}  # fmt: skip
    row = markdown_table(res).splitlines()[2]
    assert row.endswith("| 1/3; seed 1 at step 300/2000; seed 2 at step 0/2000 |")


# ------------------------------------------------------------------ text view and API edges
def test_to_string_shows_the_tokens():
    text = TokenGraph.from_tokens("The sky is blue").to_string()
    assert text.splitlines()[1:] == [
        "     The sky is blue",
        " The x   .   .  .",
        " sky x   x   .  .",
        "  is x   x   x  .",
        "blue x   x   x  x",
    ]
    cross = patterns.cross(2, 3).with_tokens(["a", "bb"], ["x", "yy", "z"])
    assert cross.to_string().splitlines()[1] == "   x yy z"


def test_operators_name_the_result_as_patterns_union_does():
    a, b, c = patterns.sliding_window(8, 2), patterns.global_tokens(8, 1), patterns.causal(8)
    assert (a | b).name == patterns.union(a, b).name == f"{a.name} | {b.name}"
    assert ((a | b) & c).name == patterns.intersection(a | b, c).name
    assert ((a | b) & c).name == f"({a.name} | {b.name}) & causal"
    assert (c - (a | b)).name == f"causal - ({a.name} | {b.name})"
    assert (TokenGraph([[0], [1]]) | TokenGraph([[1], [0]])).name is None
    pred = patterns.from_predicate(lambda i, j: j == 0, 8)
    assert (a | pred).name == patterns.union(a, pred).name


def test_edge_attributes_keep_their_dtype_through_networkx():
    g = TokenGraph([[0, 1], [1, 2]])
    w = torch.tensor([[0.25, 1.0], [0.75, 0.5]])  # float32
    G = g.to_networkx({"weight": w, "bias": w[:, 0].double(), "hits": torch.tensor([1, 2])})
    back = TokenGraph.from_networkx(G)
    assert back.edge_attr_from_networkx(G, "weight").dtype == torch.float32
    assert torch.equal(back.edge_attr_from_networkx(G, "weight"), w)
    assert back.edge_attr_from_networkx(G, "bias").dtype == torch.float64
    assert back.edge_attr_from_networkx(G, "hits").tolist() == [1, 2]
    half = back.edge_attr_from_networkx(G, "weight", dtype=torch.float16)
    assert half.dtype == torch.float16
    G.graph.clear()  # a networkx graph from elsewhere: float64
    assert back.edge_attr_from_networkx(G, "weight").dtype == torch.float64

