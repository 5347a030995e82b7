"""``python -m graphattn.experiments.attribution [OUT_DIR]``: the ground-truth part alone."""

from graphattn.experiments.attribution.ground_truth import main

main()
