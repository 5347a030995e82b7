"""Graph transformer layers against nn.TransformerEncoderLayer / DecoderLayer."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from graphattn import TokenGraph
from graphattn.nn import GraphDecoderLayer, GraphTransformerLayer, padding_bias


def random_graph(n: int, m: int, gen: torch.Generator) -> TokenGraph:
    """Random graph, every target keeps at least one source (torch gives NaN otherwise)."""
    mask = torch.rand(n, m, generator=gen) < 0.4
    mask[torch.arange(n), torch.randint(m, (n,), generator=gen)] = True
    return TokenGraph.from_dense_mask(mask, cross=n != m)


def perturb(module: nn.Module, gen: torch.Generator) -> None:
    """Random non-default values everywhere (layer norms start at 1/0, biases at 0)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3 + (p == 1))


def assert_same_grads(ours: nn.Module, ref: nn.Module, x: torch.Tensor, x_ref: torch.Tensor):
    assert_close(x.grad, x_ref.grad)
    ref_grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, ref_grads[name].grad, msg=f"gradient of {name}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("norm_first", "activation", "eps", "bias"),
    [
        (False, "relu", 1e-5, True),
        (True, "relu", 1e-5, True),
        (False, "gelu", 1e-12, True),  # BERT's encoder layer
        (True, "gelu", 1e-5, False),
    ],
)
def test_encoder_layer_matches_torch(dtype, norm_first, activation, eps, bias):
    gen = torch.Generator().manual_seed(0)
    ref = nn.TransformerEncoderLayer(
        8, 2, 16, dropout=0.1, activation=activation, layer_norm_eps=eps,
        batch_first=True, norm_first=norm_first, bias=bias, dtype=dtype,
    ).eval()
    perturb(ref, gen)
    ours = GraphTransformerLayer.from_torch(ref)
    assert not ours.training and ours.activation == activation and ours.layer_norm_eps == eps
    graph = random_graph(5, 5, gen)
    x = torch.randn(3, 5, 8, dtype=dtype, generator=gen)
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()

    expected = ref(x_ref, src_mask=~graph.to_dense_mask())  # torch: True = blocked
    out, weights = ours(x_ours, graph, need_weights=True)
    assert_close(out, expected)
    assert weights.shape == (3, graph.num_edges, 2)

    g = torch.randn(expected.shape, generator=gen, dtype=dtype)
    (expected * g).sum().backward()
    (out * g).sum().backward()
    assert_same_grads(ours, ref, x_ours, x_ref)


def test_encoder_layer_padding_matches_key_padding_mask():
    """The BERT case: a full graph with padded keys, post-norm GELU."""
    gen = torch.Generator().manual_seed(1)
    ref = nn.TransformerEncoderLayer(8, 2, 16, activation="gelu", layer_norm_eps=1e-12,
                                     batch_first=True).eval()
    perturb(ref, gen)
    ours = GraphTransformerLayer.from_torch(ref)
    graph = TokenGraph.from_dense_mask(torch.ones(4, 4, dtype=torch.bool))
    valid = torch.tensor([[True, True, True, True], [True, True, False, False]])
    x = torch.randn(2, 4, 8, generator=gen)
    expected = ref(x, src_key_padding_mask=~valid)  # torch: True = padding
    out, _ = ours(x, graph, bias=padding_bias(graph, valid, 2))
    assert_close(out[valid], expected[valid])  # torch's fast path zeroes padded rows


def test_encoder_layer_unbatched_and_round_trip():
    gen = torch.Generator().manual_seed(2)
    ours = GraphTransformerLayer(8, 4, 12, dropout=0.2, activation="gelu", norm_first=True).eval()
    perturb(ours, gen)
    ref = ours.to_torch()
    assert isinstance(ref, nn.TransformerEncoderLayer) and ref.norm_first
    assert ref.self_attn.batch_first
    assert ref.activation is F.gelu and ref.dropout.p == 0.2 and not ref.training
    back = GraphTransformerLayer.from_torch(ref)
    for (k1, v1), (k2, v2) in zip(
        ours.state_dict().items(), back.state_dict().items(), strict=True
    ):
        assert k1 == k2 and torch.equal(v1, v2)
    graph = random_graph(6, 6, gen)
    x = torch.randn(6, 8, generator=gen)
    assert_close(ours(x, graph)[0], ref(x, src_mask=~graph.to_dense_mask()))


def test_parameter_names_match_torch():
    ours = GraphTransformerLayer(8, 2, 16)
    assert list(ours.state_dict()) == list(nn.TransformerEncoderLayer(8, 2, 16).state_dict())
    ours = GraphDecoderLayer(8, 2, 16, bias=False)
    ref = nn.TransformerDecoderLayer(8, 2, 16, bias=False)
    assert sorted(ours.state_dict()) == sorted(ref.state_dict())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("norm_first", "activation"), [(False, "relu"), (True, "gelu")])
