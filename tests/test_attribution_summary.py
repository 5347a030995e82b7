"""The attribution benchmark's summary, computed from hand-made tables."""

import json

import pytest

from graphattn.experiments.attribution_summary import (
    best,
    ground_truth_summary,
    minilm_summary,
    summary_markdown,
    translation_summary,
    write_summary,
)


def _model(val_acc, **cells):
    """One model's results: ``method=(top1, mean_rank)``."""
    return {"val_acc": val_acc, "methods": {m: {"top1": t, "mean_rank": r}
                                            for m, (t, r) in cells.items()}}


def test_best_names_every_tied_method_in_table_order():
    assert best({"a": 1.0, "b": 2.0, "c": 2.0}, higher=True) == {"methods": ["b", "c"],
                                                                 "value": 2.0}
    assert best({"a": 1.0, "b": 2.0, "c": 1.0}, higher=False)["methods"] == ["a", "c"]
    # means of the same numbers summed in another order are still a tie
    assert best({"a": (0.1 + 0.2) + 0.3, "b": 0.1 + (0.2 + 0.3)}, higher=True)["methods"] == [
        "a", "b"]
    assert best({"ablation": 1.0}, higher=True, single_pass=True) == {"methods": [],
                                                                      "value": None}


def test_ground_truth_summary_leaves_out_unlearned_models_and_splits_single_pass():
    results = {
        "A": _model(1.0, rollout=(0.5, 2.0), ablation=(1.0, 1.0), alti=(0.9, 1.1),
                    globenc=(0.9, 1.2)),
        "B": _model(0.9, rollout=(0.6, 1.5), ablation=(0.9, 1.1), alti=(0.7, 1.3),
                    globenc=(0.7, 1.4)),
        # did not learn: it would make rollout the overall winner if it counted
        "C": _model(0.12, rollout=(1.0, 1.0), ablation=(0.0, 9.0), alti=(0.0, 9.0),
                    globenc=(0.0, 9.0)),
        "D": _model(None, rollout=(1.0, 1.0), ablation=(0.0, 9.0), alti=(0.0, 9.0),
                    globenc=(0.0, 9.0)),
    }
    s = ground_truth_summary(results, chance=0.125)
    assert s["learned"] == ["A", "B"]  # 0.9 is at the threshold: it counts
    assert s["left_out"] == {"C": 0.12, "D": None}
    assert s["mean"]["rollout"] == pytest.approx({"top1": 0.55, "mean_rank": 1.75})
    overall = s["overall"]
    assert overall["top1"]["all"] == {"methods": ["ablation"], "value": pytest.approx(0.95)}
    assert overall["top1"]["single_pass"]["methods"] == ["alti", "globenc"]  # a tie: 0.8
    assert overall["mean_rank"]["all"]["methods"] == ["ablation"]
    assert overall["mean_rank"]["single_pass"] == {"methods": ["alti"],
                                                   "value": pytest.approx(1.2)}
    # per model: A's top-1 single-pass tie, B's winners
    assert s["per_model"]["A"]["top1"]["single_pass"]["methods"] == ["alti", "globenc"]
    assert s["per_model"]["B"]["top1"]["single_pass"]["methods"] == ["alti", "globenc"]
    assert s["per_model"]["B"]["mean_rank"]["single_pass"]["methods"] == ["alti"]
    assert s["per_model"]["B"]["mean_rank"]["all"]["methods"] == ["ablation"]
    assert set(s["per_model"]) == {"A", "B"}
    # a stricter threshold leaves out B as well
    assert ground_truth_summary(results, threshold=0.95)["learned"] == ["A"]


def test_ground_truth_summary_without_a_learned_model():
    s = ground_truth_summary({"C": _model(0.1, rollout=(1.0, 1.0))})
    assert s["learned"] == [] and s["overall"] is None
    text = summary_markdown({"ground_truth": s})
    assert "No model learned the task" in text and "C (0.10)" in text


