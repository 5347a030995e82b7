"""Sizes and inputs refused by name before any work (issue 17)."""

import json

import pytest

from graphattn import TokenGraph


def test_sizes_whose_edge_keys_overflow_int64_are_refused_with_the_limit_named():
    with pytest.raises(ValueError, match=r"num_nodes \* num_src_nodes .* 2\*\*63"):
        TokenGraph([[2**33 - 1, 3], [2**33 - 1, 2**33 - 2]], 2**33)
    with pytest.raises(ValueError, match=r"2\*\*63"):
        TokenGraph([[0], [0]], 2**40, num_src_nodes=2**23)
    with pytest.raises(ValueError, match=r"2\*\*63"):
        TokenGraph([[0], [0]], 10**30)
    g = TokenGraph([[0], [0]], 2**31, num_src_nodes=2**31)  # N * M = 2**62 still fits
    assert g.edge_index.tolist() == [[0], [0]]


def test_load_refuses_a_small_file_claiming_sizes_that_overflow(tmp_path):
    big = 2**40
    meta = {"format": "graphattn.TokenGraph", "version": 1, "num_nodes": big,
            "num_src_nodes": big, "cross": False, "edge_index": [[big - 1], [big - 1]]}  # fmt: skip
    path = tmp_path / "big.json"
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"big.json holds an invalid graph: .*2\*\*63"):
        TokenGraph.load(path)


def test_head_major_tensors_are_refused_with_the_expected_layout_named():
    import torch

    from graphattn import graph_attention
    from graphattn.variants import COSINE, variant_attention

    g = TokenGraph([[0, 1, 2, 3, 4], [1, 2, 3, 4, 4]])  # N = 5
    q = torch.zeros(2, 5, 4)  # head-major (H, N, D) instead of node-major (N, H, D)
    calls = (lambda: graph_attention(q, q, q, g), lambda: variant_attention(q, q, q, g, COSINE))
    for call in calls:
        with pytest.raises(ValueError, match=r"node-major \(N, H, D\).*head-major \(H, N, D\)"):
            call()


# ------------------------------------------------- errors of the wrong kind (issue 17)
def _npz(path, meta, edge_index=None):
    import numpy as np

    arrays = {"meta": np.array(json.dumps(meta))}
    arrays["edge_index"] = np.zeros((2, 1), dtype=np.int64) if edge_index is None else edge_index
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_load_refuses_odd_files_with_a_value_error_naming_the_file(tmp_path):
    import zipfile

    _npz(tmp_path / "list.npz", [1, 2])
    with pytest.raises(ValueError, match="list.npz"):
        TokenGraph.load(tmp_path / "list.npz")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="deep.json"):
        TokenGraph.load(tmp_path / "deep.json")
    TokenGraph([[0], [0]]).save(tmp_path / "big.npz")
    with zipfile.ZipFile(tmp_path / "big.npz") as z:
        raw = z.read("edge_index.npy")
        meta = z.read("meta.npy")
    header = raw[: raw.index(b"\n") + 1].replace(b"(2, 1)", b"(2, 100000000000)")
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:  # a header claiming 1.46 TiB
        z.writestr("meta.npy", meta)
        z.writestr("edge_index.npy", header[:-1].ljust(len(header) - 1) + b"\n" + b"\0" * 16)
    with pytest.raises(ValueError, match="huge.npz"):
        TokenGraph.load(tmp_path / "huge.npz")


def test_graph_arguments_of_the_wrong_type_are_named():
    import torch

    with pytest.raises(TypeError, match="tokens must be a sequence of strings"):
        TokenGraph([[0], [0]], tokens=5)
    with pytest.raises(TypeError, match="edge_index must hold integers"):
        TokenGraph([["a"], ["b"]])
    with pytest.raises(ValueError, match=r"edge_index must have shape \(2, E\)"):
        TokenGraph([[0, 1], [0]])
    from graphattn import patterns

    with pytest.raises(TypeError, match="name must be a str"):
        patterns.get(["causal"], 8)
    with pytest.raises(ValueError, match="n must fit in an int64"):
        patterns.get("causal", 10**30)
    assert torch.is_tensor(patterns.get("causal", 3).edge_index)


def test_attention_flow_without_targets_and_to_html_without_title_are_named(tmp_path):
    import torch

    from graphattn.flow import attention_flow

    g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    layers = [(g, torch.tensor([1.0, 0.5, 0.5]))]
    with pytest.raises(TypeError, match="targets"):
        attention_flow(layers, None)
    from graphattn.plot import to_html

    with pytest.raises(TypeError, match="title must be a str"):
        to_html(layers, tmp_path / "v.html", title=5)  # None: the default title
    assert not (tmp_path / "v.html").exists()


def test_graph_attention_module_names_a_dtype_mismatch():
    import torch

    from graphattn.nn import GraphAttention

    g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    module = GraphAttention(8, 2)
    with pytest.raises(TypeError, match=r"x .*float64.*float32"):
        module(torch.zeros(2, 8, dtype=torch.float64), g)


def test_a_config_whose_task_is_not_a_table_is_named():
    from graphattn.experiments import config_from_dict

    with pytest.raises(ValueError, match="task must be a table"):
        config_from_dict({"task": "copy", "patterns": []})


def test_flex_refuses_float64_before_compiling():
    import torch

    from graphattn import graph_attention

    g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    q = torch.zeros(2, 1, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="float64"):
        graph_attention(q, q, q, g, backend="flex")


# ------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("dpi", ["1e6", "nan", "0", "-5"])
def test_draw_refuses_a_bad_dpi_before_drawing(tmp_path, capsys, monkeypatch, dpi):
    from graphattn import cli
    from graphattn.commands import draw

    drawn = []
    monkeypatch.setattr(draw, "build_graph", lambda args: drawn.append(1))
    assert cli.main(["draw", "causal", "--dpi", dpi, "-o", str(tmp_path / "x.png")]) == 2
    assert "--dpi" in capsys.readouterr().err
    assert drawn == [] and list(tmp_path.iterdir()) == []


def test_draw_to_an_unwritable_place_names_the_target(capsys):
    import os

    from graphattn import cli

    if not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc")
    assert cli.main(["draw", "causal", "--n", "3", "-o", "/proc/x.png"]) == 2
    err = capsys.readouterr().err
    assert "/proc/x.png" in err and ".tmp-" not in err


@pytest.mark.parametrize(
    "argv, message",
    [(["--heads", "0"], "--heads"), (["--dim", "-1"], "--dim"), (["--backend", "bogus"], "bogus")],
)
def test_bench_refuses_bad_options_before_any_case_and_writes_nothing(
    tmp_path, capsys, argv, message
):
    from graphattn import cli
    from graphattn.bench import runner

    monkeypatch = pytest.MonkeyPatch()
    launched = []
    monkeypatch.setattr(runner, "launch", lambda case, timeout: launched.append(case))
    try:
        out = tmp_path / "out"
        try:
            status = cli.main(["bench", "--quick", *argv, "--out", str(out)])
        except SystemExit as exc:  # refused by argparse
            status = exc.code
        assert status == 2
    finally:
        monkeypatch.undo()
    assert message in capsys.readouterr().err
    assert launched == [] and not out.exists()
