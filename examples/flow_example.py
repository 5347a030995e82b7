"""Where did the last token's representation come from? Rollout, flow and paths.

A small randomly initialised causal GraphTransformer reads a sentence; its
per-layer attention weights (one ``(graph, weights)`` pair per layer) go into
``graphattn.flow``:

- attention rollout, the product of the residual-adjusted layer matrices
  (the full N x N map, lower-triangular because the graph is causal);
- attention flow, max flow from every input token to the last token;
- the strongest paths from the first token to the last one;
- ablation importance of every input token for the last token's output, and
  how faithfully rollout and flow rank the tokens (Spearman).

Then it draws the flow through the layers, coloured by the rollout share of
each input token, and the rollout matrix, with ``graphattn.plot``.

Run: PYTHONPATH=. python examples/flow_example.py [--out graphattn-demo/flow]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from graphattn import TokenGraph  # noqa: E402
from graphattn.flow import (  # noqa: E402
    ablation_importance,
    attention_flow,
    attention_rollout,
    faithfulness,
    top_paths,
)
from graphattn.nn import GraphTransformer  # noqa: E402
from graphattn.plot import draw_flow, draw_matrix, save_figure  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="rollout and flow on a small model")
    parser.add_argument(
        "--out", type=Path, default=Path("graphattn-demo/flow"), help="output folder"
    )
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    graph = TokenGraph.from_tokens("the quick brown fox jumps over the lazy dog", "causal")
    n = graph.num_nodes
    model = GraphTransformer(d_model=32, num_heads=4, num_layers=4, dim_feedforward=64).eval()
    x = torch.randn(n, 32)  # (N, C) token embeddings

    with torch.no_grad():
        layers = model(x, graph, need_weights=True).sequence_layers(0)  # [(graph, (E, H))]
    last = n - 1

    rollout = attention_rollout(layers)  # (N, N)
    flow = attention_flow(layers, [last])[0]  # (N,)
    print(f"{'token':>8} {'rollout':>8} {'flow':>8}")
    for j, tok in enumerate(graph.tokens):
        print(f"{tok:>8} {rollout[last, j].item():8.3f} {flow[j].item():8.3f}")

    print(f"\nstrongest paths from {graph.tokens[0]!r} to {graph.tokens[last]!r}:")
    for path in top_paths(layers, last, 0, k=3):
        words = " -> ".join(path.labels)  # the same path as positions: path.tokens
        print(f"  {path.strength:.4f}  {words}")

    with torch.no_grad():
        intact = model(x, graph).last_hidden_state[last]  # (C,)
    direction = intact / intact.norm()

    def model_fn(inputs: torch.Tensor) -> torch.Tensor:
        return model(inputs, graph).last_hidden_state  # (N, C)

    importance = ablation_importance(model_fn, x, lambda out: out[last] @ direction)
    print("\nfaithfulness (Spearman with ablation importance of each input token):")
    print(f"  rollout {faithfulness(rollout[last], importance):+.3f}")
    print(f"  flow    {faithfulness(flow, importance):+.3f}")

    args.out.mkdir(parents=True, exist_ok=True)
    ax = draw_flow(layers, relevance=rollout[last], relevance_row=0)
    save_figure(ax.figure, args.out / "flow_layers.png")
    ax = draw_matrix(graph, rollout[graph.dst, graph.src], title="attention rollout")  # (E,)
    save_figure(ax.figure, args.out / "rollout_matrix.png")
    plt.close("all")
    print(f"\nwrote {args.out / 'flow_layers.png'} and {args.out / 'rollout_matrix.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
