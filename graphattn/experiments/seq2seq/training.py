"""Train :class:`~graphattn.nn.GraphSeq2Seq` under one variant's graphs and measure it.

A :class:`~graphattn.experiments.seq2seq.config.Seq2SeqExperiment` names
the variants; every variant is trained with the same seeds, data and budget
(:func:`train_seq2seq`). Measured on held-out validation sentences:

- **exact match**: greedy translations equal to the reference, EOS included;
- **token accuracy**: teacher-forced next-token accuracy on the target
  tokens, EOS included;
- **alignment** (raw): how often the strongest cross-attention edge into a
  target word (weights averaged over heads and decoder layers) comes from
  the source word it translates; (rollout): the same for the strongest
  entry of :func:`graphattn.flow.cross_rollout`'s encoder -> decoder map.

Runs are deterministic like the language-model experiments (model from
``torch.manual_seed(seed)``, the batch of step ``t`` from ``(seed, t)``,
fixed validation batches); they are short and keep no checkpoints. A loss
that becomes NaN or infinite stops the run with a ``FloatingPointError``
naming the step and the learning rate.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from graphattn.experiments.common.schedule import learning_rate, step_generator
from graphattn.experiments.seq2seq.config import Seq2SeqExperiment, Seq2SeqVariant
from graphattn.experiments.seq2seq.tasks import EOS, PAD
from graphattn.flow import cross_rollout
from graphattn.nn import GraphSeq2Seq

__all__ = [
    "VAL_SEED",
    "AlignmentExample",
    "Seq2SeqRun",
    "Seq2SeqScores",
    "alignment_example",
    "evaluate_seq2seq",
    "new_model",
    "train_seq2seq",
    "train_variant",
]

VAL_SEED = 2**31 - 1  # generator seed of the validation batches, shared by every run


@dataclass(frozen=True)
class Seq2SeqScores:
    """What :func:`evaluate_seq2seq` measures on the validation sentences."""

    exact_match: float  # share of greedy translations equal to the reference, EOS included
    token_acc: float  # teacher-forced next-token accuracy on the target tokens
    val_loss: float  # mean cross-entropy per target token
    align_raw: float | None  # raw cross-attention alignment hits; None when not measured
    align_rollout: float | None  # the same for cross_rollout's map

    def to_dict(self) -> dict[str, Any]:
        """The scores as ``results.json`` holds them (this key order)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class AlignmentExample:
    """One validation sentence, its translation and both alignment maps (nested lists)."""

    src: list[str]  # source words
    tgt: list[str]  # target words, the word each decoder position predicts
    align: list[int]  # true source position of each target word (-1: none)
    raw: list[list[float]]  # (N, M) cross attention averaged over heads and layers
    rollout: list[list[float]]  # (N, M) cross_rollout's map

    def to_dict(self) -> dict[str, Any]:
        """The example as ``results.json`` holds it (this key order)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Seq2SeqRun:
    """One trained (variant, seed): loss curve, timing, scores and the alignment example.

    Examples
    --------
    >>> scores = Seq2SeqScores(1.0, 1.0, 0.1, None, None)
    >>> example = AlignmentExample(["a"], ["b"], [0], [[1.0]], [[1.0]])
    >>> list(Seq2SeqRun(0, [[1, 0.5]], 0.2, scores, example).to_dict())[:4]
    ['seed', 'curve', 'train_seconds', 'exact_match']
    """

    seed: int  # initial seed of model and data
    curve: list[list[float]]  # [step, training loss] points
    train_seconds: float  # wall time of the training steps
    scores: Seq2SeqScores
    example: AlignmentExample

    def to_dict(self) -> dict[str, Any]:
        """The run as one entry of ``results.json``'s ``runs`` (flat scores, then ``example``)."""
        return {"seed": self.seed, "curve": self.curve, "train_seconds": self.train_seconds,
                **self.scores.to_dict(), "example": self.example.to_dict()}


