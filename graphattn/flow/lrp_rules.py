"""The AttnLRP rules as modified gradients (Achtibat et al., ICML 2024).

AttnLRP computes Layer-wise Relevance Propagation as Input x Gradient of a
model whose backward pass is modified: the forward is unchanged, so the
relevance of any tensor ``t`` is ``t * dS/dt`` of the explained score ``S``.
The functions here are the rules of the reference implementation ``lxt``
(``lxt.efficient.rules`` and ``lxt.efficient.patches``), written again so
that graphattn does not need ``lxt`` to run them:

- :func:`divide_gradient`: the uniform rule on a product of ``factor``
  inputs (the gradient is divided by ``factor``);
- :func:`identity_rule`: the identity rule on an elementwise nonlinearity
  (the gradient is ``fn(x) / x``);
- :func:`layer_norm` and :func:`rms_norm`: the identity rule on a norm (its
  scale is a constant of the backward pass);
- linear layers keep their gradient: Input x Gradient of a linear layer is
  the epsilon rule, with the bias absorbing its share;
- the softmax keeps its gradient: its Input x Gradient is the paper's
  linearized softmax rule.

graphattn's own models switch the rules on with :func:`attnlrp_rules`:
inside it, :meth:`~graphattn.flow.blocks.AttentionBlock.edge_terms` divides
the gradient of the attention weights by 4 (half for ``q k^T``, half for the
weights' factor of ``alpha v``) and of the values by 2, as ``lxt`` divides
``query``, ``key`` and ``value``, and the feed-forward activations pass
through :func:`activation`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import nn

__all__ = [
    "KEY_QUERY_FACTOR",
    "VALUE_FACTOR",
    "activation",
    "attention_rule",
    "attnlrp_rules",
    "divide_gradient",
    "identity_rule",
    "layer_norm",
    "rms_norm",
    "rules_active",
]

#: The gradient of queries and keys is divided by 4 (``lxt``'s attention wrapper).
KEY_QUERY_FACTOR = 4
#: The gradient of values is divided by 2.
VALUE_FACTOR = 2

_ACTIVE: ContextVar[bool] = ContextVar("graphattn_attnlrp_rules", default=False)


class _Divide(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad / ctx.factor, None


class _Identity(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn: Callable, x: torch.Tensor) -> torch.Tensor:
        out = fn(x)
        ctx.save_for_backward(out / (x + 1e-10))  # lxt's epsilon
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, ctx.saved_tensors[0] * grad


def divide_gradient(x: torch.Tensor, factor: float = 2) -> torch.Tensor:
    """``x`` unchanged, its gradient divided by ``factor`` (the uniform rule).

    Examples
    --------
    >>> x = torch.ones(2, requires_grad=True)
    >>> divide_gradient(x * 3, 2).sum().backward()
    >>> x.grad
    tensor([1.5000, 1.5000])
    """
    return _Divide.apply(x, factor)


def identity_rule(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn(x)`` with the gradient ``fn(x) / x``: relevance passes an activation unchanged.

    Examples
    --------
    >>> x = torch.tensor([1.0, -2.0], requires_grad=True)
    >>> y = identity_rule(torch.nn.functional.gelu, x)
    >>> torch.allclose(x * torch.autograd.grad(y.sum(), x)[0], y)
    True
    """
    return _Identity.apply(fn, x)


def layer_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """``norm(x)`` with its standard deviation a constant of the backward pass."""
    mean = x.mean(-1, keepdim=True)
    std = ((x - mean).pow(2).mean(-1, keepdim=True) + norm.eps).sqrt()
    y = (x - mean) / std.detach()
    if norm.weight is not None:
        y = y * norm.weight
    return y if norm.bias is None else y + norm.bias


def rms_norm(weight: torch.Tensor, eps: float, x: torch.Tensor) -> torch.Tensor:
    """``weight * x / rms(x)`` (computed in float32) with the rms a constant of the backward."""
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps).detach()
    return weight * h.to(x.dtype)


def rules_active() -> bool:
    """Whether :func:`attnlrp_rules` is in force in this context."""
    return _ACTIVE.get()


@contextmanager
def attnlrp_rules() -> Iterator[None]:
    """Switch the AttnLRP rules on for graphattn's own blocks.

    Examples
    --------
    >>> with attnlrp_rules():
    ...     rules_active()
    True
    >>> rules_active()
    False
    """
    token = _ACTIVE.set(True)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def activation(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn(x)``; under :func:`attnlrp_rules` with the identity rule."""
    return identity_rule(fn, x) if rules_active() else fn(x)


def attention_rule(
    weights: torch.Tensor, values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and values of ``alpha v``; under :func:`attnlrp_rules` their gradients divided.

    The weights' gradient reaches the queries and keys only, so dividing it
    by :data:`KEY_QUERY_FACTOR` is ``lxt``'s division of theirs.
    """
    if not rules_active():
        return weights, values
    return divide_gradient(weights, KEY_QUERY_FACTOR), divide_gradient(values, VALUE_FACTOR)
