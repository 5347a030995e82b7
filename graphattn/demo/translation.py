"""Old path of :mod:`graphattn.pretrained.translation` (the shipped translation models).

An alias kept so that ``from graphattn.demo.translation import ...`` still
works; new code imports from :mod:`graphattn.pretrained.translation`.
"""

from graphattn.pretrained.translation import (
    DATA_DIR,
    TRANSLATION_MODELS,
    demo_experiment,
    load_translation_model,
    translate_with_weights,
)

__all__ = [
    "DATA_DIR",
    "TRANSLATION_MODELS",
    "demo_experiment",
    "load_translation_model",
    "translate_with_weights",
]
