"""graphattn.hf fails loudly where it used to be silent: keywords, graphs, twins, outputs."""

import warnings

import pytest
import torch

pytest.importorskip("transformers", reason="hf extra not installed")

from hf_tiny import FAMILIES, inputs, tiny  # noqa: E402

import graphattn.hf  # noqa: E402
from graphattn import TokenGraph, patterns  # noqa: E402
from graphattn.hf.outputs import DENSE_WARNING  # noqa: E402


# ------------------------------------------------------- a graph nobody used
@pytest.mark.parametrize("attached", [False, True])
def test_an_eager_twin_sharing_the_config_makes_token_graph_raise(attached):
    model = tiny("gpt2")
    batch = inputs("gpt2", n=12, pad=0)
    if attached:
        graphattn.hf.attach(model)
    else:
        model(**batch)  # one graphattn forward
    cls, _ = FAMILIES["gpt2"]()
    cls._from_config(model.config, attn_implementation="eager")  # switches `model` too
    assert model.config._attn_implementation == "eager"
    with pytest.raises(ValueError, match=r"token_graph was given, but GPT2Attention runs "
                       r"attn_implementation='eager'.*set_attn_implementation\('graphattn'\)"):
        model(**batch, token_graph=patterns.causal(10))
    model.set_attn_implementation("graphattn")
    with pytest.raises(ValueError, match="token_graph has 10 nodes"):
        model(**batch, token_graph=patterns.causal(10))


def test_a_record_block_in_which_no_graphattn_attention_ran_says_so():
    model = tiny("gpt2")
    batch = inputs("gpt2", n=12, pad=0)
    cls, _ = FAMILIES["gpt2"]()
    cls._from_config(model.config, attn_implementation="eager")  # switches `model` too
    with pytest.warns(UserWarning, match=r"record\(\) recorded no call: no graphattn attention "
                      r"ran.*graphattn.hf.attach\(model\).*attn_implementation='eager' or 'sdpa'"):
        with torch.no_grad(), graphattn.hf.record() as rec:
            model(**batch)  # runs, on eager: nothing to record
    assert rec.calls == []
    graphattn.hf.attach(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a block that recorded calls is quiet
        with torch.no_grad(), graphattn.hf.record() as rec:
            model(**batch)
    assert len(rec.calls) == 2


def test_a_record_block_whose_layers_kept_no_call_names_the_layers_that_ran():
    model = tiny("gpt2")
    with pytest.warns(UserWarning, match=r"record\(layers=\[5\]\) recorded no call: 2 graphattn "
                      r"attention calls ran in the block, of the layers \(layer_idx\) \[0, 1\]"):
        with torch.no_grad(), graphattn.hf.record(layers=5):
            model(**inputs("gpt2", pad=0))


def test_a_record_block_left_by_an_exception_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match="boom"), graphattn.hf.record():
            raise RuntimeError("boom")


def test_output_attentions_warns_and_returns_the_dense_weights_of_the_graph():
    model = tiny("gpt2")
    batch = inputs("gpt2", pad=0)
    graph = patterns.sliding_window(7, 2)
    with torch.no_grad(), graphattn.hf.record() as rec:
        with pytest.warns(UserWarning, match=r"graphattn.hf.record\(\) gives"):
            out = model(**batch, token_graph=graph, output_attentions=True)
    assert DENSE_WARNING.startswith("output_attentions=True")
    assert len(out.attentions) == 2
    for dense, (g, w) in zip(out.attentions, rec.self_attention, strict=True):
        assert dense.shape == (2, 4, 7, 7)
        want = torch.zeros(2, 4, 7, 7)
        want[:, :, g.dst, g.src] = w.transpose(1, 2)  # (B, H, E)
        torch.testing.assert_close(dense, want)


def test_output_attentions_of_an_encoder_decoder_model():
    model = tiny("t5")
    with pytest.warns(UserWarning, match="dense"):
        out = model(**inputs("t5", pad=0), output_attentions=True)
    assert [a.shape for a in out.cross_attentions] == [(2, 4, 5, 7)] * 2
    torch.testing.assert_close(out.cross_attentions[0].sum(-1), torch.ones(2, 4, 5))


# ------------------------------------------------- which keyword goes where
def test_token_graph_on_an_encoder_decoder_names_the_keywords_to_use():
    model = tiny("t5")
    with pytest.raises(ValueError, match="T5Attention belongs to an encoder-decoder model.*"
                       "encoder_graph= and decoder_graph="):
        model(**inputs("t5", pad=0), token_graph=lambda n: patterns.causal(n))


@pytest.mark.parametrize("family, keyword", [("gpt2", "decoder_graph"), ("bert", "encoder_graph")])
def test_stack_keywords_on_a_one_stack_model_name_token_graph(family, keyword):
    model = tiny(family)
    with pytest.raises(ValueError, match=f"{keyword} is for encoder-decoder models.*token_graph="):
        model(**inputs(family, pad=0), **{keyword: patterns.causal(7)})


def _logit_moves(model, batch, position, **graphs) -> float:
    other = batch["decoder_input_ids"].clone()
    other[:, position + 1] = (other[:, position + 1] + 1) % 90 + 3
    with torch.no_grad():
        a = model(**batch, **graphs).logits
        b = model(**{**batch, "decoder_input_ids": other}, **graphs).logits
    return float((a - b)[:, position].abs().max())


