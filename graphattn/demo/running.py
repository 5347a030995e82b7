"""Running the demo: its configuration, its checks, and :func:`run_demo`, which writes the folder.

The folder is built under a temporary name next to its target and moved into
place at the end (:func:`run_demo`), so nothing is written half-way.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graphattn import patterns
from graphattn.demo.figures import (
    fig_cross,
    fig_flow,
    fig_grid,
    fig_heads,
    fig_heatmaps,
    fig_patterns,
    fig_rollout,
    fig_token_graph,
    fig_word,
)
from graphattn.demo.model import DemoRun, load_model, run_model
from graphattn.demo.page import summaries, viewer_links, write_index, write_viewers
from graphattn.graph import TokenGraph

__all__ = [
    "COMPARED",
    "DEFAULT_TEXTS",
    "DEMO_PARAMS",
    "MARKER",
    "DemoConfig",
    "DemoResult",
    "demo_patterns",
    "pattern_graph",
    "run_demo",
]

DEFAULT_TEXTS = ("He left the roses by the bank.", "She deposited the money at the bank.")
MARKER = ".graphattn-demo"  # marks a folder written by the demo, which a re-run may replace

# Parameters of each pattern in the demo: small enough to be sparse on a short
# sentence, valid for any sentence of >= 3 tokens ([CLS] word [SEP]).
DEMO_PARAMS: dict[str, dict] = {
    "sliding_window": {"window": 3, "causal": False},
    "bigbird": {"window": 2, "num_global": 1, "num_random": 1},
    "longformer": {"window": 2, "globals": 1},
    "strided": {"stride": 3},
    "fixed": {"stride": 3},
    "global_tokens": {"globals": 1},
    "random": {"k": 2},
    "block_diagonal": {"sizes": 3},
    "prefix_lm": {"prefix": 3},
    "attention_sink": {"sinks": 1, "window": 3},
}
COMPARED = ("full", "sliding_window", "bigbird")  # always compared; --pattern adds one


def demo_patterns() -> list[str]:
    """Pattern names the demo accepts: self-attention patterns it can build on any sentence.

    Examples
    --------
    >>> "sliding_window" in demo_patterns(), "cross" in demo_patterns()
    (True, False)
    """
    names = []
    for name in patterns.available():
        try:
            patterns.get(name, 3, **DEMO_PARAMS.get(name, {}))
        except (TypeError, ValueError):
            continue  # needs parameters a single sentence cannot give (cross, documents)
        names.append(name)
    return names


def pattern_graph(name: str) -> Callable[[int], TokenGraph]:
    """The demo's builder ``n -> TokenGraph`` for pattern ``name`` (see :data:`DEMO_PARAMS`)."""
    return lambda n: patterns.get(name, n, **DEMO_PARAMS.get(name, {}))


@dataclass
class DemoConfig:
    """What the demo runs on and where it writes.

    Examples
    --------
    >>> DemoConfig().texts
    ('He left the roses by the bank.', 'She deposited the money at the bank.')
    """

    texts: Sequence[str] = DEFAULT_TEXTS  # one or two texts
    pattern: str = "causal"  # a sparse pattern shown beside the full graph, sliding window, BigBird
    out: str | os.PathLike = "graphattn-demo"  # the folder written (replaced if an older demo)
    model: str = "auto"  # "auto" (MiniLM if installed, else built-in), "minilm" or "tiny"
    word: str | None = None  # the word compared across texts; default "bank" or a shared word
    layers: Sequence[int] | None = None  # layers drawn head by head; default first, middle, last
    progress: bool = True  # a tqdm progress bar on stderr


@dataclass
class DemoResult:
    """What the demo wrote and measured."""

    out: Path  # the folder written
    files: list[str]  # names of the files in it
    model_name: str
    summary: str  # the text printed at the end
    word_distance: float | None = None  # cosine distance of the word's two final embeddings
    drift: dict[str, float] = field(default_factory=dict)  # pattern -> mean sentence cosine


