"""Notebook display without a notebook: show/Viewer, model outputs and TokenGraph reprs."""

import html
import re
import xml.etree.ElementTree as ET

import pytest
import torch

from graphattn import GraphLM, GraphTransformer, TokenGraph, graph_attention, patterns
from graphattn.nn.display import register_layers_html, registered_layers_html
from graphattn.plot import Viewer, show, to_html
from graphattn.plot.html import page_title, render_page

TOKENS = "the cat sat on the mat".split()


def layers_of(graph, heads=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(graph.num_nodes, heads, 4, generator=gen)
    return [(graph, graph_attention(x, x, x, graph, return_weights=True)[1])]


def srcdoc(frame):
    # the frame, then the script that sizes it to the page inside (SIZER)
    match = re.fullmatch(r'<iframe srcdoc="([^"]*)" [^>]*></iframe><script>[^<]*</script>', frame)
    assert match, frame[:200]
    return html.unescape(match.group(1))


def test_show_frames_the_page_that_save_and_to_html_write(tmp_path):
    layers = layers_of(patterns.causal(6))
    viewer = show(layers, TOKENS)
    assert isinstance(viewer, Viewer)
    frame = viewer._repr_html_()
    assert 'sandbox="allow-scripts"' in frame and "<script" not in frame.split('srcdoc="')[0]
    page = srcdoc(frame)
    assert page == viewer.page
    saved = viewer.save(tmp_path / "v.html")
    written = to_html(layers, tmp_path / "t.html", tokens=TOKENS)
    assert saved.read_text() == written.read_text() == page
    # the frame keeps the page whole: its CSP meta stays in the frame's own <head>
    assert "<head>" in page and "default-src 'none'" in page.split("</head>")[0]


def test_viewer_save_checks_the_path_and_writes_nothing(tmp_path):
    viewer = show(layers_of(patterns.causal(3)))
    with pytest.raises(ValueError, match=r"\.html"):
        viewer.save(tmp_path / "v.png")
    assert list(tmp_path.iterdir()) == []
    viewer.save(tmp_path / "v.html")
    assert [p.name for p in tmp_path.iterdir()] == ["v.html"]


def test_two_viewers_share_no_element_id():
    page = render_page(layers_of(patterns.causal(4)))
    assert not re.search(r"\sid=", page)  # every element found from its viewer's root
    assert page.count('class="graphattn-viewer"') == 1
    assert "document.getElementById" not in page and "currentScript" in page


def test_title_names_text_and_graph():
    g = patterns.sliding_window(12, 2)
    title = page_title([(g, None)], [f"w{k}" for k in range(12)])
    assert title.startswith("“w0 w1 w2 w3 w4 w5 w6 w7 …”")
    assert f"{g.name}, N=12, E={g.num_edges}" in title and title.endswith("1 layer")
    cross = patterns.cross(2, 5)
    assert "N=2, M=5" in page_title([(cross, None)])
    assert show([(g, None)], title="<mine>")._repr_html_().count("&lt;mine&gt;") == 1


def test_model_outputs_display_as_viewers():
    g = patterns.causal(5)
    model = GraphTransformer(d_model=8, num_heads=2, num_layers=2)
    out = model(torch.randn(5, 8), g, need_weights=True)
    page = srcdoc(out._repr_html_())
    assert page.count('"n":5') == 2  # both layers embedded
    assert model(torch.randn(5, 8), g)._repr_html_() is None  # no layers: plain repr
    lm = GraphLM(10, 8, 2, 2, max_len=8)
    lm_page = srcdoc(lm(torch.randint(10, (2, 5)), need_weights=True)._repr_html_())
    assert "graphattn-data" in lm_page


def test_layers_renderer_is_a_replaceable_hook():
    old = registered_layers_html()
    with pytest.raises(TypeError, match="renderer must be callable"):
        register_layers_html("html")
    try:
        register_layers_html(None)
        g = patterns.causal(3)
        out = GraphTransformer(d_model=4, num_heads=1, num_layers=1)(
            torch.randn(3, 4), g, need_weights=True
        )
        assert out._repr_html_() is None
    finally:
        register_layers_html(old)


@pytest.mark.parametrize("n", [6, 300, 4096])
def test_token_graph_svg_is_small_and_valid(n):
    g = patterns.get("bigbird", n, window=3, num_global=1, num_random=1)
    svg = g._repr_svg_()
    root = ET.fromstring(svg)
    rects = root.findall("{http://www.w3.org/2000/svg}rect")
    assert 1 < len(rects) <= 1 + 64 * 64
    assert float(root.get("width")) <= 280 and float(root.get("height")) <= 240 + 50
    assert root.get("aria-label") == repr(g) and (("64x64 bins" in svg) == (n > 64))
    assert f"N={n}, E={g.num_edges:,}" in svg
    labelled = TokenGraph.from_tokens(TOKENS, "causal")
    assert len(ET.fromstring(labelled._repr_svg_()).findall(
        "{http://www.w3.org/2000/svg}rect")) == 1 + labelled.num_edges
