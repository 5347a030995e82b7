"""GraphTransformer and GraphLM: torch oracles, per-layer graphs and weights, causality."""

import inspect
from dataclasses import MISSING, fields

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from graphattn import TokenGraph, patterns
from graphattn.nn import (
    GraphLM,
    GraphLMConfig,
    GraphSeq2Seq,
    GraphSeq2SeqConfig,
    GraphTransformer,
    GraphTransformerConfig,
    LMOutput,
    ModelOutput,
)


def random_graph(n: int, gen: torch.Generator) -> TokenGraph:
    mask = (torch.rand(n, n, generator=gen) < 0.4) | torch.eye(n, dtype=torch.bool)
    return TokenGraph.from_dense_mask(mask)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm_first", [False, True])
def test_from_torch_encoder_matches(dtype, norm_first):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, norm_first=norm_first,
                                       dtype=dtype)
    norm = nn.LayerNorm(8, dtype=dtype) if norm_first else None
    ref = nn.TransformerEncoder(layer, 3, norm=norm, enable_nested_tensor=False).eval()
    ours = GraphTransformer.from_torch(ref)
    assert (ours.norm is not None) == norm_first and ours.config.num_layers == 3
    graph = random_graph(5, gen)
    x = torch.randn(2, 5, 8, dtype=dtype, generator=gen)
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    expected = ref(x_ref, mask=~graph.to_dense_mask())  # torch: True = blocked
    res = ours(x_ours, graph)
    assert isinstance(res, ModelOutput) and res.layers is None
    assert_close(res.last_hidden_state, expected)
    g = torch.randn(expected.shape, dtype=dtype, generator=gen)
    (expected * g).sum().backward()
    (res.last_hidden_state * g).sum().backward()
    assert_close(x_ours.grad, x_ref.grad)
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, ref_params[name].grad, msg=name)


def test_per_layer_graphs_match_torch_layers_with_per_layer_masks():
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    model = GraphTransformer(8, 2, 4, 16, dropout=0.0, norm_first=True, final_norm=True).eval()
    n = 6
    local = patterns.get("sliding_window", n, window=2)
    strided = patterns.get("strided", n, stride=3)
    graphs = [local, strided] * 2  # alternating patterns
    x = torch.randn(2, n, 8, dtype=torch.float32, generator=gen)
    res = model(x, graphs, need_weights=True)

    expected = x
    for layer, graph in zip(model.layers, graphs, strict=True):
        expected = layer.to_torch()(expected, src_mask=~graph.to_dense_mask())
    expected = model.norm(expected)
    assert_close(res.last_hidden_state, expected)

    assert [g for g, _ in res.layers] == graphs
    assert all(g is graphs[k] for k, (g, _) in enumerate(res.layers))
    for graph, weights in res.layers:
        assert weights.shape == (2, graph.num_edges, 2)
        per_target = torch.zeros(2, n, 2).index_add_(1, graph.dst, weights)  # (B, N, H)
        assert_close(per_target, torch.ones(2, n, 2))
    # a different graph in one layer changes the result: the graphs are really used
    other = model(x, [local, local, local, strided]).last_hidden_state
    assert not torch.allclose(other, res.last_hidden_state)


def test_transformer_errors():
    model = GraphTransformer(8, 2, 2, 16)
    g = patterns.get("causal", 3)
    x = torch.randn(3, 8)
    with pytest.raises(ValueError, match="list of num_layers=2 graphs, got a list of 3"):
        model(x, [g, g, g])
    with pytest.raises(TypeError, match="graph must be a TokenGraph or a sequence"):
        model(x, "causal")
    with pytest.raises(ValueError, match="bias needs a single graph"):
        model(x, [g, g], bias=torch.zeros(g.num_edges))
    with pytest.raises(TypeError, match="nn.TransformerEncoder"):
        GraphTransformer.from_torch(nn.TransformerEncoderLayer(8, 2))
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, batch_first=True), 1,
                                norm=nn.LayerNorm(8, eps=1e-3), enable_nested_tensor=False)
    with pytest.raises(ValueError, match="eps=1e-05"):
        GraphTransformer.from_torch(enc)
    with pytest.raises(ValueError, match="num_layers must be positive"):
        GraphTransformer(8, 2, 0)


