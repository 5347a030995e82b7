"""AttnLRP rows of the attribution benchmarks: one prediction's input-token relevance."""

import torch
from attribution_tiny import TINY_CONFIG

from graphattn.experiments import attribution, attribution_cross
from graphattn.experiments.attribution import minilm as attribution_minilm
from graphattn.experiments.attribution_lrp import lm_token_relevance, source_relevance
from graphattn.flow import contributions
from graphattn.nn import GraphLM, GraphSeq2Seq
from graphattn.pretrained import tiny_bert


def test_lm_relevance_of_every_position_adds_up_to_contributions_tokens():
    """The rules make the backward linear: one position at a time sums to all positions."""
    torch.manual_seed(0)
    lm = GraphLM(20, 8, 2, 2, pattern="causal", max_len=8).eval().double()
    x = torch.randint(20, (2, 6))
    rows = x.repeat_interleave(6, 0)  # (12, 6): row 6 b + i explains position i of example b
    got = lm_token_relevance(lm, rows, torch.arange(6).repeat(2)).reshape(2, 6, 6)
    torch.testing.assert_close(got.sum(1), contributions(lm, x, "attnlrp").tokens)
    assert (got[:, 2, 3:] == 0).all()  # causal: position 2 reads nothing after it


def test_source_relevance_of_every_position_adds_up_to_source_tokens():
    torch.manual_seed(0)
    model = GraphSeq2Seq(9, 9, 8, 2, num_encoder_layers=1, num_decoder_layers=2).eval().double()
    src, tgt = torch.tensor([[3, 4, 5, 6], [2, 3, 7, 8]]), torch.tensor([[1, 6, 5], [1, 2, 3]])
    got = source_relevance(model, src, tgt)  # (2, 3, 4)
    rel = contributions(model, (src, tgt), "attnlrp")
    torch.testing.assert_close(got.sum(1), rel.source_tokens)
    one = source_relevance(model, src[:1], tgt[:1, :2])  # causal: position 1 sees tgt[:2] only
    torch.testing.assert_close(one[0, 1], got[0, 1])


def test_ground_truth_attnlrp_row_ranks_the_query_relevance():
    task = TINY_CONFIG.task
    torch.manual_seed(0)
    lm = GraphLM(task.vocab_size, 16, 2, 2, max_len=task.seq_len).eval()
    r = attribution.score_model(lm, task, n_seqs=3, only_correct=False)
    x, y = task.val_batch(3, torch.Generator().manual_seed(1234))
    src = task.sources(x, y)
    queries = [int((y[b] != -100).nonzero()[0, 0]) for b in range(3)]
    lrp = lm_token_relevance(lm, x, torch.tensor(queries))
    ranks = [attribution.rank_of_source(lrp[b], int(src[b, q]), q) for b, q in enumerate(queries)]
    assert r["methods"]["attnlrp"]["mean_rank"] == sum(ranks) / 3
    assert "attnlrp" in attribution.METHODS and "attnlrp" in attribution_cross.CROSS_METHODS


def test_minilm_attnlrp_is_the_input_token_relevance():
    model = tiny_bert().eval()
    ids, _ = model.tokenize("the river bank")
    got = attribution_minilm._attributions(model, ids)["attnlrp"]
    torch.testing.assert_close(got, contributions(model, ids, "attnlrp").tokens[0])
    assert "attnlrp" in attribution_minilm.METHODS
