"""AttnLRP's input-token relevance of one prediction per example, for the attribution benchmarks.

``contributions(model, x, "attnlrp")`` explains the predicted token's logit
at every position, summed: the relevance of the model's whole output. The
ground-truth benchmarks ask about one prediction, as the AttnLRP paper
explains one logit: which input the answer at the query position (or the
word a decoder position predicts) rests on. The functions here run the same
rules (:func:`graphattn.flow.lrp.own_rules`) and read the same Input x
Gradient at the word embeddings, of the predicted token's logit at one
position per example. Since the rules make the backward pass linear in the
gradient of the output, the relevances of every position add up to
``contributions(...).tokens`` (``tests/test_attribution_lrp.py``).
"""

from __future__ import annotations

import torch

from graphattn.flow import run_model
from graphattn.flow.lrp import input_x_gradient, leaf_output, own_rules
from graphattn.nn import GraphLM, GraphSeq2Seq

__all__ = ["lm_token_relevance", "source_relevance"]


def _predicted_logit(logits: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``(B,)``: the logit of the predicted token at ``positions[b]`` of each example."""
    row = logits[torch.arange(logits.shape[0]), positions.to(logits.device)]  # (B, V)
    return row.gather(-1, row.detach().argmax(-1, keepdim=True)).squeeze(-1)


def lm_token_relevance(model: GraphLM, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """AttnLRP relevance ``(B, N)`` of each input token for the prediction at ``positions (B,)``.

    The explained score of example ``b`` is the logit of the token the model
    predicts at ``positions[b]``; the relevance of token ``j`` is Input x
    Gradient at its word embedding, as ``Relevance.tokens``.

    Examples
    --------
    >>> lm = GraphLM(20, 8, 2, 2, pattern="causal", max_len=8).eval()
    >>> r = lm_token_relevance(lm, torch.randint(20, (3, 6)), torch.tensor([5, 2, 0]))
    >>> r.shape, bool((r[1, 3:] == 0).all())  # a causal model: later tokens get nothing
    (torch.Size([3, 6]), True)
    """
    store: list[torch.Tensor] = []
    with torch.enable_grad(), own_rules(model), leaf_output(model.tok_emb, store):
        last = run_model(model, x).blocks[-1].output()  # (B, N, C)
        score = _predicted_logit(model.lm_head(model.norm(last)), positions)  # (B,)
    (grad,) = torch.autograd.grad(score.sum(), store[0])
    return input_x_gradient(store[0], grad)


def source_relevance(model: GraphSeq2Seq, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """AttnLRP relevance ``(B, N, M)`` of each source token for each decoder position's prediction.

    ``src (B, M)`` and the decoder input ``tgt (B, N)``. Row ``i`` explains
    the logit of the word predicted at decoder position ``i``, read at the
    source word embeddings. Every ``(example, position)`` is one row of a
    single batched pass.

    Examples
    --------
    >>> model = GraphSeq2Seq(9, 9, 8, 2, num_encoder_layers=1, num_decoder_layers=1).eval()
    >>> source_relevance(model, torch.tensor([[3, 4, 5]]), torch.tensor([[1, 6]])).shape
    torch.Size([1, 2, 3])
    """
    b, n, m = tgt.shape[0], tgt.shape[1], src.shape[1]
    rows = (src.repeat_interleave(n, 0), tgt.repeat_interleave(n, 0))  # (B * N, M), (B * N, N)
    positions = torch.arange(n).repeat(b)  # (B * N,): row b * N + i explains position i
    store: list[torch.Tensor] = []
    with torch.enable_grad(), own_rules(model), leaf_output(model.src_emb, store):
        last = run_model(model, rows).blocks[-1].output()  # (B * N, N, C) the decoder's
        score = _predicted_logit(model.lm_head(model.decoder.norm(last)), positions)
    (grad,) = torch.autograd.grad(score.sum(), store[0])
    return input_x_gradient(store[0], grad).reshape(b, n, m)
