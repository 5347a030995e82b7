"""``graphattn draw``: every output format, saved graphs, clear errors that write nothing."""

import pytest

from graphattn import TokenGraph, cli, patterns
from graphattn.commands.draw import parse_value

MAGIC = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF", ".html": b"<!DOCTYPE html>"}


@pytest.fixture(autouse=True)
def only_draw(monkeypatch):
    """Test ``draw`` through ``cli.main`` independently of the other subcommands."""
    monkeypatch.setattr(cli, "COMMANDS", ["draw"])


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf", ".html"])
def test_pattern_to_every_format(tmp_path, capsys, suffix):
    out = tmp_path / f"window{suffix}"
    code = cli.main(["draw", "sliding_window", "--n", "12", "--window", "3", "-o", str(out)])
    assert code == 0
    assert out.read_bytes().startswith(MAGIC[suffix])
    assert "sliding_window(w=3)" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


@pytest.mark.parametrize("view", ["arc", "circle", "matrix", "reach", "layered"])
def test_views_params_and_tokens(tmp_path, view):
    out = tmp_path / "g.png"
    argv = ["draw", "bigbird", "--param", "num_random=1", "--param", "seed=3",
            "--tokens", "a b c d e f g h", "--view", view, "--layers", "2", "-o", str(out)]
    assert cli.main(argv) == 0 and out.stat().st_size > 0


def test_saved_graph(tmp_path):
    saved = patterns.cross(3, 5).with_tokens(list("xyz"), list("abcde")).save(tmp_path / "g.json")
    for name in ("g.svg", "g.html"):
        assert cli.main(["draw", "--graph", str(saved), "-o", str(tmp_path / name)]) == 0
    assert "abcde" not in (tmp_path / "g.html").read_text()  # labels are separate strings
    assert '["a","b","c","d","e"]' in (tmp_path / "g.html").read_text()  # source labels


def test_unknown_pattern_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "x.png"
    assert cli.main(["draw", "no_such_pattern", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown pattern 'no_such_pattern'" in err and "sliding_window" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["draw", "causal", "-o", "{d}/x.jpg"], "-o must end in one of .png, .svg, .pdf, .html"),
        (["draw", "causal", "-o", "{d}/missing/x.png"], "folder of -o does not exist"),
        (["draw", "-o", "{d}/x.png"], "exactly one"),
        (["draw", "causal", "--graph", "{d}/g.json", "-o", "{d}/x.png"], "exactly one"),
        (["draw", "sliding_window", "-o", "{d}/x.png"], "bad parameters for pattern"),
        (["draw", "causal", "--param", "oops", "-o", "{d}/x.png"], "KEY=VALUE"),
        (["draw", "causal", "--n", "3", "--tokens", "a b", "-o", "{d}/x.png"], "--tokens has 2"),
        (["draw", "cross", "--param", "n_src=4", "--view", "reach", "-o", "{d}/x.png"], "self"),
        (["draw", "--graph", "{d}/none.json", "-o", "{d}/x.png"], "No such file"),
    ],
)
def test_bad_arguments_exit_2_without_output(tmp_path, capsys, argv, message):
    argv = [a.format(d=tmp_path) for a in argv]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unknown_view_is_an_argparse_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main(["draw", "causal", "--view", "pie", "-o", str(tmp_path / "x.png")])
    assert exc.value.code == 2


def test_parse_value_and_saved_graph_round_trip(tmp_path):
    assert parse_value("1,2,3") == [1, 2, 3] and parse_value("False") is False
    g = TokenGraph([[0, 1], [1, 2]], tokens=["a", "b", "c"], name="chain")
    path = g.save(tmp_path / "chain.json")
    assert cli.main(["draw", "--graph", str(path), "--view", "circle", "-o",
                     str(tmp_path / "chain.pdf")]) == 0
