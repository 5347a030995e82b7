"""Graph transformer models: an encoder stack and a decoder-only language model.

Both return, on request (``need_weights=True``), every layer's
``(graph, weights)`` so that flow analysis and drawings can follow the
information through the layers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from graphattn import distributed as gd
from graphattn import patterns
from graphattn._validate import (
    check_bool,
    check_int,
    check_positive_int,
    check_probability,
    check_token_ids,
)
from graphattn.graph import TokenGraph
from graphattn.nn.attention import GraphAttention
from graphattn.nn.config import (
    LM_RENAMES,
    GraphLMConfig,
    GraphTransformerConfig,
    LayerConfig,
    PatternSpec,
    config_from,
    config_kwargs,
    renamed_keywords,
)
from graphattn.nn.display import layers_html
from graphattn.nn.layers import GraphTransformerLayer
from graphattn.nn.parallel import partitioned_logits, partitioned_loss

__all__ = ["GraphLM", "GraphTransformer", "LMOutput", "ModelOutput", "pattern_specs"]

LayerWeights = list[tuple[TokenGraph, torch.Tensor]]


def example_layers(layers: LayerWeights | None, b: int) -> LayerWeights:
    """Every layer's ``(graph, weights)`` of batch element ``b`` (weights ``(E, H)``).

    ``layers`` holds batched weights ``(B, E, H)``, or ``(E, H)`` of an
    unbatched input (then ``b`` must be 0).

    Raises
    ------
    ValueError
        If ``layers`` is None (no weights returned) or ``b`` is out of range.

    Examples
    --------
    >>> from graphattn import patterns
    >>> g = patterns.get("causal", 3)
    >>> [w.shape for _, w in example_layers([(g, torch.ones(2, 6, 4))], 1)]
    [torch.Size([6, 4])]
    """
    if layers is None:
        raise ValueError("no weights were returned: call the model with need_weights=True")
    b = check_int(b, "b")
    out = []
    for graph, weights in layers:
        if weights.dim() == 2:  # unbatched input: (E, H)
            if b != 0:
                raise ValueError(f"the input was unbatched; b must be 0, got {b}")
            out.append((graph, weights))
        elif not -weights.shape[0] <= b < weights.shape[0]:
            raise ValueError(f"b={b} is out of range for a batch of {weights.shape[0]}")
        else:
            out.append((graph, weights[b]))  # (E, H)
    return out


class _LayersOutput:
    """What the outputs holding ``layers`` share: one example's layers, the notebook view."""

    layers: LayerWeights | None

    def sequence_layers(self, b: int = 0) -> LayerWeights:
        """Every layer's ``(graph, weights (E, H))`` for batch element ``b``.

        The form that :mod:`graphattn.flow` and the drawings take.

        Raises
        ------
        ValueError
            If no weights were returned or ``b`` is out of range.

        Examples
        --------
        >>> lm = GraphLM(10, 8, 2, 2, max_len=8)
        >>> out = lm(torch.randint(10, (2, 5)), need_weights=True)
        >>> [w.shape for _, w in out.sequence_layers(1)]
        [torch.Size([15, 2]), torch.Size([15, 2])]
        """
        return example_layers(self.layers, b)

    def _repr_html_(self) -> str | None:
        """Notebook view: the viewer of batch element 0 (:mod:`graphattn.nn.display`)."""
        return layers_html(self.sequence_layers(0) if self.layers else None)


@dataclass
class ModelOutput(_LayersOutput):
    """What :class:`GraphTransformer` returns.

    Attributes
    ----------
    last_hidden_state : Tensor ``(N, C)`` or ``(B, N, C)``
        Output of the last layer (after the final norm, if any).
    layers : list of ``(TokenGraph, Tensor (E, H) or (B, E, H))``, or None
        Every layer's graph and attention weights, first layer first; None
        unless ``need_weights=True``.

    Examples
    --------
    >>> from graphattn import patterns
    >>> model = GraphTransformer(8, 2, 2, 16)
    >>> res = model(torch.randn(3, 4, 8), patterns.get("causal", 4), need_weights=True)
    >>> [w.shape for _, w in res.sequence_layers(2)]
    [torch.Size([10, 2]), torch.Size([10, 2])]
    """

    last_hidden_state: torch.Tensor
    layers: LayerWeights | None = None


