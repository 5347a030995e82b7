"""Requests too large for any memory fail with a ValueError that names them, before allocating."""

import pytest
import torch

from graphattn import patterns
from graphattn.backends.flex import BlockMask, to_block_mask
from graphattn.graph import TokenGraph

HUGE = 10**7  # N * N edges of 16 bytes: 1.6 PB


@pytest.mark.parametrize(
    "build",
    [
        lambda: patterns.full(HUGE),
        lambda: patterns.causal(HUGE),
        lambda: patterns.prefix_lm(HUGE, 5),
        lambda: patterns.strided(HUGE, 3),
        lambda: patterns.fixed(HUGE, 3),
        lambda: patterns.cross(HUGE, n_src=HUGE),
        lambda: patterns.get("full", HUGE),
    ],
    ids=["full", "causal", "prefix_lm", "strided", "fixed", "cross", "get"],
)
def test_a_pattern_with_too_many_edges_is_a_value_error_naming_its_size(build):
    with pytest.raises(ValueError, match=r"an edge list of \d+ edges needs \d+ bytes .* memory"):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda n: patterns.sliding_window(n, 2),
        lambda n: patterns.global_tokens(n, 1),
        lambda n: patterns.random(n, 2),
        lambda n: patterns.cross_window(n, n_src=4, window=2),
    ],
    ids=["sliding_window", "global_tokens", "random", "cross_window"],
)
def test_a_pattern_on_too_many_nodes_is_a_value_error_naming_its_size(build):
    with pytest.raises(ValueError, match=r"a pattern on n(_dst)?=10{15} nodes .* needs 8\d+ bytes"):
        build(10**15)


def test_a_dense_mask_too_large_for_memory_is_a_value_error_naming_its_shape():
    g = TokenGraph([[0], [0]], HUGE)
    with pytest.raises(ValueError, match=r"the dense mask of shape \(10000000, 10000000\) needs"):
        g.to_dense_mask(max_elements=10**15)


@pytest.mark.skipif(BlockMask is None, reason="this torch has no FlexAttention")
def test_a_block_mask_too_large_for_memory_is_a_value_error_naming_its_tables():
    g = TokenGraph([[0], [0]], 10**9)
    with pytest.raises(ValueError, match=r"the BlockMask tables of shape \(7812500, 7812500\)"):
        to_block_mask(g, device=torch.device("cpu"))
