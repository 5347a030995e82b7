"""Every layer and head of all-MiniLM-L6-v2 as small multiples (the model view)."""

from pathlib import Path

from gallery_common import minilm_layers, run, save

from graphattn.plot import draw_heads


def main(out_dir: Path) -> list[Path]:
    axes = draw_heads(minilm_layers())  # (6 layers, 12 heads), one shared colour scale
    return [save(axes[0, 0].figure, out_dir, "heads.png")]


if __name__ == "__main__":
    run(main)
