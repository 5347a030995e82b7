"""Multi-head attention on a token graph as a module: :class:`GraphAttention`.

The parameters are laid out exactly like ``torch.nn.MultiheadAttention``
(``in_proj_weight`` or ``q_proj_weight``/``k_proj_weight``/``v_proj_weight``,
``in_proj_bias``, ``out_proj``), so weights move both ways with
:meth:`GraphAttention.from_torch` and :meth:`GraphAttention.to_torch`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from graphattn import distributed as gd
from graphattn._validate import (
    check_bool,
    check_float_dtype,
    check_positive_int,
    check_probability,
)
from graphattn.functional import graph_attention
from graphattn.graph import TokenGraph

__all__ = ["GraphAttention", "padding_bias"]


class GraphAttention(nn.Module):
    """Multi-head attention along the edges of a :class:`~graphattn.TokenGraph`.

    Target token ``i`` attends to source token ``j`` iff the graph has the edge
    ``j -> i``: queries come from ``x``, keys and values from ``x`` (self
    graphs) or from ``context`` (cross graphs, e.g. encoder -> decoder).

    Parameters
    ----------
    embed_dim : int
        Model dimension ``C`` of the queries and of the output.
    num_heads : int
        Number of query heads ``H``; must divide ``embed_dim``.
    dropout : float, optional
        Dropout probability on the attention weights, applied in training mode
        only (default 0.0).
    bias : bool, optional
        Add biases to the input and output projections (default True).
    kdim, vdim : int, optional
        Feature sizes of the key and value inputs (default ``embed_dim``).
    num_kv_heads : int, optional
        Number of key/value heads for grouped-query attention; must divide
        ``num_heads`` (default ``num_heads``). With fewer key/value heads than
        query heads the module has no ``nn.MultiheadAttention`` counterpart.
    device, dtype : optional
        Where and in which dtype to create the parameters.

    Attributes
    ----------
    in_proj_weight : Parameter ``(3C, C)`` or None
        Stacked query/key/value projection, present when ``kdim == vdim ==
        embed_dim`` and ``num_kv_heads == num_heads``.
    q_proj_weight, k_proj_weight, v_proj_weight : Parameter or None
        Separate projections ``(C, C)``, ``(H_kv*D, kdim)``, ``(H_kv*D, vdim)``
        otherwise.
    in_proj_bias : Parameter ``(C + 2*H_kv*D,)`` or None
        Biases of the three input projections, stacked.
    out_proj : nn.Linear ``(C, C)``
        Output projection.

    Raises
    ------
    TypeError, ValueError
        If a size is not a positive int, ``num_heads`` does not divide
        ``embed_dim``, ``num_kv_heads`` does not divide ``num_heads`` or
        ``dropout`` is outside ``[0, 1)``.

    Examples
    --------
    >>> from graphattn import TokenGraph
    >>> attn = GraphAttention(8, 2)
    >>> causal = TokenGraph.from_dense_mask(torch.ones(3, 3, dtype=torch.bool).tril())
    >>> out, weights = attn(torch.randn(3, 8), causal, need_weights=True)
    >>> out.shape, weights.shape  # weights: one row per edge, one column per head
    (torch.Size([3, 8]), torch.Size([6, 2]))
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        dropout: float = 0.0,
        bias: bool = True,
        kdim: int | None = None,
        vdim: int | None = None,
        num_kv_heads: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self._set_sizes(embed_dim, num_heads, kdim, vdim, num_kv_heads)
        self.dropout = check_probability(dropout, "dropout")
        check_bool(bias, "bias")
        self._make_parameters(bias, {"device": device, "dtype": dtype})
        self.reset_parameters()

    def _set_sizes(
        self,
        embed_dim: int,
        num_heads: int,
        kdim: int | None,
        vdim: int | None,
        num_kv_heads: int | None,
    ) -> None:
        """Check the sizes and set them, with ``head_dim``, on the module."""
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.num_heads = check_positive_int(num_heads, "num_heads")
        self.kdim = embed_dim if kdim is None else check_positive_int(kdim, "kdim")
        self.vdim = embed_dim if vdim is None else check_positive_int(vdim, "vdim")
        self.num_kv_heads = (
            num_heads if num_kv_heads is None else check_positive_int(num_kv_heads, "num_kv_heads")
        )
        if embed_dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide embed_dim={embed_dim}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_kv_heads={self.num_kv_heads} must divide num_heads={self.num_heads}"
            )
        self.head_dim = embed_dim // num_heads

    def _make_parameters(self, bias: bool, factory: dict) -> None:
        """The projections, laid out like ``nn.MultiheadAttention``'s (uninitialised)."""
        c = self.embed_dim
        kv_dim = self.num_kv_heads * self.head_dim
        self._qkv_same_embed_dim = self.kdim == c and self.vdim == c and kv_dim == c
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * c, c, **factory))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = nn.Parameter(torch.empty(c, c, **factory))
            self.k_proj_weight = nn.Parameter(torch.empty(kv_dim, self.kdim, **factory))
            self.v_proj_weight = nn.Parameter(torch.empty(kv_dim, self.vdim, **factory))
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(c + 2 * kv_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(c, c, bias=bias, **factory)

    def reset_parameters(self) -> None:
        """Initialise like ``nn.MultiheadAttention``: Xavier-uniform weights, zero biases."""
        if self._qkv_same_embed_dim:
            nn.init.xavier_uniform_(self.in_proj_weight)
        else:
            nn.init.xavier_uniform_(self.q_proj_weight)
            nn.init.xavier_uniform_(self.k_proj_weight)
            nn.init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def extra_repr(self) -> str:
        parts = [f"embed_dim={self.embed_dim}", f"num_heads={self.num_heads}"]
        if self.num_kv_heads != self.num_heads:
            parts.append(f"num_kv_heads={self.num_kv_heads}")
        if self.kdim != self.embed_dim or self.vdim != self.embed_dim:
            parts.append(f"kdim={self.kdim}, vdim={self.vdim}")
        if self.dropout:
            parts.append(f"dropout={self.dropout}")
        return ", ".join(parts)

    # ------------------------------------------------------------ checking
    def _check_inputs(
        self,
        x: torch.Tensor,
        graph: TokenGraph | Sequence[TokenGraph],
        context: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate the inputs; return the key and value inputs."""
        self._check_x(x)
        graphs = self._graph_list(graph)
        for name, g in graphs:
            if g.num_nodes != x.shape[-2]:
                raise ValueError(
                    f"{name} has num_nodes={g.num_nodes} targets but x has {x.shape[-2]} tokens "
                    f"(shape {tuple(x.shape)})"
                )
        if context is None:
            for name, g in graphs:
                if g.is_cross:
                    raise ValueError(
                        f"{name} is a cross graph (N={g.num_nodes}, M={g.num_src_nodes}); "
                        "pass its source tokens as context=(M, kdim) or (B, M, kdim)"
                    )
            key = value = x
        else:
            key, value = self._check_context(x, context)
        for name, g in graphs:
            if g.num_src_nodes != key.shape[-2]:
                where = "context" if context is not None else "x"
                raise ValueError(
                    f"{name} has num_src_nodes={g.num_src_nodes} sources but {where} has "
                    f"{key.shape[-2]} tokens (shape {tuple(key.shape)})"
                )
        return key, value

    def _check_x(self, x: object) -> None:
        """``x`` is a floating ``(N, C)`` or ``(B, N, C)`` tensor on the parameters' device."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a tensor, got {type(x).__name__}")
        if x.dim() not in (2, 3):
            raise ValueError(f"x must have shape (N, C) or (B, N, C), got {tuple(x.shape)}")
        if x.shape[-1] != self.embed_dim:
            raise ValueError(
                f"x must have embed_dim={self.embed_dim} features in its last dimension, "
                f"got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        if x.device != self.out_proj.weight.device:
            raise ValueError(
                f"x must be on the parameters' device {self.out_proj.weight.device}, got {x.device}"
            )
        _check_dtype(x, "x", self.out_proj.weight.dtype)

    def _check_context(
        self, x: torch.Tensor, context: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate ``context`` against ``x``; return the key and value inputs."""
        key, value = _context_pair(context)
        self._check_context_input(key, "key", self.kdim, x)
        self._check_context_input(value, "value", self.vdim, x)
        if key.shape[-2] != value.shape[-2]:
            raise ValueError(
                f"context key and value must hold the same number of tokens, got "
                f"{key.shape[-2]} and {value.shape[-2]}"
            )
        return key, value

    def _check_context_input(self, t: torch.Tensor, name: str, dim: int, x: torch.Tensor) -> None:
        """The context's ``name`` (key or value) is ``(M, dim)`` or ``(B, M, dim)`` like ``x``."""
        if t.dim() != x.dim() or (x.dim() == 3 and t.shape[0] != x.shape[0]):
            lead = f"(B={x.shape[0]}, M, {dim})" if x.dim() == 3 else f"(M, {dim})"
            raise ValueError(
                f"context {name} must have shape {lead} to match x of shape "
                f"{tuple(x.shape)}, got {tuple(t.shape)}"
            )
        if t.shape[-1] != dim:
            raise ValueError(
                f"context {name} must have {dim} features in its last dimension "
                f"({'kdim' if name == 'key' else 'vdim'}), got shape {tuple(t.shape)}"
            )
        if not t.is_floating_point():
            raise TypeError(f"context {name} must be floating-point, got dtype {t.dtype}")
        if t.device != x.device:
            raise ValueError(f"context {name} must be on x's device {x.device}, got {t.device}")
        _check_dtype(t, f"context {name}", self.out_proj.weight.dtype)

    def _graph_list(self, graph: object) -> list[tuple[str, TokenGraph]]:
        """``(name for errors, graph)`` for a single graph or per-head graphs."""
        if isinstance(graph, TokenGraph):
            return [("graph", graph)]
        if isinstance(graph, (list, tuple)) and all(isinstance(g, TokenGraph) for g in graph):
            if len(graph) != self.num_heads:
                raise ValueError(
                    f"graph as a sequence needs one graph per head (num_heads={self.num_heads}), "
                    f"got {len(graph)}"
                )
            return [(f"graph[{k}]", g) for k, g in enumerate(graph)]
        raise TypeError(
            "graph must be a TokenGraph or a sequence of num_heads TokenGraphs, "
            f"got {type(graph).__name__}"
        )

    # ------------------------------------------------------------- forward
    def _project(
        self, x: torch.Tensor, key: torch.Tensor, value: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Input projections: ``q (..., N, C)``, ``k, v (..., M, H_kv*D)``."""
        kv_dim = self.num_kv_heads * self.head_dim
        sizes = [self.embed_dim, kv_dim, kv_dim]
        if self.in_proj_weight is not None and key is x and value is x:
            return F.linear(x, self.in_proj_weight, self.in_proj_bias).split(sizes, -1)
        if self.in_proj_weight is not None:
            wq, wk, wv = self.in_proj_weight.split(sizes)
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        bq = bk = bv = None
        if self.in_proj_bias is not None:
            bq, bk, bv = self.in_proj_bias.split(sizes)
        return F.linear(x, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def forward(
        self,
        x: torch.Tensor,
        graph: TokenGraph | Sequence[TokenGraph],
        *,
        context: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
        bias: torch.Tensor | Sequence[torch.Tensor] | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend along ``graph``.

        Parameters
        ----------
        x : Tensor ``(N, C)`` or ``(B, N, C)``
            Target tokens (queries); also the sources unless ``context`` is given.
        graph : TokenGraph, sequence of ``num_heads`` TokenGraphs, or Partition
            ``N`` targets; ``M`` sources, ``M = N`` for self-attention. One
            graph serves every batch element (for different graphs per element,
            join them with :meth:`TokenGraph.batch` and concatenate the tokens).
            A sequence gives every head its own graph. A
            :class:`~graphattn.distributed.Partition` of a self graph runs
            sequence-parallel: ``x`` holds this rank's rows (``part.owned[rank]``)
            and attention goes through the halo exchange
            (:func:`graphattn.distributed.graph_attention`; no ``context``,
            ``bias`` or attention dropout).
        context : Tensor ``(M, kdim)`` / ``(B, M, kdim)``, or a pair ``(key, value)``, optional
            Source tokens, required for a cross graph. A pair gives different
            key and value inputs (``kdim`` and ``vdim`` features).
        bias : Tensor ``(E,)``, ``(E, H)`` or ``(B, E, H)``, optional
            Added to the scores of the edges, passed to :func:`graph_attention`
            (``-inf`` removes an edge; see :func:`padding_bias`). With per-head
            graphs, a sequence of ``H`` tensors.
        need_weights : bool, optional
            Also return the attention weights (default False).

        Returns
        -------
        out : Tensor ``(N, C)`` or ``(B, N, C)``
        weights : Tensor ``(E, H)`` or ``(B, E, H)``, or None
            Post-softmax, pre-dropout weights per edge in ``graph.edge_index``
            column order, per head. With per-head graphs a tuple of ``H``
            tensors ``(E_h,)`` or ``(B, E_h)``. None unless ``need_weights``.

        Raises
        ------
        TypeError, ValueError
            If ``x``, ``context`` or ``graph`` have the wrong type, rank,
            feature size or number of tokens, or a cross graph comes without
            ``context``.
        """
        if isinstance(graph, gd.Partition):
            return self._forward_partitioned(x, graph, context, bias, need_weights)
        key, value = self._check_inputs(x, graph, context)
        q, k, v = self._project(x, key, value)
        k = k.unflatten(-1, (self.num_kv_heads, self.head_dim))  # (..., M, H_kv, D)
        v = v.unflatten(-1, (self.num_kv_heads, self.head_dim))  # (..., M, H_kv, D)
        return self._attend(q, k, v, graph, bias, need_weights)

    def _attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        graph: TokenGraph | Sequence[TokenGraph],
        bias: torch.Tensor | Sequence[torch.Tensor] | None,
        need_weights: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attention of projected queries ``q (..., N, C)`` on ``k, v (..., M, H_kv, D)``."""
        q = q.unflatten(-1, (self.num_heads, self.head_dim))  # (..., N, H, D)
        dropout_p = self.dropout if self.training else 0.0
        res = graph_attention(
            q, k, v, graph, bias=bias, dropout_p=dropout_p, return_weights=need_weights
        )
        out, weights = res if need_weights else (res, None)
        out = self.out_proj(out.flatten(-2))  # (..., N, C)
        return out, weights

    # ------------------------------------------------------ cached keys/values
    def project_kv(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of ``source`` tokens, to keep between calls of :meth:`attend`.

        Parameters
        ----------
        source : Tensor ``(M, kdim)`` or ``(B, M, kdim)``
            Source tokens (``kdim == vdim`` is required: one input for both).

        Returns
        -------
        k, v : Tensor ``(M, H_kv, D)`` or ``(B, M, H_kv, D)``

        Raises
        ------
        TypeError, ValueError
            If ``source`` is not a floating tensor with ``kdim`` features or
            ``kdim != vdim``.

        Examples
        --------
        >>> k, v = GraphAttention(8, 2).project_kv(torch.randn(5, 8))
        >>> k.shape
        torch.Size([5, 2, 4])
        """
        if self.kdim != self.vdim:
            raise ValueError(f"project_kv needs kdim == vdim, got {self.kdim} != {self.vdim}")
        if not isinstance(source, torch.Tensor) or not source.is_floating_point():
            raise TypeError(f"source must be a floating-point tensor, got {type(source).__name__}")
        if source.dim() not in (2, 3) or source.shape[-1] != self.kdim:
            raise ValueError(
                f"source must have shape (M, {self.kdim}) or (B, M, {self.kdim}), "
                f"got {tuple(source.shape)}"
            )
        _, k, v = self._project(source, source, source)
        k = k.unflatten(-1, (self.num_kv_heads, self.head_dim))  # (..., M, H_kv, D)
        v = v.unflatten(-1, (self.num_kv_heads, self.head_dim))  # (..., M, H_kv, D)
        return k, v

    def attend(
        self,
        x: torch.Tensor,
        graph: TokenGraph,
        kv: tuple[torch.Tensor, torch.Tensor],
        *,
        bias: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend along ``graph`` to keys and values from :meth:`project_kv` (a KV cache).

        ``attend(x, g, project_kv(src))`` equals ``forward(x, g, context=src)``.

        Parameters
        ----------
        x : Tensor ``(N, C)`` or ``(B, N, C)``
            Target tokens (queries).
        graph : TokenGraph
            ``N`` targets and ``M`` sources (a cross graph, or a self graph when ``M == N``).
        kv : pair of Tensors ``(M, H_kv, D)`` or ``(B, M, H_kv, D)``
            Projected keys and values of the ``M`` sources.
        bias, need_weights
            As in :meth:`forward`.

        Returns
        -------
        out, weights
            As in :meth:`forward`.

        Raises
        ------
        TypeError, ValueError
            If ``x``, ``graph`` or ``kv`` do not fit together.

        Examples
        --------
        >>> from graphattn import patterns
        >>> attn, x, src = GraphAttention(8, 2), torch.randn(3, 8), torch.randn(5, 8)
        >>> g = patterns.cross(3, 5)
        >>> out, _ = attn.attend(x, g, attn.project_kv(src))
        >>> torch.allclose(out, attn(x, g, context=src)[0], atol=1e-6)
        True
        """
        self._check_x(x)
        if not isinstance(graph, TokenGraph):
            raise TypeError(f"graph must be a TokenGraph, got {type(graph).__name__}")
        k, v = kv
        want = (*x.shape[:-2], graph.num_src_nodes, self.num_kv_heads, self.head_dim)
        if graph.num_nodes != x.shape[-2] or k.shape != want or v.shape != want:
            raise ValueError(
                f"graph (N={graph.num_nodes}, M={graph.num_src_nodes}) needs x with N tokens and "
                f"kv of shape {want}; got x {tuple(x.shape)}, k {tuple(k.shape)}, "
                f"v {tuple(v.shape)}"
            )
        q = F.linear(x, *self._query_projection())  # (..., N, C)
        return self._attend(q, k, v, graph, bias, need_weights)

    def _query_projection(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Weight and bias of the query projection."""
        c = self.embed_dim
        w = self.q_proj_weight if self.in_proj_weight is None else self.in_proj_weight[:c]
        return w, None if self.in_proj_bias is None else self.in_proj_bias[:c]

    def _forward_partitioned(
        self, x: torch.Tensor, part: gd.Partition, context, bias, need_weights: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Self-attention on this rank's rows of a partitioned graph."""
        self._check_x(x)
        if context is not None or bias is not None or part.graph.is_cross:
            raise ValueError(
                "a Partition as graph runs self-attention only: no context, bias or cross graph"
            )
        if self.training and self.dropout > 0:
            raise ValueError(
                f"a Partition as graph needs no attention dropout in training, got {self.dropout}"
            )
        q, k, v = self._project(x, x, x)
        q = q.unflatten(-1, (self.num_heads, self.head_dim))  # (..., N_r, H, D)
        k = k.unflatten(-1, (self.num_kv_heads, self.head_dim))  # (..., N_r, H_kv, D)
        v = v.unflatten(-1, (self.num_kv_heads, self.head_dim))  # (..., N_r, H_kv, D)
        res = gd.graph_attention(q, k, v, part, return_weights=need_weights)
        out, weights = res if need_weights else (res, None)
        return self.out_proj(out.flatten(-2)), weights  # (..., N_r, C)

    # ------------------------------------------------------------ torch I/O
    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> GraphAttention:
        """Copy an ``nn.MultiheadAttention``'s weights into a new ``GraphAttention``.

        The result computes ``mha(x, x, x, attn_mask=~graph.to_dense_mask())``
        (with ``batch_first=True`` inputs) as ``attn(x, graph)``: note that
        ``nn.MultiheadAttention``'s boolean mask is True where attention is
        *blocked*, the opposite of :meth:`TokenGraph.to_dense_mask`. The new
        module is on the same device and dtype and in the same training mode.

        Raises
        ------
        TypeError
            If ``mha`` is not an ``nn.MultiheadAttention``.
        ValueError
            If it uses ``add_bias_kv`` or ``add_zero_attn``, which have no
            graph counterpart.

        Examples
        --------
        >>> mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        >>> attn = GraphAttention.from_torch(mha)
        >>> attn.in_proj_weight.equal(mha.in_proj_weight)
        True
        """
        if not isinstance(mha, nn.MultiheadAttention):
            raise TypeError(f"mha must be an nn.MultiheadAttention, got {type(mha).__name__}")
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError(
                "mha uses add_bias_kv or add_zero_attn (extra key/value slots), which "
                "GraphAttention does not support"
            )
        ref = mha.out_proj.weight
        attn = cls(
            mha.embed_dim,
            mha.num_heads,
            dropout=mha.dropout,
            bias=mha.in_proj_bias is not None,
            kdim=mha.kdim,
            vdim=mha.vdim,
            device=ref.device,
            dtype=ref.dtype,
        )
        attn.load_state_dict(mha.state_dict())
        return attn.train(mha.training)

    def to_torch(self) -> nn.MultiheadAttention:
        """An ``nn.MultiheadAttention`` (``batch_first=True``) with these weights.

        Raises
        ------
        ValueError
            If ``num_kv_heads < num_heads`` (grouped-query attention has no
            ``nn.MultiheadAttention`` counterpart).

        Examples
        --------
        >>> mha = GraphAttention(8, 2).to_torch()
        >>> type(mha).__name__, mha.batch_first
        ('MultiheadAttention', True)
        """
        if self.num_kv_heads != self.num_heads:
            raise ValueError(
                f"to_torch needs num_kv_heads == num_heads, got {self.num_kv_heads} != "
                f"{self.num_heads} (nn.MultiheadAttention has no grouped-query attention)"
            )
        ref = self.out_proj.weight
        mha = nn.MultiheadAttention(
            self.embed_dim,
            self.num_heads,
            dropout=self.dropout,
            bias=self.in_proj_bias is not None,
            kdim=self.kdim,
            vdim=self.vdim,
            batch_first=True,
            device=ref.device,
            dtype=ref.dtype,
        )
        mha.load_state_dict(self.state_dict())
        return mha.train(self.training)


def _context_pair(context: object) -> tuple[torch.Tensor, torch.Tensor]:
    """``(key, value)`` inputs of ``context``: one tensor for both, or a pair of tensors."""
    if isinstance(context, torch.Tensor):
        return context, context
    if (
        isinstance(context, (tuple, list))
        and len(context) == 2
        and all(isinstance(t, torch.Tensor) for t in context)
    ):
        return context[0], context[1]
    raise TypeError(
        "context must be a tensor (M, kdim) / (B, M, kdim) or a pair (key, value) of "
        f"tensors, got {type(context).__name__}"
    )


def _check_dtype(t: torch.Tensor, name: str, dtype: torch.dtype) -> None:
    """``t`` has the parameters' ``dtype``, unless autocast converts it anyway."""
    if t.dtype != dtype and not torch.is_autocast_enabled(t.device.type):
        raise TypeError(
            f"{name} must have the parameters' dtype {dtype} (or run under torch.autocast), "
            f"got {t.dtype}; convert the module with .to({dtype}) or the input"
        )


def padding_bias(
    graph: TokenGraph,
    valid: torch.Tensor,
    num_heads: int,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Per-edge bias that removes the edges leaving padding tokens.

    For a batch of padded sequences sharing one graph: the bias is 0 on an
    edge ``j -> i`` whose source ``j`` is a real token of that batch element
    and ``-inf`` where ``j`` is padding, the same as
    ``nn.MultiheadAttention``'s ``key_padding_mask=~valid`` (where True means
    *ignore*). A target whose every source is padding gets no edge and a zero
    output.

    Parameters
    ----------
    graph : TokenGraph
        The attention graph, ``M`` sources.
    valid : bool Tensor ``(B, M)``
        True for real tokens, False for padding.
    num_heads : int
        Number of heads ``H`` of the attention it is for.
    dtype : torch.dtype, optional
        Float dtype of the bias (default float32).

    Returns
    -------
    Tensor ``(B, E, H)``
        Pass it as ``bias=`` to :class:`GraphAttention` or :func:`graph_attention`.

    Raises
    ------
    TypeError, ValueError
        If ``valid`` is not a bool tensor of shape ``(B, M)``.

    Examples
    --------
    >>> from graphattn import TokenGraph
    >>> g = TokenGraph.from_dense_mask(torch.ones(2, 2, dtype=torch.bool))
    >>> padding_bias(g, torch.tensor([[True, False]]), 1)[0, :, 0].tolist()
    [0.0, -inf, 0.0, -inf]
    """
    if not isinstance(graph, TokenGraph):
        raise TypeError(f"graph must be a TokenGraph, got {type(graph).__name__}")
    if not isinstance(valid, torch.Tensor) or valid.dtype != torch.bool:
        raise TypeError(f"valid must be a bool tensor (B, M), got {getattr(valid, 'dtype', valid)}")
    if valid.dim() != 2 or valid.shape[1] != graph.num_src_nodes:
        raise ValueError(
            f"valid must have shape (B, M={graph.num_src_nodes}), got {tuple(valid.shape)}"
        )
    check_positive_int(num_heads, "num_heads")
    check_float_dtype(dtype, "dtype")
    src = graph.src.to(valid.device)  # (E,)
    bias = torch.zeros(valid.shape[0], graph.num_edges, dtype=dtype, device=valid.device)
    bias = bias.masked_fill(~valid[:, src], -math.inf)  # (B, E)
    return bias.unsqueeze(-1).expand(-1, -1, num_heads)  # (B, E, H)
