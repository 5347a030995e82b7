"""Backends of :func:`graphattn.graph_attention` and their registry.

Importing this package registers the built-in backends (``"reference"``,
``"edge"``, ``"dense"``, ``"block"``, ``"split"``, ``"flex"``) and the ``"auto"`` policy of
:mod:`graphattn.backends.auto`. A backend module registers itself on import with
:func:`register_backend`; the policy behind ``backend="auto"`` is replaced
with :func:`register_selector`. The contract every kernel follows is in
:mod:`graphattn.backends.base`.
"""

from graphattn.backends import block, dense, edge, flex, reference, split  # noqa: F401
from graphattn.backends.auto import BackendChoice, explain_backend  # registers the auto policy
from graphattn.backends.base import (
    AttentionRequest,
    Backend,
    KernelCall,
    backend_names,
    default_selector,
    get_backend,
    register_backend,
    register_selector,
    select_backend,
    unregister_backend,
)

__all__ = [
    "AttentionRequest",
    "Backend",
    "BackendChoice",
    "KernelCall",
    "backend_names",
    "default_selector",
    "explain_backend",
    "get_backend",
    "register_backend",
    "register_selector",
    "select_backend",
    "unregister_backend",
]
