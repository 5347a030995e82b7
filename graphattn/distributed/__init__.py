"""Graph-partitioned attention over ``torch.distributed``.

Each rank owns a set of target tokens (their queries and outputs) and of
source tokens (their keys and values). Attention into an owned target needs
the keys and values of its sources; those a rank does not own, its *halo*,
arrive in one uneven all-to-all, and the rank then runs the ordinary
:func:`graphattn.graph_attention` on its owned targets against its owned
plus halo sources. Only the halo moves.

- :mod:`~graphattn.distributed.assign`: which rank owns each token
  (``"contiguous"``, ``"metis"``);
- :mod:`~graphattn.distributed.partition`: :class:`Partition`, :func:`partition`,
  the per-rank local graphs;
- :mod:`~graphattn.distributed.exchange`: the halo all-to-all and the agreement
  on shapes (the only collectives);
- :mod:`~graphattn.distributed.attention`: :func:`graph_attention` across ranks;
- :mod:`~graphattn.distributed.cost`: bytes each rank sends, against an
  all-gather and a ring pass.

Examples
--------
>>> import graphattn.distributed as gd
>>> from graphattn import patterns
>>> part = gd.partition(patterns.sliding_window(8, 2), 2, method="contiguous")
>>> part
Partition(world_size=2, method='contiguous', owned=[4, 4], halo=[0, 1])
"""

from graphattn.distributed.attention import graph_attention
from graphattn.distributed.cost import bytes_sent, rows_sent
from graphattn.distributed.exchange import sum_gradients
from graphattn.distributed.partition import (
    LocalPlan,
    Partition,
    local_plan,
    partition,
    partition_as,
)

__all__ = [
    "LocalPlan",
    "Partition",
    "bytes_sent",
    "graph_attention",
    "local_plan",
    "partition",
    "partition_as",
    "rows_sent",
    "sum_gradients",
]
