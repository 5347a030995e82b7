"""Relevance through encoder -> decoder graphs (Chefer et al., 2021b)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from graphattn._validate import check_bool
from graphattn.flow._layers import Layer, check_head_reduce, check_layer, compute_dtype
from graphattn.flow.batch import split_examples
from graphattn.flow.heads import aggregate_heads

__all__ = ["CrossRelevance", "cross_rollout"]


class CrossRelevance(NamedTuple):
    """Relevance maps of an encoder-decoder model (rows: the tokens being explained)."""

    cross: torch.Tensor  # (N, M): R^{de}[i, j], relevance of encoder token j for decoder token i
    decoder: torch.Tensor  # (N, N): R^{dd}, decoder self relevance
    encoder: torch.Tensor  # (M, M): R^{ee}, encoder self relevance


def cross_rollout(
    encoder_layers: Sequence[Any],
    decoder_self_layers: Sequence[Any],
    decoder_cross_layers: Sequence[Any],
    *,
    head_reduce: str = "mean",
    normalize: bool = True,
) -> CrossRelevance:
    """Relevance of encoder tokens for decoder tokens, by the rules of Chefer et al. (2021b).

    Inputs, all in the order the model runs them:

    - ``encoder_layers``: the encoder's self-attention layers, self graphs
      over the ``M`` encoder tokens (may be empty);
    - ``decoder_self_layers`` and ``decoder_cross_layers``: per decoder
      block ``b``, its self-attention layer (a self graph over the ``N``
      decoder tokens, e.g. causal) and its cross-attention layer (a cross
      graph with ``N`` targets and ``M`` sources); block ``b`` applies
      ``decoder_self_layers[b]`` and then ``decoder_cross_layers[b]``.

    Each layer is ``(graph, weights)`` or ``(graph, weights, grad)`` with
    ``weights``/``grad`` ``(E,)`` or ``(E, H)`` in edge order; ``grad`` is
    the gradient of the explained output with respect to the attention
    weights. Per layer ``Abar = E_h[(grad * A)^+]`` (rule 5; the head
    reduction is ``head_reduce``), or ``E_h[A]`` when no gradient is given.
    Starting from ``R^{ee} = I_M``, ``R^{dd} = I_N``, ``R^{de} = 0``:

    - encoder self layer: ``R^{ee} += Abar R^{ee}``;
    - decoder self layer: ``R^{dd} += Abar R^{dd}`` and ``R^{de} += Abar R^{de}``;
    - decoder cross layer: ``R^{de} += (Rbar^{dd})^T Abar Rbar^{ee}``,

    where ``Rbar = (R - I)`` with rows normalized to sum 1, plus ``I``
    (eqs. 8-10 of "Generic Attention-model Explainability for Interpreting
    Bi-Modal and Encoder-Decoder Transformers"); ``normalize=False`` uses
    ``R`` itself. The maps are relevance scores, not distributions: rows
    do not sum to 1.

    Parameters
    ----------
    encoder_layers : sequence of layers
        Encoder self-attention layers (self graphs over M tokens), possibly empty.
    decoder_self_layers : sequence of layers
        Decoder self-attention layers (self graphs over N tokens), one per block.
    decoder_cross_layers : sequence of layers
        Decoder cross-attention layers (cross graphs N x M), one per block.
    head_reduce : {"mean", "max", "min"}
        How heads are combined per edge.
    normalize : bool
        Apply the residual normalization ``Rbar`` in the cross rule.

    Returns
    -------
    CrossRelevance
        ``cross (N, M)``, ``decoder (N, N)``, ``encoder (M, M)``; with batched
        weights (every layer ``(B, E)`` or ``(B, E, H)``, see
        :mod:`graphattn.flow.batch`) each map is stacked per example,
        ``(B, N, M)``, ``(B, N, N)``, ``(B, M, M)``.

    Raises
    ------
    TypeError, ValueError
        For malformed layers, a self graph where a cross graph belongs (or
        the reverse), sizes that disagree between layers, different numbers
        of decoder self and cross layers, or no decoder block.

    Examples
    --------
    >>> from graphattn.graph import TokenGraph
    >>> enc = TokenGraph([[0, 1, 0, 1], [0, 0, 1, 1]])              # 2 encoder tokens, full
    >>> dec = TokenGraph([[0], [0]], num_nodes=1)                   # 1 decoder token
    >>> crs = TokenGraph([[0, 1], [0, 0]], num_nodes=1, num_src_nodes=2)
    >>> rel = cross_rollout([(enc, torch.tensor([0.5, 0.5, 0.5, 0.5]))],
    ...                     [(dec, torch.tensor([1.0]))], [(crs, torch.tensor([0.9, 0.1]))])
    >>> rel.cross
    tensor([[2.8000, 1.2000]])
    >>> rel.encoder
    tensor([[1.5000, 0.5000],
            [0.5000, 1.5000]])
    """
    normalize = check_bool(normalize, "normalize")
    batch = _split_groups(encoder_layers, decoder_self_layers, decoder_cross_layers)
    if batch is not None:
        maps = [cross_rollout(*ex, head_reduce=head_reduce, normalize=normalize) for ex in batch]
        return CrossRelevance(*(torch.stack(m) for m in zip(*maps, strict=True)))
    enc, dec_self, dec_cross = _check_cross_inputs(
        encoder_layers, decoder_self_layers, decoder_cross_layers
    )
    check_head_reduce(head_reduce)
    m = dec_cross[0].graph.num_src_nodes
    n = dec_cross[0].graph.num_nodes
    layers = enc + dec_self + dec_cross
    dtype = compute_dtype(layers)
    device = layers[0].weights.device
    r_ee = torch.eye(m, dtype=dtype, device=device)  # (M, M)
    r_dd = torch.eye(n, dtype=dtype, device=device)  # (N, N)
    r_de = torch.zeros(n, m, dtype=dtype, device=device)  # (N, M)
    for layer in enc:
        r_ee = r_ee + _relevance_matrix(layer, head_reduce, dtype) @ r_ee
    for self_layer, cross_layer in zip(dec_self, dec_cross, strict=True):
        a = _relevance_matrix(self_layer, head_reduce, dtype)  # (N, N)
        r_dd, r_de = r_dd + a @ r_dd, r_de + a @ r_de
        a = _relevance_matrix(cross_layer, head_reduce, dtype)  # (N, M)
        left = _residual_normalized(r_dd) if normalize else r_dd  # (N, N)
        right = _residual_normalized(r_ee) if normalize else r_ee  # (M, M)
        r_de = r_de + left.T @ (a @ right)  # (N, M)
    return CrossRelevance(r_de, r_dd, r_ee)


def _split_groups(*groups: Any) -> list[tuple[list, list, list]] | None:
    """Per example, its three groups of layers; None unless the layers are batched."""
    names = ("encoder_layers", "decoder_self_layers", "decoder_cross_layers")
    split = {name: split_examples(g, name) for name, g in zip(names, groups, strict=True)}
    sizes = {name: None if s is None else len(s) for name, s in split.items()}
    given = {name: b for name, b in sizes.items() if name != names[0] or groups[0]}
    if len(set(given.values())) > 1:
        raise ValueError(f"batch all layers alike; batch sizes (None: one example) are {given}")
    if sizes[names[2]] is None:
        return None
    fill = [[] for _ in range(sizes[names[2]])]  # an empty encoder group
    per_group = [fill if s is None else [ex for ex, _ in s] for s in split.values()]
    return list(zip(*per_group, strict=True))


def _check_cross_inputs(
    encoder_layers: Any, decoder_self_layers: Any, decoder_cross_layers: Any
) -> tuple[list[Layer], list[Layer], list[Layer]]:
    """The three groups of layers, validated: entries, block counts, kinds, device, sizes."""
    groups = {
        name: _check_group(seq, name)
        for name, seq in (
            ("encoder_layers", encoder_layers),
            ("decoder_self_layers", decoder_self_layers),
            ("decoder_cross_layers", decoder_cross_layers),
        )
    }
    enc, dec_self, dec_cross = groups.values()
    if not dec_cross:
        raise ValueError("decoder_cross_layers is empty; give at least one decoder block")
    if len(dec_self) != len(dec_cross):
        raise ValueError(
            f"decoder_self_layers and decoder_cross_layers must have one entry per decoder "
            f"block, got {len(dec_self)} and {len(dec_cross)}"
        )
    for name, group in groups.items():
        cross = name == "decoder_cross_layers"
        for l, layer in enumerate(group):
            if layer.graph.is_cross != cross:
                kind = "a cross graph (N targets x M sources)" if cross else "a self graph"
                raise ValueError(f"{name}[{l}] must be {kind}, got {layer.graph!r}")
    devices = {layer.weights.device for group in groups.values() for layer in group}
    if len(devices) > 1:
        raise ValueError(
            f"all layers' weights must be on one device, got {sorted(map(str, devices))}"
        )
    _check_sizes(groups)
    return enc, dec_self, dec_cross


def _check_group(seq: Any, name: str) -> list[Layer]:
    """The validated entries of one group of layers."""
    if isinstance(seq, (str, bytes)) or not isinstance(seq, Sequence):
        raise TypeError(f"{name} must be a sequence of (graph, weights[, grad]) entries")
    return [check_layer(item, f"{name}[{l}]", allow_grad=True) for l, item in enumerate(seq)]


def _check_sizes(groups: dict[str, list[Layer]]) -> None:
    """Every graph's ``(N, M)`` agrees with the first cross layer's."""
    first = groups["decoder_cross_layers"][0].graph
    n, m = first.num_nodes, first.num_src_nodes
    sizes = {
        "encoder_layers": (m, m),
        "decoder_self_layers": (n, n),
        "decoder_cross_layers": (n, m),
    }
    for name, group in groups.items():
        size = sizes[name]
        for l, layer in enumerate(group):
            g = layer.graph
            if (g.num_nodes, g.num_src_nodes) != size:
                raise ValueError(
                    f"{name}[{l}] must have (N, M) = {size} as decoder_cross_layers[0] implies, "
                    f"got {(g.num_nodes, g.num_src_nodes)}"
                )


def _relevance_matrix(layer: Layer, head_reduce: str, dtype: torch.dtype) -> torch.Tensor:
    """Dense ``Abar (N, M)``: head-reduced ``(grad * A)^+`` (or ``A``) on the graph's edges."""
    w = layer.weights if layer.grad is None else (layer.grad * layer.weights).clamp_min(0)
    a = aggregate_heads(w, head_reduce).to(dtype)  # (E,)
    return layer.graph.to_dense(a)  # (N, M)


def _residual_normalized(r: torch.Tensor) -> torch.Tensor:
    """``Rbar = rownorm(R - I) + I``; rows of ``R - I`` summing to 0 stay 0."""
    eye = torch.eye(r.shape[0], dtype=r.dtype, device=r.device)
    hat = r - eye  # (K, K)
    total = hat.sum(1, keepdim=True)  # (K, 1)
    return hat / torch.where(total != 0, total, torch.ones_like(total)) + eye
