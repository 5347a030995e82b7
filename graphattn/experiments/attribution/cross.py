"""Attribution through cross-attention, with ground truth: the source word a target word translates.

In the translation tasks (:mod:`graphattn.experiments.seq2seq.tasks`) every
target word is the translation of one known source word (``Seq2SeqBatch.align``).
:func:`score_translation` asks each method, for every decoder position whose
next word a trained :class:`~graphattn.nn.GraphSeq2Seq` predicts correctly,
to rank the source tokens, and gives how often the translated word is ranked
first and its mean rank. Methods: the last cross layer's head-mean weights
(``attention``); the raw weights through :func:`~graphattn.flow.cross_rollout`
(``cross rollout``, Chefer et al. 2021b without gradients); every contribution
method of :func:`~graphattn.flow.contributions` through the same
``cross_rollout``; ``attnlrp``, each source token's AttnLRP relevance for
the word predicted at that position, as the paper reports it
(:func:`graphattn.experiments.attribution.lrp.source_relevance`); and
``ablation``, the drop in the predicted word's log-probability when one
source token is removed (masked as padding). There is no route score here:
:func:`~graphattn.flow.routes` follows self layers only, and a word's route
to the source runs through cross layers.
Nothing is tuned per method: every layered method is composed by the one rule.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

from graphattn._markdown import table_lines
from graphattn.experiments.attribution.ground_truth import rank_among, rank_cells, rank_table
from graphattn.experiments.attribution.lrp import source_relevance
from graphattn.experiments.common.files import write_text
from graphattn.experiments.seq2seq.tasks import EOS, PAD
from graphattn.experiments.seq2seq.training import VAL_SEED
from graphattn.flow import contributions, cross_rollout, split_cross_layers
from graphattn.nn import GraphSeq2Seq

__all__ = ["CROSS_METHODS", "run", "score_translation", "translation_markdown"]

_CONTRIBUTION = ("alti", "globenc", "value_zeroing", "grad_attention")
#: Methods scored, in table order.
CROSS_METHODS = ("attention", "cross rollout", "ablation", *_CONTRIBUTION, "attnlrp")


def _ablation(model: GraphSeq2Seq, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """``(N, M)``: drop in each position's predicted-word log-probability per removed source.

    ``src (M,)``, ``tgt (N + 1,)`` one sentence (decoder input ``tgt[:-1]``).
    """
    m = src.shape[0]
    copies = src.repeat(m, 1)  # (M, M): copy j removes source token j
    copies[torch.arange(m), torch.arange(m)] = PAD
    inp, out = tgt[:-1], tgt[1:]  # (N,), (N,)
    with torch.no_grad():
        base = model(src[None], inp[None]).logits[0].log_softmax(-1)  # (N, V)
        logp = model(copies, inp.expand(m, -1)).logits.log_softmax(-1)  # (M, N, V)
    idx = torch.arange(out.shape[0])
    return base[idx, out][:, None] - logp[:, idx, out].T  # (N, M)


def _maps(model: GraphSeq2Seq, src: torch.Tensor, tgt: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every method's ``(B, N, M)`` source relevance per decoder position, for a batch."""
    inputs = (src, tgt[:, :-1])
    layers = {m: contributions(model, inputs, m) for m in ("attention", *_CONTRIBUTION)}
    b, n, m = src.shape[0], tgt.shape[1] - 1, src.shape[1]
    out = {name: torch.zeros(b, n, m) for name in CROSS_METHODS}
    g_last, c_last = layers["attention"][-1]  # the last cross layer, head mean (B, E)
    out["attention"] = g_last.to_dense(c_last.float()[..., None])[:, 0]  # (B, N, M)
    out["attnlrp"] = source_relevance(model, *inputs).float()
    for i in range(b):
        out["cross rollout"][i] = cross_rollout(*split_cross_layers(layers["attention"], i)).cross
        for name in _CONTRIBUTION:
            out[name][i] = cross_rollout(*split_cross_layers(layers[name], i)).cross
        out["ablation"][i] = _ablation(model, src[i], tgt[i])
    return out


def score_translation(model: GraphSeq2Seq, task, n_sentences: int = 200,
                      batch_size: int = 50) -> dict:
    """Top-1 rate and mean rank of the translated source word, per method.

    Over ``n_sentences`` validation sentences of ``task`` (generator seed
    :data:`~graphattn.experiments.seq2seq.VAL_SEED`), at every decoder
    position whose next word is a word (not EOS) that the model predicts
    correctly (teacher-forced): only there is the source of the word known
    to be what the model used. Candidates are the real source tokens.
    """
    gen = torch.Generator().manual_seed(VAL_SEED)
    ranks: dict[str, list[float]] = {name: [] for name in CROSS_METHODS}
    words = correct = 0
    model.eval()
    for lo in range(0, n_sentences, batch_size):
        batch = task.val_batch(min(batch_size, n_sentences - lo), gen)
        with torch.no_grad():
            pred = model(batch.src, batch.tgt[:, :-1]).logits.argmax(-1)  # (B, N)
        target = batch.tgt[:, 1:]  # (B, N)
        scored = (batch.align >= 0) & (target != EOS) & (target != PAD)  # (B, N)
        words += int(scored.sum())
        scored &= pred == target
        correct += int(scored.sum())
        maps = _maps(model, batch.src, batch.tgt)
        for b, i in scored.nonzero().tolist():
            real = batch.src[b] != PAD  # (M,)
            for name in CROSS_METHODS:
                ranks[name].append(rank_among(maps[name][b, i], int(batch.align[b, i]), real))
    return {"sentences": n_sentences, "words": words, "correct": correct,
            "methods": rank_table(ranks)}


def translation_markdown(results: dict[str, dict]) -> str:
    """The table of :func:`score_translation` results, one row per model label."""
    rows = [[label, f"{r['correct']}/{r['words']}", *rank_cells(r, CROSS_METHODS)]
            for label, r in results.items()]
    lines = table_lines(["model", "words scored", *CROSS_METHODS], rows)
    lines += ["", "Cells: top-1 rate / mean rank of the translated source word (1 = best); "
              "words scored: target words the model predicts correctly, of all target words."]
    return "\n".join(lines) + "\n"


def run(
    out: str | os.PathLike,
    models: dict[str, GraphSeq2Seq],
    task,
    n_sentences: int = 200,
    log: Callable[[str], None] = print,
) -> dict:
    """Score every trained model on ``task``; write ``translation.json`` and ``.md``; return them.

    ``models``: label -> trained model (the benchmark passes the shipped
    translation models). Each file is written whole or not at all.
    """
    results = {label: score_translation(model, task, n_sentences) for label, model in
               models.items()}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = translation_markdown(results)
    write_text(out / "translation.json", json.dumps({"translation": results}, indent=2) + "\n")
    write_text(out / "translation.md", table)
    log(table)
    return results
