"""The pattern library side by side, and long patterns binned to fit."""

from pathlib import Path

from gallery_common import run, save

from graphattn import patterns
from graphattn.plot import draw_patterns

N = 64
LIBRARY = [
    ("causal", {}),
    ("full", {}),
    ("sliding_window", {"window": 8}),
    ("sliding_window", {"window": 4, "causal": False}),
    ("strided", {"stride": 8}),
    ("fixed", {"stride": 8}),
    ("longformer", {"window": 4, "globals": 2}),
    ("bigbird", {"window": 3, "num_global": 2, "num_random": 3}),
    ("attention_sink", {"sinks": 4, "window": 8}),
    ("prefix_lm", {"prefix": 16}),
    ("block_diagonal", {"sizes": 16, "causal": True}),
    ("random", {"k": 6}),
]


def main(out_dir: Path) -> list[Path]:
    library = [patterns.get(name, N, **params) for name, params in LIBRARY]
    long = [  # above 512 tokens per side, cells are bins of tokens
        patterns.get("sliding_window", 2048, window=64),
        patterns.get("bigbird", 2048, window=32, num_global=32, num_random=32),
        patterns.get("strided", 2048, stride=45),
    ]
    return [
        save(draw_patterns(library, ncols=4)[0].figure, out_dir, "patterns.png"),
        save(draw_patterns(long, ncols=3)[0].figure, out_dir, "patterns_long.png"),
    ]


if __name__ == "__main__":
    run(main)