@dataclass
class LMOutput(_LayersOutput):
    """What :class:`GraphLM` returns.

    Attributes
    ----------
    logits : Tensor ``(B, N, V)``
        Next-token logits at every position.
    layers : list of ``(TokenGraph, Tensor (B, E, H))``, or None
        Every layer's graph and attention weights; None unless
        ``need_weights=True``.
    """

    logits: torch.Tensor
    layers: LayerWeights | None = None


def _layer_graphs(graph: TokenGraph | Sequence[TokenGraph], num_layers: int) -> list[TokenGraph]:
    """One graph (or Partition) per layer from a single one or a per-layer sequence."""
    kinds = (TokenGraph, gd.Partition)
    if isinstance(graph, kinds):
        return [graph] * num_layers
    if isinstance(graph, Sequence) and all(isinstance(g, kinds) for g in graph):
        if len(graph) != num_layers:
            raise ValueError(
                f"graph must be one TokenGraph or a list of num_layers={num_layers} graphs, "
                f"got a list of {len(graph)}"
            )
        return list(graph)
    raise TypeError(
        f"graph must be a TokenGraph or a sequence of TokenGraphs, got {type(graph).__name__}"
    )


class GraphTransformer(nn.Module):
    """A stack of :class:`GraphTransformerLayer` modules, each on its own graph if wanted.

    Module names match ``nn.TransformerEncoder`` (``layers.{i}.*``, ``norm.*``),
    so :meth:`from_torch` copies its state dict unchanged.

    Parameters
    ----------
    d_model : int
        Model dimension ``C``.
    num_heads : int
        Attention heads per layer; must divide ``d_model``.
    num_layers : int
        Number of layers ``L``.
    dim_feedforward : int, optional
        Hidden size of each feed-forward block (default 2048).
    dropout : float, optional
        Dropout on attention weights, residual branches and the feed-forward
        block, in training mode (default 0.1).
    activation : {"relu", "gelu"}, optional
        Feed-forward activation, ``"gelu"`` being exact (default ``"relu"``).
    layer_norm_eps : float, optional
        Epsilon of every layer norm (default 1e-5).
    norm_first : bool, optional
        Pre-norm layers (default False: post-norm).
    bias : bool, optional
        Biases in linear layers and layer norms (default True).
    num_kv_heads : int, optional
        Grouped-query attention (default ``num_heads``).
    final_norm : bool, optional
        A layer norm after the last layer, usual with pre-norm (default False).
    device, dtype : optional
        Where and in which dtype to create the parameters.

    Examples
    --------
    >>> from graphattn import patterns
    >>> model = GraphTransformer(8, 2, 4, dim_feedforward=16, dropout=0.0)
    >>> local, strided = patterns.get("sliding_window", 6, window=2), patterns.get("full", 6)
    >>> res = model(torch.randn(2, 6, 8), [local, strided] * 2, need_weights=True)
    >>> res.last_hidden_state.shape, len(res.layers), res.layers[0][0] is local
    (torch.Size([2, 6, 8]), 4, True)
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        num_layers: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        norm_first: bool = False,
        bias: bool = True,
        num_kv_heads: int | None = None,
        final_norm: bool = False,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int(num_layers, "num_layers")
        check_bool(final_norm, "final_norm")
        self.config = config_from(GraphTransformerConfig, locals())
        factory = {"device": device, "dtype": dtype}
        layer = LayerConfig.of(self.config)
        self.layers = nn.ModuleList(
            GraphTransformerLayer.from_config(layer, **factory) for _ in range(num_layers)
        )
        self.norm = (
            nn.LayerNorm(d_model, layer_norm_eps, bias=bias, **factory) if final_norm else None
        )

    @classmethod
    def from_config(cls, config: GraphTransformerConfig) -> GraphTransformer:
        """Build a model from its configuration.

        Examples
        --------
        >>> cfg = GraphTransformerConfig(d_model=8, num_heads=2, num_layers=3)
        >>> len(GraphTransformer.from_config(cfg).layers)
        3
        """
        if not isinstance(config, GraphTransformerConfig):
            raise TypeError(f"config must be a GraphTransformerConfig, got {type(config).__name__}")
        return cls(**config_kwargs(config))

    def forward(
        self,
        x: torch.Tensor,
        graph: TokenGraph | Sequence[TokenGraph],
        *,
        bias: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> ModelOutput:
        """Run every layer.

        Parameters
        ----------
        x : Tensor ``(N, C)`` or ``(B, N, C)``
        graph : TokenGraph or sequence of ``num_layers`` TokenGraphs
            One self graph for all layers, or one per layer (alternating
            patterns: ``[local, strided] * (num_layers // 2)``). A
            :class:`~graphattn.distributed.Partition` (or one per layer, all
            with the same owners: :func:`~graphattn.distributed.partition_as`)
            runs sequence-parallel: ``x`` is then this rank's rows
            ``part.owned[rank]``, and so is the output.
        bias : Tensor, optional
            Per-edge attention bias for every layer (e.g. :func:`padding_bias`);
            only with a single graph.
        need_weights : bool, optional
            Also return every layer's ``(graph, weights)``.

        Returns
        -------
        ModelOutput

        Raises
        ------
        TypeError, ValueError
            If ``graph`` is not a graph or a list of ``num_layers`` graphs, or
            ``bias`` comes with per-layer graphs.
        """
        graphs = _layer_graphs(graph, len(self.layers))
        if bias is not None and not isinstance(graph, TokenGraph):
            raise ValueError("bias needs a single graph shared by all layers")
        found = [] if need_weights else None
        for layer, g in zip(self.layers, graphs, strict=True):
            x, weights = layer(x, g, bias=bias, need_weights=need_weights)
            if need_weights:
                found.append((g, weights))
        if self.norm is not None:
            x = self.norm(x)
        return ModelOutput(x, found)

    @classmethod
    def from_torch(cls, encoder: nn.TransformerEncoder) -> GraphTransformer:
        """Copy an ``nn.TransformerEncoder`` (its layers and final norm).

        Raises
        ------
        TypeError
            If ``encoder`` is not an ``nn.TransformerEncoder``.
        ValueError
            If its final norm is not a LayerNorm with the layers' epsilon.

        Examples
        --------
        >>> layer = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
        >>> enc = torch.nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
        >>> len(GraphTransformer.from_torch(enc).layers)
        3
        """
        if not isinstance(encoder, nn.TransformerEncoder):
            raise TypeError(
                f"encoder must be an nn.TransformerEncoder, got {type(encoder).__name__}"
            )
        first = GraphTransformerLayer.from_torch(encoder.layers[0])
        norm = encoder.norm
        if norm is not None and (
            not isinstance(norm, nn.LayerNorm) or norm.eps != first.layer_norm_eps
        ):
            raise ValueError(
                f"encoder.norm must be None or an nn.LayerNorm with eps={first.layer_norm_eps} "
                f"(the layers' epsilon), got {norm!r}"
            )
        ref = first.linear1.weight
        layer = LayerConfig(first.d_model, first.num_heads, first.dim_feedforward,
                            first.dropout.p, first.activation, first.layer_norm_eps,
                            first.norm_first, first.linear1.bias is not None)
        model = cls(num_layers=len(encoder.layers), final_norm=norm is not None,
                    device=ref.device, dtype=ref.dtype, **config_kwargs(layer))
        model.load_state_dict(encoder.state_dict())
        return model.train(encoder.training)


def _check_sizes(**sizes: int) -> None:
    """Every size is a positive int (checked in the order given)."""
    for name, value in sizes.items():
        check_positive_int(value, name)


class GraphLM(nn.Module):
    """Decoder-only language model whose layers attend along token-graph patterns.

    Token and learned position embeddings, ``num_layers`` pre-norm
    :class:`GraphTransformerLayer` modules, a final layer norm and a linear head
    (tied to the token embedding by default). Each layer's graph comes from
    ``pattern``: a name for :func:`graphattn.patterns.get` (built for the
    sequence length of each call, with ``pattern_params``), a pair
    ``(name, params)`` (for lists mixing patterns with different
    parameters), a fixed :class:`TokenGraph`, a callable ``n -> TokenGraph``,
    or a list of these, one per layer. Only a causal pattern makes next-token training honest;
    :meth:`loss` does not check.

    Parameters
    ----------
    vocab_size : int
        Number of token ids ``V``.
    d_model : int
        Model dimension ``C``.
    num_layers : int
        Number of layers (``n_layers``, its older name, still works as a
        keyword, deprecated).
    num_heads : int
        Attention heads per layer; must divide ``d_model`` (``n_heads``, its
        older name, still works as a keyword, deprecated).
    pattern : PatternSpec or sequence of PatternSpec, optional
        The graph of every layer, or one per layer (default ``"causal"``).
    pattern_params : dict, optional
        Parameters for the plain pattern names, e.g. ``{"window": 8}``.
    max_len : int, optional
        Longest sequence, the size of the position embedding (default 1024).
    dim_feedforward : int, optional
        Feed-forward hidden size (default ``4 * d_model``).
    dropout : float, optional
        Embedding, attention-weight, residual and feed-forward dropout, in
        training mode (default 0.0).
    activation : {"gelu", "relu"}, optional
        Feed-forward activation, ``"gelu"`` being exact (default ``"gelu"``).
    layer_norm_eps : float, optional
        Epsilon of every layer norm (default 1e-5).
    bias : bool, optional
        Biases in linear layers and layer norms; the head never has one
        (default True).
    tie_weights : bool, optional
        The head shares the token embedding matrix (default True).
    num_kv_heads : int, optional
        Grouped-query attention (default ``num_heads``).

    Raises
    ------
    TypeError, ValueError
        On bad sizes, an unknown pattern name, or a per-layer pattern list
        whose length is not ``num_layers``.

    Examples
    --------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> lm = GraphLM(50, 16, 2, 2, pattern=["causal", ("sliding_window", {"window": 2})])
    >>> idx = torch.randint(50, (3, 10))
    >>> out = lm(idx, need_weights=True)
    >>> out.logits.shape, [g.num_edges for g, _ in out.layers]
    (torch.Size([3, 10, 50]), [55, 19])
    >>> lm.loss(idx).shape
    torch.Size([])
    """

    @renamed_keywords(**LM_RENAMES)
    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        num_layers: int,
        num_heads: int,
        pattern: PatternSpec | Sequence[PatternSpec] = "causal",
        pattern_params: dict | None = None,
        max_len: int = 1024,
        dim_feedforward: int | None = None,
        dropout: float = 0.0,
        activation: str = "gelu",
        layer_norm_eps: float = 1e-5,
        bias: bool = True,
        tie_weights: bool = True,
        num_kv_heads: int | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(vocab_size=vocab_size, d_model=d_model, num_layers=num_layers,
                     num_heads=num_heads)
        check_positive_int(max_len, "max_len")
        if pattern_params is not None and not isinstance(pattern_params, Mapping):
            raise TypeError(
                f"pattern_params must be a dict or None, got {type(pattern_params).__name__}"
            )
        check_bool(tie_weights, "tie_weights")
        self.config = config_from(GraphLMConfig, locals(),
                                  pattern_params=dict(pattern_params or {}))
        self._patterns = pattern_specs(pattern, num_layers, "pattern", count_name="num_layers")
        self._graph_cache: dict[tuple[str, str, int], TokenGraph] = {}
        self._build_modules(self.config)

    def _build_modules(self, c: GraphLMConfig) -> None:
        """Embeddings, pre-norm layers, final norm and head, initialised GPT-2 style."""
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.max_len, c.d_model)
        self.drop = nn.Dropout(check_probability(c.dropout, "dropout"))
        ff = 4 * c.d_model if c.dim_feedforward is None else c.dim_feedforward
        layer = LayerConfig.of(c, dim_feedforward=ff, norm_first=True)
        self.layers = nn.ModuleList(
            GraphTransformerLayer.from_config(layer) for _ in range(c.num_layers)
        )
        self.norm = nn.LayerNorm(c.d_model, c.layer_norm_eps, bias=c.bias)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.apply(self._init_weights)
        if c.tie_weights:
            self.lm_head.weight = self.tok_emb.weight

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """GPT-2 style: normal(0, 0.02) weights and embeddings, zero biases."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, GraphAttention):
            for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
                if getattr(module, name) is not None:
                    nn.init.normal_(getattr(module, name), std=0.02)
            if module.in_proj_bias is not None:
                nn.init.zeros_(module.in_proj_bias)

    @classmethod
    def from_config(cls, config: GraphLMConfig) -> GraphLM:
        """Build a model from its configuration.

        Examples
        --------
        >>> cfg = GraphLMConfig(vocab_size=20, d_model=8, num_layers=1, num_heads=2, max_len=16)
        >>> GraphLM.from_config(cfg).pos_emb.num_embeddings
        16
        """
        if not isinstance(config, GraphLMConfig):
            raise TypeError(f"config must be a GraphLMConfig, got {type(config).__name__}")
        return cls(**config_kwargs(config))

    def graphs(self, n: int) -> list[TokenGraph]:
        """The graph of every layer for a sequence of ``n`` tokens.

        Graphs built from a pattern name are cached per ``n``; callables are
        called anew each time (so they may sample random graphs).

        Raises
        ------
        ValueError
            If a fixed or returned graph does not have ``n`` nodes or is a
            cross graph.

        Examples
        --------
        >>> lm = GraphLM(10, 8, 2, 2, pattern=["causal", "full"])
        >>> [g.num_edges for g in lm.graphs(4)]
        [10, 16]
        """
        out = []
        for k, spec in enumerate(self._patterns):
            if isinstance(spec, (str, tuple)):
                name, params = (spec, self.config.pattern_params) if isinstance(spec, str) else spec
                key = (name, repr(sorted(params.items())), n)
                if key not in self._graph_cache:
                    self._graph_cache[key] = patterns.get(name, n, **params)
                graph = self._graph_cache[key]
            else:
                graph = spec if isinstance(spec, TokenGraph) else spec(n)
            if not isinstance(graph, TokenGraph):
                raise TypeError(
                    f"pattern of layer {k} returned {type(graph).__name__}, not a TokenGraph"
                )
            if graph.is_cross or graph.num_nodes != n:
                raise ValueError(
                    f"layer {k} needs a self graph over {n} tokens, got {graph!r}"
                )
            out.append(graph)
        return out

    def forward(
        self,
        idx: torch.Tensor,
        *,
        need_weights: bool = False,
        partition: gd.Partition | None = None,
    ) -> LMOutput:
        """Logits for every position of ``idx``.

        Parameters
        ----------
        idx : LongTensor ``(B, N)``
            Token ids, ``N <= max_len``; with ``partition``, this rank's
            ``(B, N_r)`` ids of ``partition.owned[rank]`` (see
            :func:`graphattn.nn.parallel.shard_tokens`).
        need_weights : bool, optional
            Also return every layer's ``(graph, weights (B, E, H))``; with
            ``partition``, ``(Partition, weights of the edges into this rank's
            targets)``.
        partition : Partition, optional
            Run sequence-parallel over the ranks of the default process group:
            every layer's graph is partitioned with this partition's owners and
            attention goes through the halo exchange (no attention dropout).

        Returns
        -------
        LMOutput

        Raises
        ------
        TypeError, ValueError
            If ``idx`` is not an integer ``(B, N)`` tensor of ids in
            ``[0, vocab_size)`` with ``1 <= N <= max_len``.
        """
        if partition is not None:
            return LMOutput(*partitioned_logits(self, idx, partition, need_weights))
        check_token_ids(idx, "idx", self.config.vocab_size, self.config.max_len,
                        vocab_name="vocab_size")
        n = idx.shape[1]
        pos = torch.arange(n, device=idx.device)  # (N,)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))  # (B, N, C)
        found = [] if need_weights else None
        for layer, graph in zip(self.layers, self.graphs(n), strict=True):
            x, weights = layer(x, graph, need_weights=need_weights)
            if need_weights:
                found.append((graph, weights))
        logits = self.lm_head(self.norm(x))  # (B, N, V)
        return LMOutput(logits, found)

    def loss(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        partition: gd.Partition | None = None,
    ) -> torch.Tensor:
        """Mean cross-entropy of the model's predictions.

        Parameters
        ----------
        idx : LongTensor ``(B, N)``
            Input token ids.
        targets : LongTensor ``(B, N)``, optional
            Target id at every position (``-100`` = ignore). Default:
            next-token prediction, position ``t`` predicts ``idx[:, t + 1]``.
        partition : Partition, optional
            Sequence-parallel (see :meth:`forward`): ``idx`` and ``targets``
            (required) are this rank's ``(B, N_r)`` rows, and the result is this
            rank's share of the mean over all ranks' scored positions; the
            shares sum to the one-process loss, and
            :func:`graphattn.distributed.sum_gradients` then gives its gradients.

        Returns
        -------
        Tensor, a scalar

        Raises
        ------
        TypeError
            If ``targets`` is not a LongTensor.
        ValueError
            If ``targets`` does not have the shape of ``idx``, holds an id
            outside the vocabulary (other than ``-100``), or the loss would
            score no position (every target ``-100``, or a one-token ``idx``
            without ``targets``): its mean would be NaN.
        """
        if partition is not None:
            return partitioned_loss(self, idx, targets, partition)
        shift = targets is None  # next-token prediction: position t predicts idx[:, t + 1]
        targets = idx[:, 1:] if shift else targets  # (B, N - 1) or (B, N)
        self._check_targets(idx, targets, shift)
        logits = self(idx).logits  # (B, N, V)
        logits = logits[:, :-1] if shift else logits  # aligned with targets
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)

    def _check_targets(self, idx: torch.Tensor, targets: torch.Tensor, shift: bool) -> None:
        """Refuse targets of the wrong shape, out of the vocabulary, or scoring no position."""
        if not shift:  # idx itself is checked by the forward
            if not isinstance(targets, torch.Tensor) or targets.dtype != torch.long:
                raise TypeError(f"targets must be a LongTensor, got {_kind(targets)}")
            if targets.shape != idx.shape:
                raise ValueError(
                    f"targets must have the shape of idx {tuple(idx.shape)}, "
                    f"got {tuple(targets.shape)}"
                )
            vocab = self.config.vocab_size
            if bool(((targets < 0) & (targets != -100)).any() | (targets >= vocab).any()):
                raise ValueError(f"targets must be token ids in [0, {vocab}) or -100 (ignored)")
        if not bool((targets != -100).any()):
            what = "idx has one position: nothing to predict" if shift else "every target is -100"
            raise ValueError(f"the loss scores no position ({what}); its mean would be NaN")

    def num_parameters(self) -> int:
        """Number of distinct parameters (a tied head counts once).

        Examples
        --------
        >>> GraphLM(10, 8, 1, 2, max_len=16, dim_feedforward=16).num_parameters()
        824
        """
        return sum(p.numel() for p in self.parameters())


def _kind(x: object) -> str:
    """``dtype torch.float32`` for a tensor, else the type's name."""
    return f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__


def _is_spec(spec: object) -> bool:
    named = isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str)
    return (named and isinstance(spec[1], dict)) or isinstance(spec, (str, TokenGraph)) or (
        callable(spec)
    )


