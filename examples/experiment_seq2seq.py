"""Train GraphSeq2Seq under different cross graphs on both translation tasks.

    python examples/experiment_seq2seq.py [OUT] [reorder|monotonic ...]

writes OUT/<task>/results.json, results.md and alignments.png (default OUT:
docs/img/experiments/seq2seq). The experiments are
``graphattn.experiments.cross_attention_experiments()``; one torch thread each.
"""

import shlex
import sys
from pathlib import Path

import torch

from graphattn.experiments import cross_attention_experiments, run_seq2seq_experiment


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv else Path("docs/img/experiments/seq2seq")
    experiments = cross_attention_experiments()
    names = argv[1:] or sorted(experiments)
    torch.set_num_threads(1)
    command = "python " + shlex.join(["examples/experiment_seq2seq.py", *argv])
    for name in names:
        results = run_seq2seq_experiment(experiments[name], out / name, command=command)
        print((out / name / "results.md").read_text())
        del results


if __name__ == "__main__":
    main(sys.argv[1:])
