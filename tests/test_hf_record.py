"""graphattn.hf.record: its options (heads, dtype, layers, top_k), nesting, flow on batches."""

import pytest
import torch

pytest.importorskip("transformers", reason="hf extra not installed")

from hf_tiny import inputs, tiny  # noqa: E402

import graphattn.hf  # noqa: E402
from graphattn.flow import aggregate_heads, attention_rollout, prune_top_k, top_paths  # noqa: E402
from graphattn.graph import TokenGraph  # noqa: E402
from graphattn.hf.record import active_recordings  # noqa: E402


@pytest.fixture(scope="module")
def gpt2():
    return tiny("gpt2")


def forward(model, n=7, **options):
    """One forward of two examples inside record() and record(**options), nested."""
    batch = inputs("gpt2", n=n, pad=0)
    with torch.no_grad(), graphattn.hf.record() as exact, graphattn.hf.record(**options) as rec:
        model(**batch)
    return exact, rec


def test_defaults_keep_every_call_exactly(gpt2):
    exact, rec = forward(gpt2)
    assert len(rec.calls) == 2
    for a, b in zip(exact.calls, rec.calls, strict=True):
        assert a.weights is b.weights and a.graph is b.graph and b.dropped is None
        assert b.weights.shape == (2, a.graph.num_edges, 4) and b.weights.dtype == torch.float32


@pytest.mark.parametrize("mode", ["mean", "max", "min"])
def test_heads_reduce_inside_the_recording(gpt2, mode):
    exact, rec = forward(gpt2, heads=mode)
    for a, b in zip(exact.calls, rec.calls, strict=True):
        assert torch.equal(b.weights, aggregate_heads(a.weights, mode))  # (B, E)


@pytest.mark.parametrize("mode", ["mean", "max", "min", "norm"])
@pytest.mark.parametrize("pad", [0, 2])
def test_a_reducing_recording_alone_has_the_kernel_reduce_the_heads(gpt2, mode, pad, monkeypatch):
    """Alone, record(heads=mode) asks the attention call for (B, E) weights; nested with
    record(), the kernel returns every head and the recording reduces them: the same weights."""
    import graphattn.hf.attention as attention

    batch = inputs("gpt2", n=7, pad=pad)
    with torch.no_grad(), graphattn.hf.record(), graphattn.hf.record(heads=mode) as after:
        gpt2(**batch)
    asked, kernel = [], attention.graph_attention

    def counting(*args, **kwargs):
        asked.append(kwargs.get("head_reduction"))
        return kernel(*args, **kwargs)

    monkeypatch.setattr(attention, "graph_attention", counting)
    with torch.no_grad(), graphattn.hf.record(heads=mode) as rec:
        gpt2(**batch)
    assert asked == [mode, mode]
    for a, b in zip(after.calls, rec.calls, strict=True):
        assert b.weights.shape == a.weights.shape == (2, a.graph.num_edges)
        torch.testing.assert_close(b.weights, a.weights)


def test_dtype_and_layers(gpt2):
    exact, rec = forward(gpt2, dtype=torch.float16, layers=[1])
    assert [c.layer for c in rec.calls] == [1]
    assert torch.equal(rec.calls[0].weights, exact.calls[1].weights.half())
    _, rec = forward(gpt2, layers=0)
    assert [c.layer for c in rec.calls] == [0]


def test_layers_not_asked_for_run_without_weights(gpt2, monkeypatch):
    """record(layers=[1]) alone: layer 0's attention computes no weights."""
    import graphattn.hf.attention as attention

    asked, kernel = [], attention.graph_attention

    def counting(*args, **kwargs):
        asked.append(kwargs.get("return_weights", False))
        return kernel(*args, **kwargs)

    monkeypatch.setattr(attention, "graph_attention", counting)
    with torch.no_grad(), graphattn.hf.record(layers=[1]) as rec:
        gpt2(**inputs("gpt2", n=7, pad=0))
    assert asked == [False, True] and [c.layer for c in rec.calls] == [1]
    assert rec.skipped == [0]


def test_top_k_is_the_pruned_subgraph_with_its_dropped_mass(gpt2):
    exact, rec = forward(gpt2, top_k=2, heads="mean")
    for a, b in zip(exact.calls, rec.calls, strict=True):
        want = prune_top_k(a.graph, aggregate_heads(a.weights, "mean"), 2)
        assert torch.equal(b.graph.edge_index, want.graph.edge_index)
        assert torch.equal(b.weights, want.weights) and torch.equal(b.dropped, want.dropped)
        assert b.graph.num_edges < a.graph.num_edges
    got = attention_rollout(rec.self_attention, dropped=rec.dropped(None))  # (B, N, N)
    full = attention_rollout(exact.self_attention)
    lost = 1 - got.sum(-1)  # (B, N)
    assert bool((full - got >= -1e-6).all()) and float(lost.max()) > 0.01
    torch.testing.assert_close(lost, (full - got).sum(-1))


def test_top_k_at_least_the_length_is_the_exact_recording(gpt2):
    exact, rec = forward(gpt2, top_k=7)
    for a, b in zip(exact.calls, rec.calls, strict=True):
        assert b.graph is a.graph and b.weights is a.weights and not bool(b.dropped.any())
    for ex in range(2):
        layers, dropped = rec.layers(ex), rec.dropped(ex)
        assert torch.equal(attention_rollout(layers, dropped=dropped), attention_rollout(layers))
        assert top_paths(layers, 6, 0, dropped=dropped) == top_paths(exact.layers(ex), 6, 0)


