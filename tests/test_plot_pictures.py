"""The committed pictures' faults: labels cut off, missing, rotated unevenly or overlapping."""

from __future__ import annotations

import matplotlib
import torch

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from graphattn import patterns, plot  # noqa: E402

WORDS = ["small", "bird", "sees", "red", "man", "<eos>"]


def inside(fig, artist) -> bool:
    """Whether ``artist`` lies on the canvas as last drawn (no new layout pass)."""
    box = artist.get_window_extent(fig.canvas.get_renderer())
    return box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1


def test_saved_matrices_beside_a_bipartite_panel_keep_their_axis_labels(tmp_path):
    # 09-cross.png: the first constrained-layout pass measured the matrices before their
    # fixed aspect applied, so the saved picture cut off "source j (key)".
    g = patterns.full(6).with_tokens(WORDS)
    w = torch.rand(g.num_edges, 1, generator=torch.Generator().manual_seed(0))
    fig, axes = plt.subplots(1, 3, figsize=(19, 6.5), layout="constrained")
    plot.draw_attention(g, w, ax=axes[0], top_k=2)
    plot.draw_matrix(g, w, ax=axes[1])
    plot.draw_matrix(g, w, ax=axes[2])
    fig.suptitle("two matrices and a bipartite graph")
    plot.save_figure(fig, tmp_path / "cross.png")
    for ax in axes[1:]:
        assert ax.get_xlabel() and inside(fig, ax.xaxis.label)
        assert all(inside(fig, t) for t in ax.get_xticklabels() if t.get_text())
    plt.close(fig)


def test_bipartite_head_grid_names_the_tokens_at_its_outer_edges():
    # 02-heads.png: every thumbnail hid its token labels, so the grid named no token.
    g = patterns.full(4).with_tokens(["the", "sky", "is", "blue"])
    w = torch.rand(g.num_edges, 3, generator=torch.Generator().manual_seed(0))
    axes = plot.draw_heads([(g, w), (g, w)], view="bipartite")

    def shown(ax, gid):
        return [t.get_text() for t in ax.texts if t.get_visible() and t.get_gid() == gid]

    for row in axes:
        assert shown(row[0], "labels-src") == ["the", "sky", "is", "blue"]
        assert shown(row[-1], "labels-dst") == ["the", "sky", "is", "blue"]
        assert not shown(row[1], "labels-src") and not shown(row[1], "labels-dst")
    plt.close("all")


def test_arc_panels_side_by_side_rotate_their_labels_alike():
    # 07-word.png: "deposited" rotated the second text's labels, the first stayed level.
    from graphattn.plot.labels import same_angle

    fig, panels = plt.subplots(2, 1, figsize=(13, 7), layout="constrained")
    texts = (["he", "left", "roses"], ["she", "deposited", "money"])
    for ax, words in zip(panels, texts, strict=True):
        g = patterns.full(3).with_tokens(words)
        plot.draw_attention(g, torch.ones(g.num_edges), layout="arc", ax=ax)
    angles = {t.get_rotation() for ax in panels for t in ax.texts if t.get_gid() == "labels-dst"}
    assert len(angles) == 2  # as drawn: level and turned
    assert same_angle(panels) == 60
    angles = {t.get_rotation() for ax in panels for t in ax.texts if t.get_gid() == "labels-dst"}
    assert angles == {60}
    plt.close(fig)


def boxes_overlap(texts) -> list[tuple[str, str]]:
    boxes = [(t.get_text(), t.get_window_extent()) for t in texts]
    return [
        (a, b)
        for k, (a, box_a) in enumerate(boxes)
        for b, box_b in boxes[k + 1:]
        if box_a.overlaps(box_b)
    ]


def test_labels_at_coinciding_line_ends_do_not_overprint():
    from graphattn.plot.labels import BESIDE, place_labels

    fig, ax = plt.subplots(layout="constrained")
    ends = [(5, 0.46), (5, 0.461), (5, 0.459), (5, 0.52)]
    for _, y in ends:
        ax.plot([0, 5], [0, y], color="0.7")
    texts = place_labels(ax, ends, ["the", "the", "[SEP]", "."], BESIDE, marker_pt=0.0)
    fig.draw_without_rendering()
    assert boxes_overlap(texts) == []
    plt.close(fig)


def test_accuracy_plot_labels_overprint_neither_each_other_nor_points():
    # accuracy.png: "window 8, 5 layers" over "bigbird", "window 24" over "full causal".
    import json
    from pathlib import Path

    from graphattn.experiments.report import plot_accuracy

    root = Path(__file__).resolve().parents[1] / "docs" / "img" / "experiments"
    for path in (root / "results.json", root / "four_pairs" / "results.json"):
        results = json.loads(path.read_text())
        left, _ = plot_accuracy(results)
        fig = left.figure
        fig.draw_without_rendering()
        assert len(left.texts) == len(results["patterns"])
        assert boxes_overlap(left.texts) == []
        points = left.transData.transform([(o.get_offsets()[0]) for o in left.collections])
        frame = left.get_window_extent()
        for t in left.texts:
            box = t.get_window_extent()
            assert not any(box.contains(*p) for p in points), t.get_text()
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1, t.get_text()  # not over the ticks
        plt.close(fig)


def test_the_drift_picture_and_tables_show_one_statistic_and_say_which(monkeypatch, tmp_path):
    # The terminal printed the mean over the texts (0.731), the picture text 1's value (0.675).
    from types import SimpleNamespace

    from graphattn.demo import figures, page

    g = patterns.full(3).with_tokens(["a", "bank", "b"])
    drift = {"full": {"graph": g, "sentence": [0.7, 0.8], "word": [0.5, 0.6],
                      "tokens": torch.ones(3)}}
    run = SimpleNamespace(word="bank", tokens=[["a", "bank", "b"]] * 2)
    figs = []
    monkeypatch.setattr(figures, "_save", lambda fig, path, dpi=110: figs.append(fig))
    figures.fig_patterns(run, drift, tmp_path / "p.png")
    title = figs[0].axes[0].get_title()
    assert "mean over the 2 texts" in title and "sentence cos 0.750" in title
    assert "'bank' cos 0.550" in title
    rows, which = page._drift_rows(drift)
    assert which == "mean over the 2 texts" and rows[0][1:] == (0.75, 0.55)
    assert "mean over the 2 texts" in page._drift_table("bank", rows, which)
    plt.close("all")
