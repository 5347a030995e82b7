"""Translation tasks with known alignments and the encoder-decoder experiment runner."""

import json
import math

import pytest
import torch

from graphattn.experiments.config import TrainConfig
from graphattn.experiments.report import strict_json
from graphattn.experiments.report_seq2seq import plot_alignments, run_seq2seq_experiment
from graphattn.experiments.seq2seq import (
    Seq2SeqExperiment,
    Seq2SeqModel,
    Seq2SeqVariant,
    diagonal_window,
    no_cross,
    random_cross,
    train_seq2seq,
)
from graphattn.experiments.seq2seq.tasks import (
    BOS,
    EOS,
    PAD,
    SRC_NOUNS,
    SRC_VERBS,
    TGT_NOUNS,
    MonotonicTask,
    ReorderTask,
)

TINY = TrainConfig(steps=3, warmup=0, eval_every=3, log_every=1, eval_batches=1,
                   eval_batch_size=4, batch_size=4)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_reorder_is_sov_with_word_mapping_and_known_alignment():
    task = ReorderTask()
    b = task.batch(64, gen())
    assert b.tgt[:, 0].eq(BOS).all()
    for k in range(64):
        src = task.src_words(b.src[k])[:-1]
        tgt = task.tgt_words(b.tgt[k])[1:-1]
        align = b.align[k].tolist()
        assert len(tgt) == len(src) and align[len(src)] == len(src)  # EOS <- source EOS
        for i, j in enumerate(align[: len(src)]):  # each target word translates its source word
            assert task.tgt_vocab.index(tgt[i]) == task.src_vocab.index(src[j])
        verb = next(w for w in src if w in SRC_VERBS)
        assert tgt[-1] == task.tgt_vocab[task.src_vocab.index(verb)]  # verb last (SOV)
        nouns = [w for w in src if w in SRC_NOUNS]
        assert [w for w in tgt if w in TGT_NOUNS] == [TGT_NOUNS[SRC_NOUNS.index(w)] for w in nouns]
        assert sorted(align[: len(src)]) == list(range(len(src)))  # a permutation
    assert (b.align[:, :-1] != torch.arange(b.align.shape[1] - 1)).any()  # really reordered


def test_reorder_validation_holds_out_subject_object_pairs():
    task = ReorderTask(holdout=3)
    noun0 = 3

    def pairs(batch):
        out = set()
        for k in range(batch.src.shape[0]):
            nouns = [int(t) - noun0 for t in batch.src[k] if noun0 <= int(t) < noun0 + 8]
            out.add(tuple(nouns))
        return out

    train, val = pairs(task.batch(200, gen(1))), pairs(task.val_batch(200, gen(2)))
    assert not train & val
    assert all((s + 2 * o) % 3 == 0 for s, o in val)


def test_monotonic_is_diagonal_with_context_rule():
    task = MonotonicTask(min_len=3, max_len=6, n_soft=2)
    b = task.batch(64, gen())
    assert b.src.shape[1] <= 7 and b.tgt.shape[1] <= 8
    for k in range(64):
        src = task.src_words(b.src[k])[:-1]
        tgt = task.tgt_words(b.tgt[k])[1:-1]
        assert b.align[k, : len(src) + 1].tolist() == list(range(len(src) + 1))
        for i, (c, t) in enumerate(zip(src, tgt, strict=True)):
            soft = c in "bc" and i + 1 < len(src) and src[i + 1] in "ei"
            assert t == (c if soft else c.upper())


def test_tasks_are_deterministic_and_checked():
    for task in (ReorderTask(), MonotonicTask()):
        a, b = task.batch(8, gen(5)), task.batch(8, gen(5))
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
        assert int(a.src.max()) < task.src_vocab_size and int(a.tgt.max()) < task.tgt_vocab_size
        assert a.src.shape[1] <= task.max_src_len and a.tgt.shape[1] - 1 <= task.max_tgt_len
        assert (a.src[:, 0] != PAD).all() and (a.tgt == EOS).sum() == 8
    with pytest.raises(ValueError, match="task.n_nouns"):
        ReorderTask(n_nouns=9)
    with pytest.raises(ValueError, match="task.max_len"):
        MonotonicTask(min_len=5, max_len=4)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        ReorderTask().batch(2, 0)


def test_cross_graph_builders_do_not_depend_on_the_decoder_length():
    for build in (lambda n, m: diagonal_window(n, m, 2), lambda n, m: random_cross(n, m, 2)):
        short, long = build(4, 6), build(9, 6)
        assert long.subgraph(range(4)).edge_index.tolist() == short.edge_index.tolist()
    assert no_cross(3, 4).num_edges == 0 and no_cross(3, 4).is_cross
    assert diagonal_window(5, 3, 1).in_degree().tolist() == [1, 1, 1, 1, 1]


