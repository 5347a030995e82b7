"""The attention benchmark in one command (the same as ``graphattn bench``).

    PYTHONPATH=. python benchmarks/bench_attention.py            # full run
    PYTHONPATH=. python benchmarks/bench_attention.py --quick    # seconds
    PYTHONPATH=. python benchmarks/bench_attention.py --patterns window,random --sizes 1024,16384

Options are those of ``graphattn bench --help``; results go to ``--out``
(default ``bench-results``). The committed results in benchmarks/results/ are
rewritten only with ``--out benchmarks/results --overwrite``.
"""

import sys

from graphattn.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
