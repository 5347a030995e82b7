"""Any Hugging Face transformers model on a token graph.

A tiny GPT-2 (built from a config so that this runs offline; a real checkpoint
is ``AutoModelForCausalLM.from_pretrained(path, attn_implementation="graphattn")``)
runs on a sliding-window, an attention-sink and a hand-made graph; its
per-edge weights are recorded, drawn and rolled out, and it generates text on
a graph with its KV cache. A model whose attention bypasses transformers'
AttentionInterface (Bloom) is refused by ``attach`` and analysed through its
eager attentions instead.

Run: PYTHONPATH=. python examples/hf_any_model.py [--out graphattn-demo/hf]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

import graphattn.hf  # noqa: E402  (registers attn_implementation="graphattn")
from graphattn import TokenGraph, flow, patterns, plot  # noqa: E402


class Words:
    """A toy tokenizer over a fixed word list (real tokenizers work the same way)."""

    words = "the cat sat on a mat and looked at dog".split()

    def __call__(self, text: str, return_tensors: str = "pt") -> dict:
        ids = torch.tensor([[self.words.index(w) for w in text.split()]])
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self.words[i] for i in ids]


def tiny_gpt2() -> transformers.GPT2LMHeadModel:
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=3, n_embd=32, n_head=4, vocab_size=10)
    return transformers.GPT2LMHeadModel._from_config(config, attn_implementation="graphattn")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("graphattn-demo/hf"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer, model = Words(), tiny_gpt2().eval()
    inputs = tokenizer("the cat sat on a mat and looked at the dog")
    tokens = graphattn.hf.token_labels(tokenizer, inputs)
    n = len(tokens)

    # 1. three graphs: a sliding window, attention sinks, and one written by hand
    custom = patterns.sliding_window(n, 2) | TokenGraph([[1] * (n - 2), list(range(2, n))], n)
    graphs = {
        "window 3": patterns.sliding_window(n, 3),
        "sinks + window 2": patterns.attention_sink(n, sinks=1, window=2),
        "window 2 + 'cat'": custom,
    }
    recorded = {}
    for name, graph in graphs.items():
        with torch.no_grad(), graphattn.hf.record() as rec:
            model(**inputs, token_graph=graph)
        recorded[name] = graphattn.hf.label_layers(rec.layers(0), tokens)

    # 2. draw the last layer's weights and roll the layers out
    fig, axes = plt.subplots(1, len(graphs), figsize=(5 * len(graphs), 4), layout="constrained")
    rollouts = {}
    for ax, (name, layers) in zip(axes, recorded.items(), strict=True):
        plot.draw_matrix(*layers[-1], ax=ax, title=f"{name}: last layer")
        rollouts[name] = flow.attention_rollout(layers)  # (N, N)
    plot.save_figure(fig, args.out / "hf_weights.png")
    plt.close(fig)
    for name, r in rollouts.items():
        top = r[-1].topk(3).indices.tolist()
        print(f"{name:>18}: 'dog' comes mostly from {[tokens[j] for j in top]}")

    # 3. generate on a graph, with the KV cache
    sinks = lambda k: patterns.attention_sink(k, sinks=1, window=3)  # noqa: E731
    out = model.generate(**inputs, token_graph=sinks, max_new_tokens=4, do_sample=False)
    print("generated:", " ".join(tokenizer.convert_ids_to_tokens(out[0, n:].tolist())))

    # 4. a model outside the AttentionInterface: refused, read through eager attentions
    bloom = transformers.BloomForCausalLM(
        transformers.BloomConfig(n_layer=2, hidden_size=32, n_head=4, vocab_size=10)
    ).eval()
    try:
        graphattn.hf.attach(bloom)
    except ValueError as err:
        print("attach:", str(err).split(";")[0])
    bloom.set_attn_implementation("eager")
    with torch.no_grad():
        eager = bloom(**inputs, output_attentions=True)
    layers = graphattn.hf.layers_from_attentions(eager.attentions, inputs["attention_mask"])
    bloom_rollout = flow.attention_rollout([(g, w[0]) for g, w in layers])
    return {"rollouts": rollouts, "generated": out, "bloom_rollout": bloom_rollout}


if __name__ == "__main__":
    main()
