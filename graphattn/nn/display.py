"""How model outputs show in a notebook: a hook that a later layer fills.

``ModelOutput`` and ``LMOutput`` carry every layer's ``(graph, weights)``;
drawing them is the plot layer's job, and ``nn`` may not import ``plot``. So
``nn`` keeps one renderer, ``layers -> HTML``, that :mod:`graphattn` registers
at import (a function that imports :mod:`graphattn.plot` only when it is
called, so ``import graphattn`` loads no matplotlib). Until one is registered,
outputs display as their plain ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["layers_html", "register_layers_html", "registered_layers_html"]

LayersRenderer = Callable[[Sequence[tuple[Any, Any]]], str]
_renderer: list[LayersRenderer | None] = [None]


def register_layers_html(renderer: LayersRenderer | None) -> None:
    """Use ``renderer(layers) -> str`` for the notebook view of outputs with layers.

    ``None`` removes it (outputs then display as plain text).

    Raises
    ------
    TypeError
        If ``renderer`` is neither callable nor None.

    Examples
    --------
    >>> old = registered_layers_html()
    >>> register_layers_html(lambda layers: f"<p>{len(layers)} layers</p>")
    >>> layers_html([(None, None)])
    '<p>1 layers</p>'
    >>> register_layers_html(old)
    """
    if renderer is not None and not callable(renderer):
        raise TypeError(f"renderer must be callable or None, got {type(renderer).__name__}")
    _renderer[0] = renderer


def layers_html(layers: Sequence[tuple[Any, Any]] | None) -> str | None:
    """The registered renderer's HTML of ``layers``; None without layers or renderer."""
    if not layers or _renderer[0] is None:
        return None
    return _renderer[0](layers)


def registered_layers_html() -> LayersRenderer | None:
    """The renderer registered with :func:`register_layers_html` (None if none)."""
    return _renderer[0]