def new_model(exp: Seq2SeqExperiment, variant: Seq2SeqVariant, seed: int) -> GraphSeq2Seq:
    """The freshly seeded model of a run: ``torch.manual_seed(seed)``, then the variant's graphs."""
    task, m = exp.task, exp.model
    torch.manual_seed(seed)
    return GraphSeq2Seq(
        task.src_vocab_size, task.tgt_vocab_size, m.d_model, m.num_heads,
        m.num_encoder_layers, m.num_decoder_layers, encoder_graph=variant.encoder_spec(),
        decoder_graph=variant.decoder_spec(),
        cross_graph=variant.cross_spec(), max_len=max(task.max_src_len, task.max_tgt_len) + 1,
        dim_feedforward=m.dim_feedforward, pad_id=PAD, eos_id=EOS,
    )


def _val_batches(exp: Seq2SeqExperiment) -> list:
    gen = torch.Generator().manual_seed(VAL_SEED)
    t = exp.train
    return [exp.task.val_batch(t.eval_batch_size, gen) for _ in range(t.eval_batches)]


def train_seq2seq(
    exp: Seq2SeqExperiment, variant: Seq2SeqVariant, seed: int
) -> tuple[GraphSeq2Seq, dict[str, Any]]:
    """Train one model; its validation numbers, loss curve and timing as a dict.

    :func:`train_variant` with the run as ``results.json`` holds it
    (:meth:`Seq2SeqRun.to_dict`).

    Raises
    ------
    FloatingPointError
        If the training loss becomes NaN or infinite.

    Examples
    --------
    >>> from graphattn.experiments.common.config import TrainConfig
    >>> exp = Seq2SeqExperiment(variants=(Seq2SeqVariant("full"),),
    ...     train=TrainConfig(steps=2, warmup=0, eval_every=2, log_every=1, eval_batches=1,
    ...                       eval_batch_size=4, batch_size=4))
    >>> model, run = train_seq2seq(exp, exp.variants[0], 0)
    >>> sorted(run)[:4], len(run["curve"])
    (['align_raw', 'align_rollout', 'curve', 'exact_match'], 2)
    """
    model, run = train_variant(exp, variant, seed)
    return model, run.to_dict()


def train_variant(
    exp: Seq2SeqExperiment, variant: Seq2SeqVariant, seed: int
) -> tuple[GraphSeq2Seq, Seq2SeqRun]:
    """Train one model; its :class:`Seq2SeqRun` (scores, loss curve, timing, example).

    Raises
    ------
    FloatingPointError
        If the training loss becomes NaN or infinite (the message names the
        step and the learning rate).

    Examples
    --------
    >>> from graphattn.experiments.common.config import TrainConfig
    >>> exp = Seq2SeqExperiment(variants=(Seq2SeqVariant("full"),),
    ...     train=TrainConfig(steps=2, warmup=0, eval_every=2, log_every=1, eval_batches=1,
    ...                       eval_batch_size=4, batch_size=4))
    >>> model, run = train_variant(exp, exp.variants[0], 0)
    >>> len(run.curve), run.scores.align_raw is not None
    (2, True)
    """
    t = exp.train
    model = new_model(exp, variant, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    curve, seconds = [], 0.0
    for step in range(t.steps):
        batch = exp.task.batch(t.batch_size, step_generator(seed, step))
        start = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, t)
        loss = model.loss(batch.src, batch.tgt)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{variant.label!r} seed {seed}: the training loss became {loss.item()} at step "
                f"{step} (lr {learning_rate(step, t):g}); lower train.lr or check the task"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seconds += time.perf_counter() - start
        if (step + 1) % t.log_every == 0 or step + 1 == t.steps:
            curve.append([step + 1, float(loss.detach())])
    scores = evaluate_seq2seq(model, exp, alignment=variant.cross != "none")
    return model, Seq2SeqRun(seed, curve, seconds, scores, alignment_example(model, exp))


def _cross_dense(layers: list) -> torch.Tensor:
    """Cross weights averaged over heads and layers as ``(B, N, M)`` matrices."""
    total = None
    for g, w in layers:
        dense = g.to_dense(w.float().mean(-1, keepdim=True))[:, 0]  # (B, N, M) head mean
        total = dense if total is None else total + dense
    return total / len(layers)


