"""Tiny random transformers models for the graphattn.hf tests (built from configs, offline)."""

from __future__ import annotations

import torch
import transformers as tf

VOCAB = 100


FAMILIES = {
    "gpt2": lambda: (
        tf.GPT2LMHeadModel,
        tf.GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=VOCAB, n_positions=64),
    ),
    "llama": lambda: (  # grouped-query heads: 4 query heads share 2 key/value heads
        tf.LlamaForCausalLM,
        tf.LlamaConfig(
            num_hidden_layers=2,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=VOCAB,
        ),
    ),
    "qwen2": lambda: (  # layer 0 full attention, layer 1 its own sliding window of 3
        tf.Qwen2ForCausalLM,
        tf.Qwen2Config(
            num_hidden_layers=2,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=VOCAB,
            use_sliding_window=True,
            sliding_window=3,
            max_window_layers=1,
        ),
    ),
    "mistral": lambda: (  # every layer slides over 3 tokens
        tf.MistralForCausalLM,
        tf.MistralConfig(
            num_hidden_layers=2,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=VOCAB,
            sliding_window=3,
        ),
    ),
    "gemma2": lambda: (  # logit soft-capping (a score transform) and alternating windows
        tf.Gemma2ForCausalLM,
        tf.Gemma2Config(
            num_hidden_layers=2,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=8,
            vocab_size=VOCAB,
            sliding_window=3,
            attn_logit_softcapping=5.0,
        ),
    ),
    "bert": lambda: (
        tf.BertModel,
        tf.BertConfig(
            num_hidden_layers=2,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=4,
            vocab_size=VOCAB,
        ),
    ),
    "t5": lambda: (  # relative position bias in encoder and decoder, cross-attention
        tf.T5ForConditionalGeneration,
        tf.T5Config(
            num_layers=2,
            num_decoder_layers=2,
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_heads=4,
            vocab_size=VOCAB,
            relative_attention_num_buckets=8,
            decoder_start_token_id=0,
            pad_token_id=0,
        ),
    ),
    "bart": lambda: (
        tf.BartForConditionalGeneration,
        tf.BartConfig(
            encoder_layers=2,
            decoder_layers=2,
            d_model=32,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            vocab_size=VOCAB,
            max_position_embeddings=64,
        ),
    ),
    "marian": lambda: (
        tf.MarianMTModel,
        tf.MarianConfig(
            encoder_layers=1,
            decoder_layers=1,
            d_model=32,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            vocab_size=VOCAB,
            max_position_embeddings=64,
            pad_token_id=0,
            decoder_start_token_id=0,
        ),
    ),
}
DECODERS = ("gpt2", "llama", "qwen2", "mistral", "gemma2")
ENCODER_DECODERS = ("t5", "bart", "marian")


def tiny(family: str, attn: str = "graphattn", seed: int = 0):
    """The family's tiny model in eval mode, float32, with random weights from ``seed``."""
    import graphattn.hf  # noqa: F401  (registers "graphattn")

    cls, config = FAMILIES[family]()
    torch.manual_seed(seed)
    return cls._from_config(config, attn_implementation=attn).eval()


def inputs(family: str, n: int = 7, pad: int = 2, side: str = "right", seed: int = 1) -> dict:
    """Two examples of ``n`` tokens, the second with ``pad`` padding tokens on ``side``."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (2, n), generator=gen)
    mask = torch.ones(2, n, dtype=torch.long)
    if pad:
        mask[1, n - pad :] = 0 if side == "right" else 1
        if side == "left":
            mask[1, :pad] = 0
    out = {"input_ids": ids, "attention_mask": mask}
    if family in ENCODER_DECODERS:
        out["decoder_input_ids"] = torch.randint(3, VOCAB, (2, n - 2), generator=gen)
    return out


def main_output(out) -> torch.Tensor:
    """Logits, or the last hidden state of a bare encoder."""
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def padded(family: str, side: str, n: int = 7, pad: int = 3) -> dict:
    """:func:`inputs`; with left padding, ``position_ids`` counting real tokens, as ``generate``.

    Left padding otherwise moves the real tokens to later positions, which a
    model with absolute positions (GPT-2) sees. Right padding keeps the
    model's own positions (RoBERTa's start after its padding index).
    """
    batch = inputs(family, n=n, pad=pad, side=side)
    if side == "left":
        batch["position_ids"] = (batch["attention_mask"].cumsum(-1) - 1).clamp_min(0)
    return batch


def _dense(g, c: torch.Tensor, n: int) -> torch.Tensor:
    out = torch.zeros(c.shape[0], n, n, dtype=c.dtype)  # (B, target, source)
    out[:, g.dst, g.src] = c
    return out


def assert_each_as_alone(model, batch: dict, method: str, **tol) -> None:
    """Contributions of a padded batch = each example's alone, zero off its real tokens."""
    from graphattn.flow import contributions

    ids, real = batch["input_ids"], batch["attention_mask"].bool()  # (B, N)
    n = ids.shape[1]
    got = contributions(model, batch, method)
    for b in range(ids.shape[0]):
        keep = real[b].nonzero().squeeze(1)  # (N_b,) the example's tokens
        alone = contributions(model, ids[b : b + 1, keep], method)
        assert len(alone) == len(got)
        for (g, c), (g1, c1) in zip(got, alone, strict=True):
            assert torch.all(c[b, ~real[b, g.src]] == 0)  # edges from padding: share 0
            expected = torch.zeros(n, n, dtype=c.dtype)
            expected[keep[:, None], keep] = _dense(g1, c1, len(keep))[0]
            torch.testing.assert_close(_dense(g, c, n)[b], expected, **tol)
