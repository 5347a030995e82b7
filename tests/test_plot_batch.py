"""Every plot takes batched layers, as record() and contributions() hold them: ``example=``.

The rule (graphattn.flow.batch): weights ``(B, E)`` or ``(B, E, H)`` draw
example ``example``; left out, a batch of one draws its only example and a
larger batch is a ValueError naming ``example``. Each drawing of example
``b`` equals the drawing of ``[(g, w[b]) for g, w in layers]``.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from graphattn import patterns  # noqa: E402
from graphattn.flow import attention_rollout, routes  # noqa: E402
from graphattn.plot import (  # noqa: E402
    draw_attention,
    draw_flow,
    draw_heads,
    draw_matrix,
    draw_rollout,
    draw_routes,
    find_artist,
    show,
    to_html,
)
from graphattn.plot.html import render_page  # noqa: E402

G = patterns.causal(5)  # E = 15


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def weights(b, heads=None, seed=0):
    """Rows normalized per target: ``(B, E, H)``, or ``(B, E)`` for ``heads=None``."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.rand(b, G.num_edges, heads or 1, generator=gen, dtype=torch.float64)
    sums = torch.zeros(b, G.num_nodes, heads or 1, dtype=torch.float64)
    w = w / sums.index_add(1, G.dst, w)[:, G.dst]  # (B, E, H): each target's row sums to 1
    return w if heads else w[..., 0]


def batched(b, heads=None):
    return [(G, weights(b, heads, seed)) for seed in range(2)]


def one(layers, b):
    return [(g, w[b]) for g, w in layers]


def edges(ax, gid="edges"):
    c = find_artist(ax, gid)
    return [p.vertices.tolist() for p in c.get_paths()], c.get_edgecolor().tolist()


def image(ax):
    return find_artist(ax, "matrix").get_array()


def test_draw_attention_and_matrix_draw_the_chosen_example():
    w = weights(3, heads=2)
    for b in (0, 2, -1):
        got, want = draw_attention(G, w, example=b, head=0), draw_attention(G, w[b], head=0)
        assert edges(got, "edges-0") == edges(want, "edges-0")
        assert np.array_equal(image(draw_matrix(G, w, example=b)), image(draw_matrix(G, w[b])))


def test_a_batch_of_one_needs_no_example_b_e_included():
    c = weights(1)  # (1, E): what contributions() returns per layer for one sequence
    assert edges(draw_attention(G, c), "edges-mean") == edges(draw_attention(G, c[0]), "edges-mean")
    assert np.array_equal(image(draw_matrix(G, c)), image(draw_matrix(G, c[0])))
    layers = batched(1)
    assert render_page(layers) == render_page(one(layers, 0))
    assert edges(draw_flow(layers)) == edges(draw_flow(one(layers, 0)))


@pytest.mark.parametrize("heads", [None, 2])
def test_draw_heads_and_flow_draw_the_chosen_example(heads):
    layers = batched(3, heads)
    got = draw_heads(layers, example=1)
    want = draw_heads(one(layers, 1))
    assert np.array_equal(got[1, 0].images[0].get_array(), want[1, 0].images[0].get_array())
    assert edges(draw_flow(layers, example=1)) == edges(draw_flow(one(layers, 1)))


def test_viewer_pages_show_the_chosen_example(tmp_path):
    layers = batched(2, heads=2)
    assert render_page(layers, example=1) == render_page(one(layers, 1))
    assert show(layers, example=1).page == show(one(layers, 1)).page
    path = to_html(layers, tmp_path / "b.html", example=0)
    assert path.read_text() == render_page(one(layers, 0))


def test_rollout_of_a_batch_draws_one_example():
    layers = batched(3)
    r = attention_rollout(layers)  # (B, N, N)
    got = draw_rollout(r, example=2).images[0].get_array()
    assert np.array_equal(got, draw_rollout(r[2]).images[0].get_array())
    with pytest.raises(ValueError, match=r"rollout hold a batch of 3 examples; pass example=b"):
        draw_rollout(r)
    with pytest.raises(ValueError, match=r"shape \(N, M\) or \(B, N, M\)"):
        draw_rollout(r[None], example=0)


def test_routes_of_a_batch_draw_one_example():
    layers = batched(2)
    both = routes(layers, target=4, threshold=0.2)  # one Routes per example
    got = draw_routes(both, example=1)
    want = draw_routes(routes(one(layers, 1), target=4, threshold=0.2))
    assert edges(got, "attention") == edges(want, "attention")
    with pytest.raises(ValueError, match="routes hold a batch of 2 examples"):
        draw_routes(both)
    with pytest.raises(ValueError, match="hold one example"):
        draw_routes(both[0], example=1)
    with pytest.raises(TypeError, match="a list of them"):
        draw_routes([both[0], "x"])


@pytest.mark.parametrize(
    "draw",
    [
        lambda layers, **kw: draw_attention(*layers[0], **kw),
        lambda layers, **kw: draw_matrix(*layers[0], **kw),
        draw_heads,
        draw_flow,
        show,
        render_page,
    ],
    ids=["attention", "matrix", "heads", "flow", "show", "render_page"],
)
def test_every_drawing_refuses_a_batch_without_example_and_a_bad_example(draw):
    layers = batched(2, heads=2)
    with pytest.raises(ValueError, match=r"batch of 2 examples; pass example=b with 0 <= b < 2"):
        draw(layers)
    with pytest.raises(ValueError, match=r"example must be in \[-2, 2\)"):
        draw(layers, example=2)
    with pytest.raises(TypeError, match="example"):
        draw(layers, example=0.5)
    with pytest.raises(ValueError, match="example=1 picks from a batch, but .* hold one example"):
        draw(one(layers, 0), example=1)


def test_to_html_refuses_a_batch_without_example_and_writes_nothing(tmp_path):
    path = tmp_path / "b.html"
    with pytest.raises(ValueError, match="pass example=b"):
        to_html(batched(2), path)
    assert not path.exists()


def test_layers_batched_unlike_are_named():
    layers = [(G, weights(2)[0]), (G, weights(2))]  # one example, then a batch
    with pytest.raises(ValueError, match=r"layers\[0\] has batch size None but layers\[1\] has 2"):
        draw_flow(layers, example=0)
