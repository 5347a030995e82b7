"""The checked route onto graphattn attention: :func:`attach`.

``attn_implementation="graphattn"`` only reaches models whose attention goes
through transformers' ``AttentionInterface``. Bloom, MPT, DeBERTa, Longformer,
XLNet and others compute attention themselves and would silently ignore a
graph; :func:`attach` refuses them, and checks at every forward given a
``token_graph`` that each attention module that ran received it (LongT5's
decoder stack, for one, drops the keyword).
"""

from __future__ import annotations

import inspect

import torch

from graphattn.hf.keywords import ATTENTION_NAME, GRAPH_KWARGS
from graphattn.hf.tracking import Tracker, current, watch

__all__ = ["attach", "attention_modules", "uses_interface"]

_INTERFACE_NAMES = ("ALL_ATTENTION_FUNCTIONS", "attention_interface")
_HOOKED = "_graphattn_attached"  # marks a model whose hooks attach() installed


def attention_modules(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The innermost modules whose class name contains ``Attention``, by name.

    Examples
    --------
    >>> class SelfAttention(torch.nn.Module): pass
    >>> class Block(torch.nn.Module):
    ...     def __init__(self): super().__init__(); self.attn = SelfAttention()
    >>> list(attention_modules(Block()))
    ['attn']
    """
    found = {}
    for name, module in model.named_modules():
        if "Attention" not in type(module).__name__:
            continue
        inner = (m for _, m in module.named_modules() if m is not module)
        if not any("Attention" in type(m).__name__ for m in inner):
            found[name] = module
    return found


def uses_interface(module: torch.nn.Module) -> bool:
    """Whether ``module``'s forward dispatches through transformers' ``AttentionInterface``."""
    try:
        source = inspect.getsource(type(module).forward)
    except (OSError, TypeError):
        return False
    return any(name in source for name in _INTERFACE_NAMES)


def _refuse(model: torch.nn.Module, modules: dict[str, torch.nn.Module]) -> None:
    own = sorted({type(m).__name__ for m in modules.values() if not uses_interface(m)})
    if not modules or own:
        which = ", ".join(own) if own else "no attention module at all"
        raise ValueError(
            f"{type(model).__name__} computes attention itself ({which}), not through "
            "transformers' AttentionInterface, so it cannot run on a token graph; run it with "
            "attn_implementation='eager' and output_attentions=True and turn out.attentions into "
            "(graph, weights) pairs with graphattn.hf.layers_from_attentions"
        )


def _install_hooks(model: torch.nn.Module, modules: dict[str, torch.nn.Module]) -> None:
    names = {id(m): name for name, m in modules.items()}

    def start(module, args, kwargs):
        if any(kwargs.get(k) is not None for k in GRAPH_KWARGS):
            Tracker().__enter__()

    def check(module, args, kwargs, output):
        if not any(kwargs.get(k) is not None for k in GRAPH_KWARGS):
            return
        tracker = current()
        tracker.__exit__()
        missed = tracker.missed()
        if missed and output is not None:  # None: the forward raised already
            listed = ", ".join(f"{names[id(m)]} ({type(m).__name__})" for m in missed[:4])
            given = next(k for k in GRAPH_KWARGS if kwargs.get(k) is not None)
            raise ValueError(
                f"{type(model).__name__}: {given} never reached {len(missed)} attention "
                f"module(s) that ran: {listed}; their model code drops the keyword, so their "
                "output ignores the graph (use graphattn.hf.layers_from_attentions instead)"
            )

    for module in modules.values():
        watch(module)
    model.register_forward_pre_hook(start, with_kwargs=True)
    model.register_forward_hook(check, with_kwargs=True, always_call=True)
    setattr(model, _HOOKED, True)


def attach(model: torch.nn.Module) -> torch.nn.Module:
    """Switch a loaded transformers model to graphattn attention, checked.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A loaded model.

    Returns
    -------
    transformers.PreTrainedModel
        The same model, now with ``attn_implementation="graphattn"``; a
        forward given a graph keyword (``token_graph``, ``encoder_graph``,
        ``decoder_graph``, ``cross_graph``) raises if some attention module
        that ran did not receive it, or runs another implementation (a
        config shared with a model built for another one switches both).

    Raises
    ------
    TypeError
        If ``model`` is not a transformers model.
    ValueError
        If its attention does not go through transformers' ``AttentionInterface``
        (the message names the model and the attention class and points to
        :func:`graphattn.hf.layers_from_attentions`).

    Examples
    --------
    >>> import transformers
    >>> config = transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=10)
    >>> model = attach(transformers.GPT2LMHeadModel(config))
    >>> model.config._attn_implementation
    'graphattn'
    >>> bloom = transformers.BloomConfig(n_layer=1, hidden_size=8, n_head=2, vocab_size=10)
    >>> attach(transformers.BloomForCausalLM(bloom))
    Traceback (most recent call last):
        ...
    ValueError: BloomForCausalLM computes attention itself (BloomAttention), ...
    """
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "set_attn_implementation"):
        raise TypeError(f"model must be a transformers PreTrainedModel, got {type(model).__name__}")
    modules = attention_modules(model)
    _refuse(model, modules)
    model.set_attn_implementation(ATTENTION_NAME)
    if not getattr(model, _HOOKED, False):
        _install_hooks(model, modules)
    return model