def _alignment(model: GraphSeq2Seq, batch: Any) -> tuple[int, int, int]:
    """Hits of the raw and rollout maps and the number of aligned target words."""
    out = model(batch.src, batch.tgt[:, :-1], need_weights=True)
    scored = (batch.align >= 0) & (batch.tgt[:, 1:] != EOS)  # (B, N) target words
    pad = batch.src == PAD  # (B, M)
    raw = _cross_dense(out.decoder_cross_layers).masked_fill(pad[:, None], -1.0)
    hits_raw = int((raw.argmax(-1) == batch.align)[scored].sum())
    hits_roll = 0
    for b in range(batch.src.shape[0]):
        rel = cross_rollout(*out.sequence_layers(b)).cross  # (N, M)
        best = rel.masked_fill(pad[b][None], -math.inf).argmax(-1)  # (N,)
        hits_roll += int((best == batch.align[b])[scored[b]].sum())
    return hits_raw, hits_roll, int(scored.sum())


def _exact(model: GraphSeq2Seq, batch: Any, max_new: int) -> int:
    """Number of greedy translations equal to the reference (through EOS)."""
    gen = model.generate(batch.src, max_new_tokens=max_new)  # (B, T)
    ref = batch.tgt[:, 1:]  # (B, N + 1)
    width = max(gen.shape[1], ref.shape[1])
    gen = torch.nn.functional.pad(gen, (0, width - gen.shape[1]), value=PAD)
    ref = torch.nn.functional.pad(ref, (0, width - ref.shape[1]), value=PAD)
    return int((gen == ref).all(1).sum())


@torch.no_grad()
def evaluate_seq2seq(
    model: GraphSeq2Seq, exp: Seq2SeqExperiment, *, alignment: bool = True
) -> Seq2SeqScores:
    """Exact match, token accuracy, validation loss and (if asked) alignment on validation."""
    model.eval()
    exact = correct = tokens = sentences = hits_raw = hits_roll = aligned = 0
    loss_sum = 0.0
    for batch in _val_batches(exp):
        logits = model(batch.src, batch.tgt[:, :-1]).logits  # (B, N, V)
        target = batch.tgt[:, 1:]  # (B, N)
        scored = target != PAD
        loss_sum += float(torch.nn.functional.cross_entropy(
            logits[scored], target[scored], reduction="sum"))
        correct += int((logits.argmax(-1) == target)[scored].sum())
        tokens += int(scored.sum())
        exact += _exact(model, batch, exp.task.max_tgt_len)
        sentences += batch.src.shape[0]
        if alignment:
            r, o, a = _alignment(model, batch)
            hits_raw, hits_roll, aligned = hits_raw + r, hits_roll + o, aligned + a
    model.train()
    return Seq2SeqScores(
        exact_match=exact / sentences,
        token_acc=correct / tokens,
        val_loss=loss_sum / tokens,
        align_raw=hits_raw / aligned if aligned else None,
        align_rollout=hits_roll / aligned if aligned else None,
    )


@torch.no_grad()
def alignment_example(model: GraphSeq2Seq, exp: Seq2SeqExperiment) -> AlignmentExample:
    """The first validation sentence: words, its translation and both alignment maps.

    ``raw`` is the cross attention averaged over heads and layers, ``rollout``
    :func:`~graphattn.flow.cross_rollout`'s map, both ``(N, M)`` as nested
    lists (decoder positions down, the word each one predicts; source words
    across); ``align`` the true source position of each target word.
    """
    model.eval()
    batch = exp.task.val_batch(1, torch.Generator().manual_seed(VAL_SEED))
    out = model(batch.src, batch.tgt[:, :-1], need_weights=True)
    raw = _cross_dense(out.decoder_cross_layers)[0]  # (N, M)
    rollout = cross_rollout(*out.sequence_layers(0)).cross  # (N, M)
    model.train()
    return AlignmentExample(
        src=exp.task.src_words(batch.src[0]),
        tgt=exp.task.tgt_words(batch.tgt[0, 1:]),
        align=batch.align[0].tolist(),
        raw=[[round(float(v), 4) for v in row] for row in raw],
        rollout=[[round(float(v), 4) for v in row] for row in rollout],
    )
