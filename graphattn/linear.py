"""Kernelized linear attention on token graphs: :func:`graph_linear_attention`.

With a positive feature map ``phi = elu + 1`` (Katharopoulos et al., 2020),

    out_i = sum_j phi(q_i).phi(k_j) v_j / sum_j phi(q_i).phi(k_j)

over the incoming edges ``j -> i``: softmax's ``exp(<q_i, k_j>)`` is replaced by
a dot product of features. It is the :data:`graphattn.variants.LINEAR` variant;
on a graph the sums run over each target's edges, so the cost is ``O(E)``.
"""

from __future__ import annotations

import torch

from graphattn.graph import TokenGraph
from graphattn.variants import LINEAR, variant_attention

__all__ = ["graph_linear_attention"]


def graph_linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    graph: TokenGraph,
    *,
    return_weights: bool = False,
):
    """Linear attention (feature map ``elu + 1``) normalized over each target's incoming edges.

    Parameters
    ----------
    q, k, v : Tensor
        ``(N, H, D)`` / ``(M, H_kv, D)`` / ``(M, H_kv, Dv)``, optionally with a
        leading batch dimension, node-major (tokens before heads) as in
        :func:`graphattn.graph_attention`.
    graph : TokenGraph
        Who attends to whom.
    return_weights : bool
        Also return the weights ``(E, H)`` (or ``(B, E, H)``); they sum to 1
        over each target's incoming edges.

    Returns
    -------
    out : Tensor, shape (N, H, Dv) or (B, N, H, Dv)
    weights : Tensor, only with ``return_weights``

    Raises
    ------
    TypeError, ValueError
        On bad inputs, as :func:`graphattn.variants.variant_attention`.

    Examples
    --------
    >>> g = TokenGraph([[0, 0, 1], [0, 1, 1]])
    >>> q = k = torch.zeros(2, 1, 4)  # phi(0) = 1: equal weights
    >>> v = torch.tensor([[[1.0]], [[3.0]]])
    >>> graph_linear_attention(q, k, v, g).flatten().tolist()
    [1.0, 2.0]
    """
    return variant_attention(q, k, v, graph, LINEAR, return_weights=return_weights)
