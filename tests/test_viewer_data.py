"""The viewer's page at length: exact when small, else fit to max_bytes, saying what it left out."""

import numpy as np
import pytest
import torch
from viewer_page import page_data

from graphattn import TokenGraph, patterns
from graphattn.plot import show, to_html
from graphattn.plot.html import META_BYTES, render_page
from graphattn.plot.viewer_data import LayerShape, Reduction, layer_bytes, plan


def normalized(graph, heads, seed):
    """Random weights ``(E, H)`` that sum to one over every target's incoming edges."""
    s = torch.rand(graph.num_edges, heads, generator=torch.Generator().manual_seed(seed)) ** 4
    total = torch.zeros(graph.num_nodes, heads).index_add_(0, graph.dst, s)  # (N, H)
    return s / total[graph.dst]


def strongest_per_target(graph, values, k):
    """The edge ids of every target's k strongest incoming edges (ties: edge order), by hand."""
    out = []
    for i in range(graph.num_nodes):
        incoming = np.flatnonzero(graph.dst.numpy() == i)
        out.extend(incoming[np.argsort(-values[incoming], kind="stable")[:k]])
    return np.array(sorted(out))


def test_small_inputs_go_in_whole_every_head_and_edge():
    g = patterns.get("sliding_window", 30, window=3, causal=False)
    w = normalized(g, 4, seed=0)
    _, data = page_data(render_page([(g, w), (g, w.flip(1))]))
    for L, weights in zip(data["layers"], (w, w.flip(1)), strict=True):
        assert L["src"] == g.src.tolist() and L["dst"] == g.dst.tolist()
        assert L["note"] == "" and L["kept"] == L["edges"] == g.num_edges and L["share"] is None
        page_w = torch.tensor(L["w"], dtype=torch.float64).t()  # (E, H)
        assert (page_w - weights.double()).abs().max() <= L["step"] / 2 + 1e-12
    assert len(data["labels"]) == 1  # one label list shared by both layers


def test_a_cap_at_least_the_in_degree_changes_nothing():
    g = patterns.causal(12)
    w = normalized(g, 2, seed=1)
    assert render_page([(g, w)], max_edges_per_target=12) == render_page([(g, w)])


def test_pruned_page_keeps_the_strongest_edges_and_each_targets_share():
    g = patterns.causal(40)
    w = normalized(g, 3, seed=2)
    _, data = page_data(render_page([(g, w)], max_edges_per_target=4))
    L = data["layers"][0]
    keep = strongest_per_target(g, w.double().max(1).values.numpy(), 4)  # by the largest head
    assert L["src"] == g.src[keep].tolist() and L["dst"] == g.dst[keep].tolist()
    mean = w.double().mean(1).numpy()  # (E,)
    total = np.bincount(g.dst, weights=mean, minlength=40)  # (N,)
    kept = np.bincount(g.dst[keep], weights=mean[keep], minlength=40)
    assert np.abs(L["share"] - kept / total).max() < 1e-4
    assert L["mass"] == pytest.approx(kept.sum() / total.sum())
    kept_mass = f"({L['mass']:.1%} of the weight mass)"
    assert f"the strongest 4 incoming edges per target {kept_mass}" in L["note"]
    assert f"{g.num_edges - len(keep):,} of {g.num_edges:,} edges omitted" in L["note"]


def test_over_budget_heads_are_averaged_before_edges_are_pruned():
    g = patterns.get("sliding_window", 400, window=10, causal=True)
    w = normalized(g, 12, seed=3)
    exact = len(render_page([(g, w)]).encode())
    _, data = page_data(render_page([(g, w)], max_bytes=exact - 1))
    L = data["layers"][0]
    assert L["heads"] == 1 and L["meanOf"] == 12 and L["kept"] == g.num_edges
    assert "the mean of 12 heads" in L["note"] and "omitted;" not in L["note"]
    page_w = np.array(L["w"][0])
    assert np.abs(page_w - w.double().mean(1).numpy()).max() <= L["step"] / 2 + 1e-12


