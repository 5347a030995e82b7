"""The cross-attention ground-truth benchmark: ranks, ablation and the table."""

import torch

from graphattn.experiments import cross_attention_experiments
from graphattn.experiments.attribution import cross as ac
from graphattn.experiments.attribution import rank_among
from graphattn.experiments.seq2seq import Seq2SeqVariant, new_model
from graphattn.experiments.tasks_seq2seq import PAD


def tiny_model():
    exp = cross_attention_experiments()["reorder"]
    return new_model(exp, Seq2SeqVariant("full"), seed=0).eval(), exp.task


def test_ablation_is_the_drop_of_each_single_removal():
    model, task = tiny_model()
    batch = task.val_batch(1, torch.Generator().manual_seed(0))
    src, tgt = batch.src[0], batch.tgt[0]
    got = ac._ablation(model, src, tgt)  # (N, M)
    inp, out = tgt[None, :-1], tgt[1:]
    base = model(src[None], inp).logits[0].log_softmax(-1)
    for j in range(src.shape[0]):
        removed = src.clone()
        removed[j] = PAD
        logp = model(removed[None], inp).logits[0].log_softmax(-1)
        for i in range(out.shape[0]):
            expected = base[i, out[i]] - logp[i, out[i]]
            torch.testing.assert_close(got[i, j], expected)


def test_rank_among_counts_only_candidates():
    scores = torch.tensor([5.0, 1.0, 3.0, 3.0])
    real = torch.tensor([False, True, True, True])
    assert rank_among(scores, 2, real) == 1.5  # token 0 is no candidate
    assert rank_among(scores, 1, real) == 3.0


def test_score_translation_finds_the_alignment_of_a_trained_model():
    """On the shipped full-cross model, ablation and the last cross layer find the translated
    word (a misaligned position or source index would not)."""
    from graphattn.pretrained.translation import load_translation_model

    model, _ = load_translation_model("reorder-full")
    _, task = tiny_model()
    r = ac.score_translation(model, task, n_sentences=6, batch_size=4)
    assert set(r["methods"]) == set(ac.CROSS_METHODS)
    assert 0 < r["correct"] <= r["words"]
    longest = task.val_batch(6, torch.Generator().manual_seed(1)).src.shape[1] + 8
    for row in r["methods"].values():
        assert 0.0 <= row["top1"] <= 1.0 and 1.0 <= row["mean_rank"] <= longest
    assert r["methods"]["ablation"]["top1"] >= 0.9
    assert r["methods"]["attention"]["top1"] >= 0.9
    table = ac.translation_markdown({"reorder-full": r})
    assert f"| reorder-full | {r['correct']}/{r['words']} |" in table
