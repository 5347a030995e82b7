"""Attribution on the real all-MiniLM-L6-v2: blank-out agreement and deletion curves.

The model's output is the sentence embedding (the mean-pooled output), so each
method's importance of input token ``j`` is the mean over targets of its
rolled-out row, column ``j`` (``raw``: the last layer's head-mean weights;
``routes``: the mean over targets of :func:`graphattn.flow.route_scores` of
the ALTI layers, the largest threshold at which ``j`` is on each target's
information-flow route; ``attnlrp``: the input-token relevance the paper
reports, ``contributions(model, ids, "attnlrp").tokens``, which explains
``sum_i ||y_i||``, every output token along its own direction, the tokens
the pooling averages).
Two evaluations, over the word tokens only (``[CLS]`` and ``[SEP]`` are never
ranked nor removed):

* In the form of Abnar & Zuidema's table: the Spearman correlation of each
  method with blank-out importance (``1 - cos`` between the sentence
  embedding with that token replaced by ``[MASK]`` and the intact one),
  averaged over sentences.
* Deletion curves in the form of DeYoung et al.'s ERASER: at each removal
  fraction ``f`` the ``k = ceil(f * n_words)`` most important word tokens are
  deleted from the sentence (the shorter sentence is encoded, later tokens
  move up; not ``[MASK]`` replacement: on this model one ``[MASK]`` in place
  of any word moves the embedding by ``1 - cos`` of about 0.2 to 0.4, so the
  curves would measure the mask, not the token; see ``docs/flow.md``); *comprehensiveness*
  is ``1 - cos`` between that sentence's embedding and the intact one (higher:
  the method found what the output rests on), *sufficiency* the same with
  every word token *except* those ``k`` deleted (lower: those ``k`` alone
  carry the output). AOPC is the mean over the fractions, per sentence, then
  over sentences. Baselines: ``[MASK]`` blank-out importance, leave-one-out
  deletion importance and a random ranking.

The sentences are the first lines of 6 to 20 words of *The Comedy of
Errors* shipped in ``graphattn/experiments/data`` (see its README for
provenance).

:func:`run` writes ``minilm_spearman.md``/``.json`` and
``minilm_aopc.md``/``.json``; ``graphattn attribution --only minilm
[--sentences N] [OUT_DIR]`` runs it on the real model (default 200 sentences,
``benchmarks/results/attribution``), and ``graphattn attribution`` runs this
part, the other two and the summary in one command.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from graphattn._markdown import table_lines
from graphattn.experiments.common.files import write_text
from graphattn.flow import (
    attention_flow,
    attention_rollout,
    contributions,
    route_scores,
    spearman,
)

__all__ = [
    "AOPC_METHODS",
    "FRACTIONS",
    "METHODS",
    "aopc_markdown",
    "blank_out_importance",
    "deletion_curves",
    "evaluate",
    "leave_one_out_importance",
    "mask_token_id",
    "removal_count",
    "run",
    "sentences",
    "spearman_markdown",
]

METHODS = (
    "raw", "rollout", "flow", "alti", "globenc", "value_zeroing", "grad_attention", "attnlrp",
    "routes",
)
#: Methods of the deletion curves: every attribution method and three baselines.
AOPC_METHODS = (*METHODS, "blank_out", "leave_one_out", "random")
#: Removal fractions of the deletion curves (DeYoung et al.'s 10% to 50%).
FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5)
_RESIDUAL = {"alti": 0.0, "globenc": 0.0, "value_zeroing": 0.5, "grad_attention": 0.5}
_TEXT = Path(__file__).parents[1] / "data" / "comedy_of_errors.txt"  # graphattn/experiments/data
#: ``(ids (B, L), mask (B, L)) -> (B, C)``: a sentence embedding of right-padded rows.
Embed = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sentences(count: int = 200) -> list[str]:
    """The first ``count`` spoken lines of the play with 6 to 20 words.

    Spoken: after the first scene heading, not a speaker's name or a stage
    direction (no upper-case first word, no brackets).

    Examples
    --------
    >>> sentences(1)
    ['Proceed, Solinus, to procure my fall,']
    """
    out = []
    lines = _TEXT.read_text(encoding="ascii").splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("SCENE"))
    for line in lines[start + 1 :]:
        words = line.split()
        spoken = words and not words[0].isupper() and "[" not in line and "]" not in line
        if spoken and 6 <= len(words) <= 20:
            out.append(line.strip())
        if len(out) == count:
            break
    return out


def mask_token_id(model) -> int:
    """The id of ``[MASK]`` in the model's tokenizer."""
    tok = model.tokenizer
    return next(i for i in range(tok.vocab_size) if tok.id_to_token(i) == "[MASK]")


