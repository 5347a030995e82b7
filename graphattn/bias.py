"""Per-edge score biases for :func:`graphattn.graph_attention`.

A bias is a callable ``bias(src, dst) -> (E,) | (E, H)`` that receives the
source and target index of every edge (``LongTensor (E,)`` on the inputs'
device) and returns what is added to the edge's score, like FlexAttention's
``score_mod``. Positions are the node indices: ``dst - src`` is how far back
target ``i`` looks at source ``j``. For a cross graph both sets are numbered
from 0, so the same formulas assume aligned positions.

The helpers are small dataclasses; a learned table is an ordinary tensor (wrap
it in ``nn.Parameter`` to train it) and receives gradients through the bias.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from graphattn._validate import check_bool, check_positive_int

__all__ = [
    "ALiBi",
    "RelativePositionBias",
    "T5RelativePositionBias",
    "alibi",
    "alibi_slopes",
    "relative_position_bias",
    "t5_bucket",
]


def _check_num_heads(num_heads: object) -> None:
    """``ValueError`` unless ``num_heads`` is a positive int."""
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
        raise ValueError(f"num_heads must be a positive int, got {num_heads!r}")


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """ALiBi's per-head slopes ``(H,)``: a geometric sequence from ``2^(-8/H)`` (Press et al.).

    For a head count that is not a power of two, the slopes of the closest
    smaller power of two are followed by every other slope of the next one.

    Raises
    ------
    ValueError
        If ``num_heads`` is not a positive int.

    Examples
    --------
    >>> alibi_slopes(4).tolist()
    [0.25, 0.0625, 0.015625, 0.00390625]
    >>> alibi_slopes(3).tolist()
    [0.0625, 0.00390625, 0.25]
    """
    _check_num_heads(num_heads)

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (k + 1) for k in range(n)]

    closest = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = power_of_two(closest)
    if closest < num_heads:
        slopes += power_of_two(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes)


@dataclass(frozen=True)
class ALiBi:
    """ALiBi bias ``-slope_h * |i - j|`` for every edge ``j -> i`` and head ``h``.

    On a causal graph ``|i - j| = i - j``, the original formulation; on other
    graphs it is the symmetric variant.

    Examples
    --------
    >>> bias = ALiBi(num_heads=2)
    >>> bias(torch.tensor([0, 0, 1]), torch.tensor([0, 2, 2]))
    tensor([[-0.0000, -0.0000],
            [-0.1250, -0.0078],
            [-0.0625, -0.0039]])
    """

    num_heads: int  # H: one slope per head, from alibi_slopes

    def __post_init__(self) -> None:
        _check_num_heads(self.num_heads)

    def __call__(self, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        slopes = alibi_slopes(self.num_heads).to(src.device)  # (H,)
        distance = (dst - src).abs().to(slopes.dtype)  # (E,)
        return -distance.unsqueeze(-1) * slopes  # (E, H)


def alibi(num_heads: int) -> ALiBi:
    """The ALiBi bias for ``num_heads`` heads, for ``graph_attention(..., bias=alibi(H))``.

    Examples
    --------
    >>> from graphattn import TokenGraph, graph_attention
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> q = k = v = torch.ones(2, 4, 8)
    >>> graph_attention(q, k, v, g, bias=alibi(4)).shape
    torch.Size([2, 4, 8])
    """
    return ALiBi(num_heads)  # validates num_heads


@dataclass(frozen=True)
class RelativePositionBias:
    """A bias looked up by relative position ``j - i``, clipped to ``[-R, R]``.

    ``table`` is ``(2R + 1,)`` or ``(2R + 1, H)``: row ``R + r`` is the bias of
    relative position ``r`` (negative: the source lies before the target).
    Or ``table`` is a function ``f(rel) -> (E,) | (E, H)`` of the relative
    positions ``rel = src - dst`` (LongTensor ``(E,)``).

    Examples
    --------
    >>> bias = RelativePositionBias(torch.tensor([-1.0, 0.0, 1.0]))  # R = 1
    >>> bias(torch.tensor([0, 3, 2]), torch.tensor([2, 1, 2])).tolist()
    [-1.0, 1.0, 0.0]
    """

    table: torch.Tensor | Callable[[torch.Tensor], torch.Tensor]

    def __post_init__(self) -> None:
        table = self.table
        if isinstance(table, torch.Tensor):
            if not table.is_floating_point():
                raise TypeError(f"table must be a floating-point tensor, got dtype {table.dtype}")
            if table.dim() not in (1, 2) or table.shape[0] % 2 == 0:
                raise ValueError(
                    f"table must have shape (2R + 1,) or (2R + 1, H), got {tuple(table.shape)}"
                )
        elif not callable(table):
            raise TypeError(f"table must be a tensor or a callable, got {type(table).__name__}")

    def __call__(self, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        rel = src - dst  # (E,) j - i
        if callable(self.table) and not isinstance(self.table, torch.Tensor):
            return self.table(rel)
        radius = (self.table.shape[0] - 1) // 2
        return self.table[rel.clamp(-radius, radius) + radius]  # (E,) or (E, H)


def relative_position_bias(
    table: torch.Tensor | Callable[[torch.Tensor], torch.Tensor],
) -> RelativePositionBias:
    """A relative-position bias from a table ``(2R + 1,)``/``(2R + 1, H)`` or a function.

    Raises
    ------
    TypeError
        If ``table`` is neither a floating tensor nor callable.
    ValueError
        If a table's first dimension is not odd (``2R + 1``) or it has more than 2 dims.

    Examples
    --------
    >>> table = torch.zeros(2 * 8 + 1, 4, requires_grad=True)  # learned, R = 8, H = 4
    >>> relative_position_bias(table)(torch.tensor([0]), torch.tensor([3])).shape
    torch.Size([1, 4])
    >>> decay = relative_position_bias(lambda rel: -0.1 * rel.abs().float())
    >>> decay(torch.tensor([0, 1]), torch.tensor([2, 1])).tolist()
    [-0.2, -0.0]
    """
    return RelativePositionBias(table)  # checks table


def t5_bucket(
    relative_position: torch.Tensor,
    *,
    bidirectional: bool = True,
    num_buckets: int = 32,
    max_distance: int = 128,
) -> torch.Tensor:
    """T5's bucket of each relative position ``j - i``: exact for small, log-spaced for large.

    Half of the buckets hold exact distances, the other half logarithmically
    larger ones up to ``max_distance``; ``bidirectional`` spends half of all
    buckets on positive positions. Matches T5 / Hugging Face
    ``_relative_position_bucket``.

    Examples
    --------
    >>> t5_bucket(torch.tensor([0, 1, -1, -7, -8, -30, -1000])).tolist()
    [0, 17, 1, 7, 8, 11, 15]
    >>> t5_bucket(torch.tensor([3, -3]), bidirectional=False).tolist()
    [0, 3]
    """
    if not isinstance(relative_position, torch.Tensor):
        raise TypeError(
            f"relative_position must be a tensor, got {type(relative_position).__name__}"
        )
    bidirectional = check_bool(bidirectional, "bidirectional")
    num_buckets = check_positive_int(num_buckets, "num_buckets")
    check_positive_int(max_distance, "max_distance")
    rel = relative_position.long()
    bucket = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        bucket = bucket + (rel > 0).long() * num_buckets
        rel = rel.abs()
    else:
        rel = -rel.clamp(max=0)
    max_exact = num_buckets // 2
    is_small = rel < max_exact
    large = max_exact + (
        torch.log(rel.float().clamp(min=1) / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).long()
    large = large.clamp(max=num_buckets - 1)
    return bucket + torch.where(is_small, rel, large)


@dataclass(frozen=True)
class T5RelativePositionBias:
    """T5's learned bias: ``table[t5_bucket(j - i)]`` with ``table (num_buckets, H)``.

    Examples
    --------
    >>> table = torch.arange(64.0).view(32, 2)
    >>> T5RelativePositionBias(table)(torch.tensor([1]), torch.tensor([0])).tolist()
    [[34.0, 35.0]]
    """

    table: torch.Tensor  # (num_buckets, H), usually an nn.Parameter
    bidirectional: bool = True  # False for decoder (causal) self-attention
    max_distance: int = 128  # positions beyond share the last bucket

    def __post_init__(self) -> None:
        if not isinstance(self.table, torch.Tensor) or not self.table.is_floating_point():
            got = getattr(self.table, "dtype", type(self.table).__name__)
            raise TypeError(f"table must be a floating tensor (num_buckets, H), got {got}")
        check_bool(self.bidirectional, "bidirectional")
        check_positive_int(self.max_distance, "max_distance")

    def __call__(self, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        bucket = t5_bucket(
            src - dst,
            bidirectional=self.bidirectional,
            num_buckets=self.table.shape[0],
            max_distance=self.max_distance,
        )  # (E,)
        return self.table[bucket]  # (E, H)
