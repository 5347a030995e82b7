"""A TokenGraph's notebook drawing: a readable title, token labels on its rows and columns."""

import xml.etree.ElementTree as ET

from graphattn import TokenGraph, patterns

SVG = "{http://www.w3.org/2000/svg}"


def texts(graph):
    root = ET.fromstring(graph._repr_svg_())
    labels = [t for t in root.iter(f"{SVG}text") if t.get("class") == "label"]
    rows = [t.text for t in labels if t.get("text-anchor") == "end"]
    cols = [t.text for t in labels if t.get("transform")]
    captions = [t.text for t in root.iter(f"{SVG}text") if t.get("class") != "label"]
    return rows, cols, captions


def test_rows_and_columns_carry_the_tokens_and_the_title_names_the_text():
    g = TokenGraph.from_tokens("The sky is blue today", pattern="causal")
    rows, cols, captions = texts(g)
    assert rows == cols == ["The", "sky", "is", "blue", "today"]
    assert captions[0] == "causal on “The sky is blue today”"
    assert captions[1] == "N=5, E=15, density=0.6"
    assert "row i attends to column j" in captions[2]


def test_cross_graphs_label_targets_and_sources_apart():
    g = patterns.cross(2, 3).with_tokens(["x", "y"], ["a", "b", "c"])
    rows, cols, _ = texts(g)
    assert rows == ["x", "y"] and cols == ["a", "b", "c"]


def test_small_cells_label_every_few_tokens_and_bins_none():
    words = [f"word{k}" for k in range(40)]
    rows, cols, captions = texts(patterns.causal(40).with_tokens(words))
    assert rows == cols == words[::2]  # 6 px cells: every second label, 12 px apart
    assert captions[0].startswith("causal on “word0 word1") and captions[0].endswith(" …”")
    rows, cols, captions = texts(patterns.causal(300).with_tokens([str(k) for k in range(300)]))
    assert rows == cols == [] and "64x64 bins" in captions[1]


def test_labels_are_escaped_and_shortened():
    g = TokenGraph([[0, 1], [1, 1]], tokens=["</svg><b>", "a-very-long-token-label"])
    rows, _, _ = texts(g)  # parses: the labels are escaped
    assert rows == ["</svg><b>", "a-very-long…"]