@pytest.mark.parametrize(
    ("cls", "config_cls"),
    [
        (GraphTransformer, GraphTransformerConfig),
        (GraphLM, GraphLMConfig),
        (GraphSeq2Seq, GraphSeq2SeqConfig),
    ],
)
def test_config_defaults_match_constructor(cls, config_cls):
    params = inspect.signature(cls.__init__).parameters
    for f in fields(config_cls):
        assert f.name in params
        if f.name == "pattern_params":  # None in the constructor = empty dict
            assert params[f.name].default is None and f.default_factory() == {}
        elif f.default is MISSING:  # a required argument of both
            assert params[f.name].default is inspect.Parameter.empty, f.name
        else:
            assert params[f.name].default == f.default, f.name


def test_from_config_round_trip():
    cfg = GraphTransformerConfig(d_model=8, num_heads=2, num_layers=2, activation="gelu")
    model = GraphTransformer.from_config(cfg)
    assert model.config == cfg and model.layers[1].activation == "gelu"
    cfg = GraphLMConfig(vocab_size=11, d_model=8, n_layers=2, n_heads=2, tie_weights=False,
                        pattern=("sliding_window", {"window": 2}), max_len=12)
    lm = GraphLM.from_config(cfg)
    assert lm.config == cfg and lm.lm_head.weight is not lm.tok_emb.weight
    with pytest.raises(TypeError, match="GraphLMConfig"):
        GraphLM.from_config(cfg.__dict__)


def small_lm(pattern="causal", **changes) -> GraphLM:
    torch.manual_seed(2)
    args = {"dim_feedforward": 32, "max_len": 16} | changes
    return GraphLM(23, 16, 2, 2, pattern=pattern, **args).eval()


def test_lm_matches_dense_torch_model():
    """GraphLM on a causal pattern == the same weights in torch layers with a causal mask."""
    lm = small_lm(tie_weights=False)
    idx = torch.randint(23, (3, 9), generator=torch.Generator().manual_seed(0))
    out = lm(idx)
    assert isinstance(out, LMOutput) and out.layers is None
    mask = ~torch.ones(9, 9, dtype=torch.bool).tril()  # torch: True = blocked
    x = lm.tok_emb(idx) + lm.pos_emb(torch.arange(9))
    for layer in lm.layers:
        x = layer.to_torch()(x, src_mask=mask)
    assert_close(out.logits, lm.lm_head(lm.norm(x)))


@pytest.mark.parametrize(
    ("pattern", "causal"),
    [("causal", True), (("sliding_window", {"window": 3}), True), ("full", False)],
)
def test_lm_causality(pattern, causal):
    lm = small_lm(pattern)
    gen = torch.Generator().manual_seed(3)
    idx = torch.randint(23, (2, 10), generator=gen)
    changed = idx.clone()
    changed[:, 6] = (idx[:, 6] + 1) % 23  # change a future token
    a, b = lm(idx).logits, lm(changed).logits
    assert not torch.allclose(a[:, 6:], b[:, 6:])
    if causal:
        assert torch.equal(a[:, :6], b[:, :6])  # the past cannot see it
    else:
        assert not torch.allclose(a[:, :6], b[:, :6])  # with a full graph it can


def test_lm_returns_every_layers_graph_and_weights():
    fixed = patterns.get("causal", 8)
    lm = small_lm([("sliding_window", {"window": 2}), fixed])
    out = lm(torch.randint(23, (3, 8)), need_weights=True)
    assert out.logits.shape == (3, 8, 23)
    (g0, w0), (g1, w1) = out.layers
    assert g0 == patterns.get("sliding_window", 8, window=2) and g1 is fixed
    assert w0.shape == (3, g0.num_edges, 2) and w1.shape == (3, g1.num_edges, 2)
    assert_close(torch.zeros(3, 8, 2).index_add_(1, g1.dst, w1), torch.ones(3, 8, 2))
    assert lm.graphs(8)[0] is lm.graphs(8)[0]  # named patterns are built once per length


def test_lm_callable_pattern_and_pattern_params():
    calls = []

    def pattern(n):
        calls.append(n)
        return patterns.get("causal", n)

    lm = small_lm(pattern)
    lm(torch.randint(23, (1, 5)))
    lm(torch.randint(23, (1, 7)))
    assert calls == [5, 5, 7, 7]  # once per layer per call
    lm = small_lm("sliding_window", pattern_params={"window": 2})
    assert lm.graphs(6)[1] == patterns.get("sliding_window", 6, window=2)