def test_minilm_summary_best_overall_and_single_pass():
    spear = {"raw": 0.5, "rollout": 0.1, "alti": 0.7, "globenc": 0.7}

    def aopc(comp, suff):
        return {"aopc_comprehensiveness": comp, "aopc_sufficiency": suff}

    table = {"raw": aopc(0.49, 0.26), "rollout": aopc(0.27, 0.46), "alti": aopc(0.50, 0.26),
             "leave_one_out": aopc(0.51, 0.25), "random": aopc(0.60, 0.10)}
    s = minilm_summary(spear, table)
    assert s["spearman"]["all"]["methods"] == ["alti", "globenc"]
    assert s["spearman"]["single_pass"]["methods"] == ["alti", "globenc"]
    assert s["aopc_comprehensiveness"]["all"]["methods"] == ["random"]
    assert s["aopc_comprehensiveness"]["single_pass"]["methods"] == ["alti"]
    assert s["aopc_sufficiency"]["all"]["methods"] == ["random"]
    assert s["aopc_sufficiency"]["single_pass"]["methods"] == ["raw", "alti"]  # a tie


def test_summary_markdown_states_the_winners():
    results = {"A": _model(1.0, rollout=(0.5, 2.0), ablation=(1.0, 1.0), alti=(0.9, 1.1)),
               "C": _model(0.1, rollout=(1.0, 1.0), ablation=(0.0, 9.0), alti=(0.0, 9.0))}
    gt = ground_truth_summary(results, chance=0.125)
    text = summary_markdown({"ground_truth": gt})
    assert "below 0.90 are left out" in text and "C (0.10)" in text
    assert "at most 1.6% guesses" in text
    assert "| A | ablation: 1.000 | alti: 0.900 | ablation: 1.000 | alti: 1.100 |" in text
    assert ("top-1 rate ablation: 1.000, mean rank ablation: 1.000; of the single-pass "
            "methods: top-1 rate alti: 0.900, mean rank alti: 1.100") in text
    assert "| rollout | 0.500 | 2.000 |" in text
    tie = {"all": {"methods": ["alti", "globenc"], "value": 0.7},
           "single_pass": {"methods": ["alti", "globenc"], "value": 0.7}}
    mini = {"sentences": 3, "spearman": tie, "aopc_comprehensiveness": tie,
            "aopc_sufficiency": tie}
    assert "alti, globenc (tie): 0.700" in summary_markdown({"minilm": mini})


def test_write_summary_reads_the_tables_in_the_folder(tmp_path):
    assert write_summary(tmp_path) == {}
    assert "No tables found." in (tmp_path / "summary.md").read_text()
    saved = {"ground_truth": {"A": _model(1.0, rollout=(0.5, 2.0), alti=(0.9, 1.1))},
             "chance": 0.125}
    (tmp_path / "attribution.json").write_text(json.dumps(saved))
    s = write_summary(tmp_path)
    assert set(s) == {"ground_truth"}
    assert s["ground_truth"]["overall"]["top1"]["all"]["methods"] == ["alti"]
    assert json.loads((tmp_path / "summary.json").read_text()) == s


def test_translation_summary_counts_every_model_and_splits_single_pass(tmp_path):
    results = {"full": _model(None, attention=(1.0, 1.0), ablation=(1.0, 1.0), alti=(0.8, 1.2)),
               "window": _model(None, attention=(0.6, 2.0), ablation=(0.8, 1.2),
                                alti=(0.6, 1.8))}
    s = translation_summary(results)
    assert s["models"] == ["full", "window"]
    assert s["mean"]["attention"] == pytest.approx({"top1": 0.8, "mean_rank": 1.5})
    assert s["overall"]["top1"]["all"] == {"methods": ["ablation"], "value": pytest.approx(0.9)}
    assert s["overall"]["top1"]["single_pass"]["methods"] == ["attention"]
    assert s["overall"]["mean_rank"]["single_pass"]["methods"] == ["attention", "alti"]  # 1.5
    assert s["per_model"]["full"]["top1"]["all"]["methods"] == ["attention", "ablation"]  # tie
    assert s["per_model"]["window"]["top1"]["single_pass"]["methods"] == ["attention", "alti"]
    (tmp_path / "translation.json").write_text(json.dumps({"translation": results}))
    written = write_summary(tmp_path)
    assert set(written) == {"translation"}
    text = (tmp_path / "summary.md").read_text()
    assert "## Ground truth through cross-attention" in text
    assert "| **mean of the 2 models** | ablation: 0.900 | attention: 0.800 |" in text
    assert "| alti | 0.700 | 1.500 |" in text
