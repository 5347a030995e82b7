"""Generation with a token graph: with the KV cache equals without it (greedy)."""

import pytest
import torch

pytest.importorskip("transformers", reason="hf extra not installed")

from hf_tiny import inputs, tiny  # noqa: E402
from transformers import DynamicCache  # noqa: E402

import graphattn.hf  # noqa: E402
from graphattn import flow, graph_attention, patterns  # noqa: E402
from graphattn.hf import attention  # noqa: E402

NEW = 5


def greedy(model, batch, **extra):
    with torch.no_grad():
        return model.generate(
            **batch, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, **extra
        )


def sinks(n):
    return patterns.attention_sink(n, sinks=1, window=2)


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2"])
@pytest.mark.parametrize("graph", [sinks, patterns.attention_sink(7 + NEW, sinks=1, window=2)])
def test_cached_generation_equals_uncached_on_the_same_graph(family, graph):
    model = tiny(family)
    batch = inputs(family, pad=2, side="left")
    batch.pop("decoder_input_ids", None)
    cached = greedy(model, batch, token_graph=graph, cache=DynamicCache())
    uncached = greedy(model, batch, token_graph=graph, use_cache=False)
    assert cached.shape == (2, 7 + NEW)
    assert torch.equal(cached, uncached)
    plain = greedy(model, batch, cache=DynamicCache())
    assert torch.equal(plain, greedy(tiny(family, "eager"), batch, cache=DynamicCache()))


def scores(model, batch, **extra) -> torch.Tensor:
    """The greedy step scores ``(NEW, B, V)`` of a cached generation."""
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False,
                             output_scores=True, return_dict_in_generate=True, **extra)  # fmt: skip
    return torch.stack(out.scores)


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2"])
def test_cached_generation_scores_match_sdpa(family):
    batch = inputs(family, pad=2, side="left")
    ours = scores(tiny(family), batch, cache=DynamicCache())
    torch.testing.assert_close(ours, scores(tiny(family, "sdpa"), batch, cache=DynamicCache()))


def test_a_window_step_runs_on_the_window_keys_alone(monkeypatch):
    seen = []  # (queries, keys) of every kernel call

    def spy(q, k, v, graph, **kwargs):
        seen.append((q.shape[1], k.shape[1]))
        return graph_attention(q, k, v, graph, **kwargs)

    monkeypatch.setattr(attention, "graph_attention", spy)
    batch = inputs("gpt2", pad=0)
    window = lambda n: patterns.sliding_window(n, 2)  # noqa: E731
    cached = scores(tiny("gpt2"), batch, token_graph=window, cache=DynamicCache())
    steps = [keys for queries, keys in seen if queries == 1]
    assert len(steps) == 2 * (NEW - 1) and set(steps) == {2}  # 2 layers, not the whole cache
    uncached = scores(tiny("gpt2"), batch, token_graph=window, use_cache=False)
    torch.testing.assert_close(cached, uncached)


def test_generation_follows_the_graph():
    model = tiny("llama")
    batch = inputs("llama", pad=0)
    free = greedy(model, batch)
    local = greedy(model, batch, token_graph=lambda n: patterns.sliding_window(n, 1))
    assert not torch.equal(free, local)


def test_a_sliding_window_cache_refuses_a_graph_that_reads_dropped_tokens():
    model = tiny("mistral")  # window 3: its default cache keeps the last 2 tokens
    batch = inputs("mistral", pad=0)
    with pytest.raises(ValueError, match="sliding-window cache has dropped"):
        greedy(model, batch, token_graph=sinks)
    full = greedy(model, batch, token_graph=sinks, cache=DynamicCache())
    assert torch.equal(full, greedy(model, batch, token_graph=sinks, use_cache=False))
    inside = lambda n: patterns.sliding_window(n, 2)  # noqa: E731  (fits the window)
    assert torch.equal(
        greedy(model, batch, token_graph=inside),
        greedy(model, batch, token_graph=inside, use_cache=False),
    )


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_encoder_decoder_generation_with_self_and_cross_graphs(family):
    model = tiny(family)
    batch = inputs(family, pad=2)
    batch.pop("decoder_input_ids")
    extra = {
        "encoder_graph": lambda n: patterns.sliding_window(n, 1, causal=False),
        "decoder_graph": lambda n: patterns.sliding_window(n, 1),
        "cross_graph": lambda n, m: patterns.cross_window(n, m, 1),
    }
    with graphattn.hf.record() as rec:
        cached = greedy(model, batch, **extra)
    assert torch.equal(cached, greedy(model, batch, use_cache=False, **extra))
    steps = [g for g, _ in rec.cross_attention if g.num_nodes == 1]  # one new token per step
    assert len(steps) == 2 * NEW  # two decoder layers, the start token first
    for t, g in enumerate(steps[::2]):  # decoder token t reads encoder tokens t-1..t+1
        want = patterns.cross_window(t + 1, 7, 1).subgraph([t])
        assert g.edge_index.tolist() == want.edge_index.tolist()


def test_a_rollout_of_a_generate_recording_says_to_record_one_forward():
    model = tiny("gpt2")
    with torch.no_grad(), graphattn.hf.record() as rec:
        greedy(model, inputs("gpt2", pad=0))
    with pytest.raises(ValueError, match=r"is a cross graph \(N=1, M=8\).*A recording of generate "
                       r"holds such graphs.*record one forward over the whole sequence instead"):
        flow.attention_rollout(rec.layers(0))