def test_decoder_layer_matches_torch(dtype, norm_first, activation):
    gen = torch.Generator().manual_seed(3)
    ref = nn.TransformerDecoderLayer(
        8, 2, 16, activation=activation, batch_first=True, norm_first=norm_first, dtype=dtype
    ).eval()
    perturb(ref, gen)
    ours = GraphDecoderLayer.from_torch(ref)
    n, m = 4, 6
    causal = TokenGraph.from_dense_mask(torch.ones(n, n, dtype=torch.bool).tril())
    cross = random_graph(n, m, gen)
    x = torch.randn(2, n, 8, dtype=dtype, generator=gen)
    memory = torch.randn(2, m, 8, dtype=dtype, generator=gen)
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    mem_ref, mem_ours = memory.clone().requires_grad_(), memory.clone().requires_grad_()

    expected = ref(
        x_ref, mem_ref, tgt_mask=~causal.to_dense_mask(), memory_mask=~cross.to_dense_mask()
    )
    out, (w_self, w_cross) = ours(x_ours, mem_ours, causal, cross, need_weights=True)
    assert_close(out, expected)
    assert w_self.shape == (2, causal.num_edges, 2) and w_cross.shape == (2, cross.num_edges, 2)

    g = torch.randn(expected.shape, generator=gen, dtype=dtype)
    (expected * g).sum().backward()
    (out * g).sum().backward()
    assert_close(mem_ours.grad, mem_ref.grad)
    assert_same_grads(ours, ref, x_ours, x_ref)


def test_decoder_round_trip_and_no_weights():
    ours = GraphDecoderLayer(8, 2, 16, norm_first=True).eval()
    back = GraphDecoderLayer.from_torch(ours.to_torch())
    assert all(torch.equal(a, b) for a, b in zip(
        ours.state_dict().values(), back.state_dict().values(), strict=True))
    g = TokenGraph.from_dense_mask(torch.ones(2, 2, dtype=torch.bool))
    cross = TokenGraph.from_dense_mask(torch.ones(2, 3, dtype=torch.bool))
    out, weights = ours(torch.randn(2, 8), torch.randn(3, 8), g, cross)
    assert weights is None and out.shape == (2, 8)


def test_layer_errors():
    with pytest.raises(ValueError, match="activation must be one of"):
        GraphTransformerLayer(8, 2, activation="swish")
    with pytest.raises(ValueError, match="num_heads=3 must divide embed_dim=8"):
        GraphTransformerLayer(8, 3)
    with pytest.raises(ValueError, match="dim_feedforward must be positive"):
        GraphDecoderLayer(8, 2, 0)
    with pytest.raises(TypeError, match="nn.TransformerEncoderLayer"):
        GraphTransformerLayer.from_torch(nn.TransformerDecoderLayer(8, 2))
    with pytest.raises(TypeError, match="nn.TransformerDecoderLayer"):
        GraphDecoderLayer.from_torch(nn.TransformerEncoderLayer(8, 2))
    with pytest.raises(ValueError, match="no graphattn counterpart"):
        GraphTransformerLayer.from_torch(nn.TransformerEncoderLayer(8, 2, activation=F.silu))
    with pytest.raises(ValueError, match="num_kv_heads"):
        GraphTransformerLayer(8, 2, num_kv_heads=1).to_torch()
    layer = GraphDecoderLayer(8, 2, 16)
    g = TokenGraph.from_dense_mask(torch.ones(2, 2, dtype=torch.bool))
    cross = TokenGraph.from_dense_mask(torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="num_src_nodes=3 sources but context has 4 tokens"):
        layer(torch.randn(2, 8), torch.randn(4, 8), g, cross)


def test_decoder_layer_padding_matches_torch_padding_masks():
    gen = torch.Generator().manual_seed(5)
    ref = nn.TransformerDecoderLayer(8, 2, 16, batch_first=True).eval()
    perturb(ref, gen)
    ours = GraphDecoderLayer.from_torch(ref)
    n, m = 4, 5
    causal = TokenGraph.from_dense_mask(torch.ones(n, n, dtype=torch.bool).tril())
    cross = TokenGraph.from_dense_mask(torch.ones(n, m, dtype=torch.bool))
    tgt_valid = torch.tensor([[True] * 4, [True, True, True, False]])
    mem_valid = torch.tensor([[True] * 5, [True, True, False, False, False]])
    x = torch.randn(2, n, 8, generator=gen, requires_grad=True)
    memory = torch.randn(2, m, 8, generator=gen)
    expected = ref(x, memory, tgt_mask=~causal.to_dense_mask(),
                   tgt_key_padding_mask=~tgt_valid, memory_key_padding_mask=~mem_valid)
    out, _ = ours(x, memory, causal, cross, bias=padding_bias(causal, tgt_valid, 2),
                  cross_bias=padding_bias(cross, mem_valid, 2))
    assert_close(out, expected)
