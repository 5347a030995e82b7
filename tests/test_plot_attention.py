"""draw_attention, draw_heads, prune, draw_flow and draw_reach: assertions on the drawn artists."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from graphattn import TokenGraph, analysis, graph_attention, patterns  # noqa: E402
from graphattn.plot import (  # noqa: E402
    draw_attention,
    draw_flow,
    draw_heads,
    draw_reach,
    draw_rollout,
    find_artist,
    head_color,
    prune,
)

TOKENS = ["The", "cat", "sat", "on", "mats"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def attended(graph, heads=3, seed=0):
    """Real weights from graph_attention on random inputs, (E, H)."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(graph.num_nodes, heads, 8, generator=gen)
    k = torch.randn(graph.num_src_nodes, heads, 8, generator=gen)
    _, w = graph_attention(q, k, k, graph, return_weights=True)
    return w


def causal5():
    return patterns.causal(5).with_tokens(TOKENS)


@pytest.mark.parametrize("layout", ["arc", "bipartite", "circle", "layered"])
def test_one_path_per_edge_alpha_and_width_monotone(layout):
    g = causal5()
    w = attended(g)
    ax = draw_attention(g, w, head=1, layout=layout)
    edges = find_artist(ax, "edges-1")
    assert len(edges.get_paths()) == g.num_edges
    rgba = edges.get_colors()
    np.testing.assert_allclose(rgba[:, :3], np.tile(to_rgb(head_color(1)), (g.num_edges, 1)))
    order = torch.argsort(w[:, 1]).numpy()
    assert np.all(np.diff(rgba[order, 3]) >= 0)  # alpha never falls as the weight grows
    assert np.all(np.diff(np.asarray(edges.get_linewidths())[order]) >= 0)
    assert rgba[order[-1], 3] == pytest.approx(1.0)  # the strongest edge is opaque
    assert "head 1" in ax.get_title()
    assert set(TOKENS) <= {t.get_text() for t in ax.texts} | {
        t.get_text() for t in ax.get_xticklabels()
    }


def test_several_heads_one_colour_each_with_legend():
    g = causal5()
    w = attended(g, heads=4)
    ax = draw_attention(g, w, head=[0, 2, 3])
    for h in (0, 2, 3):
        edges = find_artist(ax, f"edges-{h}")
        assert len(edges.get_paths()) == g.num_edges
        assert tuple(edges.get_colors()[0, :3]) == pytest.approx(to_rgb(head_color(h)))
    assert find_artist(ax, "edges-1") is None
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["head 0", "head 2", "head 3"]
    mean = find_artist(draw_attention(g, w), "edges-mean")
    assert len(mean.get_paths()) == g.num_edges


def test_cross_graph_attention():
    g = patterns.cross(3, 4)
    w = attended(g, heads=2)
    ax = draw_attention(g, w, head=0)
    assert len(find_artist(ax, "edges-0").get_paths()) == 12


def test_attention_errors():
    g = causal5()
    w = attended(g)
    with pytest.raises(ValueError, match=r"head must hold head indices in \[0, 3\)"):
        draw_attention(g, w, head=3)
    with pytest.raises(ValueError, match="weights"):
        draw_attention(g, w[:-1])
    with pytest.raises(ValueError, match="batch of 2"):
        draw_attention(g, torch.stack([w, w]))
    ax = draw_attention(g, w.unsqueeze(0), head=0)  # a batch of one is accepted
    assert len(find_artist(ax, "edges-0").get_paths()) == g.num_edges


def test_prune_exact_top_k_and_threshold():
    g = TokenGraph([[0, 1, 2, 0, 1], [2, 2, 2, 1, 1]])  # target 2 has 3 edges, target 1 has 2
    v = torch.tensor([0.5, 0.1, 0.4, 0.9, 0.2])  # in canonical order: (0,1) (1,1) (0,2) (1,2) (2,2)
    order = {(j, i): k for k, (j, i) in enumerate(g.edge_index.t().tolist())}
    vals = torch.zeros(5)
    for (j, i), x in zip([(0, 2), (1, 2), (2, 2), (0, 1), (1, 1)], v.tolist(), strict=True):
        vals[order[(j, i)]] = x
    keep, note = prune(g, vals, top_k=1)
    kept = {tuple(e) for e in g.edge_index[:, keep].t().tolist()}
    assert kept == {(0, 1), (0, 2)} and "2 of 5" in note
    keep, _ = prune(g, vals, threshold=0.3)
    assert {tuple(e) for e in g.edge_index[:, keep].t().tolist()} == {(0, 1), (0, 2), (2, 2)}
    keep, note = prune(g, vals)
    assert bool(keep.all()) and note is None
    keep, note = prune(g, vals, max_edges=1)
    assert int(keep.sum()) == 1 and "strongest 1 overall" in note
    assert {tuple(e) for e in g.edge_index[:, keep].t().tolist()} == {(0, 1)}
    with pytest.raises(ValueError, match="top_k"):
        prune(g, vals, top_k=0)


