"""graphattn.hf contributions against brute force on eager transformers models."""

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from hf_tiny import tiny  # noqa: E402

from graphattn.flow import contributions  # noqa: E402


def on_edges(g, dense):
    return dense[:, g.dst, g.src]  # (B, E)


def normalized(g, c):
    total = torch.zeros(c.shape[0], g.num_nodes, dtype=c.dtype).index_add_(1, g.dst, c)
    uniform = 1.0 / g.in_degree().to(c.dtype)[g.dst]
    return torch.where(total[:, g.dst] > 0, c / total[:, g.dst].clamp(min=1e-300), uniform)


def test_value_zeroing_equals_zeroing_each_value_in_the_eager_model():
    model = tiny("llama").double()
    eager = tiny("llama", "eager").double()
    ids = torch.randint(3, 100, (2, 5))
    got = contributions(model, ids, "value_zeroing")
    with torch.no_grad():
        intact = eager(input_ids=ids, output_hidden_states=True).hidden_states
    for layer, (g, c) in enumerate(got):
        dist = torch.zeros(2, 5, 5, dtype=torch.float64)  # (B, target i, source k)
        for k in range(5):

            def hook(module, args, out, k=k):
                out = out.clone()
                out[:, k] = 0  # source k's value vector, every head
                return out

            handle = eager.model.layers[layer].self_attn.v_proj.register_forward_hook(hook)
            with torch.no_grad():
                h = eager(input_ids=ids, output_hidden_states=True).hidden_states[layer + 1]
            handle.remove()
            dist[:, :, k] = 1 - F.cosine_similarity(h, intact[layer + 1], dim=-1)
        expected = normalized(g, on_edges(g, dist).clamp(min=0))
        torch.testing.assert_close(c, expected, atol=1e-6, rtol=1e-5)  # float32 softmax


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_grad_attention_equals_the_eager_attentions_gradient(family):
    model = tiny(family).double()
    eager = tiny(family, "eager").double()
    ids = torch.randint(3, 100, (1, 6))
    out = eager(input_ids=ids, output_attentions=True)
    score = out.logits.log_softmax(-1).amax(-1).sum()
    grads = torch.autograd.grad(score, out.attentions)
    got = contributions(model, ids, "grad_attention")
    assert len(got) == len(grads)
    for (g, c), a, d in zip(got, out.attentions, grads, strict=True):
        expected = normalized(g, on_edges(g, (d * a).clamp(min=0).mean(1)))
        # eager attention takes its softmax in float32 even for a float64 model
        torch.testing.assert_close(c, expected.detach(), atol=1e-6, rtol=1e-5)


def test_attention_is_the_head_mean_of_the_eager_weights():
    model = tiny("gpt2")
    ids = torch.randint(3, 100, (1, 4))
    eager_w = tiny("gpt2", "eager")(input_ids=ids, output_attentions=True).attentions
    for (g, c), a in zip(contributions(model, ids, "attention"), eager_w, strict=True):
        torch.testing.assert_close(c, on_edges(g, a.mean(1)))