@pytest.mark.parametrize("max_bytes", [150_000, 200_000, 300_000])
def test_the_page_fits_max_bytes_with_the_most_edges_per_target_that_fit(max_bytes):
    g = patterns.get("sliding_window", 2000, window=20, causal=False)
    layers = [(g, normalized(g, 2, seed)) for seed in range(3)]
    page = render_page(layers, max_bytes=max_bytes)
    _, data = page_data(page)
    k = data["layers"][0]["perTarget"]
    assert len(page.encode()) <= max_bytes and 1 <= k < 41
    assert all(L["perTarget"] == k and L["meanOf"] == 2 for L in data["layers"])
    mean = [(g, w.mean(1)) for g, w in layers]  # what the page holds, with one edge more each
    one_more = render_page(mean, max_bytes=10**8, max_edges_per_target=k + 1)
    assert len(one_more.encode()) > max_bytes - 3 * META_BYTES  # k + 1 would not fit


REDUCTIONS = [Reduction(None, False), Reduction(None, True), Reduction(2, True)]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_layer_bytes_bounds_the_encoded_arrays(reduction):
    g = patterns.get("sliding_window", 300, window=5, causal=True)
    w = normalized(g, 3, 0)
    shape = LayerShape(g.in_degree(), 300, 3)
    budget = sum(len(p.encode()) for p in (render_page([(g, w)]),)) + 10**6  # room for all
    text = render_page([(g, w.mean(1) if reduction.mean_heads else w)], max_bytes=budget,
                       max_edges_per_target=reduction.per_target)
    block = text.split('class="graphattn-layer">')[1].split("</script>")[0]
    estimate = layer_bytes(shape, reduction)
    assert len(block) <= estimate < len(block) + 4 * 64  # the arrays exactly, JSON around bounded


def test_signed_weights_keep_their_sign():
    g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    w = torch.tensor([[0.5, -1.0], [-0.25, 0.0], [2.0, 0.125]])  # (E, H): gradients x attention
    _, data = page_data(render_page([(g, w)]))
    page_w = torch.tensor(data["layers"][0]["w"], dtype=torch.float64).t()
    assert (page_w - w.double()).abs().max() <= data["layers"][0]["step"] / 2 + 1e-12


def test_bare_graphs_are_pruned_in_source_order():
    g = patterns.causal(6)
    _, data = page_data(render_page([(g, None)], max_edges_per_target=2))
    L = data["layers"][0]
    assert L["src"] == [0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1] and L["share"].min() > 0
    assert "the first 2 incoming edges per target (by source)" in L["note"]


def test_bad_options_raise_before_anything_is_written(tmp_path):
    g = patterns.causal(50)
    w = normalized(g, 2, 0)
    for bad, exc in ((0, ValueError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(exc, match="max_edges_per_target"):
            to_html([(g, w)], tmp_path / "a.html", max_edges_per_target=bad)
        with pytest.raises(exc, match="max_bytes"):
            to_html([(g, w)], tmp_path / "a.html", max_bytes=bad)
    with pytest.raises(ValueError, match=r"max_bytes leaves .* one edge per target of 1 layers"):
        to_html([(g, w)], tmp_path / "a.html", max_bytes=30_000)
    with pytest.raises(ValueError, match="max_bytes"):
        show([(g, w)], max_bytes=30_000)
    assert list(tmp_path.iterdir()) == []


def test_show_reduces_as_to_html_does(tmp_path):
    g = patterns.causal(30)
    w = normalized(g, 2, 0)
    viewer = show([(g, w)], max_edges_per_target=3)
    assert viewer.page == render_page([(g, w)], max_edges_per_target=3)
    _, data = page_data(viewer.page)
    assert "strongest 3 incoming edges per target" in data["layers"][0]["note"]


def test_plan_prefers_heads_then_the_largest_k():
    shapes = [LayerShape(torch.full((100,), 50), 100, 4)]
    whole = layer_bytes(shapes[0], Reduction(None, False))
    assert plan(shapes, max_edges_per_target=None, budget=whole) == Reduction(None, False)
    mean = layer_bytes(shapes[0], Reduction(None, True))
    assert plan(shapes, max_edges_per_target=None, budget=mean) == Reduction(None, True)
    k = plan(shapes, max_edges_per_target=None, budget=mean - 1).per_target
    assert layer_bytes(shapes[0], Reduction(k, True)) <= mean - 1 < layer_bytes(
        shapes[0], Reduction(k + 1, True)
    )
