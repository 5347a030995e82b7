"""Sizes and inputs refused by name before any work (issue 17)."""

import json

import pytest

from graphattn import TokenGraph


def test_sizes_whose_edge_keys_overflow_int64_are_refused_with_the_limit_named():
    with pytest.raises(ValueError, match=r"num_nodes \* num_src_nodes .* 2\*\*63"):
        TokenGraph([[2**33 - 1, 3], [2**33 - 1, 2**33 - 2]], 2**33)
    with pytest.raises(ValueError, match=r"2\*\*63"):
        TokenGraph([[0], [0]], 2**40, num_src_nodes=2**23)
    with pytest.raises(ValueError, match=r"2\*\*63"):
        TokenGraph([[0], [0]], 10**30)
    g = TokenGraph([[0], [0]], 2**31, num_src_nodes=2**31)  # N * M = 2**62 still fits
    assert g.edge_index.tolist() == [[0], [0]]


def test_load_refuses_a_small_file_claiming_sizes_that_overflow(tmp_path):
    big = 2**40
    meta = {"format": "graphattn.TokenGraph", "version": 1, "num_nodes": big,
            "num_src_nodes": big, "cross": False, "edge_index": [[big - 1], [big - 1]]}  # fmt: skip
    path = tmp_path / "big.json"
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"big.json holds an invalid graph: .*2\*\*63"):
        TokenGraph.load(path)


def test_head_major_tensors_are_refused_with_the_expected_layout_named():
    import torch

    from graphattn import graph_attention
    from graphattn.variants import COSINE, variant_attention

    g = TokenGraph([[0, 1, 2, 3, 4], [1, 2, 3, 4, 4]])  # N = 5
    q = torch.zeros(2, 5, 4)  # head-major (H, N, D) instead of node-major (N, H, D)
    calls = (lambda: graph_attention(q, q, q, g), lambda: variant_attention(q, q, q, g, COSINE))
    for call in calls:
        with pytest.raises(ValueError, match=r"node-major \(N, H, D\).*head-major \(H, N, D\)"):
            call()