def blank_out_importance(model, ids: torch.Tensor, mask_id: int) -> torch.Tensor:
    """``1 - cos(embedding with token j masked, intact embedding)`` for every token ``j``."""
    n = ids.shape[1]
    copies = ids.repeat(n + 1, 1)  # (n+1, n): copy j+1 masks token j
    copies[torch.arange(1, n + 1), torch.arange(n)] = mask_id
    with torch.no_grad():
        e = model(copies).pooled()  # (n+1, C), unit length
    return 1.0 - (e[1:] @ e[0])  # (n,)


def _attributions(model, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each method's attribution of the mean-pooled output to the ``n`` input tokens."""
    n = ids.shape[1]
    raw = [(g, c[0]) for g, c in contributions(model, ids, "attention")]
    last = raw[-1][0].to_dense(raw[-1][1].float())  # (n, n)
    out = {
        "raw": last.mean(0),
        "rollout": attention_rollout(raw, residual=0.5).mean(0),
        "flow": attention_flow(raw, list(range(n)), residual=0.5).mean(0),
        "attnlrp": contributions(model, ids, "attnlrp").tokens[0],
    }
    for method, residual in _RESIDUAL.items():
        layers = [(g, c[0]) for g, c in contributions(model, ids, method)]
        out[method] = attention_rollout(layers, residual=residual).mean(0)
        if method == "alti":  # the route of every output token, averaged like rollout's rows
            out["routes"] = torch.stack([route_scores(layers, t) for t in range(n)]).mean(0)
    return out


def removal_count(fraction: float, n_words: int) -> int:
    """Word tokens removed at ``fraction``: ``ceil(fraction * n_words)``, at least 1.

    Examples
    --------
    >>> [removal_count(f, 10) for f in (0.1, 0.2, 0.3, 0.4, 0.5)]
    [1, 2, 3, 4, 5]
    >>> removal_count(0.1, 7)
    1
    """
    return max(1, math.ceil(fraction * n_words - 1e-9))  # 1e-9: 0.3 * 10 is 3.0000000000000004


def _variants(
    ids: torch.Tensor, removed: list[torch.Tensor], replace_id: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The intact sentence, then one row per removed-position list: ``ids (B, L)``, ``mask``.

    ``replace_id`` None: the removed tokens are deleted and the rows padded on
    the right; else each removed token is replaced by ``replace_id`` in place.
    """
    n = ids.shape[1]
    if replace_id is not None:
        rows = ids.repeat(1 + len(removed), 1)  # (B, n)
        for r, gone in enumerate(removed, start=1):
            rows[r, gone] = replace_id
        return rows, torch.ones_like(rows, dtype=torch.bool)
    keeps = [torch.arange(n)]
    for gone in removed:
        kept = torch.ones(n, dtype=torch.bool)
        kept[gone] = False
        keeps.append(kept.nonzero()[:, 0])
    out = torch.zeros(len(keeps), n, dtype=ids.dtype)
    mask = torch.zeros(len(keeps), n, dtype=torch.bool)
    for r, k in enumerate(keeps):
        out[r, : len(k)] = ids[0, k]
        mask[r, : len(k)] = True
    return out, mask


def _drop(
    embed: Embed, ids: torch.Tensor, removed: list[torch.Tensor], replace_id: int | None = None
) -> torch.Tensor:
    """``1 - cos`` to the intact sentence with each list of positions removed: ``(R,)``."""
    batch, mask = _variants(ids, removed, replace_id)
    with torch.no_grad():
        e = F.normalize(embed(batch, mask).float(), dim=-1)  # (1 + len(removed), C)
    return 1.0 - e[1:] @ e[0]


def leave_one_out_importance(embed: Embed, ids: torch.Tensor) -> torch.Tensor:
    """``1 - cos`` to the intact embedding with each word token deleted, ``(n - 2,)``.

    Examples
    --------
    >>> bag = lambda x, m: torch.zeros(len(x), 4).index_put_(  # bag of the kept ids
    ...     (torch.arange(len(x))[:, None].expand_as(x)[m], x[m]), torch.tensor(1.0),
    ...     accumulate=True)
    >>> leave_one_out_importance(bag, torch.tensor([[0, 1, 2, 3]]))  # 1 - sqrt(3/4)
    tensor([0.1340, 0.1340])
    """
    return _drop(embed, ids, [torch.tensor([j]) for j in range(1, ids.shape[1] - 1)])


def deletion_curves(
    embed: Embed,
    ids: torch.Tensor,
    importance: torch.Tensor,
    fractions: Sequence[float] = FRACTIONS,
    replace_id: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Comprehensiveness and sufficiency of ``importance`` at each removal fraction.

    Parameters
    ----------
    embed : callable
        ``(ids (B, L), mask (B, L))`` (right padding) to sentence embeddings ``(B, C)``.
    ids : torch.Tensor
        One sentence ``(1, n)``, ``[CLS]`` first and ``[SEP]`` last; both are kept.
    importance : torch.Tensor
        ``(n - 2,)``, of the word tokens ``1 .. n - 2``; ties keep position order.
    fractions : sequence of float
        Removal fractions.
    replace_id : int, optional
        Replace removed tokens by this id (e.g. ``[MASK]``) instead of
        deleting them (the default, ERASER's definition).

    Returns
    -------
    comprehensiveness, sufficiency : torch.Tensor
        ``(len(fractions),)`` each: ``1 - cos`` to the intact embedding with the
        top ``k`` word tokens deleted, and with every other word token deleted.

    Examples
    --------
    >>> bag = lambda x, m: torch.zeros(len(x), 6).index_put_(  # bag of the kept ids
    ...     (torch.arange(len(x))[:, None].expand_as(x)[m], x[m]), torch.tensor(1.0),
    ...     accumulate=True)
    >>> comp, suff = deletion_curves(bag, torch.tensor([[0, 1, 2, 3, 4, 5]]),
    ...                              torch.tensor([0.1, 0.9, 0.5, 0.2]), (0.25, 0.5))
    >>> comp  # 1 - sqrt(5/6), 1 - sqrt(4/6)
    tensor([0.0871, 0.1835])
    >>> suff  # 1 - sqrt(3/6), 1 - sqrt(4/6)
    tensor([0.2929, 0.1835])
    """
    n = ids.shape[1]
    order = torch.argsort(importance, descending=True, stable=True) + 1  # word positions
    words = torch.arange(1, n - 1)  # [CLS] and [SEP] are never removed
    comp, suff = [], []
    for fraction in fractions:
        top = order[: removal_count(fraction, n - 2)]
        comp.append(top)
        suff.append(words[~torch.isin(words, top)])
    drop = _drop(embed, ids, comp + suff, replace_id)  # (2F,)
    return drop[: len(fractions)], drop[len(fractions) :]


def evaluate(
    model,
    texts: Sequence[str],
    fractions: Sequence[float] = FRACTIONS,
    seed: int = 0,
    *,
    mask_removed: bool = False,
) -> dict:
    """Both tables over ``texts``, each sentence's attributions computed once.

    ``"spearman"``: each method's mean Spearman correlation with blank-out
    importance (sentences where it is undefined are skipped). ``"aopc"``: per
    method of :data:`AOPC_METHODS`, the deletion curves averaged over
    sentences and their AOPC (mean over ``fractions``); with
    ``mask_removed`` the removed tokens are replaced by ``[MASK]`` instead of
    deleted (the benchmark deletes: see ``docs/flow.md``). ``"random"`` ranks
    by ``torch.rand`` from a generator seeded with ``seed``.
    """
    mask_id = mask_token_id(model)
    gen = torch.Generator().manual_seed(seed)
    rho: dict[str, list[float]] = {m: [] for m in METHODS}
    curves: dict[str, list[torch.Tensor]] = {m: [] for m in AOPC_METHODS}  # (2, F) each

    def embed(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return model(x, attention_mask=mask).pooled()

    for text in texts:
        ids, _ = model.tokenize(text)  # (1, n)
        scores = {m: a[1:-1].float() for m, a in _attributions(model, ids).items()}
        blank = blank_out_importance(model, ids, mask_id)[1:-1].float()
        for m, a in scores.items():
            r = spearman(a, blank)
            if not math.isnan(r):
                rho[m].append(r)
        scores["blank_out"] = blank
        scores["leave_one_out"] = leave_one_out_importance(embed, ids)
        scores["random"] = torch.rand(blank.shape[0], generator=gen)
        for m in AOPC_METHODS:
            curves[m].append(torch.stack(deletion_curves(
                embed, ids, scores[m], fractions, mask_id if mask_removed else None)))
    spear = {m: sum(r) / max(len(r), 1) for m, r in rho.items()}
    return {"spearman": spear, "aopc": {"fractions": list(fractions), "methods": _aopc(curves)}}


def _aopc(curves: dict[str, list[torch.Tensor]]) -> dict[str, dict]:
    """Per method, both curves averaged over sentences (``(2, F)`` each) and their AOPCs."""
    aopc = {}
    for m, per_sentence in curves.items():
        comp, suff = torch.stack(per_sentence).mean(0).tolist()  # (2, F) averaged over sentences
        aopc[m] = {"comprehensiveness": comp, "sufficiency": suff,
                   "aopc_comprehensiveness": sum(comp) / len(comp),
                   "aopc_sufficiency": sum(suff) / len(suff)}
    return aopc


def spearman_markdown(spear: dict[str, float], count: int) -> str:
    """The Spearman table: one row, the mean correlation of each method with blank-out.

    Examples
    --------
    >>> print(spearman_markdown({"raw": 0.5, "alti": 0.75}, 2), end="")
    | sentences | raw | alti |
    | --- | --- | --- |
    | 2 | 0.50 | 0.75 |
    """
    row = [str(count), *(f"{r:.2f}" for r in spear.values())]
    return "\n".join(table_lines(["sentences", *spear], [row])) + "\n"


def aopc_markdown(table: dict) -> str:
    """The AOPC table: per method, both AOPCs and both curves (``evaluate(...)["aopc"]``)."""
    pct = " / ".join(f"{round(100 * f)}%" for f in table["fractions"])
    header = ["method", "AOPC comprehensiveness (higher is better)",
              "AOPC sufficiency (lower is better)", f"comprehensiveness at {pct}",
              f"sufficiency at {pct}"]
    rows = [[m, f"{r['aopc_comprehensiveness']:.3f}", f"{r['aopc_sufficiency']:.3f}",
             " / ".join(f"{v:.3f}" for v in r["comprehensiveness"]),
             " / ".join(f"{v:.3f}" for v in r["sufficiency"])]
            for m, r in table["methods"].items()]
    return "\n".join(table_lines(header, rows)) + "\n"


def run(
    out: str | os.PathLike,
    texts: Sequence[str],
    model,
    log: Callable[[str], None] = print,
) -> dict:
    """Score ``texts`` on ``model`` (MiniLM or a model like it), write both tables; return them.

    Writes ``minilm_spearman.json``/``.md`` and ``minilm_aopc.json``/``.md``
    into ``out``, each whole or not at all. ``model`` is loaded by the caller
    (``graphattn attribution`` loads all-MiniLM-L6-v2 with
    :func:`graphattn.pretrained.load_minilm`).
    """
    result = evaluate(model.eval(), texts)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    count = len(texts)
    spear = spearman_markdown(result["spearman"], count)
    aopc = aopc_markdown(result["aopc"])
    write_text(out / "minilm_spearman.json",
               json.dumps({"sentences": count, **result["spearman"]}, indent=2) + "\n")
    write_text(out / "minilm_spearman.md", spear)
    write_text(out / "minilm_aopc.json",
               json.dumps({"sentences": count, **result["aopc"]}, indent=2) + "\n")
    write_text(out / "minilm_aopc.md", aopc)
    log(spear)
    log(aopc)
    return result

