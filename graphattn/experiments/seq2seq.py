"""Encoder-decoder experiments: train :class:`~graphattn.nn.GraphSeq2Seq` under different graphs.

One :class:`Seq2SeqExperiment` names a translation task
(:mod:`graphattn.experiments.tasks_seq2seq`), a model size, a budget, seeds
and the variants to compare: cross graphs (full, a diagonal window of some
width, a few random sources per target, none) and decoder self graphs
(causal, or a causal window). Every variant is trained with the same seeds,
data and budget. Measured on held-out validation sentences:

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
from dataclasses import dataclass, field
from typing import Any

import torch

from graphattn._validate import check_int
from graphattn.experiments.config import TrainConfig
from graphattn.experiments.schedule import learning_rate, step_generator
from graphattn.experiments.tasks_seq2seq import EOS, PAD, SEQ2SEQ_TASKS, MonotonicTask, ReorderTask
from graphattn.flow import cross_rollout
from graphattn.graph import TokenGraph
from graphattn.nn import GraphSeq2Seq

__all__ = [
    "CROSS_KINDS",
    "Seq2SeqExperiment",
    "Seq2SeqModel",
    "Seq2SeqVariant",
    "cross_attention_experiments",
    "diagonal_window",
    "new_model",
    "no_cross",
    "random_cross",
    "train_seq2seq",
]

VAL_SEED = 2**31 - 1  # generator seed of the validation batches, shared by every run
CROSS_KINDS = ("full", "window", "random", "none")


def diagonal_window(n: int, m: int, window: int) -> TokenGraph:
    """Cross graph: decoder token ``i`` reads sources ``|j - c_i| < window``, ``c_i = min(i, m-1)``.

    The monotonic (diagonal) alignment of equal-length sentences; row ``i``
    depends on ``i`` and ``m`` only, so a model generating more tokens than
    it was trained on sees the same rows.

    Examples
    --------
    >>> print(diagonal_window(3, 4, 2).to_string())
    TokenGraph('diagonal_window(window=2)', N=3, M=4, cross, E=8, density=0.667)
    x x . .
    x x x .
    . x x x
    """
    centers = torch.arange(n).clamp(max=m - 1)  # (N,)
    j = torch.arange(m)  # (M,)
    mask = (j[None, :] - centers[:, None]).abs() < window  # (N, M)
    dst, src = mask.nonzero(as_tuple=True)
    return TokenGraph(torch.stack([src, dst]), n, num_src_nodes=m, cross=True,
                      name=f"diagonal_window(window={window})")


def random_cross(n: int, m: int, k: int, seed: int = 0) -> TokenGraph:
    """Cross graph: decoder token ``i`` reads ``min(k, m)`` random source tokens.

    Row ``i``'s sources depend on ``(i, m, seed)`` only (not on ``n``), so
    generation sees the rows training saw.

    Examples
    --------
    >>> g = random_cross(3, 5, 2)
    >>> g.in_degree().tolist(), g == random_cross(3, 5, 2)
    ([2, 2, 2], True)
    """
    rows = []
    for i in range(n):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + i * 1_009 + m)
        src = torch.randperm(m, generator=gen)[: min(k, m)]  # (k,)
        rows.append(torch.stack([src, torch.full_like(src, i)]))
    return TokenGraph(torch.cat(rows, dim=1), n, num_src_nodes=m, cross=True,
                      name=f"random_cross(k={k})")


def no_cross(n: int, m: int) -> TokenGraph:
    """The cross graph without edges: the decoder never reads the source."""
    return TokenGraph(torch.empty(2, 0, dtype=torch.long), n, num_src_nodes=m, cross=True,
                      name="no_cross")


@dataclass(frozen=True)
class Seq2SeqVariant:
    """One graph setting to train: a cross graph and a decoder self graph.

    Examples
    --------
    >>> Seq2SeqVariant("window 2", cross="window", window=2).cross_spec()(3, 4).num_edges
    8
    """

    label: str  # name in tables and plots; unique in an experiment
    cross: str = "full"  # "full", "window" (diagonal), "random" or "none"
    window: int | None = None  # cross="window": |j - i| < window
    num_random: int | None = None  # cross="random": sources per decoder token
    decoder_window: int | None = None  # a causal decoder window; None = full causal
    encoder_window: int | None = None  # encoder self graph |i - j| < w; None = full

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label.strip():
            raise ValueError(f"label must be a non-empty string, got {self.label!r}")
        if self.cross not in CROSS_KINDS:
            raise ValueError(f"cross must be one of {CROSS_KINDS}, got {self.cross!r}")
        needs = {"window": "window", "random": "num_random"}.get(self.cross)
        for name in ("window", "num_random"):
            if (getattr(self, name) is not None) != (name == needs):
                kind = "window" if name == "window" else "random"
                raise ValueError(
                    f"{self.label!r}: {name} goes with cross={kind!r} only, got "
                    f"cross={self.cross!r}, {name}={getattr(self, name)!r}"
                )
            if name == needs:
                check_int(getattr(self, name), name, low=1)
        for name in ("decoder_window", "encoder_window"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, low=1)

    def cross_spec(self) -> Any:
        """The model's ``cross_graph`` argument."""
        if self.cross == "window":
            return lambda n, m: diagonal_window(n, m, self.window)
        if self.cross == "random":
            return lambda n, m: random_cross(n, m, self.num_random)
        return "cross" if self.cross == "full" else no_cross

    def encoder_spec(self) -> Any:
        """The model's ``encoder_graph`` argument."""
        if self.encoder_window is None:
            return "full"
        return ("sliding_window", {"window": self.encoder_window, "causal": False})

    def decoder_spec(self) -> Any:
        """The model's ``decoder_graph`` argument."""
        if self.decoder_window is None:
            return "causal"
        return ("sliding_window", {"window": self.decoder_window, "causal": True})


