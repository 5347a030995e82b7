"""``graphattn attribution``: the attribution benchmark in one command.

::

    graphattn attribution [OUT_DIR] [--sentences N]
                          [--only ground-truth|translation|minilm]

It runs the ground-truth part (:func:`graphattn.experiments.attribution.ground_truth.run`:
train or resume six small ``GraphLM`` models on associative recall, score every
method, time them), the translation part
(:func:`graphattn.experiments.attribution.cross.run`: the source word each
target word translates, through the cross-attention of the two shipped
translation models, :mod:`graphattn.pretrained.translation`), then the MiniLM
part (:func:`graphattn.experiments.attribution.minilm.run`: Spearman with
blank-out and AOPC deletion curves over ``N`` sentences, default 200), writes
every table as Markdown and JSON into ``OUT_DIR`` (default
``benchmarks/results/attribution``), and last ``summary.md``/``summary.json``
(:func:`graphattn.experiments.attribution.summary.write_summary`): which
method finds the ground truth best, computed from the tables in ``OUT_DIR``.
``--only`` runs one part; the summary then also reads the other part's
tables if an earlier run left them there. Every argument is checked before
the first part runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from graphattn.experiments.attribution import cross as attribution_cross
from graphattn.experiments.attribution import ground_truth as attribution
from graphattn.experiments.attribution import minilm as attribution_minilm
from graphattn.experiments.attribution.summary import write_summary
from graphattn.experiments.lm.config import ExperimentConfig

__all__ = ["PARTS", "add_parser", "main", "parse_args", "run"]

PARTS = ("ground-truth", "translation", "minilm")
_DEFAULT_SENTENCES = 200
_DESCRIPTION = (
    "Attribution benchmark: ground truth on trained GraphLMs and through the cross-attention of "
    "the shipped translation models, agreement and deletion curves on all-MiniLM-L6-v2, and a "
    "summary of which method finds the ground truth best."
)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("out_dir", nargs="?", default=attribution.DEFAULT_OUT, metavar="OUT_DIR",
                        help="tables, summary and checkpoints (default: %(default)s)")
    parser.add_argument("--sentences", type=_positive, metavar="N",
                        help=f"sentences of the MiniLM part (default: {_DEFAULT_SENTENCES})")
    parser.add_argument("--only", choices=PARTS, help="run one part only")
    return parser


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``graphattn attribution``."""
    parser = subparsers.add_parser(
        "attribution", help="score attribution methods against ground truth and on MiniLM",
        description=_DESCRIPTION,
    )
    return _add_arguments(parser)


def _check(args: argparse.Namespace, corpus: Callable[[int], list[str]]) -> None:
    """Refuse what argparse alone cannot see; add ``texts`` (the MiniLM part's sentences)."""
    args.out_dir = Path(args.out_dir)
    if args.out_dir.exists() and not args.out_dir.is_dir():
        raise ValueError(f"OUT_DIR {args.out_dir} exists and is not a folder")
    minilm = args.only in (None, "minilm")
    if not minilm and args.sentences is not None:
        raise ValueError(f"--sentences sets the MiniLM part, which --only {args.only} skips")
    n = _DEFAULT_SENTENCES if args.sentences is None else args.sentences
    args.texts = corpus(n) if minilm else []
    if minilm and len(args.texts) < n:
        raise ValueError(f"--sentences {n}: only {len(args.texts)} sentences are available")


def parse_args(
    argv: Sequence[str] | None = None,
    corpus: Callable[[int], list[str]] = attribution_minilm.sentences,
) -> argparse.Namespace:
    """Parse and check the arguments before any work; exit with a usage error if wrong.

    ``argv`` defaults to the command line. Checks that ``OUT_DIR`` is not a
    file and that ``corpus`` has ``--sentences`` sentences. Adds ``texts``:
    those sentences (empty when ``--only`` skips the MiniLM part, which alone
    takes ``--sentences``).

    Examples
    --------
    >>> args = parse_args(["out", "--sentences", "2", "--only", "minilm"], lambda n: ["a"] * n)
    >>> str(args.out_dir), args.only, args.texts
    ('out', 'minilm', ['a', 'a'])
    """
    parser = _add_arguments(argparse.ArgumentParser(prog="graphattn attribution",
                                                    description=_DESCRIPTION))
    args = parser.parse_args(argv)
    try:
        _check(args, corpus)
    except ValueError as err:
        parser.error(str(err))
    return args


def _translation(out: Path, n_sentences: int, log: Callable[[str], None]) -> dict:
    """The translation part on the shipped translation models."""
    from graphattn.pretrained.translation import (
        TRANSLATION_MODELS,
        demo_experiment,
        load_translation_model,
    )

    models = {name: load_translation_model(name)[0] for name in TRANSLATION_MODELS}
    return attribution_cross.run(out, models, demo_experiment().task, n_sentences, log)


def _minilm(out: Path, texts: list[str], model, log: Callable[[str], None]) -> dict:
    """The MiniLM part on ``model`` (``None``: the real all-MiniLM-L6-v2)."""
    if model is None:
        from graphattn.pretrained import load_minilm

        model = load_minilm()
    return attribution_minilm.run(out, texts, model, log)


def _benchmark(
    args: argparse.Namespace,
    log: Callable[[str], None] = print,
    config: ExperimentConfig = attribution.CONFIG,
    n_seqs: int = 200,
    lengths: tuple[int, ...] = (128, 1024),
    minilm=None,
    n_translation: int = 200,
) -> dict:
    """The parts ``args`` asks for, then the summary, into ``args.out_dir``."""
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    done = {}
    if args.only in (None, "ground-truth"):
        done["ground_truth"] = attribution.run(args.out_dir, config, n_seqs, lengths, log)
    if args.only in (None, "translation"):
        done["translation"] = _translation(args.out_dir, n_translation, log)
    if args.only in (None, "minilm"):
        done["minilm"] = _minilm(args.out_dir, args.texts, minilm, log)
    done["summary"] = write_summary(args.out_dir)
    log((args.out_dir / "summary.md").read_text())
    return done


def run(args: argparse.Namespace) -> int:
    """Run ``graphattn attribution``: every part it asks for and the summary; 0 when done."""
    _check(args, attribution_minilm.sentences)
    _benchmark(args)
    return 0


def main(
    argv: Sequence[str] | None = None,
    *,
    log: Callable[[str], None] = print,
    config: ExperimentConfig = attribution.CONFIG,
    n_seqs: int = 200,
    lengths: tuple[int, ...] = (128, 1024),
    minilm=None,
    corpus: Callable[[int], list[str]] = attribution_minilm.sentences,
    n_translation: int = 200,
) -> dict:
    """Run the benchmark's parts, write their tables and the summary; return them.

    ``config``, ``n_seqs`` (validation sequences scored), ``lengths`` (of the
    cost table), ``minilm`` (the model of the MiniLM part; default the real
    all-MiniLM-L6-v2), ``corpus`` (``count -> sentences``) and
    ``n_translation`` (validation sentences of the translation part) are the
    benchmark's own unless a test passes small ones.

    Returns
    -------
    dict
        ``"ground_truth"``, ``"translation"`` and ``"minilm"`` (the parts
        run) and ``"summary"``.
    """
    args = parse_args(argv, corpus)
    return _benchmark(args, log, config, n_seqs, lengths, minilm, n_translation)
