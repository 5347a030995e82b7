"""The route-based score of both attribution benchmarks: route_scores of the ALTI layers."""

import torch

from graphattn.experiments.attribution import ground_truth as attribution
from graphattn.experiments.attribution import minilm as attribution_minilm
from graphattn.flow import contributions, route_scores
from graphattn.nn import GraphLM
from graphattn.pretrained import tiny_bert


def test_ground_truth_routes_score_is_the_widest_path_of_the_alti_route():
    task = attribution.CONFIG.task
    torch.manual_seed(0)
    lm = GraphLM(task.vocab_size, 16, 2, 2, max_len=task.seq_len).eval()
    x, y = task.val_batch(2, torch.Generator().manual_seed(0))  # (2, N) each
    query = int((y[1] != -100).nonzero()[0, 0])

    def layers_of(method):
        return contributions(lm, x, method)

    got = attribution._method_scores(lm, x, y, 1, query, task.vocab_size - 1, layers_of)
    alti = [(g, c[1]) for g, c in contributions(lm, x, "alti")]
    torch.testing.assert_close(got["routes"], route_scores(alti, query))
    assert "routes" in attribution.METHODS


def test_minilm_routes_score_averages_every_targets_route():
    model = tiny_bert().eval()
    ids, _ = model.tokenize("the river bank")
    got = attribution_minilm._attributions(model, ids)["routes"]
    alti = [(g, c[0]) for g, c in contributions(model, ids, "alti")]
    n = ids.shape[1]
    want = sum(route_scores(alti, t) for t in range(n)) / n
    torch.testing.assert_close(got, want)
    assert "routes" in attribution_minilm.METHODS
