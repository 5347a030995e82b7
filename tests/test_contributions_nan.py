"""Contributions never turn a NaN of the model into plausible shares."""

import math

import pytest
import torch

from graphattn import GraphTransformer, patterns
from graphattn.flow import contributions

METHODS = ["alti", "globenc", "value_zeroing", "attention", "grad_attention"]


@pytest.mark.parametrize("method", METHODS)
def test_a_nan_token_gives_nan_shares_where_the_model_output_is_nan(method):
    torch.manual_seed(0)
    model = GraphTransformer(8, 2, 2, 16, dropout=0.0).eval()
    g = patterns.get("causal", 6)
    x = torch.randn(1, 6, 8)
    x[0, 3, 2] = math.nan  # token 3's features: targets 3, 4, 5 read it
    bad_out = ~torch.isfinite(model(x, g).last_hidden_state[0]).all(-1)  # (N,)
    assert bad_out.tolist() == [False, False, False, True, True, True]
    for graph, c in contributions(model, x, method, g):
        bad = torch.zeros(6, dtype=torch.bool)
        bad[graph.dst[~torch.isfinite(c[0])]] = True
        assert not (bad_out & ~bad).any(), (method, c)  # never a plausible share there
        if method != "grad_attention":  # its NaN score may also reach earlier targets
            assert torch.equal(bad, bad_out), (method, c)
        finite = ~bad[graph.dst]  # (E,) every edge of the finite targets
        sums = torch.zeros(6).index_add(0, graph.dst[finite], c[0, finite])
        assert torch.allclose(sums[~bad], torch.ones(int((~bad).sum()))), method
