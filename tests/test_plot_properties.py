"""Property tests on random graphs: edges drawn one for one, masks exact, pruning by rank."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from graphattn import TokenGraph  # noqa: E402
from graphattn.plot import draw_attention, draw_graph, draw_matrix, find_artist, prune  # noqa: E402


@st.composite
def graphs(draw, cross=None):
    is_cross = draw(st.booleans()) if cross is None else cross
    n = draw(st.integers(1, 9))
    m = draw(st.integers(1, 9)) if is_cross else n
    mask = draw(st.lists(st.booleans(), min_size=n * m, max_size=n * m))
    mask = torch.tensor(mask, dtype=torch.bool).view(n, m)
    mask[0, 0] = True  # at least one edge
    return TokenGraph.from_dense_mask(mask, cross=is_cross)


@settings(max_examples=8, deadline=None)
@given(graphs(), st.sampled_from(["auto", "bipartite", "circle", "layered"]))
def test_every_edge_is_drawn_once(g, layout):
    ax = draw_graph(g, layout)
    paths = [p.vertices for p in find_artist(ax, "edges").get_paths()]
    assert len(paths) == g.num_edges
    plt.close("all")


@settings(max_examples=8, deadline=None)
@given(graphs(), st.data())
def test_matrix_is_the_mask_and_the_weights(g, data):
    w = torch.tensor(
        data.draw(st.lists(st.floats(0, 1), min_size=g.num_edges, max_size=g.num_edges)),
        dtype=torch.float64,
    )
    grid = find_artist(draw_matrix(g, w), "matrix").get_array()
    np.testing.assert_array_equal(grid.mask, ~g.to_dense_mask().numpy())
    np.testing.assert_allclose(grid.data[g.dst, g.src], w.numpy())
    plt.close("all")


@settings(max_examples=25, deadline=None)
@given(graphs(), st.integers(1, 4), st.data())
def test_top_k_keeps_the_strongest_incoming_edges(g, k, data):
    v = torch.tensor(
        data.draw(st.lists(st.floats(0, 1), min_size=g.num_edges, max_size=g.num_edges)),
        dtype=torch.float64,
    )
    keep, _ = prune(g, v, top_k=k)
    for i in range(g.num_nodes):
        mine = g.dst == i
        kept, dropped = v[mine & keep], v[mine & ~keep]
        assert len(kept) == min(k, int(mine.sum()))
        if len(dropped):
            assert kept.min() >= dropped.max()


@settings(max_examples=6, deadline=None)
@given(graphs(cross=False), st.data())
def test_attention_alpha_is_monotone_in_weight(g, data):
    w = torch.tensor(
        data.draw(st.lists(st.floats(0, 1), min_size=g.num_edges, max_size=g.num_edges)),
        dtype=torch.float64,
    )
    edges = find_artist(draw_attention(g, w, head=0), "edges-0")
    alpha = edges.get_colors()[:, 3]
    order = np.argsort(w.numpy(), kind="stable")
    assert np.all(np.diff(alpha[order]) >= -1e-12)
    plt.close("all")
