"""AttnLRP (Achtibat et al., ICML 2024) of graphattn's own models, per edge and per token.

:func:`attnlrp` runs a model under the rules of :mod:`graphattn.flow.lrp_rules`
(the forward unchanged, the backward modified) and reads relevance as Input
x Gradient of the explained score ``S``:

- per edge ``e = j -> i`` of every layer, the relevance of the message that
  target ``i``'s attention output receives from source ``j``,
  ``R_e = sum_h alpha_eh (V[j, h] . dS/dout_i)``; the ``R_e`` into ``i``
  sum to the relevance of ``i``'s attention output (less its bias's share);
- per token and layer, the relevance ``x . dS/dx`` of the stream entering
  each layer, and of the word embeddings (the input-token relevance).

The layers it returns are ``(graph, c (B, E))`` with ``c`` the positive part
of ``R_e`` normalized per target, as every method of
:func:`~graphattn.flow.contributions`; the signed relevances ride along on
the :class:`Relevance` list.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from types import MethodType
from typing import Any

import torch
from torch import nn

from graphattn.flow.adapters import adapter_for, unsupported
from graphattn.flow.blocks import ContributionRun, live_edges
from graphattn.flow.decompose import normalize_per_target
from graphattn.flow.lrp_rules import KEY_QUERY_FACTOR, attnlrp_rules, layer_norm
from graphattn.graph import TokenGraph
from graphattn.nn import GraphLM, GraphTransformer

__all__ = [
    "Relevance",
    "attnlrp",
    "explained_score",
    "input_x_gradient",
    "layer_shares",
    "leaf_output",
    "own_rules",
    "patched",
]


class Relevance(list):
    """The layers ``[(graph, c (B, E)), ...]`` of AttnLRP, with the relevances behind them.

    Attributes
    ----------
    edges : list of Tensor ``(B, E)``
        Per layer, the signed relevance ``R_e`` of every edge's message, in
        ``graph.edge_index`` order.
    stream : Tensor ``(B, L + 1, N)``
        ``stream[:, l]``: relevance of the stream entering layer ``l``, per
        token; ``stream[:, L]``: of the last layer's output.
    tokens : Tensor ``(B, N)``
        Relevance of each input token's word embedding (of the input features
        for a model that takes features): what the paper reports.
    score : Tensor ``(B,)``
        The explained score of each example.
    """

    def __init__(self, layers, edges, stream, tokens, score) -> None:
        super().__init__(layers)
        self.edges, self.stream, self.tokens, self.score = edges, stream, tokens, score


def layer_shares(graph: TokenGraph, r: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``max(0, r (B, E))`` normalized over each target's live edges (``weights (B, E, H)``)."""
    return normalize_per_target(graph, r.clamp(min=0), live_edges(weights))


def explained_score(out: torch.Tensor, logits: bool, real: torch.Tensor | None = None):
    """The score AttnLRP explains, per example ``(B,)``, from ``out``.

    With ``logits`` (``(B, N, V)`` or ``(B, K)``): the logit of the predicted
    token (class) at every real position, summed. Otherwise ``out (B, N, C)``
    holds output vectors and the score is ``sum_i ||y_i||`` over the real
    tokens, each ``y_i`` explained along its own direction (the gradient
    there is ``y_i / ||y_i||``). ``real (B, N)`` bool marks the real tokens.
    """
    if logits:
        picked = out.gather(-1, out.detach().argmax(-1, keepdim=True)).squeeze(-1)  # (B, N)
    else:
        unit = out.detach() / out.detach().norm(dim=-1, keepdim=True).clamp(min=1e-30)
        picked = (out * unit).sum(-1)  # (B, N): ||y_i|| along a fixed direction
    if picked.dim() == 1:  # one class per example
        return picked
    if real is not None:
        picked = torch.where(real.to(picked.device), picked, torch.zeros_like(picked))
    return picked.sum(-1)


@contextmanager
def patched(module: nn.Module, forward) -> Any:
    """``module.forward`` replaced by ``forward(module, x)`` inside the block."""
    had = "forward" in vars(module)
    old = vars(module).get("forward")
    module.forward = MethodType(forward, module)
    try:
        yield
    finally:
        if had:
            module.forward = old
        else:
            del module.forward


