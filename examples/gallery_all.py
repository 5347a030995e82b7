"""Every gallery picture: ``python examples/gallery_all.py docs/img`` regenerates docs/img."""

from pathlib import Path

import gallery_attention
import gallery_flow
import gallery_graphs
import gallery_heads
import gallery_long
import gallery_matrix
import gallery_patterns
import gallery_reach
import gallery_viewer
from gallery_common import run

SCRIPTS = [
    gallery_graphs,
    gallery_patterns,
    gallery_attention,
    gallery_matrix,
    gallery_heads,
    gallery_reach,
    gallery_flow,
    gallery_long,
    gallery_viewer,
]


def main(out_dir: Path) -> list[Path]:
    return [path for script in SCRIPTS for path in script.main(out_dir)]


if __name__ == "__main__":
    run(main)
