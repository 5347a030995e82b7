"""Information flow through all-MiniLM-L6-v2 with the rollout relevance of one token."""

from pathlib import Path

from gallery_common import minilm_layers, run, save

from graphattn.flow import attention_rollout
from graphattn.plot import draw_flow


def main(out_dir: Path) -> list[Path]:
    layers = minilm_layers()
    target = layers[0][0].tokens.index("it")
    relevance = attention_rollout(layers, targets=[target])[0]  # (N,) share of each input
    ax = draw_flow(layers, relevance=relevance, target=target, max_edges=600)
    return [save(ax.figure, out_dir, "flow.png")]


if __name__ == "__main__":
    run(main)
