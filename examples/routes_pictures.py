"""The information-flow routes pictures of docs/flow.md.

* all-MiniLM-L6-v2 on the gallery sentence: the route of "it", from ALTI.
* A GPT-2-shaped model (GPT2Config: 12 layers, 768 wide, 12 heads, random
  weights, built offline) on a long prompt of 1,024 words from *The Comedy
  of Errors* (one id per word) on a causal sliding window of 32 keys: the
  route of the last token's prediction, from ALTI through ``graphattn.hf``.

Run: PYTHONPATH=. python examples/routes_pictures.py [OUT_DIR] (default docs/img).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from graphattn import TokenGraph, patterns  # noqa: E402
from graphattn.flow import contributions, routes  # noqa: E402
from graphattn.plot import draw_routes, save_figure  # noqa: E402

SENTENCE = "The animal did not cross the street because it was too tired."
TEXT = Path(__file__).resolve().parents[1] / "graphattn/experiments/data/comedy_of_errors.txt"


def labelled(layers, tokens):
    """``[(graph, c)]`` with the graphs' token labels set to ``tokens``."""
    return [(TokenGraph(g.edge_index, g.num_nodes, tokens=tokens), c) for g, c in layers]


def minilm_routes(threshold: float = 0.1):
    from graphattn.pretrained import load_minilm

    model = load_minilm()
    ids, tokens = model.tokenize(SENTENCE)
    layers = [(g, c[0]) for g, c in contributions(model, ids, "alti")]
    return routes(labelled(layers, tokens), tokens.index("it"), threshold)


def gpt2_routes(
    n_tokens: int, n_layer: int = 12, n_embd: int = 768, window: int = 32, threshold: float = 0.005
):
    import transformers

    import graphattn.hf  # noqa: F401  (registers attn_implementation="graphattn")

    words = TEXT.read_text().split()[:n_tokens]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    config = transformers.GPT2Config(
        n_layer=n_layer, n_embd=n_embd, n_head=max(1, n_embd // 64), n_positions=max(1024, n_tokens)
    )
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel._from_config(config, attn_implementation="graphattn")
    ids = torch.tensor([[vocab[w] for w in words]])  # (1, N)
    start = time.perf_counter()
    graph = patterns.sliding_window(len(words), min(window, len(words)))
    layers = [(g, c[0]) for g, c in contributions(model.eval(), ids, "alti", graph=graph)]
    seconds = time.perf_counter() - start
    return routes(labelled(layers, words), len(words) - 1, threshold), seconds


def main(out_dir: Path, gpt2_tokens: int = 1024, gpt2_layers: int = 12, gpt2_width: int = 768):
    out_dir = Path(out_dir)
    ax = draw_routes(minilm_routes(), all_tokens=True)
    written = [save_figure(ax.figure, out_dir / "routes_minilm.png", dpi=110)]
    plt.close(ax.figure)
    route, seconds = gpt2_routes(gpt2_tokens, gpt2_layers, gpt2_width)
    print(f"GPT-2-shaped, {gpt2_tokens} tokens: ALTI in {seconds:.1f} s, "
          f"{route.num_edges} edges on the route")
    ax = draw_routes(route)
    written.append(save_figure(ax.figure, out_dir / "routes_gpt2.png", dpi=110))
    plt.close(ax.figure)
    return written


if __name__ == "__main__":
    for path in main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img")):
        print(path)
