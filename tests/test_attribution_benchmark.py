"""The ground-truth attribution benchmark runs end to end on a tiny budget."""

import json
import math
from pathlib import Path

import pytest
import torch
from attribution_tiny import TINY_CONFIG

from graphattn.experiments import attribution
from graphattn.nn import GraphLM

ROOT = Path(__file__).resolve().parents[1]


def test_score_model_ranks_every_method():
    task = attribution.CONFIG.task
    torch.manual_seed(0)
    lm = GraphLM(task.vocab_size, 16, 2, 2, max_len=task.seq_len).eval()
    r = attribution.score_model(lm, task, n_seqs=3, only_correct=False)
    assert set(r["methods"]) == set(attribution.METHODS)
    for m in attribution.METHODS:
        assert 1.0 <= r["methods"][m]["mean_rank"] <= task.seq_len


def test_main_trains_scores_and_writes_the_tables(tmp_path):
    out = attribution.main([str(tmp_path)], log=lambda s: None, config=TINY_CONFIG, n_seqs=4,
                           lengths=(16,))
    assert set(out["cost"]["16"]) == {"attention", "alti", "globenc", "value_zeroing",
                                      "grad_attention", "attnlrp"}
    saved = json.loads((tmp_path / "attribution.json").read_text())
    assert list(saved["ground_truth"]) == ["full causal (seed 0)"]
    assert "| full causal (seed 0) |" in (tmp_path / "attribution.md").read_text()


def test_minilm_tables_run_on_the_tiny_bert():
    from graphattn.experiments import attribution_minilm
    from graphattn.pretrained import tiny_bert

    texts = attribution_minilm.sentences(200)
    assert len(texts) == 200 and texts[0] == "Proceed, Solinus, to procure my fall,"
    result = attribution_minilm.evaluate(tiny_bert().eval(), ["the bank by the river",
                                                              "the river bank"])
    table = result["spearman"]
    assert set(table) == set(attribution_minilm.METHODS)
    assert all(-1.0 <= r <= 1.0 for r in table.values())
    aopc = result["aopc"]
    assert aopc["fractions"] == list(attribution_minilm.FRACTIONS)
    assert set(aopc["methods"]) == set(attribution_minilm.AOPC_METHODS)
    for r in aopc["methods"].values():
        assert len(r["comprehensiveness"]) == len(r["sufficiency"]) == 5
        assert r["aopc_comprehensiveness"] == pytest.approx(sum(r["comprehensiveness"]) / 5)
        assert r["aopc_sufficiency"] == pytest.approx(sum(r["sufficiency"]) / 5)
        assert all(-1e-6 <= v <= 2.0 for v in r["comprehensiveness"] + r["sufficiency"])


def _weighted_bag(weights):
    """Sentence embedding by hand: the sum of the kept tokens' one-hot ids times ``weights``."""
    w = torch.tensor(weights, dtype=torch.float64)

    def embed(ids, mask):
        out = torch.zeros(len(ids), len(weights), dtype=torch.float64)
        for r in range(len(ids)):
            for t in ids[r][mask[r]].tolist():
                out[r, t] += w[t]
        return out

    return embed


def test_deletion_curves_and_aopc_by_hand():
    from graphattn.experiments.attribution_minilm import deletion_curves, removal_count

    # [CLS] = id 0 (weight 1), words ids 1..4 (weights 1, 3, 1, 1), [SEP] = id 5 (weight 0):
    # intact squared norm 1 + 1 + 9 + 1 + 1 = 13, and cos(kept, intact) = sqrt(|kept|^2 / 13).
    embed = _weighted_bag([1.0, 1.0, 3.0, 1.0, 1.0, 0.0])
    ids = torch.tensor([[0, 1, 2, 3, 4, 5]])
    importance = torch.tensor([0.2, 0.9, 0.1, 0.5])  # ranks words 2, 4, 1, 3
    assert [removal_count(f, 4) for f in (0.25, 0.5)] == [1, 2]
    comp, suff = deletion_curves(embed, ids, importance, (0.25, 0.5))
    # comprehensiveness: delete word 2 -> kept 1 + 1 + 1 + 1 = 4; delete 2 and 4 -> 3
    # sufficiency: keep [CLS], [SEP], word 2 -> 1 + 9 = 10; and word 4 -> 11
    expected_comp = [1 - math.sqrt(4 / 13), 1 - math.sqrt(3 / 13)]
    expected_suff = [1 - math.sqrt(10 / 13), 1 - math.sqrt(11 / 13)]
    assert comp.tolist() == pytest.approx(expected_comp, abs=1e-6)
    assert suff.tolist() == pytest.approx(expected_suff, abs=1e-6)
    # AOPC: the mean over the two fractions
    assert float(comp.mean()) == pytest.approx((0.445300 + 0.519615) / 2, abs=1e-6)
    # ties keep position order, [CLS]/[SEP] are never deleted
    comp, suff = deletion_curves(embed, ids, torch.zeros(4), (0.25,))
    assert comp.tolist() == pytest.approx([1 - math.sqrt(12 / 13)], abs=1e-6)  # word 1 goes
    assert suff.tolist() == pytest.approx([1 - math.sqrt(2 / 13)], abs=1e-6)  # [CLS], word 1


def test_leave_one_out_deletes_each_word_once():
    from graphattn.experiments.attribution_minilm import leave_one_out_importance

    embed = _weighted_bag([1.0, 1.0, 3.0, 1.0, 1.0, 0.0])
    got = leave_one_out_importance(embed, torch.tensor([[0, 1, 2, 3, 4, 5]]))
    expected = [1 - math.sqrt(12 / 13), 1 - math.sqrt(4 / 13), 1 - math.sqrt(12 / 13),
                1 - math.sqrt(12 / 13)]
    assert got.tolist() == pytest.approx(expected, abs=1e-6)


def test_deletion_curves_can_replace_instead_of_delete():
    from graphattn.experiments.attribution_minilm import deletion_curves

    # id 6 is the replacement, weight 2: a replaced token adds 2 to its own coordinate
    embed = _weighted_bag([1.0, 1.0, 3.0, 1.0, 1.0, 0.0, 2.0])
    ids = torch.tensor([[0, 1, 2, 3, 4, 5]])
    importance = torch.tensor([0.2, 0.9, 0.1, 0.5])  # ranks words 2, 4, 1, 3
    comp, suff = deletion_curves(embed, ids, importance, (0.25,), replace_id=6)
    # comprehensiveness: word 2 (weight 3) replaced -> (1, 1, 0, 1, 1, 0, 2): dot 4, norm^2 8
    assert comp.tolist() == pytest.approx([1 - 4 / math.sqrt(13 * 8)], abs=1e-6)
    # sufficiency: words 1, 3, 4 replaced -> (1, 0, 3, 0, 0, 0, 6): dot 10, norm^2 46
    assert suff.tolist() == pytest.approx([1 - 10 / math.sqrt(13 * 46)], abs=1e-6)


def test_mask_replacement_example_reproduces_its_documented_shift(capsys):
    """examples/minilm_mask_replacement.py on one sentence: the numbers docs/flow.md quotes."""
    import runpy

    example = runpy.run_path(str(ROOT / "examples" / "minilm_mask_replacement.py"))
    table = example["main"](1)
    first = capsys.readouterr().out.splitlines()[0]
    assert first == ("one [MASK] on the first sentence: word tokens 0.21 to 0.40, "
                     "[CLS] 0.01, [SEP] 0.26")
    assert set(table["methods"]) >= {"alti", "random", "blank_out"}