# ------------------------------------------------------------------ checks
def _check_config(cfg: DemoConfig) -> tuple[list[str], Path]:
    """Validate everything that needs no model; return the texts and the output folder."""
    texts = [cfg.texts] if isinstance(cfg.texts, str) else list(cfg.texts)
    if not 1 <= len(texts) <= 2 or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"texts must be one or two strings, got {cfg.texts!r}")
    for i, t in enumerate(texts):
        if not t.strip():
            raise ValueError(
                f"text {i + 1} is empty; give a sentence, e.g. --text 'The sky is blue.'"
            )
    if cfg.pattern not in demo_patterns():
        raise ValueError(
            f"unknown pattern {cfg.pattern!r}; valid names: {', '.join(demo_patterns())}"
        )
    if cfg.model not in ("auto", "minilm", "tiny"):
        raise ValueError(f"model must be 'auto', 'minilm' or 'tiny', got {cfg.model!r}")
    if not os.fspath(cfg.out).strip():
        raise ValueError(f"out must name a folder, got {os.fspath(cfg.out)!r}")
    out = Path(cfg.out).expanduser().absolute()
    if out.exists():
        if not out.is_dir():
            raise OSError(f"output {out} exists and is not a folder; choose another --out")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise OSError(
                f"output folder {out} is not empty and was not written by graphattn demo; "
                "choose another --out (nothing was changed)"
            )
    parent = out.parent
    if not parent.is_dir():
        raise OSError(f"cannot write {out}: {parent} is not an existing folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OSError(f"cannot write {out}: no write permission in {parent}")
    return texts, out


# --------------------------------------------------------------------- run
def run_demo(cfg: DemoConfig) -> DemoResult:
    """Run the demo and write its folder; see :mod:`graphattn.demo`.

    Parameters
    ----------
    cfg : DemoConfig

    Returns
    -------
    DemoResult

    Raises
    ------
    ValueError
        For an empty text, one longer than the model's positions, an unknown
        pattern or word, or a bad model choice.
    OSError
        If the output folder cannot be written or holds other files.
    ModuleNotFoundError
        With ``model="minilm"`` where the checkpoint package is not installed.

    Examples
    --------
    ``run_demo(DemoConfig(texts=["The sky is blue."], out="sky"))`` writes ``sky/``.
    Bad input is refused before anything is loaded or written:

    >>> run_demo(DemoConfig(pattern="diagonal", progress=False))
    Traceback (most recent call last):
    ...
    ValueError: unknown pattern 'diagonal'; valid names: attention_sink, bigbird, ...
    """
    import matplotlib

    matplotlib.use("Agg")
    from tqdm import tqdm

    texts, out = _check_config(cfg)
    total = 3 + (9 if len(texts) == 2 else 7)  # model, run, one step per picture, viewer
    steps = tqdm(total=total, desc="graphattn demo", disable=not cfg.progress, file=sys.stderr)
    run, model_name, note, chosen = _load_and_run(cfg, texts, steps)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        pictures = _Pictures(tmp, steps)
        distances, drift = _draw_pictures(run, cfg.pattern, chosen, pictures)
        steps.set_postfix_str("interactive viewer")
        viewers = write_viewers(run, tmp)
        steps.update()
        summary, header, table = summaries(run, model_name, note, drift, distances, out)
        write_index(tmp, pictures.written, header + viewer_links(run, viewers), table)
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        steps.close()
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    return DemoResult(
        out,
        files,
        model_name,
        summary,
        None if distances is None else distances[-1],
        {k: sum(v["sentence"]) / len(v["sentence"]) for k, v in drift.items()},
    )


def _load_and_run(cfg: DemoConfig, texts: list[str], steps):
    """Load the model and run the texts (two progress steps); check ``cfg.layers``."""
    steps.set_postfix_str("loading the model")
    model, model_name, note = load_model(cfg.model)
    if note:
        print(f"graphattn demo: note: {note}", file=sys.stderr)
    steps.update()
    steps.set_postfix_str("running the model")
    run = run_model(model, texts, cfg.word)
    L = len(run.layers[0])
    chosen = sorted(set(cfg.layers or (0, L // 2, L - 1)))
    if not all(0 <= i < L for i in chosen):
        raise ValueError(f"layers must lie in [0, {L}), got {list(cfg.layers)}")
    steps.update()
    return run, model_name, note, chosen


@dataclass
class _Pictures:
    """Draws the pictures into ``folder``, numbered in order, one progress step each."""

    folder: Path
    steps: object  # the tqdm progress bar
    written: list[tuple[str, str]] = field(default_factory=list)  # (caption key, file name)

    def draw(self, key: str, label: str, draw: Callable[[Path], object]):
        """Run ``draw(path)``; return what it returned beside the file name (or None)."""
        self.steps.set_postfix_str(label)
        result = draw(self.folder / f"{len(self.written) + 1:02d}-{key}.png")
        name, extra = result if isinstance(result, tuple) else (result, None)
        self.written.append((key, name))
        self.steps.update()
        return extra


def _draw_pictures(run: DemoRun, pattern: str, chosen: list[int], pictures: _Pictures):
    """Every picture of the page; returns the word's distances (None for one text) and drift."""
    two = len(run.texts) == 2
    sparse = pattern_graph(pattern)(len(run.tokens[0])).with_tokens(run.tokens[0])
    pictures.draw("token-graph", "token graph", lambda p: fig_token_graph(run, sparse, p))
    pictures.draw("heads", "heads", lambda p: fig_heads(run, chosen, p))
    pictures.draw("heatmaps", "heatmaps", lambda p: fig_heatmaps(run, chosen, p))
    pictures.draw("grid", "layers x heads", lambda p: fig_grid(run, p))
    rollout = pictures.draw("rollout", "rollout", lambda p: fig_rollout(run, p))
    pictures.draw("flow", "max-flow", lambda p: fig_flow(run, rollout, p))
    distances = None
    if two:
        distances = pictures.draw("word", "word in context", lambda p: fig_word(run, p))
    drift = _drift(run, pattern)
    pictures.draw("patterns", "sparse graphs", lambda p: fig_patterns(run, drift, p))
    if two:
        pictures.draw("cross", "cross-attention", fig_cross)
    return distances, drift


def _drift(run: DemoRun, pattern: str) -> dict[str, dict]:
    """Per compared pattern: its graph and the cosines of the sentence, word and tokens."""
    from graphattn.pretrained import measure_drift

    names = list(dict.fromkeys([*COMPARED, pattern]))
    result = {}
    for name in names:
        d = measure_drift(run.model, run.texts, pattern_graph(name), label=name)
        word_cos = [d.token_cosine[b][run.focus[b]].item() for b in range(len(run.texts))]
        graph = pattern_graph(name)(len(run.tokens[0])).with_tokens(run.tokens[0])
        result[name] = {
            "graph": graph,
            "sentence": d.sentence_cosine.tolist(),
            "tokens": d.token_cosine[0],
            "word": word_cos,
        }
    return result


def _publish(tmp: Path, out: Path) -> None:
    """Mark the finished folder as the demo's and move it into place, replacing an older demo."""
    (tmp / MARKER).write_text("written by graphattn demo; a re-run replaces this folder\n")
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp made it private; give it a normal folder's mode
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        os.replace(out, old / "previous")
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
