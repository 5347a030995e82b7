"""Backends of :func:`graphattn.graph_attention` and their registry.

Importing this package registers the built-in backends (``"reference"``,
``"edge"``, ``"dense"``, ``"block"``, ``"split"``, ``"flex"``). A backend
module registers itself on import with :func:`register_backend`; the contract
every kernel follows (one :class:`KernelCall` in, ``(out, weights)`` out) is
in :mod:`graphattn.backends.base`; every attention function brings its
arguments to it through :mod:`graphattn.backends.front`. ``backend="auto"``
runs the policy of :mod:`graphattn.backends.auto`, which
:func:`register_selector` can replace.
"""

from graphattn.backends import block, dense, edge, flex, reference, split  # noqa: F401
from graphattn.backends.auto import (
    BackendChoice,
    auto_selector,
    explain_backend,
    register_selector,
    select_backend,
)
from graphattn.backends.base import (
    AttentionRequest,
    Backend,
    KernelCall,
    backend_names,
    get_backend,
    register_backend,
    unregister_backend,
)

__all__ = [
    "AttentionRequest",
    "Backend",
    "BackendChoice",
    "KernelCall",
    "auto_selector",
    "backend_names",
    "explain_backend",
    "get_backend",
    "register_backend",
    "register_selector",
    "select_backend",
    "unregister_backend",
]