@dataclass(frozen=True)
class Seq2SeqModel:
    """Size of the :class:`~graphattn.nn.GraphSeq2Seq` trained for every variant."""

    d_model: int = 32  # channels C
    num_heads: int = 2  # heads of every attention; must divide d_model
    num_encoder_layers: int = 2  # encoder layers
    num_decoder_layers: int = 2  # decoder layers
    dim_feedforward: int = 64  # feed-forward hidden size

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check_int(getattr(self, f.name), f"model.{f.name}", low=1)
        if self.d_model % self.num_heads:
            raise ValueError(
                f"model.num_heads ({self.num_heads}) must divide model.d_model ({self.d_model})"
            )


@dataclass(frozen=True)
class Seq2SeqExperiment:
    """A task, a model, a budget, seeds and the variants to compare.

    Examples
    --------
    >>> exp = Seq2SeqExperiment(variants=(Seq2SeqVariant("full"),))
    >>> exp.task, exp.train.steps
    (ReorderTask(n_nouns=8, n_verbs=6, n_adjs=4, p_adj=0.5, holdout=5), 600)
    """

    task: Any = field(default_factory=ReorderTask)  # one of SEQ2SEQ_TASKS' dataclasses
    variants: tuple[Seq2SeqVariant, ...] = ()
    model: Seq2SeqModel = field(default_factory=Seq2SeqModel)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=32, eval_every=600))
    seeds: tuple[int, ...] = (0,)
    name: str = "seq2seq experiment"

    def __post_init__(self) -> None:
        if not isinstance(self.task, tuple(SEQ2SEQ_TASKS.values())):
            raise TypeError(
                f"task must be one of {sorted(SEQ2SEQ_TASKS)}, got {type(self.task).__name__}"
            )
        object.__setattr__(self, "variants", tuple(self.variants))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        if not self.variants:
            raise ValueError("variants: at least one variant is needed")
        labels = [v.label for v in self.variants]
        if len(set(labels)) != len(labels):
            raise ValueError(f"variants: labels must be unique, got {labels}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: at least one, all distinct, got {list(self.seeds)}")
        for s in self.seeds:
            check_int(s, "seeds", low=0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the whole experiment, the task's name included."""
        name = next(k for k, cls in SEQ2SEQ_TASKS.items() if isinstance(self.task, cls))
        return {
            "name": self.name,
            "seeds": list(self.seeds),
            "task": {"name": name, **dataclasses.asdict(self.task)},
            "model": dataclasses.asdict(self.model),
            "train": dataclasses.asdict(self.train),
            "variants": [
                {k: v for k, v in dataclasses.asdict(x).items() if v is not None}
                for x in self.variants
            ],
        }


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
    """Train one model; its validation numbers, loss curve and timing.

    Raises
    ------
    FloatingPointError
        If the training loss becomes NaN or infinite (the message names the
        step and the learning rate).

    Examples
    --------
    >>> exp = Seq2SeqExperiment(variants=(Seq2SeqVariant("full"),),
    ...     train=TrainConfig(steps=2, warmup=0, eval_every=2, log_every=1, eval_batches=1,
    ...                       eval_batch_size=4, batch_size=4))
    >>> model, run = train_seq2seq(exp, exp.variants[0], 0)
    >>> sorted(run)[:4], len(run["curve"])
    (['align_raw', 'align_rollout', 'curve', 'exact_match'], 2)
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
    run = {"seed": seed, "curve": curve, "train_seconds": seconds}
    run |= evaluate_seq2seq(model, exp, alignment=variant.cross != "none")
    run["example"] = alignment_example(model, exp)
    return model, run


def _cross_dense(layers: list, n: int, m: int) -> torch.Tensor:
    """Cross weights averaged over heads and layers as ``(B, N, M)`` matrices."""
    total = None
    for g, w in layers:
        dense = torch.zeros(w.shape[0], n, m)  # (B, N, M)
        dense[:, g.dst, g.src] = w.float().mean(-1)  # (B, E) head mean on the edges
        total = dense if total is None else total + dense
    return total / len(layers)


def _alignment(model: GraphSeq2Seq, batch: Any) -> tuple[int, int, int]:
    """Hits of the raw and rollout maps and the number of aligned target words."""
    out = model(batch.src, batch.tgt[:, :-1], need_weights=True)
    n, m = batch.tgt.shape[1] - 1, batch.src.shape[1]
    scored = (batch.align >= 0) & (batch.tgt[:, 1:] != EOS)  # (B, N) target words
    pad = batch.src == PAD  # (B, M)
    raw = _cross_dense(out.decoder_cross_layers, n, m).masked_fill(pad[:, None], -1.0)
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
) -> dict[str, Any]:
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
    return {
        "exact_match": exact / sentences,
        "token_acc": correct / tokens,
        "val_loss": loss_sum / tokens,
        "align_raw": hits_raw / aligned if aligned else None,
        "align_rollout": hits_roll / aligned if aligned else None,
    }


@torch.no_grad()
def alignment_example(model: GraphSeq2Seq, exp: Seq2SeqExperiment) -> dict[str, Any]:
    """The first validation sentence: words, its translation and both alignment maps.

    ``raw`` is the cross attention averaged over heads and layers, ``rollout``
    :func:`~graphattn.flow.cross_rollout`'s map, both ``(N, M)`` as nested
    lists (decoder positions down, the word each one predicts; source words
    across); ``align`` the true source position of each target word.
    """
    model.eval()
    batch = exp.task.val_batch(1, torch.Generator().manual_seed(VAL_SEED))
    out = model(batch.src, batch.tgt[:, :-1], need_weights=True)
    n, m = batch.tgt.shape[1] - 1, batch.src.shape[1]
    raw = _cross_dense(out.decoder_cross_layers, n, m)[0]  # (N, M)
    rollout = cross_rollout(*out.sequence_layers(0)).cross  # (N, M)
    model.train()
    return {
        "src": exp.task.src_words(batch.src[0]),
        "tgt": exp.task.tgt_words(batch.tgt[0, 1:]),
        "align": batch.align[0].tolist(),
        "raw": [[round(float(v), 4) for v in row] for row in raw],
        "rollout": [[round(float(v), 4) for v in row] for row in rollout],
    }


def cross_attention_experiments() -> dict[str, Seq2SeqExperiment]:
    """The experiments of ``docs/experiments.md``: the same variants on both tasks.

    Run by ``python examples/experiment_seq2seq.py`` (a test checks that the
    committed results are these configs).

    Examples
    --------
    >>> sorted(cross_attention_experiments())
    ['monotonic', 'reorder']
    """
    variants = (
        Seq2SeqVariant("full"),
        Seq2SeqVariant("window 1", cross="window", window=1),
        Seq2SeqVariant("random 2", cross="random", num_random=2),
        Seq2SeqVariant("none", cross="none"),
        Seq2SeqVariant("full, enc 1", encoder_window=1),
        Seq2SeqVariant("window 1, enc 1", cross="window", window=1, encoder_window=1),
        Seq2SeqVariant("window 2, enc 1", cross="window", window=2, encoder_window=1),
        Seq2SeqVariant("window 3, enc 1", cross="window", window=3, encoder_window=1),
    )
    train = TrainConfig(steps=300, batch_size=32, lr=3e-3, warmup=30, eval_every=300,
                        log_every=25, eval_batches=2, eval_batch_size=64)
    return {
        name: Seq2SeqExperiment(task=task, variants=variants, train=train, seeds=(0, 1),
                                name=f"cross graphs on the {name} task")
        for name, task in (("reorder", ReorderTask()), ("monotonic", MonotonicTask()))
    }
