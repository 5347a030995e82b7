"""The models :func:`~graphattn.flow.contributions` takes: one registry of adapters.

An adapter tells flow how to reach the attention of one kind of model.
Either it ``run``\\ s the model block by block into a
:class:`~graphattn.flow.blocks.ContributionRun` (every method of
:func:`~graphattn.flow.contributions` is then computed by flow from the
blocks), or it ``compute``\\ s the contributions its own way (an integration
whose models flow cannot take apart). Each kind of model registers its
adapter where the model is known, keyed by its type or by a predicate:

- graphattn's own ``GraphTransformer``, ``GraphLM`` and ``GraphSeq2Seq``
  in :mod:`graphattn.flow.nn_adapters` (imported with :mod:`graphattn.flow`);
- the BERT port in :mod:`graphattn.pretrained`, at its import;
- Hugging Face models on ``attn_implementation="graphattn"`` in
  :mod:`graphattn.hf`, at its import.

A model no registered adapter takes but which implements
:class:`~graphattn.flow.blocks.ContributionModel` is run by its own
``contribution_run`` (the default adapter, consulted last).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import torch

from graphattn.flow.blocks import ContributionModel, ContributionRun
from graphattn.graph import TokenGraph

__all__ = [
    "METHODS",
    "ContributionAdapter",
    "adapter_for",
    "register_adapter",
    "run_model",
    "unregister_adapter",
]

#: The methods of :func:`~graphattn.flow.contributions`.
METHODS = ("alti", "globenc", "value_zeroing", "grad_attention", "attention", "attnlrp")

Layers = list[tuple[TokenGraph, torch.Tensor]]
#: What an adapter is registered under: a model type, or a predicate ``model -> bool``.
AdapterKey = Union[type, Callable[[Any], bool]]  # noqa: UP007 (a runtime alias on Python 3.10)


@dataclass(frozen=True)
class ContributionAdapter:
    """How :func:`~graphattn.flow.contributions` reaches one kind of model.

    Attributes
    ----------
    run : callable, optional
        ``run(model, inputs, graph) -> ContributionRun``: the model block by
        block (see :class:`~graphattn.flow.blocks.ContributionModel`); flow
        computes every method from the blocks.
    compute : callable, optional
        ``compute(model, inputs, method, graph, normalize=) -> layers``: the
        contributions computed by the adapter itself (exactly one of ``run``
        and ``compute`` is given).
    methods : tuple of str
        The methods it offers (default all of :data:`METHODS`); another one is
        refused naming these.
    mappings : bool
        Whether ``inputs`` may be a mapping (a tokenizer's batch); default True.
    attnlrp : callable, optional
        ``attnlrp(model, inputs, graph) -> Relevance`` for a ``run`` adapter
        whose model AttnLRP cannot read from one stream of blocks (an
        encoder-decoder); default :func:`graphattn.flow.lrp.attnlrp`'s own.

    Examples
    --------
    >>> adapter = ContributionAdapter(run=lambda model, inputs, graph: model.run(inputs))
    >>> adapter.methods == METHODS, adapter.mappings
    (True, True)
    """

    run: Callable[[Any, Any, Any], ContributionRun] | None = None
    compute: Callable[..., Layers] | None = None
    methods: tuple[str, ...] = METHODS
    mappings: bool = True
    attnlrp: Callable[[Any, Any, Any], Any] | None = None

    def __post_init__(self) -> None:
        if (self.run is None) == (self.compute is None):
            raise ValueError("a ContributionAdapter needs exactly one of run and compute")
        for name in ("run", "compute", "attnlrp"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be callable, got {type(value).__name__}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"methods must be among {METHODS}, got {unknown}")
        object.__setattr__(self, "methods", tuple(self.methods))


def _own_run(model: Any, inputs: Any, graph: Any) -> ContributionRun:
    """A :class:`ContributionModel` runs itself."""
    return model.contribution_run(inputs, graph)


#: The adapter of a model that implements :class:`ContributionModel` and has none of its own.
DEFAULT = ContributionAdapter(run=_own_run)
_ADAPTERS: list[tuple[AdapterKey, ContributionAdapter]] = []


def register_adapter(key: AdapterKey, adapter: ContributionAdapter) -> None:
    """Let :func:`~graphattn.flow.contributions` take the models ``key`` accepts.

    Parameters
    ----------
    key : type or callable
        A model type (its instances and its subclasses' go to ``adapter``) or
        a predicate ``model -> bool``. Keys are tried in the order they were
        registered; registering a key again replaces its adapter in place.
    adapter : ContributionAdapter

    Raises
    ------
    TypeError
        If ``key`` is neither a type nor callable, or ``adapter`` is not a
        :class:`ContributionAdapter`.

    Examples
    --------
    >>> class Tiny:  # a model kind of one's own
    ...     pass
    >>> register_adapter(Tiny, ContributionAdapter(run=lambda model, inputs, graph: ...))
    >>> adapter_for(Tiny()) is adapter_for(Tiny())
    True
    >>> unregister_adapter(Tiny)
    """
    if not callable(key):
        raise TypeError(f"key must be a model type or a predicate, got {type(key).__name__}")
    if not isinstance(adapter, ContributionAdapter):
        raise TypeError(f"adapter must be a ContributionAdapter, got {type(adapter).__name__}")
    for k, (known, _) in enumerate(_ADAPTERS):
        if known is key:
            _ADAPTERS[k] = (key, adapter)
            return
    _ADAPTERS.append((key, adapter))


def unregister_adapter(key: AdapterKey) -> None:
    """Remove the adapter registered under ``key`` (the same type or predicate object).

    Raises
    ------
    ValueError
        If nothing is registered under ``key``.

    Examples
    --------
    >>> def accepts(model):
    ...     return model == "tiny"
    >>> register_adapter(accepts, ContributionAdapter(compute=lambda *a, **k: []))
    >>> adapter_for("tiny") is None
    False
    >>> unregister_adapter(accepts)
    >>> adapter_for("tiny") is None
    True
    """
    for k, (known, _) in enumerate(_ADAPTERS):
        if known is key:
            del _ADAPTERS[k]
            return
    raise ValueError(f"no contribution adapter is registered under {key!r}")


def _accepts(key: AdapterKey, model: Any) -> bool:
    return isinstance(model, key) if isinstance(key, type) else bool(key(model))


def adapter_for(model: Any) -> ContributionAdapter | None:
    """The adapter of ``model``: the first registered key that accepts it, else the default.

    The default runs a :class:`ContributionModel`; None for any other model.

    Examples
    --------
    >>> from graphattn import GraphLM
    >>> adapter_for(GraphLM(10, 8, 1, 2)).mappings, adapter_for(object())
    (False, None)
    """
    for key, adapter in _ADAPTERS:
        if _accepts(key, model):
            return adapter
    return DEFAULT if isinstance(model, ContributionModel) else None


def unsupported(model: Any) -> TypeError:
    """The error for a model no adapter takes.

    Examples
    --------
    >>> str(unsupported(3)).split(", got ")[1].split(";")[0]
    'int'
    """
    return TypeError(
        "model must be a GraphTransformer, a GraphLM, a GraphSeq2Seq, implement "
        "ContributionModel (contribution_run) or belong to a registered integration (Hugging "
        f"Face models after import graphattn.hf), got {type(model).__name__}; contributions "
        f"offers the methods {', '.join(METHODS)} for those"
    )


def run_model(model: Any, inputs: Any, graph: Any = None) -> ContributionRun:
    """The :class:`ContributionRun` of any model whose adapter runs it block by block.

    ``GraphTransformer`` and ``GraphLM`` run through
    :func:`graphattn.flow.nn_models.model_run`, ``GraphSeq2Seq`` (inputs
    ``(src, tgt)``) through :func:`graphattn.flow.nn_seq2seq.seq2seq_run`, a
    :class:`ContributionModel` through its ``contribution_run``.

    Raises
    ------
    TypeError
        If no adapter takes ``model``, or its adapter computes contributions
        without blocks (an integration's).

    Examples
    --------
    >>> from graphattn import GraphTransformer, patterns
    >>> model = GraphTransformer(8, 2, 1, 16, dropout=0.0)
    >>> len(run_model(model, torch.randn(1, 3, 8), patterns.get("causal", 3)).blocks)
    1
    """
    adapter = adapter_for(model)
    if adapter is None or adapter.run is None:
        raise unsupported(model)
    return adapter.run(model, inputs, graph)