def test_long_sequence_is_pruned_and_says_so():
    g = patterns.causal(300)  # 45,150 edges
    w = attended(g, heads=1)
    ax = draw_attention(g, w, head=0)
    drawn = len(find_artist(ax, "edges-0").get_paths())
    assert 0 < drawn <= 2000
    assert "pruned" in ax.get_title() and "45,150" in ax.get_title()
    ax = draw_attention(causal5(), attended(causal5()), top_k=2)
    assert len(find_artist(ax, "edges-mean").get_paths()) == 1 + 2 * 4
    assert "top-2" in ax.get_title()


@pytest.mark.parametrize("view", ["matrix", "bipartite", "arc"])
def test_heads_grid(view):
    g = causal5()
    layers = [(g, attended(g, heads=3, seed=s)) for s in range(2)]
    axes = draw_heads(layers, view=view)
    assert axes.shape == (2, 3)
    assert axes[0, 2].get_title() == "head 2"
    assert axes[0, 2].title.get_color() == head_color(2)
    assert axes[1, 0].get_ylabel() == "layer 1"
    if view == "matrix":
        clims = {a.images[0].get_clim() for a in axes.ravel()}
        assert len(clims) == 1  # one shared colour scale
        top = max(float(w.max()) for _, w in layers)
        assert clims.pop() == (0.0, pytest.approx(top))
        assert len(axes[0, 0].figure.axes) == 7  # six cells and one colorbar
    else:
        assert len(find_artist(axes[1, 2], "edges-2").get_paths()) == g.num_edges


def test_heads_grid_unshared_scale_and_ragged_heads():
    g = causal5()
    layers = [(g, attended(g, heads=2)), (g, attended(g, heads=1))]
    axes = draw_heads(layers, share_scale=False)
    assert axes.shape == (2, 2) and not axes[1, 1].get_visible()
    assert len(axes[0, 0].figure.axes) == 4  # no colorbar
    with pytest.raises(ValueError, match="view"):
        draw_heads(layers, view="pie")
    with pytest.raises(TypeError, match="pair"):
        draw_heads([g])
    with pytest.raises(ValueError, match="empty"):
        draw_heads([])


def test_flow_widths_follow_weights_and_relevance_strip():
    g = causal5()
    layers = [(g, attended(g, seed=s)) for s in range(3)]
    rel = torch.tensor([0.5, 0.1, 0.2, 0.15, 0.05])
    ax = draw_flow(layers, relevance=rel)
    edges = find_artist(ax, "edges")
    assert len(edges.get_paths()) == 3 * g.num_edges
    mean = torch.cat([w.double().mean(1) for _, w in layers]).numpy()  # layer by layer
    order = np.argsort(mean)
    assert np.all(np.diff(np.asarray(edges.get_linewidths())[order]) >= 0)
    assert np.all(np.diff(edges.get_colors()[order, 3]) >= 0)
    starts = [round(float(p.vertices[0, 1])) for p in edges.get_paths()]
    assert starts == [0] * 15 + [1] * 15 + [2] * 15  # layer l starts on row l
    strip = find_artist(ax, "relevance")
    np.testing.assert_allclose(strip.get_array(), rel.numpy())
    np.testing.assert_allclose(strip.get_offsets()[:, 1], 0.0)  # the input row
    assert strip.colorbar is not None
    assert {"layer 2", "input"} <= {t.get_text() for t in ax.get_yticklabels()}  # from 0


def test_flow_values_replace_weights():
    g = causal5()
    flows = [torch.arange(g.num_edges, dtype=torch.float64) for _ in range(2)]
    ax = draw_flow([(g, None), (g, None)], flow=flows, relevance=torch.ones(5), relevance_row=-1)
    widths = np.asarray(find_artist(ax, "edges").get_linewidths())
    assert np.all(np.diff(widths[: g.num_edges]) > 0)  # strictly growing with the flow
    np.testing.assert_allclose(find_artist(ax, "relevance").get_offsets()[:, 1], 2.0)
    assert "flow values" in ax.get_title()