def test_lm_loss_and_training_step():
    lm = small_lm(dropout=0.1).train()
    idx = torch.randint(23, (4, 12), generator=torch.Generator().manual_seed(4))
    torch.manual_seed(5)
    loss = lm.loss(idx)
    torch.manual_seed(5)
    logits = lm(idx).logits
    assert_close(loss, F.cross_entropy(logits[:, :-1].reshape(-1, 23), idx[:, 1:].reshape(-1)))
    targets = idx.clone()
    targets[:, :6] = -100
    lm.eval()
    logits = lm(idx).logits
    assert_close(lm.loss(idx, targets), F.cross_entropy(logits[:, 6:].reshape(-1, 23),
                                                        idx[:, 6:].reshape(-1)))
    lm.train()
    opt = torch.optim.AdamW(lm.parameters(), lr=1e-2)
    first = lm.loss(idx).item()
    for _ in range(4):
        opt.zero_grad()
        lm.loss(idx).backward()
        opt.step()
    assert lm.loss(idx).item() < first  # the model learns: gradients reach every layer
    assert lm.lm_head.weight is lm.tok_emb.weight


def test_lm_errors():
    lm = small_lm()
    with pytest.raises(TypeError, match="idx must be an integer tensor"):
        lm(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"1 <= N <= max_len=16, got \(1, 17\)"):
        lm(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match=r"idx must have shape \(B, N\)"):
        lm(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="outside \\[0, vocab_size=23\\)"):
        lm(torch.full((1, 3), 23))
    with pytest.raises(ValueError, match="targets must have the shape of idx"):
        lm.loss(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="d_model must be an int"):
        GraphLM(10, 8.0, 1, 2)
    with pytest.raises(ValueError, match="num_heads must be positive"):
        GraphLM(10, 8, 1, 0)
    with pytest.raises(ValueError, match="pattern 'nope' is unknown"):
        small_lm("nope")
    with pytest.raises(ValueError, match="num_layers=2 entries, got 3"):
        small_lm(["causal"] * 3)
    with pytest.raises(TypeError, match="pattern must be a pattern name"):
        small_lm(3)
    with pytest.raises(ValueError, match="needs a self graph over 5 tokens"):
        small_lm(patterns.get("causal", 4))(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(TypeError, match="returned list, not a TokenGraph"):
        small_lm(lambda n: [])(torch.zeros(1, 5, dtype=torch.long))


def test_sequence_layers_feed_flow_analysis():
    from graphattn.flow import attention_rollout

    lm = small_lm(["causal", ("sliding_window", {"window": 2})])
    out = lm(torch.randint(23, (2, 6)), need_weights=True)
    layers = out.sequence_layers(1)
    assert [g for g, _ in layers] == [g for g, _ in out.layers]
    for (_, w), (_, batched) in zip(layers, out.layers, strict=True):
        assert torch.equal(w, batched[1])
    rollout = attention_rollout(layers)  # (N, N): every output token's share of each input
    assert rollout.shape == (6, 6)
    assert_close(rollout.sum(1), torch.ones(6))
    assert torch.equal(rollout.triu(1), torch.zeros(6, 6))  # causal: no share of the future
    with pytest.raises(ValueError, match="b=2 is out of range for a batch of 2"):
        out.sequence_layers(2)
    with pytest.raises(ValueError, match="need_weights=True"):
        lm(torch.randint(23, (2, 6))).sequence_layers()
    model = GraphTransformer(8, 2, 2, 16)
    res = model(torch.randn(4, 8), patterns.get("full", 4), need_weights=True)
    assert res.sequence_layers(0) == res.layers
    with pytest.raises(ValueError, match="unbatched; b must be 0"):
        res.sequence_layers(1)


def test_lm_loss_refuses_what_would_be_nan_or_out_of_the_vocabulary():
    """A loss that scores no position is refused, not a silent NaN; so are foreign targets."""
    lm = GraphLM(20, 16, 1, 2, max_len=8, dim_feedforward=16)
    idx = torch.randint(0, 20, (2, 5), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="every target is -100"):
        lm.loss(idx, torch.full_like(idx, -100))
    with pytest.raises(ValueError, match="one position"):
        lm.loss(idx[:, :1])
    with pytest.raises(ValueError, match=r"\[0, 20\)"):
        lm.loss(idx, torch.full_like(idx, 20))
    with pytest.raises(ValueError, match=r"\[0, 20\)"):
        lm.loss(idx, torch.full_like(idx, -1))
    with pytest.raises(TypeError, match="LongTensor"):
        lm.loss(idx, idx.float())
    partly = torch.full_like(idx, -100)
    partly[0, 2] = 3  # one scored position: a finite loss
    assert torch.isfinite(lm.loss(idx, partly))
