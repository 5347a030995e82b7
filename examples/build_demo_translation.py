"""Build the demo's translation checkpoints (graphattn/pretrained/data/*.safetensors).

    python examples/build_demo_translation.py

Trains each model of ``graphattn.pretrained.translation.TRANSLATION_MODELS`` on the
reorder task with the documented experiment's budget and seed 0 (one torch
thread, so the numbers repeat), measures it on the held-out sentences and
writes its weights with the variant, seed and accuracy as metadata.
"""

import dataclasses
import json

import torch
from safetensors.torch import save_file

from graphattn.experiments import train_seq2seq
from graphattn.pretrained.translation import DATA_DIR, TRANSLATION_MODELS, demo_experiment

SEED = 0


def main() -> None:
    torch.set_num_threads(1)
    exp = demo_experiment()
    DATA_DIR.mkdir(exist_ok=True)
    for name, variant in TRANSLATION_MODELS.items():
        model, run = train_seq2seq(exp, variant, SEED)
        meta = {
            "variant": dataclasses.asdict(variant),
            "experiment": exp.to_dict(),
            "seed": SEED,
            "command": "python examples/build_demo_translation.py",
        } | {k: run[k] for k in ("exact_match", "token_acc", "align_raw", "align_rollout")}
        tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        path = DATA_DIR / f"{name}.safetensors"
        save_file(tensors, str(path), metadata={"graphattn.translation": json.dumps(meta)})
        print(name, {k: meta[k] for k in ("exact_match", "token_acc", "align_raw")}, path)


if __name__ == "__main__":
    main()