@contextmanager
def own_rules(model: nn.Module) -> Any:
    """The rules on graphattn's blocks, every LayerNorm of ``model`` on its identity rule."""
    with ExitStack() as stack:
        stack.enter_context(attnlrp_rules())
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                stack.enter_context(patched(m, layer_norm))
        yield


def _token_embedding(model: Any) -> nn.Module | None:
    if isinstance(model, GraphLM):
        return model.tok_emb
    get = getattr(model, "get_input_embeddings", None)
    return get() if callable(get) else None


@contextmanager
def leaf_output(module: nn.Module | None, store: list) -> Any:
    """Make ``module``'s output a leaf that needs a gradient and keep it in ``store``."""
    if module is None:
        yield
        return

    def hook(_mod, _args, out):
        store.append(out.detach().requires_grad_())
        return store[-1]

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _final(model: Any, run: ContributionRun) -> tuple[torch.Tensor, torch.Tensor]:
    """The last layer's output (computed again from its block) and the score ``(B,)``."""
    last = run.blocks[-1].output()  # (B, N, C), connected to every block
    if isinstance(model, GraphLM):
        return last, explained_score(model.lm_head(model.norm(last)), logits=True)
    norm = getattr(model, "norm", None) if isinstance(model, GraphTransformer) else None
    return last, explained_score(last if norm is None else norm(last), logits=False)


def attnlrp(model: Any, inputs: Any, graph: Any = None) -> Relevance:
    """AttnLRP of a ``GraphTransformer``, ``GraphLM``, ``GraphSeq2Seq`` or ``ContributionModel``.

    The explained score: for a ``GraphLM`` the logit of the predicted next
    token at every position, summed; otherwise ``sum_i ||y_i||`` of the
    output vectors (after the model's final norm, if any). A model whose
    adapter has its own ``attnlrp`` goes there: a ``GraphSeq2Seq`` (inputs
    ``(src, tgt)``) to :func:`graphattn.flow.lrp_seq2seq.seq2seq_attnlrp`.

    Raises
    ------
    TypeError, ValueError
        For a model or inputs :func:`~graphattn.flow.run_model` refuses.

    Examples
    --------
    >>> from graphattn import GraphLM
    >>> from graphattn.flow import contributions
    >>> lm = GraphLM(20, 8, 2, 2, pattern="causal", max_len=8)
    >>> rel = contributions(lm, torch.randint(20, (1, 5)), "attnlrp")
    >>> rel[0][1].shape, rel.tokens.shape, rel.stream.shape
    (torch.Size([1, 15]), torch.Size([1, 5]), torch.Size([1, 3, 5]))
    """
    adapter = adapter_for(model)
    if adapter is None or adapter.run is None:
        raise unsupported(model)
    if adapter.attnlrp is not None:  # e.g. a GraphSeq2Seq's
        return adapter.attnlrp(model, inputs, graph)
    if isinstance(model, GraphTransformer) and isinstance(inputs, torch.Tensor):
        inputs = inputs.detach().requires_grad_()
    store: list[torch.Tensor] = []
    with torch.enable_grad(), own_rules(model), leaf_output(_token_embedding(model), store):
        run = adapter.run(model, inputs, graph)
        last, score = _final(model, run)
    streams = [b.residual for b in run.blocks] + [last]
    weights = [b.weights for b in run.blocks]
    first = store[0] if store else run.blocks[0].residual
    grads = torch.autograd.grad(score.sum(), [first, *streams, *weights], allow_unused=True)
    rel = [input_x_gradient(t, g) for t, g in zip([first, *streams], grads, strict=False)]
    edges, layers = [], []
    for block, w, gw in zip(run.blocks, weights, grads[len(streams) + 1 :], strict=True):
        r = KEY_QUERY_FACTOR * input_x_gradient(w, gw)  # (B, E): the plain dS/dalpha is 4x
        edges.append(r)
        layers.append((block.graph, layer_shares(block.graph, r, w)))
    return Relevance(layers, edges, torch.stack(rel[1:], 1), rel[0], score.detach())


def input_x_gradient(t: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
    """``sum over the last dim of t * g``, detached (zero where no gradient reached)."""
    g = torch.zeros_like(t) if g is None else g
    return (t * g).sum(-1).detach()
