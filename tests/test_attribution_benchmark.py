"""The ground-truth attribution benchmark runs end to end on a tiny budget."""

import dataclasses
import json

import torch

from graphattn.experiments import attribution
from graphattn.experiments.config import TrainConfig
from graphattn.nn import GraphLM


def test_score_model_ranks_every_method():
    task = attribution.CONFIG.task
    torch.manual_seed(0)
    lm = GraphLM(task.vocab_size, 16, 2, 2, max_len=task.seq_len).eval()
    r = attribution.score_model(lm, task, n_seqs=3, only_correct=False)
    assert set(r["methods"]) == set(attribution.METHODS)
    for m in attribution.METHODS:
        assert 1.0 <= r["methods"][m]["mean_rank"] <= task.seq_len


def test_main_trains_scores_and_writes_the_tables(tmp_path):
    cfg = dataclasses.replace(
        attribution.CONFIG,
        patterns=attribution.CONFIG.patterns[:1],
        train=TrainConfig(
            steps=3, batch_size=4, warmup=1, eval_every=3, eval_batches=1, log_every=1
        ),
    )
    out = attribution.main([str(tmp_path)], log=lambda s: None, config=cfg, n_seqs=4,
                           lengths=(16,))
    assert set(out["cost"]["16"]) == {"attention", "alti", "globenc", "value_zeroing",
                                      "grad_attention"}
    saved = json.loads((tmp_path / "attribution.json").read_text())
    assert list(saved["ground_truth"]) == ["full causal (seed 0)"]
    assert "| full causal (seed 0) |" in (tmp_path / "attribution.md").read_text()


def test_minilm_spearman_table_runs_on_the_tiny_bert():
    from graphattn.experiments import attribution_minilm
    from graphattn.pretrained import tiny_bert

    texts = attribution_minilm.sentences(200)
    assert len(texts) == 200 and texts[0] == "Proceed, Solinus, to procure my fall,"
    table = attribution_minilm.spearman_table(tiny_bert().eval(), ["the bank by the river"])
    assert set(table) == set(attribution_minilm.METHODS)
    assert all(-1.0 <= r <= 1.0 for r in table.values())
