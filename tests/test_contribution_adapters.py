"""One dispatch for contributions: the registry of adapters in graphattn.flow.adapters."""

import pytest
import torch

from graphattn import GraphLM, GraphSeq2Seq, GraphTransformer, patterns
from graphattn.flow import (
    METHODS,
    ContributionAdapter,
    contributions,
    register_adapter,
    register_contributions,
    run_model,
    unregister_adapter,
)
from graphattn.flow.adapters import DEFAULT, adapter_for
from graphattn.flow.lrp import attnlrp
from graphattn.flow.lrp_seq2seq import seq2seq_attnlrp
from graphattn.flow.nn_adapters import MODEL, SEQ2SEQ
from graphattn.flow.nn_models import model_run

UNKNOWN = (
    "model must be a GraphTransformer, a GraphLM, a GraphSeq2Seq, implement ContributionModel "
    "(contribution_run) or belong to a registered integration (Hugging Face models after import "
    "graphattn.hf), got Linear; contributions offers the methods alti, globenc, value_zeroing, "
    "grad_attention, attention, attnlrp for those"
)


class Wrapped:
    """A throw-away model kind: a GraphTransformer behind a wrapper flow does not know."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.inner = GraphTransformer(8, 2, 2, 16, dropout=0.0)


@pytest.fixture
def wrapped_adapter():
    calls = []

    def run(model, inputs, graph):
        calls.append(graph)
        return model_run(model.inner, inputs, graph)

    register_adapter(Wrapped, ContributionAdapter(run=run, mappings=False))
    yield calls
    unregister_adapter(Wrapped)


@pytest.mark.parametrize("method", ["alti", "globenc", "attention", "grad_attention"])
def test_a_registered_type_is_dispatched_to(wrapped_adapter, method):
    model, x, g = Wrapped(), torch.randn(1, 5, 8), patterns.get("causal", 5)
    got = contributions(model, x, method, g)
    expected = contributions(model.inner, x, method, g)
    assert wrapped_adapter == [g]
    for (g1, c1), (g2, c2) in zip(got, expected, strict=True):
        assert g1 == g2
        torch.testing.assert_close(c1, c2, rtol=0, atol=0)
    assert len(run_model(model, x, g).blocks) == 2
    with pytest.raises(TypeError, match="input_ids must be a tensor or a pair of tensors, got"):
        contributions(model, {"input_ids": x}, method, g)


def test_unknown_models_are_refused_as_before():
    model = torch.nn.Linear(2, 2)
    for method in METHODS:
        with pytest.raises(TypeError) as info:
            contributions(model, torch.zeros(1, 2), method)
        assert str(info.value) == UNKNOWN
    with pytest.raises(TypeError, match="or a mapping, got int"):
        contributions(model, 3, "alti")  # inputs are checked first, as before
    with pytest.raises(TypeError) as info:
        run_model(model, torch.zeros(1, 2))
    assert str(info.value) == UNKNOWN
    with pytest.raises(TypeError) as info:
        attnlrp(model, torch.zeros(1, 2))
    assert str(info.value) == UNKNOWN
    assert adapter_for(model) is None


def test_a_predicate_adapter_computes_and_refuses_other_methods():
    layers = [(patterns.get("full", 2), torch.full((1, 4), 0.5))]
    calls = []

    def compute(model, inputs, method, graph, *, normalize):
        calls.append((method, normalize))
        return layers

    def accepts(model):
        return isinstance(model, dict) and model.get("kind") == "tiny"

    register_contributions(accepts, compute, ("attention",))
    try:
        model = {"kind": "tiny"}
        assert contributions(model, {"input_ids": torch.zeros(1, 2)}, "attention") is layers
        assert calls == [("attention", True)]
        with pytest.raises(ValueError, match=r"method 'alti' is not available for dict; its "
                                             r"integration offers \('attention',\)"):
            contributions(model, torch.zeros(1, 2), "alti")
        with pytest.raises(TypeError, match="model must be a GraphTransformer"):
            run_model(model, torch.zeros(1, 2))  # no blocks to run
        register_contributions(accepts, compute, ("attention", "alti"))  # replaced in place
        assert adapter_for(model).methods == ("attention", "alti")
    finally:
        unregister_adapter(accepts)
    assert adapter_for({"kind": "tiny"}) is None


def test_graphattn_models_and_the_default():
    lm = GraphLM(10, 8, 1, 2, max_len=8)
    s2s = GraphSeq2Seq(9, 9, 8, 2, num_encoder_layers=1, num_decoder_layers=1)
    assert adapter_for(lm) is MODEL and adapter_for(GraphTransformer(8, 2, 1)) is MODEL
    assert adapter_for(s2s) is SEQ2SEQ and SEQ2SEQ.attnlrp is seq2seq_attnlrp

    class Own:
        def contribution_run(self, inputs, graph=None):
            return run_model(lm, inputs, graph)

    assert adapter_for(Own()) is DEFAULT
    ids = torch.randint(10, (1, 4))
    got, expected = contributions(Own(), ids, "alti"), contributions(lm, ids, "alti")
    torch.testing.assert_close(got[0][1], expected[0][1], rtol=0, atol=0)


def test_the_bert_port_registers_its_adapter():
    from graphattn.pretrained import BertModel, tiny_bert
    from graphattn.pretrained.contrib import bert_run

    model = tiny_bert()
    assert isinstance(model, BertModel) and adapter_for(model).run is bert_run


def test_adapter_and_registration_checks():
    with pytest.raises(ValueError, match="exactly one of run and compute"):
        ContributionAdapter()
    with pytest.raises(ValueError, match="exactly one of run and compute"):
        ContributionAdapter(run=model_run, compute=model_run)
    with pytest.raises(TypeError, match="run must be callable, got int"):
        ContributionAdapter(run=3)
    with pytest.raises(ValueError, match=r"methods must be among .*got \['rollout'\]"):
        ContributionAdapter(run=model_run, methods=("alti", "rollout"))
    with pytest.raises(TypeError, match="key must be a model type or a predicate, got int"):
        register_adapter(3, MODEL)
    with pytest.raises(TypeError, match="adapter must be a ContributionAdapter, got function"):
        register_adapter(Wrapped, model_run)
    with pytest.raises(ValueError, match="no contribution adapter is registered under"):
        unregister_adapter(Wrapped)
    with pytest.raises(TypeError, match="accepts and compute must be callables"):
        register_contributions(3, model_run, ("alti",))