def test_variant_checks():
    with pytest.raises(ValueError, match="cross must be one of"):
        Seq2SeqVariant("x", cross="diag")
    with pytest.raises(ValueError, match="window goes with cross='window' only"):
        Seq2SeqVariant("x", window=2)
    with pytest.raises(ValueError, match="num_random goes with cross='random' only"):
        Seq2SeqVariant("x", cross="random")
    with pytest.raises(ValueError, match="labels must be unique"):
        Seq2SeqExperiment(variants=(Seq2SeqVariant("a"), Seq2SeqVariant("a")))
    with pytest.raises(ValueError, match="model.num_heads"):
        Seq2SeqModel(d_model=6, num_heads=4)
    with pytest.raises(ValueError, match="train.lr must be a finite number"):
        TrainConfig(lr=math.nan)
    with pytest.raises(ValueError, match="train.lr must be a finite number"):
        TrainConfig(lr=math.inf)


def test_training_is_deterministic_and_measures_alignment():
    variant = Seq2SeqVariant("window 2", cross="window", window=2, decoder_window=2)
    exp = Seq2SeqExperiment(task=MonotonicTask(max_len=5), variants=(variant,), train=TINY,
                            model=Seq2SeqModel(d_model=8, num_heads=2, dim_feedforward=16))
    _, a = train_seq2seq(exp, variant, 0)
    _, b = train_seq2seq(exp, variant, 0)
    a.pop("train_seconds"), b.pop("train_seconds")
    assert a == b
    for key in ("exact_match", "token_acc", "align_raw", "align_rollout"):
        assert 0.0 <= a[key] <= 1.0
    ex = a["example"]
    assert len(ex["raw"]) == len(ex["tgt"]) and len(ex["raw"][0]) == len(ex["src"])


def test_nan_loss_stops_the_run():
    variant = Seq2SeqVariant("full")
    exp = Seq2SeqExperiment(variants=(variant,), train=TrainConfig(
        steps=3, warmup=0, eval_every=3, log_every=1, batch_size=2, lr=1e30))
    with pytest.raises(FloatingPointError, match="training loss became (nan|inf) at step"):
        train_seq2seq(exp, variant, 0)


def test_run_writes_strict_json_table_and_plots(tmp_path):
    exp = Seq2SeqExperiment(
        variants=(Seq2SeqVariant("full"), Seq2SeqVariant("none", cross="none"),
                  Seq2SeqVariant("random 2", cross="random", num_random=2)),
        model=Seq2SeqModel(d_model=8, num_heads=2, dim_feedforward=16), train=TINY,
        seeds=(0, 1), name="tiny",
    )
    res = run_seq2seq_experiment(exp, tmp_path, command="pytest")
    data = json.loads((tmp_path / "results.json").read_text())  # strict: no NaN
    assert data["config"]["task"] == {"name": "reorder", "n_nouns": 8, "n_verbs": 6,
                                      "n_adjs": 4, "p_adj": 0.5, "holdout": 5}
    md = (tmp_path / "results.md").read_text()
    assert "n_nouns=8, n_verbs=6" in md and "Chance: token accuracy" in md
    assert "| none | full | none | 0.0 | causal |" in md
    assert (tmp_path / "alignments.png").stat().st_size > 0
    assert [len(v["runs"]) for v in res["variants"]] == [2, 2, 2]
    fig = plot_alignments(res, key="rollout")
    assert [ax.get_title() for ax in fig.axes] == ["full", "none", "random 2"]
    assert strict_json([math.nan]) == [None]


def test_committed_results_are_the_documented_configs():
    from pathlib import Path

    from graphattn.experiments import cross_attention_experiments

    root = Path(__file__).resolve().parents[1] / "docs" / "img" / "experiments" / "seq2seq"
    for name, exp in cross_attention_experiments().items():
        data = json.loads((root / name / "results.json").read_text())
        assert data["config"] == json.loads(json.dumps(exp.to_dict()))
        assert all(len(v["runs"]) == len(exp.seeds) for v in data["variants"])


def test_cli_runs_the_cross_attention_experiment(tmp_path, monkeypatch, capsys):
    import graphattn.commands.experiment as command
    from graphattn import cli

    ran = []

    def fake(exp, out, command=None):
        ran.append((exp.task.__class__.__name__, str(out)))
        return {"variants": []}

    monkeypatch.setattr(command, "run_seq2seq_experiment", fake)
    out = tmp_path / "x"
    assert cli.main(["experiment", "--cross-attention", "reorder", "--out", str(out)]) == 0
    assert ran == [("ReorderTask", str(out / "reorder"))]
    assert cli.main(["experiment", "--cross-attention", "--out", str(out)]) == 0
    assert [r[0] for r in ran[1:]] == ["MonotonicTask", "ReorderTask"]
    assert "wrote" in capsys.readouterr().out
