"""Sequence-parallel language modelling on a :class:`~graphattn.distributed.Partition`.

Each rank holds the activations of its own tokens (``part.owned[rank]``)
through every layer; only attention talks to other ranks, through the halo
exchange of :func:`graphattn.distributed.graph_attention`. Every layer's
partition shares the owners of the one given (:func:`~graphattn.distributed.partition_as`),
so no activation moves between layers. :class:`~graphattn.nn.GraphLM` calls
these with ``partition=``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from graphattn import distributed as gd
from graphattn.distributed.exchange import agree, group_device

__all__ = ["partitioned_logits", "partitioned_loss", "shard_tokens"]

IGNORE = -100


def shard_tokens(idx: torch.Tensor, part: gd.Partition, rank: int):
    """This rank's token ids and next-token targets, from the full ``(B, N)`` ids.

    Position ``t`` predicts ``idx[:, t + 1]``; the last position is ignored
    (``-100``), as :meth:`GraphLM.loss` does by default.

    Examples
    --------
    >>> from graphattn import patterns
    >>> part = gd.partition(patterns.causal(4), 2, method="contiguous")
    >>> ids, targets = shard_tokens(torch.tensor([[5, 6, 7, 8]]), part, 1)
    >>> part.owned[1].tolist(), ids.tolist(), targets.tolist()
    ([2, 3], [[7, 8]], [[8, -100]])
    """
    if not isinstance(part, gd.Partition):
        raise TypeError(f"part must be a Partition, got {type(part).__name__}")
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
        raise ValueError(f"idx must be a (B, N) tensor, got {getattr(idx, 'shape', idx)!r}")
    if idx.shape[1] != part.graph.num_nodes:
        raise ValueError(
            f"idx must have part.graph's N={part.graph.num_nodes} tokens, got {tuple(idx.shape)}"
        )
    pad = torch.full_like(idx[:, :1], IGNORE)  # (B, 1)
    targets = torch.cat([idx[:, 1:], pad], 1)  # (B, N)
    rows = part.owned[rank].to(idx.device)
    return idx[:, rows], targets[:, rows]  # (B, N_r) each


def _check_ids(lm, idx, part, rank: int, targets) -> list[int]:
    """Check this rank's ids (and targets); return what all ranks must share."""
    if not isinstance(part, gd.Partition) or part.graph.is_cross:
        raise TypeError(f"partition must be a Partition of a self graph, got {part!r:.80}")
    n, n_r = part.graph.num_nodes, len(part.owned[rank])
    if n > lm.config.max_len:
        raise ValueError(f"partition has N={n} tokens, more than max_len={lm.config.max_len}")
    if not isinstance(idx, torch.Tensor) or idx.is_floating_point() or idx.dtype == torch.bool:
        raise TypeError(f"idx must be an integer tensor (B, N_r), got {getattr(idx, 'dtype', idx)}")
    if idx.dim() != 2 or idx.shape[1] != n_r:
        raise ValueError(
            f"idx must have shape (B, N_r={n_r}) for part.owned[{rank}], got {tuple(idx.shape)}"
        )
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= lm.config.vocab_size):
        raise ValueError(f"idx holds ids outside [0, vocab_size={lm.config.vocab_size})")
    if targets is not None and (
        not isinstance(targets, torch.Tensor) or targets.shape != idx.shape
    ):
        raise ValueError(
            f"targets must have the shape of idx {tuple(idx.shape)}, "
            f"got {tuple(getattr(targets, 'shape', ()))}"
        )
    return [part.fingerprint, idx.shape[0]]


def partitioned_logits(
    lm, idx: torch.Tensor, part: gd.Partition, need_weights: bool, targets=None
):
    """``(logits (B, N_r, V), layers)`` of this rank's tokens ``idx (B, N_r)``.

    ``layers`` is every layer's ``(Partition, weights of the edges into this
    rank's targets)``, or None. Bad ids (or ``targets`` of another shape) or a
    mismatched partition on any rank raise on every rank (one small integer
    ``all_gather`` first).
    """
    rank = dist.get_rank()
    error, fields = None, [0, 0]
    try:
        fields = _check_ids(lm, idx, part, rank, targets)
    except (TypeError, ValueError) as err:
        error = err
    agree(("partition fingerprint", "batch size"), fields, error)  # raises on every rank
    n = part.graph.num_nodes
    pos = part.owned[rank].to(idx.device)  # (N_r,) global positions
    x = lm.drop(lm.tok_emb(idx) + lm.pos_emb(pos))  # (B, N_r, C)
    found = [] if need_weights else None
    for layer, graph in zip(lm.layers, lm.graphs(n), strict=True):
        layer_part = gd.partition_as(graph, part)
        x, weights = layer(x, layer_part, need_weights=need_weights)
        if need_weights:
            found.append((layer_part, weights))
    return lm.lm_head(lm.norm(x)), found  # (B, N_r, V)


def partitioned_loss(lm, idx: torch.Tensor, targets: torch.Tensor, part: gd.Partition):
    """This rank's share of the mean cross-entropy over all ranks' scored positions.

    The shares sum (over ranks) to the one-process loss, so summing gradients
    over ranks (:func:`graphattn.distributed.sum_gradients`) gives its gradients.
    """
    if targets is None:
        targets = idx[:, :0]  # the shape check below then fails on this rank, raising everywhere
    logits, _ = partitioned_logits(lm, idx, part, False, targets)  # (B, N_r, V)
    total = F.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum"
    )
    count = (targets != IGNORE).sum().to(torch.long).reshape(1).to(group_device())
    dist.all_reduce(count)  # scored positions on all ranks
    return total / count.item()
