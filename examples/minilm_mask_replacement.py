"""Why the MiniLM deletion curves delete tokens rather than mask them (docs/flow.md).

Run ``python examples/minilm_mask_replacement.py [N_SENTENCES]`` (default 10).
It prints, for the first shipped sentence, how far masking one token moves
all-MiniLM-L6-v2's sentence embedding (``1 - cos`` to the intact one), and
the AOPC table of every method over the first ``N_SENTENCES`` sentences with
the removed tokens replaced by ``[MASK]`` instead of deleted.
"""

import sys

from graphattn.experiments.attribution.minilm import (
    aopc_markdown,
    blank_out_importance,
    evaluate,
    mask_token_id,
    sentences,
)
from graphattn.pretrained import load_minilm


def main(count: int = 10) -> dict:
    model = load_minilm().eval()
    ids, _ = model.tokenize(sentences(1)[0])  # (1, n): [CLS] words [SEP]
    moved = blank_out_importance(model, ids, mask_token_id(model))  # (n,)
    words = moved[1:-1]
    print(f"one [MASK] on the first sentence: word tokens {float(words.min()):.2f} to "
          f"{float(words.max()):.2f}, [CLS] {float(moved[0]):.2f}, [SEP] {float(moved[-1]):.2f}")
    table = evaluate(model, sentences(count), mask_removed=True)["aopc"]
    print(f"[MASK] replacement, first {count} sentences:")
    print(aopc_markdown(table))
    return table


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
