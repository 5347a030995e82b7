"""The benchmark's log-log plots: time and peak memory against N, one panel per pattern."""

from __future__ import annotations

from pathlib import Path

from graphattn.bench.cases import IMPLS, PATTERNS

__all__ = ["COLORS", "write_plots"]

COLORS = {"graphattn": "tab:blue", "dense": "tab:green", "pyg": "tab:red", "flex": "tab:purple"}


def write_plots(results: list[dict], folder: Path) -> list[Path]:
    """Write ``bench_time.png`` and ``bench_memory.png`` into ``folder``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from graphattn.plot.style import save_figure

    ok = [r for r in results if "median_s" in r]
    patterns = [p for p in PATTERNS if any(r["case"]["pattern"] == p for r in ok)]
    paths = []
    for what, key, scale, label in (
        ("time", "median_s", 1e3, "median time (ms)"),
        ("memory", "peak_extra_bytes", 1 / 2**20, "peak extra memory (MiB)"),
    ):
        fig, axes = plt.subplots(1, len(patterns), figsize=(4 * len(patterns), 3.6), squeeze=False)
        for ax, pattern in zip(axes[0], patterns, strict=True):
            _panel(ax, [r for r in ok if r["case"]["pattern"] == pattern], key, scale)
            ax.set_title(pattern)
        axes[0][0].set_ylabel(label)
        _legend(fig, axes[0])
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        path = folder / f"bench_{what}.png"
        save_figure(fig, path, dpi=110)  # whole or not at all
        plt.close(fig)
        paths.append(path)
    return paths


def _panel(ax, results: list[dict], key: str, scale: float) -> None:
    """One line per implementation and mode: ``result[key] * scale`` against N."""
    for impl in IMPLS:
        for mode, style in (("fwd", "-o"), ("fwdbwd", "--s")):
            pts = sorted(
                (r["case"]["n"], r[key] * scale)
                for r in results
                if r["case"]["impl"] == impl and r["case"]["mode"] == mode
            )
            if pts:
                xs, ys = zip(*pts, strict=True)
                ys = [max(y, 1e-3) for y in ys]
                ax.loglog(xs, ys, style, color=COLORS[impl], label=f"{impl} {mode}")
    ax.set_xlabel("N (tokens)")
    ax.grid(True, which="both", alpha=0.3)


def _legend(fig, axes) -> None:
    """One legend under the panels, each label once."""
    handles = {}
    for ax in axes:
        for line in ax.get_lines():
            handles.setdefault(line.get_label(), line)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles),
               fontsize=8, frameon=False)  # fmt: skip
