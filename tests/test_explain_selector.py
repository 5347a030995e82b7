"""explain_backend explains the selector in force, the auto policy or a registered one."""

from __future__ import annotations

import pytest
import torch

from graphattn import explain_backend, patterns
from graphattn.backends import AttentionRequest, auto_selector, register_selector


@pytest.fixture
def selector():
    """Register a selector for one test; the auto policy is restored afterwards."""
    previous = []

    def install(fn):
        previous.append(register_selector(fn))

    yield install
    if previous:
        register_selector(previous[0])


def prefer_reference(request):
    return "reference"


def test_registered_selector_is_explained(selector):
    g = patterns.sliding_window(4096, 128)
    assert explain_backend(g, num_heads=4).backend == "block"  # the auto policy
    selector(prefer_reference)
    choice = explain_backend(g, num_heads=4)
    assert choice.backend == "reference"
    assert choice.reason == "chosen by the registered selector prefer_reference (register_selector)"
    assert "reference" not in choice.refusals and choice.refusals["edge"] is None
    assert "refuses: no dropout" in str(explain_backend(g, dropout=0.1))  # block refuses dropout
    assert str(choice).startswith("auto -> 'reference': chosen by the registered selector")


def test_lambda_selector_sees_the_request(selector):
    seen = []
    selector(lambda request: seen.append(request.num_heads) or "edge")
    choice = explain_backend(patterns.causal(64), num_heads=3)
    assert (choice.backend, seen) == ("edge", [3])
    assert "<lambda>" in choice.reason


def test_restored_policy_is_explained_again(selector):
    selector(prefer_reference)
    register_selector(None)
    choice = explain_backend(patterns.causal(16))
    cpu = torch.device("cpu")
    request = AttentionRequest(patterns.causal(16), 1, 1, 64, 64, cpu, torch.float32)
    assert choice.backend == auto_selector(request) == "dense"
    assert "registered selector" not in choice.reason


@pytest.mark.parametrize(
    ("choice", "message"),
    [("nope", "returned unknown backend 'nope'"), ("block", "chose 'block', which refuses")],
)
def test_a_wrong_selector_fails_as_select_backend_does(selector, choice, message):
    selector(lambda request: choice)
    with pytest.raises(RuntimeError, match=message):
        explain_backend(patterns.causal(16), dropout=0.1)
