"""The offline interactive viewer: every layer and head of all-MiniLM-L6-v2, full and sparse."""

from pathlib import Path

from gallery_common import minilm_layers, run

from graphattn.plot import to_html
from graphattn.plot.html import page_title


def main(out_dir: Path) -> list[Path]:
    layers = minilm_layers() + minilm_layers(window=2)  # 6 full layers, then 6 on a window
    title = f"all-MiniLM-L6-v2 · {page_title(layers)}"  # the text and the graph, named
    return [to_html(layers, Path(out_dir) / "viewer.html", title=title)]


if __name__ == "__main__":
    run(main)
