"""The demo's shipped translation checkpoints: small, documented, and really translating."""

import pytest

pytest.importorskip("safetensors")

from graphattn.flow import cross_rollout  # noqa: E402
from graphattn.pretrained.translation import (  # noqa: E402
    DATA_DIR,
    TRANSLATION_MODELS,
    load_translation_model,
    translate_with_weights,
)


@pytest.mark.parametrize("name", sorted(TRANSLATION_MODELS))
def test_checkpoint_is_small_and_records_how_it_was_built(name):
    path = DATA_DIR / f"{name}.safetensors"
    assert path.stat().st_size < 5 * 2**20
    model, meta = load_translation_model(name)
    assert meta["seed"] == 0 and meta["command"] == "python examples/build_demo_translation.py"
    assert meta["variant"]["label"] == TRANSLATION_MODELS[name].label
    assert 0.9 <= meta["exact_match"] <= 1.0
    assert not model.training


def test_full_model_translates_a_held_out_sentence_and_its_attention_aligns():
    model, _ = load_translation_model("reorder-full")
    res = translate_with_weights(model, ["small", "bird", "sees", "red", "man"])
    assert res["tgt"] == ["pajaro", "pequeno", "hombre", "rojo", "ve", "<eos>"]
    g, w = res["cross"]
    assert g.tokens == res["tgt"] and g.src_tokens == res["src"]
    rel = cross_rollout(*res["layers"]).cross  # (N, M)
    assert rel.shape == (6, 6)


def test_unknown_words_and_models_are_refused():
    model, _ = load_translation_model("reorder-full")
    with pytest.raises(ValueError, match="unknown source words \\['bank'\\]"):
        translate_with_weights(model, ["bank"])
    with pytest.raises(ValueError, match="name must be one of"):
        load_translation_model("minilm")


def test_the_old_demo_path_is_an_alias_of_the_pretrained_module():
    from graphattn.demo import translation as old
    from graphattn.pretrained import translation as new

    assert old.load_translation_model is new.load_translation_model
    assert old.TRANSLATION_MODELS is new.TRANSLATION_MODELS
    assert old.DATA_DIR == new.DATA_DIR == new.DATA_DIR.parent / "data"
    assert new.DATA_DIR.parent.name == "pretrained"
