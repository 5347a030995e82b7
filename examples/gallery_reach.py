"""How the receptive field grows layer by layer, as a field and as a strip of masks."""

from pathlib import Path

from gallery_common import run, save

from graphattn import analysis, patterns
from graphattn.plot import draw_patterns, draw_reach


def main(out_dir: Path) -> list[Path]:
    window = patterns.get("sliding_window", 24, window=3)
    strided = patterns.get("strided", 24, stride=5)
    masks = draw_patterns([analysis.reach(strided, k) for k in (1, 2, 3)], ncols=3)
    return [
        save(draw_reach(window, 8, share="allowed").figure, out_dir, "reach.png"),
        save(masks[0].figure, out_dir, "reach_masks.png"),
    ]


if __name__ == "__main__":
    run(main)
