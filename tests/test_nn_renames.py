"""One naming scheme across the nn models, and the layers' signature written once."""

import inspect
import warnings

import pytest
import torch

from graphattn.nn import (
    GraphDecoderLayer,
    GraphLM,
    GraphLMConfig,
    GraphSeq2Seq,
    GraphSeq2SeqConfig,
    GraphTransformer,
    GraphTransformerConfig,
    GraphTransformerLayer,
    LayerConfig,
)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_old_keywords_warn_and_build_the_same_model():
    torch.manual_seed(0)
    new = _state(GraphLM(20, 8, num_layers=2, num_heads=2, max_len=8))
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning) as caught:
        old = GraphLM(20, 8, n_layers=2, n_heads=2, max_len=8)
    assert [str(w.message) for w in caught] == [
        "GraphLM(n_layers=...) is deprecated; pass num_layers=",
        "GraphLM(n_heads=...) is deprecated; pass num_heads=",
    ]
    assert caught[0].filename == __file__  # points at the caller
    assert old.config.num_layers == 2 and old.config.num_heads == 2
    _same(new, _state(old))


def test_positional_and_new_calls_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lm = GraphLM(20, 8, 3, 2, max_len=8)
        GraphLM.from_config(lm.config)
        GraphLMConfig(20, 8, 3, 2)
        GraphLMConfig(vocab_size=20, d_model=8, num_layers=3, num_heads=2)
    assert len(lm.layers) == 3 and lm.layers[0].num_heads == 2
    params = list(inspect.signature(GraphLM).parameters)
    assert params[:4] == ["vocab_size", "d_model", "num_layers", "num_heads"]


def test_the_config_keeps_its_old_names_deprecated():
    with pytest.warns(DeprecationWarning, match=r"GraphLMConfig\(n_heads=...\) is deprecated"):
        cfg = GraphLMConfig(vocab_size=20, d_model=8, num_layers=2, n_heads=2)
    assert cfg == GraphLMConfig(20, 8, 2, 2)
    with pytest.warns(DeprecationWarning, match=r"\.n_layers is deprecated; use \.num_layers"):
        assert cfg.n_layers == 2
    with pytest.warns(DeprecationWarning, match=r"\.n_heads is deprecated; use \.num_heads"):
        cfg.n_heads = 4
    assert cfg.num_heads == 4
    with pytest.raises(TypeError, match="got both num_layers and its deprecated name n_layers"):
        GraphLMConfig(vocab_size=20, d_model=8, num_layers=2, n_layers=2, num_heads=2)
    with pytest.raises(TypeError, match="got both num_heads and its deprecated name n_heads"):
        GraphLM(20, 8, 2, num_heads=2, n_heads=2)


def test_layers_share_one_signature_from_layer_config():
    fields = list(LayerConfig.__dataclass_fields__)
    for cls in (GraphTransformerLayer, GraphDecoderLayer):
        params = inspect.signature(cls).parameters
        assert list(params)[: len(fields)] == fields
        for name in fields:
            assert params[name].default == LayerConfig.__dataclass_fields__[name].default or (
                params[name].default is inspect.Parameter.empty
            )
    cfg = LayerConfig(8, 2, 16, 0.0, "gelu", 1e-6, True, False, num_kv_heads=1)
    torch.manual_seed(1)
    a = GraphDecoderLayer.from_config(cfg)
    torch.manual_seed(1)
    b = GraphDecoderLayer(8, 2, 16, 0.0, "gelu", 1e-6, True, False, num_kv_heads=1)
    _same(a.state_dict(), b.state_dict())
    assert a.activation == "gelu" and a.num_kv_heads == 1 and a.norm3.bias is None
    with pytest.raises(TypeError, match="config must be a LayerConfig, got dict"):
        GraphTransformerLayer.from_config({"d_model": 8})


def test_models_read_their_layers_from_one_config():
    assert LayerConfig.of(GraphTransformerConfig(8, 2, 3, dropout=0.0, norm_first=True)) == (
        LayerConfig(8, 2, dropout=0.0, norm_first=True)
    )
    s2s = GraphSeq2SeqConfig(9, 9, 8, 2, activation="gelu")
    assert LayerConfig.of(s2s, dim_feedforward=32) == LayerConfig(8, 2, 32, 0.0, "gelu")
    lm = GraphLM(20, 8, 2, 2, max_len=8, num_kv_heads=1)
    assert lm.layers[0].norm_first and lm.layers[1].dim_feedforward == 32
    model = GraphSeq2Seq(9, 9, 8, 2, dim_feedforward=16, norm_first=True)
    assert model.encoder.config == GraphTransformerConfig(
        8, 2, 2, 16, 0.0, "relu", 1e-5, True, True, None, True
    )
    assert all(layer.norm_first for layer in model.decoder.layers)
    enc = GraphTransformer(8, 2, 2, 16, dropout=0.0)
    torch.manual_seed(3)
    back = GraphTransformer.from_torch(
        torch.nn.TransformerEncoder(enc.layers[0].to_torch(), 2, enable_nested_tensor=False)
    )
    assert back.config == enc.config