def test_norm_heads_are_aggregate_heads_norm_without_the_output_projection():
    g = TokenGraph.from_dense_mask(torch.ones(4, 4, dtype=torch.bool).tril(), cross=False)
    gen = torch.Generator().manual_seed(0)
    w = torch.rand(2, g.num_edges, 4, generator=gen)  # (B, E, H)
    v = torch.randn(2, 4, 2, 8, generator=gen)  # (B, M, H_kv, D): two key/value heads
    with graphattn.hf.record(heads="norm") as rec:
        rec.add(cross=False, decoder=True, layer=0, module="A", graph=g, weights=w, values=v)
    per_head = v.repeat_interleave(2, dim=2)  # (B, M, H, D): query head h reads h // 2
    blocks = torch.zeros(2, 4, 4, 4 * 8)  # (B, M, H, H * D): head h in its own block
    for h in range(4):
        blocks[:, :, h, h * 8 : (h + 1) * 8] = per_head[:, :, h]
    want = aggregate_heads(w, "norm", values=blocks, graph=g)  # (B, E)
    torch.testing.assert_close(rec.calls[0].weights, want)


def test_norm_heads_on_a_model_with_grouped_query_heads():
    model = tiny("llama")
    with torch.no_grad(), graphattn.hf.record(heads="norm", top_k=3) as rec:
        model(**inputs("llama", pad=0))
    g, w = rec.self_attention[0]
    assert w.shape == (2, g.num_edges) and bool((w >= 0).all())


def test_bad_options_are_refused_when_record_is_called():
    with pytest.raises(ValueError, match="heads must be None or one of"):
        graphattn.hf.record(heads="median")
    with pytest.raises(TypeError, match="dtype must be None or a floating torch.dtype"):
        graphattn.hf.record(dtype=torch.int8)
    with pytest.raises(TypeError, match="dtype"):
        graphattn.hf.record(dtype="float16")
    with pytest.raises(ValueError, match="top_k must be positive, got 0"):
        graphattn.hf.record(top_k=0)
    with pytest.raises(TypeError, match="top_k"):
        graphattn.hf.record(top_k=2.5)
    with pytest.raises(ValueError, match="non-negative layer indices"):
        graphattn.hf.record(layers=[0, -1])
    with pytest.raises(ValueError, match="non-negative layer indices"):
        graphattn.hf.record(layers=[])
    with pytest.raises(TypeError, match="layers"):
        graphattn.hf.record(layers="0")
    with pytest.raises(TypeError, match="layers"):
        graphattn.hf.record(layers=[0, 1.0])
    assert active_recordings() == []


def test_nested_recordings_each_get_the_calls_of_their_own_block(gpt2):
    batch = inputs("gpt2", pad=0)
    with torch.no_grad(), graphattn.hf.record() as outer:
        with graphattn.hf.record() as inner:
            gpt2(**batch)
        assert active_recordings() == [outer] and active_recordings()[0] is outer
        gpt2(**batch)
    assert len(inner.calls) == 2 and len(outer.calls) == 4
    assert outer.calls[:2] == inner.calls
    assert active_recordings() == []


def test_an_exception_in_a_block_leaves_no_recording_open(gpt2):
    block = graphattn.hf.record()
    empty = pytest.warns(UserWarning, match="recorded no call")  # nothing ran in these blocks
    with empty, block as outer:
        with pytest.raises(RuntimeError, match="boom"), graphattn.hf.record():
            raise RuntimeError("boom")
        assert len(active_recordings()) == 1 and active_recordings()[0] is outer
    assert active_recordings() == []
    with pytest.warns(UserWarning), block as again:  # one record(...) may open several blocks
        assert active_recordings()[0] is again and again is not outer
    assert active_recordings() == []


def test_flow_takes_the_recorded_batch_directly(gpt2):
    _, rec = forward(gpt2)
    both = attention_rollout(rec.self_attention, targets=[6])  # weights (B, E, H)
    assert both.shape == (2, 1, 7)
    for ex in range(2):
        torch.testing.assert_close(both[ex], attention_rollout(rec.layers(ex), targets=[6]))


def test_pruned_rollout_benchmark_on_a_small_model(tmp_path, capsys):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "pruned_rollout.py"
    spec = importlib.util.spec_from_file_location("pruned_rollout", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = ["--tokens", "48", "--layers", "2", "--width", "32", "--heads", "4", "--ks", "2", "48"]
    out = ["--json", str(tmp_path / "r.json"), "--png", str(tmp_path / "r.png")]
    result = bench.main(args + out)
    exact, small, whole = result["rows"]
    assert small["edges"] < exact["edges"] and small["bytes"] < exact["bytes"]
    assert small["lost_max"] > 0 and small["l1_accounted_max"] == pytest.approx(small["lost_max"])
    assert whole["edges"] == exact["edges"] and whole["lost_max"] == pytest.approx(0, abs=1e-6)
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == result["rows"]
    assert (tmp_path / "r.png").stat().st_size > 0
    assert capsys.readouterr().out.splitlines()[2].startswith("| all (exact) | 2,352 |")