def pattern_specs(
    spec: object, count: int, name: str, *, count_name: str | None = None
) -> list[PatternSpec]:
    """One graph spec per layer from one spec or a list of ``count``; names checked.

    A spec is a pattern name, a ``(name, params)`` pair, a ``TokenGraph`` or a
    callable; ``name`` (and ``count_name``, the argument that set ``count``)
    appear in the errors.

    Examples
    --------
    >>> pattern_specs("causal", 2, "pattern")
    ['causal', 'causal']
    >>> pattern_specs(["causal"], 2, "pattern", count_name="num_layers")
    Traceback (most recent call last):
        ...
    ValueError: pattern as a list needs num_layers=2 entries, got 1 (one per layer)
    """
    if _is_spec(spec):
        specs = [spec] * count
    elif isinstance(spec, Sequence) and all(_is_spec(s) for s in spec):
        if len(spec) != count:
            label = "" if count_name is None else f"{count_name}="
            raise ValueError(
                f"{name} as a list needs {label}{count} entries, got {len(spec)} (one per layer)"
            )
        specs = list(spec)
    else:
        raise TypeError(
            f"{name} must be a pattern name, a (name, params) pair, a TokenGraph, a callable or "
            f"a list of these (one per layer), got {type(spec).__name__}"
        )
    known = patterns.available()
    for s in specs:
        key = s[0] if isinstance(s, tuple) else s
        if isinstance(key, str) and key not in known:
            raise ValueError(f"{name}: pattern {key!r} is unknown; available: {', '.join(known)}")
    return specs