def test_flow_errors_and_pruning():
    g = causal5()
    w = attended(g)
    with pytest.raises(ValueError, match="chain"):
        draw_flow([(patterns.cross(3, 5), attended(patterns.cross(3, 5))), (g, w)])
    with pytest.raises(ValueError, match=r"relevance must have shape \(5,\)"):
        draw_flow([(g, w)], relevance=torch.ones(4))
    with pytest.raises(ValueError, match="flow must hold one tensor per layer"):
        draw_flow([(g, None)], flow=[])
    with pytest.raises(TypeError, match=r"layers\[0\]\[1\]"):
        draw_flow([(g, None)])
    big = patterns.causal(100)
    ax = draw_flow([(big, attended(big, heads=1))] * 2)
    assert len(find_artist(ax, "edges").get_paths()) <= 2000
    assert "pruned" in ax.get_title()


def test_reach_matches_analysis_and_annotates():
    g = patterns.sliding_window(10, 2)
    ax = draw_reach(g, 4)
    frac = find_artist(ax, "reach").get_array()
    assert frac.shape == (4, 10)
    for layer in range(1, 5):
        expected = analysis.reach(g, layer).in_degree().numpy() / 10
        np.testing.assert_allclose(frac[layer - 1], expected)
    assert {"1", "2", "3", "4"} <= {t.get_text() for t in ax.texts}
    assert find_artist(ax, "reach").colorbar is not None
    full = draw_reach(patterns.full(6), 2)
    assert "after 1 layers" in full.get_title()
    with pytest.raises(ValueError, match="layers"):
        draw_reach(g, 0)
    with pytest.raises(ValueError, match="self graph"):
        draw_reach(patterns.cross(3, 4), 2)


def test_flow_names_and_marks_its_target():
    g = TokenGraph.from_tokens("the cat sat on it", "causal")
    layers = [(g, attended(g, seed=s)) for s in range(2)]
    ax = draw_flow(layers, relevance=torch.full((5,), 0.2), target=-1)
    assert "target “it” (4)" in ax.get_title()
    ring = find_artist(ax, "target")
    np.testing.assert_allclose(ring.get_offsets(), [[2.0, 2.0]])  # last row (centred), token 4
    assert "target" in {t.get_text() for t in ax.texts}
    with pytest.raises(ValueError, match=r"target must be in \[-5, 5\)"):
        draw_flow(layers, target=5)
    with pytest.raises(TypeError, match="target must be an int"):
        draw_flow(layers, target="it")


def test_reach_share_of_allowed_sources():
    g = patterns.sliding_window(6, 2)  # causal
    everything = find_artist(draw_reach(g, 3), "reach").get_array()
    allowed = find_artist(draw_reach(g, 3, share="allowed"), "reach").get_array()
    np.testing.assert_allclose(allowed[2], analysis.reach_coverage(g, 3).numpy())
    np.testing.assert_allclose(everything[2], analysis.reach(g, 3).in_degree().numpy() / 6)
    assert allowed[-1, 0] == 1.0 and everything[-1, 0] == pytest.approx(1 / 6)
    with pytest.raises(ValueError, match="share must be 'all' or 'allowed'"):
        draw_reach(g, 2, share="some")


def test_rollout_drawn_as_relevance_with_the_sink_column_saturated():
    r = torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.3, 0.1], [0.7, 0.1, 0.2]])
    ax = draw_rollout(r, ["[CLS]", "a", "b"])
    image = find_artist(ax, "rollout")
    np.testing.assert_allclose(image.get_array(), r.numpy())
    assert image.norm.vmax == pytest.approx(0.3) and image.norm.gamma == 0.5
    bar = image.colorbar
    assert bar.ax.get_ylabel().startswith("relevance") and bar.extend == "max"
    assert "“[CLS]” holds 77%" in ax.get_title()
    linear = find_artist(draw_rollout(r, clip_sink=False, gamma=1), "rollout")
    assert linear.norm.vmax == 1.0 and linear.colorbar.extend == "neither"
    with pytest.raises(ValueError, match="non-negative"):
        draw_rollout(-r)
    with pytest.raises(ValueError, match="tokens must be 3 labels"):
        draw_rollout(r, ["a"])
    with pytest.raises(ValueError, match=r"gamma must be a number in \(0, 1\]"):
        draw_rollout(r, gamma=2)


def test_flow_title_names_an_unlabelled_target_once():
    g = patterns.causal(3)
    w = torch.ones(g.num_edges)
    title = draw_flow([(g, w)], target=2).get_title()
    assert title.startswith("relevance of each input token for target token 2, through 1 layers")
    plt.close("all")
