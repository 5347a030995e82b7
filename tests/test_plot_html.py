"""to_html without a browser: the embedded data, escaping, labels, pruning and atomic writing."""

import os
import re

import pytest
import torch
from viewer_page import page_data

from graphattn import TokenGraph, graph_attention, patterns
from graphattn.plot import to_html


def attended(graph, heads=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(graph.num_nodes, heads, 4, generator=gen)
    k = torch.randn(graph.num_src_nodes, heads, 4, generator=gen)
    return graph_attention(q, k, k, graph, return_weights=True)[1]


def test_every_layer_head_and_edge_is_embedded(tmp_path):
    g = patterns.sliding_window(6, 2)
    cross = patterns.cross(2, 6)
    layers = [(g, attended(g, 3)), (g, attended(g, 3, seed=1)), (cross, attended(cross, 2))]
    path = to_html(layers, tmp_path / "a.html", src_tokens=list("abcdef"))
    text, data = page_data(path)
    assert [len(L["w"]) for L in data["layers"]] == [3, 3, 2]
    for L, (graph, w) in zip(data["layers"], layers, strict=True):
        assert L["src"] == graph.src.tolist() and L["dst"] == graph.dst.tolist()
        assert torch.allclose(torch.tensor(L["w"], dtype=torch.float64).t(), w.double(), atol=1e-5)
        assert L["cross"] == graph.is_cross and L["note"] == ""
    assert data["layers"][2]["srcTokens"] == list("abcdef")
    assert data["layers"][2]["tokens"] == ["0", "1"]
    # self-contained: inline script and style, no external reference, network forbidden by CSP
    assert "<script src" not in text and "<link rel=\"stylesheet\"" not in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text)
    assert "default-src 'none'" in text
    assert "function render()" in text and ".ga-token" in text


def test_labels_are_escaped_and_bare_graphs_drawn(tmp_path):
    g = TokenGraph([[0, 1], [1, 1]], tokens=["</script><b>", "&amp;"])
    text, data = page_data(to_html([(g, None)], tmp_path / "b.html", title="<T>"))
    assert data["layers"][0]["tokens"] == ["</script><b>", "&amp;"]
    assert data["layers"][0]["weighted"] is False
    assert "<title>&lt;T&gt;</title>" in text and text.count("</script>") == 3  # data, layer, code


def test_long_layers_are_pruned_and_say_so(tmp_path):
    g = patterns.causal(200)  # 20,100 edges
    w = attended(g, 1)
    _, data = page_data(to_html([(g, w)], tmp_path / "c.html", max_edges_per_target=5))
    L = data["layers"][0]
    assert len(L["src"]) == 1 + 2 + 3 + 4 + 5 * 196 and len(L["w"][0]) == len(L["src"])
    assert "strongest 5 incoming edges per target" in L["note"]
    assert "of 20,100 edges omitted" in L["note"]


def test_errors_write_nothing(tmp_path):
    g = patterns.causal(3)
    w = attended(g)
    with pytest.raises(ValueError, match=r"\.html"):
        to_html([(g, w)], tmp_path / "x.png")
    with pytest.raises(ValueError, match="tokens has 2 labels but layer 0 has 3"):
        to_html([(g, w)], tmp_path / "x.html", tokens=["a", "b"])
    with pytest.raises(ValueError, match=r"layers\[0\]\[1\]"):
        to_html([(g, w[:-1])], tmp_path / "x.html")
    with pytest.raises(TypeError, match="pair"):
        to_html(g, tmp_path / "x.html")
    assert list(tmp_path.iterdir()) == []


def test_written_atomically_with_plain_permissions(tmp_path):
    g = patterns.causal(3)
    path = to_html([(g, attended(g))], tmp_path / "d.html")
    assert [p.name for p in tmp_path.iterdir()] == ["d.html"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_scripts_are_allowed_by_hash_not_by_unsafe_inline(tmp_path):
    import base64
    import hashlib

    from graphattn.plot import to_html

    g = TokenGraph([[0, 1], [1, 1]], tokens=["a", "b"])
    text = to_html([(g, None)], tmp_path / "v.html").read_text(encoding="utf-8")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', text).group(1)
    script_src = next(p.strip() for p in csp.split(";") if p.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src
    scripts = re.findall(r"<script>(.*?)</script>", text, flags=re.S)  # executable ones
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode("utf-8")).digest()).decode()
    assert script_src == f"script-src 'sha256-{digest}'"


def test_long_sequence_page_stays_small_and_says_what_it_pruned(tmp_path):
    g = patterns.get("sliding_window", 4096, window=62, causal=False)  # 500,026 edges
    w = torch.rand(g.num_edges, 12, generator=torch.Generator().manual_seed(0))  # (E, 12)
    path = to_html([(g, w), (g, w)], tmp_path / "long.html")
    _, data = page_data(path)
    assert path.stat().st_size < 20 * 2**20
    note = data["layers"][0]["note"]
    assert "the mean of 12 heads" in note and len(data["layers"][0]["tokens"]) == 4096
