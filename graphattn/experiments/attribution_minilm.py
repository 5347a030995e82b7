"""Attribution on the real all-MiniLM-L6-v2: agreement with blank-out importance.

In the form of Abnar & Zuidema's table: per sentence, each method's
attribution of the sentence embedding (the mean-pooled output, so the mean
over targets of the method's rolled-out row) to each word token, and its
Spearman correlation with blank-out importance (``1 - cos`` between the
sentence embedding with that token replaced by ``[MASK]`` and the intact one),
averaged over sentences. The sentences are the first lines of 6 to 20 words
of *The Comedy of Errors* shipped in ``graphattn/experiments/data`` (see its
README for provenance).

Run ``python -m graphattn.experiments.attribution_minilm [N_SENTENCES] [OUT]``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch

from graphattn.flow import attention_flow, attention_rollout, contributions, spearman

__all__ = ["METHODS", "blank_out_importance", "main", "sentences", "spearman_table"]

METHODS = ("raw", "rollout", "flow", "alti", "globenc", "value_zeroing", "grad_attention")
_RESIDUAL = {"alti": 0.0, "globenc": 0.0, "value_zeroing": 0.5, "grad_attention": 0.5}
_TEXT = Path(__file__).parent / "data" / "comedy_of_errors.txt"


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


def _mask_id(model) -> int:
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
    last = torch.zeros(n, n)
    last[raw[-1][0].dst, raw[-1][0].src] = raw[-1][1].float()
    out = {
        "raw": last.mean(0),
        "rollout": attention_rollout(raw, residual=0.5).mean(0),
        "flow": attention_flow(raw, list(range(n)), residual=0.5).mean(0),
    }
    for method, residual in _RESIDUAL.items():
        layers = [(g, c[0]) for g, c in contributions(model, ids, method)]
        out[method] = attention_rollout(layers, residual=residual).mean(0)
    return out


def spearman_table(model, texts: list[str]) -> dict[str, float]:
    """Mean Spearman correlation (over sentences) of each method with blank-out importance.

    Word tokens only: ``[CLS]`` and ``[SEP]`` are left out of every ranking.
    """
    mask_id = _mask_id(model)
    sums = dict.fromkeys(METHODS, 0.0)
    counts = dict.fromkeys(METHODS, 0)
    for text in texts:
        ids, _ = model.tokenize(text)  # (1, n)
        importance = blank_out_importance(model, ids, mask_id)[1:-1]
        for m, a in _attributions(model, ids).items():
            r = spearman(a[1:-1].float(), importance.float())
            if not math.isnan(r):
                sums[m] += r
                counts[m] += 1
    return {m: sums[m] / max(counts[m], 1) for m in METHODS}


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Load MiniLM, score the shipped sentences, write and print the table."""
    from graphattn.pretrained import load_minilm

    args = sys.argv[1:] if argv is None else argv
    count = int(args[0]) if args else 200
    out = Path(args[1] if len(args) > 1 else "benchmarks/results/attribution")
    table = spearman_table(load_minilm().eval(), sentences(count))
    out.mkdir(parents=True, exist_ok=True)
    (out / "minilm_spearman.json").write_text(json.dumps({"sentences": count, **table}, indent=2))
    print("| " + " | ".join(METHODS) + " |")
    print("| --- " * len(METHODS) + "|")
    print("| " + " | ".join(f"{table[m]:.2f}" for m in METHODS) + " |")
    return table


if __name__ == "__main__":
    main()