def test_a_decoder_graph_reading_ahead_needs_the_flag():
    model = tiny("t5")
    batch = inputs("t5", pad=0)  # 5 decoder tokens
    window = lambda n: patterns.sliding_window(n, 2, causal=False)  # noqa: E731
    with pytest.raises(ValueError, match=r"decoder_graph: in layer 0 \(T5Attention, decoder "
                       r"self-attention\), token 0 reads the later token 1.*decoder_reads_future"):
        model(**batch, decoder_graph=window)
    assert _logit_moves(model, batch, 2, decoder_graph=window, decoder_reads_future=True) > 1e-4
    assert _logit_moves(model, batch, 2, decoder_graph=patterns.causal(5)) == 0.0
    assert _logit_moves(model, batch, 2, encoder_graph=window) == 0.0  # encoders read freely


# ---------------------------------------------------- callables and kinds
def test_a_callable_failing_on_a_short_sequence_names_its_call_site():
    model = tiny("t5")
    batch = inputs("t5", pad=0)
    batch.pop("decoder_input_ids")
    with pytest.raises(ValueError, match=r"your decoder_graph callable failed at n=1 in layer 0 "
                       r"\(T5Attention, decoder self-attention\): ValueError: window must be"):
        model.generate(**batch, decoder_graph=lambda n: patterns.sliding_window(n, 3),
                       max_new_tokens=2)
    gpt2 = tiny("gpt2")
    with pytest.raises(ValueError, match=r"your token_graph callable failed at n=2 in layer 0 "
                       r"\(GPT2Attention, self-attention\).*keep its sizes within n, e.g. "
                       r"lambda n: patterns.sliding_window\(n, min\(n, 3\)\)"):
        gpt2(input_ids=torch.tensor([[5, 6]]),
             token_graph=lambda n: patterns.attention_sink(n, sinks=2, window=4))


@pytest.mark.parametrize("keyword, fn, count", [
    ("token_graph", lambda n, m: patterns.causal(n), "1 argument"),
    ("token_graph", lambda: patterns.causal(7), "1 argument"),
])
def test_a_callable_with_the_wrong_parameters_is_a_type_error(keyword, fn, count):
    model = tiny("gpt2")
    with pytest.raises(TypeError, match=f"{keyword} as a callable must take {count}.*got <lambda>"):
        model(**inputs("gpt2", pad=0), **{keyword: fn})


def test_a_cross_callable_needs_two_parameters():
    model = tiny("t5")
    with pytest.raises(TypeError, match=r"cross_graph as a callable must take 2 argument\(s\)"):
        model(**inputs("t5", pad=0), cross_graph=lambda n: patterns.cross(n, 7))


@pytest.mark.parametrize("graph", [patterns.cross(12, 20), patterns.cross(12, 5),
                                   patterns.cross(20, 12)])
def test_a_cross_graph_as_token_graph_names_the_keyword_and_shapes(graph):
    model = tiny("gpt2")
    n, m = graph.num_nodes, graph.num_src_nodes
    with pytest.raises(ValueError, match=rf"token_graph must be a self graph .* cross graph with "
                       rf"N={n} targets and M={m} sources; .* self graph over 12 tokens"):
        model(**inputs("gpt2", n=12, pad=2), token_graph=graph)


def test_a_self_graph_as_cross_graph_names_the_keyword_and_shapes():
    model = tiny("t5")
    with pytest.raises(ValueError, match=r"cross_graph must be a cross graph .* got a self graph "
                       r"over 5 tokens; layer 0 \(T5Attention, cross-attention\) needs 5 targets "
                       r"x 7 sources"):
        model(**inputs("t5", pad=0), cross_graph=patterns.full(5))


def prefix(n: int) -> TokenGraph:
    """A prefix-LM graph: the 6 prompt tokens read each other, later tokens are causal."""
    mask = torch.ones(n, n, dtype=torch.bool).tril()  # (N, N)
    mask[:6, :6] = True
    return TokenGraph.from_dense_mask(mask)


def test_generate_refuses_a_callable_reading_ahead_like_a_fixed_graph():
    model = tiny("gpt2")
    prompt = {"input_ids": inputs("gpt2", pad=0)["input_ids"][:1, :6]}
    with pytest.raises(ValueError, match="token 0 reads token 6"):
        model.generate(**prompt, token_graph=patterns.full(12), max_new_tokens=3)
    with pytest.raises(ValueError, match=r"token 0 reads token 6, but token 0 comes from the KV "
                       r"cache.*use_cache=False"):
        model.generate(**prompt, token_graph=lambda n: patterns.full(n), max_new_tokens=3)
    out = model.generate(**prompt, token_graph=lambda n: patterns.full(n), max_new_tokens=3,
                         use_cache=False, do_sample=False)
    assert out.shape == (1, 9)
    assert prefix(8).num_edges > patterns.causal(8).num_edges  # the prompt reads itself freely
    cached = model.generate(**prompt, token_graph=prefix, max_new_tokens=3, do_sample=False)
    assert torch.equal(cached, model.generate(**prompt, token_graph=prefix, max_new_tokens=3,
                                              do_sample=False, use_cache=False))
