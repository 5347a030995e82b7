"""Files the plot functions write are well-formed, or refused before writing (naming the arg)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from graphattn import patterns, plot  # noqa: E402
from graphattn.graph import TokenGraph  # noqa: E402

LONE = "\ud800"


def test_a_lone_surrogate_label_is_refused_naming_tokens_by_show_and_to_html(tmp_path):
    g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    for call in (
        lambda: plot.to_html([(g, None)], tmp_path / "a.html", tokens=["ok", "x" + LONE]),
        lambda: plot.show([(g, None)], tokens=["ok", "x" + LONE]),
    ):
        with pytest.raises(ValueError, match=r"tokens\[1\] holds a lone surrogate"):
            call()
    with pytest.raises(ValueError, match=r"layers\[0\]\[0\].tokens\[0\] holds a lone"):
        plot.to_html([(g.with_tokens([LONE, "b"]), None)], tmp_path / "b.html")
    with pytest.raises(ValueError, match=r"title\[0\] holds a lone"):
        plot.to_html([(g, None)], tmp_path / "c.html", title=LONE)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["bad\x01name", "form\x0cfeed", "nul\x00"])
def test_control_characters_and_surrogates_in_names_give_valid_svg(tmp_path, name):
    g = TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["a", "b\x02"], name=name)
    for ax in (plot.draw_pattern(g), plot.draw_graph(g, "arc")):
        path = plot.save_figure(ax.figure, tmp_path / "g.svg")
        ET.parse(path)  # well-formed XML
        assert "\ufffd" in path.read_text(encoding="utf-8")
        plt.close(ax.figure)


def test_a_lone_surrogate_in_a_graph_is_refused_by_every_drawing(tmp_path):
    g = TokenGraph([[0, 0, 1], [0, 1, 1]], tokens=["a", "b"])
    for bad, where in ((g.with_tokens(["a", LONE]), r"graph.tokens\[1\]"),
                       (TokenGraph([[0], [1]], name="x" + LONE), r"graph.name\[0\]")):
        for draw in (plot.draw_pattern, plot.draw_matrix, lambda x: plot.draw_graph(x, "arc")):
            with pytest.raises(ValueError, match=where + " holds a lone surrogate"):
                draw(bad)
    plt.close("all")


def test_complex_weights_are_refused():
    g = patterns.causal(3)
    w = torch.ones(g.num_edges, 2, dtype=torch.complex64)
    with pytest.raises(TypeError, match="weights must hold real numbers, got dtype torch.complex"):
        plot.draw_attention(g, w)
    with pytest.raises(TypeError, match=r"layers\[0\]\[1\] must hold real numbers"):
        plot.show([(g, w)])


def test_src_tokens_on_a_self_graph_are_refused(tmp_path):
    g = patterns.causal(3)
    with pytest.raises(ValueError, match="src_tokens label the sources of cross graphs"):
        plot.to_html([(g, None)], tmp_path / "x.html", src_tokens=["a", "b", "c"])
    with pytest.raises(ValueError, match="src_tokens label the sources of cross graphs"):
        plot.show([(g, None)], src_tokens=["a", "b", "c"])
    cross = patterns.cross(2, 3)
    assert plot.show([(cross, None)], src_tokens=["x", "y", "z"]).page
