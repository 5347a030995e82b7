"""draw_rollout is titled by what was rolled out: attention weights or a contribution method."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from graphattn.flow.contributions import METHODS as CONTRIBUTION_METHODS  # noqa: E402
from graphattn.plot import draw_rollout  # noqa: E402
from graphattn.plot.rollout import METHODS  # noqa: E402

R = torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.4, 0.0], [0.5, 0.2, 0.3]])


def first_line(ax):
    title = ax.get_title().splitlines()[0]
    plt.close("all")
    return title


def test_every_contribution_method_has_a_title():
    assert set(METHODS) == set(CONTRIBUTION_METHODS)


@pytest.mark.parametrize(
    ("method", "words"),
    [
        ("attention", "attention rollout: relevance"),
        ("alti", "ALTI rollout (contributions composed over layers): relevance"),
        ("globenc", "GlobEnc rollout (contributions composed over layers): relevance"),
        ("value_zeroing", "Value Zeroing rollout"),
        ("grad_attention", "gradient x attention rollout"),
    ],
)
def test_the_title_says_what_was_rolled_out(method, words):
    assert first_line(draw_rollout(R, method=method)).startswith(words)


def test_default_is_attention_and_unknown_methods_are_refused():
    assert first_line(draw_rollout(R)).startswith("attention rollout:")
    for bad in ("ALTI", "rollout", ["alti"]):
        with pytest.raises(ValueError, match="method must be one of"):
            draw_rollout(R, method=bad)
    assert first_line(draw_rollout(R, method="alti", title="mine")) == "mine"
