"""draw_graph, draw_matrix, draw_pattern(s) and saving: assertions on the drawn artists."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from graphattn import TokenGraph, patterns  # noqa: E402
from graphattn.plot import (  # noqa: E402
    draw_graph,
    draw_matrix,
    draw_pattern,
    draw_patterns,
    find_artist,
    save_figure,
    style,
)

TOKENS = ["The", "cat", "sat", "on", "mats"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def causal(n=5, tokens=TOKENS, name="causal"):
    return TokenGraph.from_dense_mask(
        torch.ones(n, n, dtype=torch.bool).tril(), tokens=tokens, name=name
    )


def window(n=5, w=1):
    i = torch.arange(n)
    return TokenGraph.from_dense_mask((i[:, None] - i[None]).abs() <= w, tokens=TOKENS[:n])


def cross():
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]], dtype=torch.bool)  # (N=2, M=3)
    return TokenGraph.from_dense_mask(mask, tokens=["le", "chat"], src_tokens=["the", "cat", "."])


def texts(ax):
    return {t.get_text() for t in ax.texts} | {t.get_text() for t in ax.get_xticklabels()} | {
        t.get_text() for t in ax.get_yticklabels()
    }


@pytest.mark.parametrize("layout", ["arc", "bipartite", "circle", "spring", "shell", "layered"])
def test_one_path_per_edge_and_labels(layout):
    g = window()
    ax = draw_graph(g, layout)
    assert len(find_artist(ax, "edges").get_paths()) == g.num_edges
    assert set(TOKENS) <= texts(ax)
    assert "N=5" in ax.get_title()


@pytest.mark.parametrize("layout", ["bipartite", "circle", "spring", "layered"])
def test_cross_graph_layouts(layout):
    g = cross()
    ax = draw_graph(g, layout)
    assert len(find_artist(ax, "edges").get_paths()) == g.num_edges == 4
    assert {"le", "chat", "the", "cat", "."} <= texts(ax)
    assert "M=3" in ax.get_title()


def test_auto_layout_and_errors():
    assert find_artist(draw_graph(cross()), "edges") is not None  # auto: bipartite
    with pytest.raises(ValueError, match="bipartite"):
        draw_graph(cross(), "arc")
    with pytest.raises(ValueError, match="layout"):
        draw_graph(causal(), "no_such_layout")
    with pytest.raises(ValueError, match="layered"):
        draw_graph([causal(), causal()], "arc")
    with pytest.raises(TypeError, match="graph"):
        draw_graph(torch.ones(3, 3))
    with pytest.raises(ValueError, match="max_edges"):
        draw_graph(causal(), max_edges=0)


def test_arc_geometry_direction():
    # edge 0 -> 2 goes right (above the line), edge 3 -> 1 goes left (below), 4 -> 4 a loop
    g = TokenGraph([[0, 3, 4], [2, 1, 4]], num_nodes=5)
    paths = [p.vertices for p in find_artist(draw_graph(g, "arc"), "edges").get_paths()]
    by_dst = dict(zip(g.dst.tolist(), paths, strict=True))
    right, left, loop = by_dst[2], by_dst[1], by_dst[4]
    np.testing.assert_allclose(right[[0, -1], 0], [0, 2])
    np.testing.assert_allclose(left[[0, -1], 0], [3, 1])
    assert right[:, 1].max() > 0.5 and right[:, 1].min() >= -1e-9
    assert left[:, 1].min() < -0.5 and left[:, 1].max() <= 1e-9
    np.testing.assert_allclose(loop[0], [4, 0], atol=1e-9)
    assert loop[:, 1].min() >= -1e-9 and np.ptp(loop[:, 0]) > 0  # a small circle above


def test_bipartite_geometry_and_curved_pairs_distinct():
    g = cross()
    paths = [p.vertices for p in find_artist(draw_graph(g, "bipartite"), "edges").get_paths()]
    for (j, i), p in zip(g.edge_index.t().tolist(), paths, strict=True):
        np.testing.assert_allclose(p[0], [0, -(j - 1)])  # 3 sources centred on 0
        np.testing.assert_allclose(p[-1], [1, -(i - 0.5)])  # 2 targets centred on 0
    both = TokenGraph([[0, 1], [1, 0]])  # 0 -> 1 and 1 -> 0 must not coincide
    a, b = [p.vertices for p in find_artist(draw_graph(both, "circle"), "edges").get_paths()]
    assert np.abs(a - b[::-1]).max() > 0.05


def test_layered_stack_of_graphs():
    g = window()
    ax = draw_graph([g, g, g], "layered")
    paths = find_artist(ax, "edges").get_paths()
    assert len(paths) == 3 * g.num_edges
    assert {"input", "layer 0", "layer 2"} <= texts(ax)  # layers numbered from 0, as layers[k]
    ys = sorted({round(float(v[0, 1])) for v in (p.vertices for p in paths)})
    assert ys == [0, 1, 2]  # edges start on rows 0, 1, 2
    with pytest.raises(ValueError, match="chain"):
        draw_graph([cross(), cross()], "layered")


def test_large_graph_is_binned_and_says_so():
    g = causal(300, tokens=None)  # 45,150 edges
    ax = draw_graph(g, max_edges=2000)
    drawn = len(find_artist(ax, "edges").get_paths())
    assert 0 < drawn <= 2000
    assert "binned" in ax.get_title() and "45,150" in ax.get_title()


def test_binned_opacity_is_the_fraction_of_connected_pairs():
    # causal 4 tokens in bins of 2: cells (0,0) 3/4, (1,0) 4/4, (1,1) 3/4 connected
    ax = draw_graph(causal(4, tokens=None), "bipartite", max_edges=4)
    edges = find_artist(ax, "edges")
    assert len(edges.get_paths()) == 3
    alpha = edges.get_colors()[:, 3]  # binned edges in (dst, src) order: (0,0), (1,0), (1,1)
    assert alpha[1] > alpha[0] and alpha[0] == pytest.approx(alpha[2])
    assert "groups of 2" in ax.get_title()


def test_draw_into_given_axes():
    fig, (a, b) = plt.subplots(1, 2)
    assert draw_graph(causal(), ax=a) is a
    assert draw_matrix(causal(), ax=b) is b
    with pytest.raises(TypeError, match="ax"):
        draw_graph(causal(), ax="not axes")


def weights_causal(n=4):
    g = causal(n, tokens=None)
    w = 1.0 / (g.dst.double() + 1)  # (E,) uniform over each target's incoming edges
    return g, w


def test_matrix_values_mask_and_nonedges_distinct():
    g = window()
    w = torch.rand(g.num_edges, 2)
    ax = draw_matrix(g, w, head=1)
    grid = find_artist(ax, "matrix").get_array()
    np.testing.assert_array_equal(grid.mask, ~g.to_dense_mask().numpy())
    np.testing.assert_allclose(grid.data[g.dst, g.src], w[:, 1].numpy())
    background = find_artist(ax, "nonedges")
    assert background.get_hatch()
    assert background.get_zorder() < find_artist(ax, "matrix").get_zorder()
    cmap = plt.get_cmap(style.WEIGHT_CMAP)(np.linspace(0, 1, 256))[:, :3]
    gap = np.abs(cmap - np.array(to_rgb(style.NONEDGE_COLOR))).sum(1).min()
    assert gap > 0.2  # the non-edge grey is no colour of the weight colormap
    assert find_artist(ax, "matrix").colorbar is not None
    assert "head 1" in ax.get_title()
    assert set(TOKENS) <= texts(ax)


def test_matrix_mean_head_and_shared_scale():
    g = window()
    w = torch.rand(g.num_edges, 3)
    ax = draw_matrix(g, w, vmin=0.0, vmax=2.0, colorbar=False)
    im = find_artist(ax, "matrix")
    np.testing.assert_allclose(im.get_array().data[g.dst, g.src], w.double().mean(1).numpy())
    assert im.get_clim() == (0.0, 2.0) and im.colorbar is None
    with pytest.raises(ValueError, match="head"):
        draw_matrix(g, w, head=3)
    with pytest.raises(ValueError, match="head"):
        draw_matrix(g, w, head=[0, 1])
    with pytest.raises(ValueError, match=r"weights.*\(E,\)"):
        draw_matrix(g, torch.rand(g.num_edges + 1))
    with pytest.raises(ValueError, match="NaN"):
        draw_matrix(g, torch.full((g.num_edges,), float("nan")))


def test_bare_mask_has_legend_and_one_colour():
    ax = draw_matrix(cross())
    im = find_artist(ax, "matrix")
    assert im.colorbar is None and ax.get_legend() is not None
    assert im.get_array().count() == 4  # four unmasked cells, one per edge


def test_matrix_binning_exact_and_rows_sum_to_one():
    g, w = weights_causal(4)
    ax = draw_matrix(g, w, max_tokens=2)
    grid = find_artist(ax, "matrix").get_array()
    assert grid.shape == (2, 2) and bool(grid.mask[0, 1])
    assert grid[1, 0] == pytest.approx((2 / 3 + 1 / 2) / 2)  # mean attention of targets 2, 3
    np.testing.assert_allclose(grid.filled(0).sum(1), [1.0, 1.0])
    assert "groups of 2" in ax.get_title()


def test_large_matrix_is_binned():
    g = causal(600, tokens=None)
    ax = draw_matrix(g)
    assert find_artist(ax, "matrix").get_array().shape == (300, 300)
    assert "binned" in ax.get_title()


def test_pattern_titles_and_gallery():
    g = causal()
    ax = draw_pattern(g)
    assert ax.get_title().splitlines() == ["causal", "N=5, E=15, density=0.6"]
    axes = draw_patterns([g, window(), cross()], ncols=2)
    assert len(axes) == 3 and axes[1].get_title().startswith("pattern")
    assert len(axes[0].figure.legends) == 1
    with pytest.raises(ValueError, match="ax holds 1"):
        draw_patterns([g, g], ax=[axes[0]])
    with pytest.raises(ValueError, match="empty"):
        draw_patterns([])


@pytest.mark.parametrize(
    "suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")]
)
def test_save_every_format(tmp_path, suffix, magic):
    ax = draw_graph(causal())
    path = save_figure(ax.figure, tmp_path / f"g{suffix}")
    assert path.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [f"g{suffix}"]  # no temporary left


def test_save_rejects_bad_paths_without_writing(tmp_path):
    fig = draw_graph(causal()).figure
    with pytest.raises(ValueError, match=r"\.png"):
        save_figure(fig, tmp_path / "g.jpg")
    with pytest.raises(ValueError, match="folder"):
        save_figure(fig, tmp_path / "missing" / "g.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("causal", [True, False])
def test_every_arc_drawing_says_its_direction(causal):
    g = patterns.sliding_window(8, 2, causal=causal)
    ax = draw_graph(g, "arc")
    (note,) = [t for t in ax.texts if t.get_gid() == "direction"]
    expected = "every arc: earlier" if causal else "arcs above: earlier \u2192 later token; below"
    assert note.get_text().startswith(expected)


def test_join_notes_distinct_sorted_and_none_without_notes():
    from graphattn.plot.graph import join_notes

    assert join_notes([None, "pruned: b", "pruned: a", "pruned: b"]) == "pruned: a; pruned: b"
    assert join_notes([None, None]) is None
    assert join_notes([]) is None
    assert join_notes(iter(["x"])) == "x"  # any iterable, read once
