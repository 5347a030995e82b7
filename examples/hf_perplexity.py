"""What a sparse token graph costs a causal LM: the perplexity table of docs/hf.md.

Trains a tiny Llama-style model (transformers' LlamaForCausalLM: 2 layers, 64
wide, character tokens, 500 steps of 16 x 256 tokens, full causal attention)
on the first 90% of The Comedy of Errors, which ships with graphattn, then
measures its perplexity on the last 10% with attn_implementation="graphattn"
under full, sliding-window, window + sinks and strided graphs. About 40 s on
two CPU cores:

    python examples/hf_perplexity.py            # prints the Markdown table
    python examples/hf_perplexity.py --steps 20 # a quick smoke run (the tests use it)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import transformers

import graphattn.hf
from graphattn import patterns

LENGTH = 256  # tokens per training window and per evaluated chunk
TEXT = Path(graphattn.__file__).parent / "experiments" / "data" / "comedy_of_errors.txt"


class CharTokenizer:
    """Characters as tokens, with the two methods graphattn.hf needs of a tokenizer."""

    def __init__(self, text: str) -> None:
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __call__(self, text: str, return_tensors: str = "pt") -> dict:
        return {"input_ids": torch.tensor([[self.index[c] for c in text]])}

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self.chars[i] for i in ids]


def train(ids: torch.Tensor, vocab: int, steps: int, seed: int = 0):
    """A tiny LlamaForCausalLM trained on random 256-token windows of ``ids`` (full causal)."""
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    model = transformers.LlamaForCausalLM._from_config(config, attn_implementation="sdpa")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        start = torch.randint(0, ids.numel() - LENGTH, (16,), generator=gen)
        batch = torch.stack([ids[s : s + LENGTH] for s in start.tolist()])  # (16, LENGTH)
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return graphattn.hf.attach(model.eval())


GRAPHS = {
    "full (causal)": None,
    "sliding window 32": lambda n: patterns.sliding_window(n, 32),
    "window 32 + 4 sinks": lambda n: patterns.attention_sink(n, sinks=4, window=32),
    "strided 16": lambda n: patterns.strided(n, 16),
    "sliding window 8": lambda n: patterns.sliding_window(n, 8),
}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="training steps (default 500)")
    args = parser.parse_args(argv)
    text = TEXT.read_text(encoding="utf-8")
    tokenizer = CharTokenizer(text)
    ids = tokenizer(text)["input_ids"][0]
    split = int(0.9 * ids.numel())
    model = train(ids[:split], len(tokenizer.chars), args.steps)
    held_out = text[split:]
    result = graphattn.hf.perplexity(model, tokenizer, held_out, GRAPHS, max_length=LENGTH)
    density = {
        name: 1.0 if fn is None else fn(LENGTH).num_edges / patterns.causal(LENGTH).num_edges
        for name, fn in GRAPHS.items()
    }
    print(f"| graph ({LENGTH} tokens) | edges vs causal | perplexity ({args.steps} steps) |")
    print("| --- | --- | --- |")
    for name, value in result.items():
        print(f"| {name} | {density[name]:.2f} | {value:.3f} |")
    return result


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
