"""Test-wide settings.

The unit tests run small tensors, where torch's intra-op threads cost more in
synchronisation than they save; one thread keeps the suite fast and its timings
independent of how busy the machine is. Benchmarks (benchmarks/) do not import
this file and keep torch's default.
"""

import matplotlib
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)
