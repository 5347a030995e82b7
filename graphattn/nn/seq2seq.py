"""An encoder-decoder (translation) model on token graphs: :class:`GraphSeq2Seq`.

The encoder is a :class:`~graphattn.nn.GraphTransformer` with a final norm,
the decoder a stack of :class:`~graphattn.nn.GraphDecoderLayer` modules and a
final norm, named like ``torch.nn.Transformer``'s (``encoder.*``,
``decoder.*``), so its state dict copies over. Every encoder layer, decoder
self layer and decoder cross layer may have its own graph; the weights of all
of them come back on request, in the form :func:`graphattn.flow.cross_rollout`
takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from graphattn import patterns
from graphattn._validate import (
    check_bool,
    check_int,
    check_positive_int,
    check_probability,
    check_token_ids,
)
from graphattn.graph import TokenGraph
from graphattn.nn.attention import padding_bias
from graphattn.nn.config import (
    CrossSpec,
    GraphSeq2SeqConfig,
    LayerConfig,
    PatternSpec,
    config_from,
    config_kwargs,
)
from graphattn.nn.generation import beam_search, greedy_search
from graphattn.nn.layers import GraphDecoderLayer, LayerKVCache
from graphattn.nn.models import GraphTransformer, LayerWeights, example_layers, pattern_specs
from graphattn.patterns.registry import is_cross

__all__ = ["GraphSeq2Seq", "Seq2SeqOutput", "rows_graph"]


@dataclass
class Seq2SeqOutput:
    """What :class:`GraphSeq2Seq` returns.

    Attributes
    ----------
    logits : Tensor ``(B, N, V)``
        Next-token logits at every decoder position.
    encoder_layers, decoder_self_layers, decoder_cross_layers : list or None
        Every layer's ``(graph, weights (B, E, H))``, first layer first;
        None unless ``need_weights=True``.
    """

    logits: torch.Tensor
    encoder_layers: LayerWeights | None = None
    decoder_self_layers: LayerWeights | None = None
    decoder_cross_layers: LayerWeights | None = None

    def sequence_layers(self, b: int = 0) -> tuple[LayerWeights, LayerWeights, LayerWeights]:
        """Encoder, decoder self and decoder cross layers of batch element ``b``.

        In the order of :func:`graphattn.flow.cross_rollout`'s arguments:
        ``cross_rollout(*out.sequence_layers(0))``.

        Raises
        ------
        ValueError
            If no weights were returned or ``b`` is out of range.
        """
        return tuple(
            example_layers(layers, b)
            for layers in (self.encoder_layers, self.decoder_self_layers, self.decoder_cross_layers)
        )


def rows_graph(graph: TokenGraph, start: int, stop: int, num_src: int) -> TokenGraph:
    """Targets ``start..stop-1`` of ``graph`` with sources ``0..num_src-1``, renumbered from 0.

    The part of a decoder graph one decoding step needs: with a cache, the
    new token's row; without, the prefix so far. The result is a cross graph
    unless ``start == 0`` and ``stop == num_src`` (a self graph's prefix).

    Examples
    --------
    >>> from graphattn import patterns
    >>> rows_graph(patterns.get("causal", 4), 2, 3, 3).edge_index.tolist()
    [[0, 1, 2], [0, 0, 0]]
    """
    if not isinstance(graph, TokenGraph):
        raise TypeError(f"graph must be a TokenGraph, got {type(graph).__name__}")
    start = check_int(start, "start", low=0)
    stop = check_int(stop, "stop", low=start)
    num_src = check_int(num_src, "num_src", low=0)
    src, dst = graph.edge_index  # (E,), (E,)
    keep = (dst >= start) & (dst < stop) & (src < num_src)  # (E,)
    ei = torch.stack([src[keep], dst[keep] - start])  # (2, E')
    cross = graph.is_cross or start != 0 or stop != num_src
    return TokenGraph(ei, stop - start, num_src_nodes=num_src, cross=cross)


def _check_config(c: GraphSeq2SeqConfig) -> tuple[list, list, list]:
    """Check sizes and special ids; the encoder, decoder self and cross graph specs per layer."""
    for name in ("src_vocab_size", "tgt_vocab_size", "d_model", "num_heads", "max_len"):
        check_positive_int(getattr(c, name), name)
    for name in ("pad_id", "bos_id", "eos_id"):
        check_int(getattr(c, name), name, low=0, high=c.tgt_vocab_size - 1)
    for name in ("bos_id", "eos_id"):  # loss ignores pad targets; generate pads after eos
        if getattr(c, name) == c.pad_id:
            raise ValueError(f"pad_id must differ from {name}, got both {c.pad_id}")
    n_enc = check_positive_int(c.num_encoder_layers, "num_encoder_layers")
    n_dec = check_positive_int(c.num_decoder_layers, "num_decoder_layers")
    found = []
    for what, count in (("encoder_graph", n_enc), ("decoder_graph", n_dec), ("cross_graph", n_dec)):
        found.append(pattern_specs(getattr(c, what), count, what))
        _check_kind(found[-1], what, cross=what == "cross_graph")
    return tuple(found)


def _check_kind(specs: list, what: str, cross: bool) -> None:
    """Pattern names among ``specs`` name cross patterns if ``cross``, self patterns otherwise."""
    for k, spec in enumerate(specs):
        name = spec[0] if isinstance(spec, tuple) else spec
        if not isinstance(name, str) or name not in patterns.available():
            continue  # graphs and callables are checked when built, unknown names by get
        if is_cross(name) != cross:
            kind = "a cross pattern (one that takes n_src)" if cross else "a self pattern"
            raise ValueError(f"{what} of layer {k} must name {kind}, got {name!r}")


class _DecoderStack(nn.Module):
    """Decoder layers and their final norm, named like ``nn.TransformerDecoder``."""

    def __init__(self, c: GraphSeq2SeqConfig, layer: LayerConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            GraphDecoderLayer.from_config(layer) for _ in range(c.num_decoder_layers)
        )
        self.norm = nn.LayerNorm(c.d_model, c.layer_norm_eps, bias=c.bias)


class GraphSeq2Seq(nn.Module):
    """Encoder-decoder transformer whose self and cross attention run on token graphs.

    Source ids go through a token and a learned position embedding into the
    encoder (:class:`GraphTransformer` with a final norm), target ids
    likewise into the decoder (:class:`GraphDecoderLayer` s and a final
    norm) and a linear head. Graphs: ``encoder_graph`` and ``decoder_graph``
    are self graph specs as in :class:`GraphLM` (name, ``(name, params)``,
    graph, callable ``n -> graph``); ``cross_graph`` is a cross spec (name of
    a cross pattern, ``(name, params)``, a graph with ``num_src_nodes = M``,
    callable ``(n, m) -> graph``); each may be a list, one per layer.
    ``pad_id`` tokens are masked out of every attention on both sides (and
    out of :meth:`loss`). Parameters are those of
    :class:`~graphattn.nn.GraphSeq2SeqConfig` (its comments say what each is).

    Raises
    ------
    TypeError, ValueError
        On a non-positive size, a special id outside the target vocabulary,
        ``pad_id`` equal to ``bos_id`` or ``eos_id``, a graph spec that is not
        one, an unknown pattern name, a self pattern named as ``cross_graph``
        (or a cross one as ``encoder_graph``/``decoder_graph``) or a
        per-layer list of the wrong length.

    Examples
    --------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = GraphSeq2Seq(10, 12, 16, 2, cross_graph=("cross_window", {"window": 2}))
    >>> src, tgt = torch.randint(3, 10, (2, 5)), torch.randint(3, 12, (2, 4))
    >>> out = model(src, tgt, need_weights=True)
    >>> out.logits.shape, [g.num_edges for g, _ in out.decoder_cross_layers]
    (torch.Size([2, 4, 12]), [11, 11])
    >>> model.generate(src, max_new_tokens=3).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        d_model: int,
        num_heads: int,
        num_encoder_layers: int = 2,
        num_decoder_layers: int = 2,
        encoder_graph: PatternSpec | Sequence[PatternSpec] = "full",
        decoder_graph: PatternSpec | Sequence[PatternSpec] = "causal",
        cross_graph: CrossSpec | Sequence[CrossSpec] = "cross",
        max_len: int = 256,
        dim_feedforward: int | None = None,
        dropout: float = 0.0,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        norm_first: bool = False,
        bias: bool = True,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
    ) -> None:
        super().__init__()
        self.config = config_from(GraphSeq2SeqConfig, locals())
        self._specs = _check_config(self.config)
        self._graph_cache: dict[tuple, TokenGraph] = {}
        self._build_modules(self.config)

    def _build_modules(self, c: GraphSeq2SeqConfig) -> None:
        """Embeddings (normal, std 0.02), encoder, decoder and head."""
        ff = 4 * c.d_model if c.dim_feedforward is None else c.dim_feedforward
        self.src_emb = nn.Embedding(c.src_vocab_size, c.d_model)
        self.tgt_emb = nn.Embedding(c.tgt_vocab_size, c.d_model)
        self.src_pos = nn.Embedding(c.max_len, c.d_model)
        self.tgt_pos = nn.Embedding(c.max_len, c.d_model)
        self.drop = nn.Dropout(check_probability(c.dropout, "dropout"))
        layer = LayerConfig.of(c, dim_feedforward=ff)
        self.encoder = GraphTransformer(
            num_layers=c.num_encoder_layers, final_norm=True, **config_kwargs(layer)
        )
        self.decoder = _DecoderStack(c, layer)
        self.lm_head = nn.Linear(c.d_model, c.tgt_vocab_size, bias=False)
        for emb in (self.src_emb, self.tgt_emb, self.src_pos, self.tgt_pos):
            nn.init.normal_(emb.weight, std=0.02)

    @classmethod
    def from_config(cls, config: GraphSeq2SeqConfig) -> GraphSeq2Seq:
        """Build a model from its configuration.

        Examples
        --------
        >>> cfg = GraphSeq2SeqConfig(src_vocab_size=9, tgt_vocab_size=9, d_model=8, num_heads=2)
        >>> len(GraphSeq2Seq.from_config(cfg).decoder.layers)
        2
        """
        if not isinstance(config, GraphSeq2SeqConfig):
            raise TypeError(f"config must be a GraphSeq2SeqConfig, got {type(config).__name__}")
        return cls(**config_kwargs(config))

    # ------------------------------------------------------------- graphs
    def _graph(self, spec: object, n: int, m: int | None) -> TokenGraph:
        """The graph of one spec for ``n`` targets (and ``m`` sources for cross specs)."""
        if isinstance(spec, TokenGraph):
            return spec
        if callable(spec):
            return spec(n) if m is None else spec(n, m)
        name, params = (spec, {}) if isinstance(spec, str) else spec
        key = (name, repr(sorted(params.items())), n, m)
        if key not in self._graph_cache:
            extra = {} if m is None else {"n_src": m}
            self._graph_cache[key] = patterns.get(name, n, **extra, **params)
        return self._graph_cache[key]

    def graphs(self, n: int, m: int) -> tuple[list[TokenGraph], list[TokenGraph], list[TokenGraph]]:
        """Encoder, decoder self and decoder cross graphs for ``n`` target and ``m`` source tokens.

        Raises
        ------
        TypeError, ValueError
            If a fixed or built graph is not a graph or has the wrong sizes.

        Examples
        --------
        >>> enc, dec, cross = GraphSeq2Seq(9, 9, 8, 2).graphs(3, 5)
        >>> enc[0].num_edges, dec[0].num_edges, cross[1].num_edges
        (25, 6, 15)
        """
        return tuple(self._layer_graphs(kind, n, m) for kind in range(3))

    def _layer_graphs(self, kind: int, n: int, m: int) -> list[TokenGraph]:
        """Graphs of the encoder (``kind=0``), decoder self (1) or cross (2) layers."""
        rows, cols = ((m, None), (n, None), (n, m))[kind]
        what = ("encoder_graph", "decoder_graph", "cross_graph")[kind]
        found = []
        for k, spec in enumerate(self._specs[kind]):
            g = self._graph(spec, rows, cols)
            ok = isinstance(g, TokenGraph) and g.num_nodes == rows
            ok = ok and (g.num_src_nodes == cols if cols is not None else not g.is_cross)
            if not ok:
                shape = f"N={rows}, M={cols}" if cols else f"a self graph over {rows} tokens"
                raise ValueError(f"{what} of layer {k} must be {shape}, got {g!r}")
            found.append(g)
        return found

    # ------------------------------------------------------------ running
    def _embed(
        self, ids: torch.Tensor, emb: nn.Embedding, pos: nn.Embedding, start: int = 0
    ) -> torch.Tensor:
        positions = torch.arange(start, start + ids.shape[1], device=ids.device)  # (N,)
        return self.drop(emb(ids) + pos(positions))  # (B, N, C)

    def _bias(
        self, graph: TokenGraph, valid: torch.Tensor | None, x: torch.Tensor
    ) -> torch.Tensor | None:
        """Padding bias of ``graph`` for sources ``valid (B, M)``, or None without padding."""
        if valid is None:
            return None
        return padding_bias(graph, valid, self.config.num_heads, dtype=x.dtype)

    def _valid(self, ids: torch.Tensor) -> torch.Tensor | None:
        valid = ids != self.config.pad_id  # (B, N)
        return None if bool(valid.all()) else valid

    def encode(
        self, src: torch.Tensor, *, need_weights: bool = False
    ) -> tuple[torch.Tensor, LayerWeights | None]:
        """Memory ``(B, M, C)`` of source ids ``src (B, M)``, and the encoder's layers if asked."""
        check_token_ids(src, "src", self.config.src_vocab_size, self.config.max_len)
        x = self._embed(src, self.src_emb, self.src_pos)  # (B, M, C)
        valid = self._valid(src)
        graphs = self._layer_graphs(0, 1, src.shape[1])
        found = [] if need_weights else None
        for layer, g in zip(self.encoder.layers, graphs, strict=True):
            x, w = layer(x, g, bias=self._bias(g, valid, x), need_weights=need_weights)
            if need_weights:
                found.append((g, w))
        return self.encoder.norm(x), found

    def _decode(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        graphs: tuple[list[TokenGraph], list[TokenGraph]],
        valid: torch.Tensor | None,
        src_valid: torch.Tensor | None,
        need_weights: bool,
        caches: list[LayerKVCache] | None = None,
    ) -> tuple[torch.Tensor, LayerWeights | None, LayerWeights | None]:
        """Decoder layers, final norm and head on embedded targets ``x (B, N, C)``."""
        self_layers, cross_layers = ([], []) if need_weights else (None, None)
        caches = caches or [None] * len(self.decoder.layers)
        for layer, g, cg, cache in zip(self.decoder.layers, *graphs, caches, strict=True):
            x, w = layer(
                x, memory, g, cg, bias=self._bias(g, valid, x),
                cross_bias=self._bias(cg, src_valid, x), need_weights=need_weights, cache=cache,
            )
            if need_weights:
                self_layers.append((g, w[0]))
                cross_layers.append((cg, w[1]))
        return self.lm_head(self.decoder.norm(x)), self_layers, cross_layers  # (B, N, V)

    def forward(
        self, src: torch.Tensor, tgt: torch.Tensor, *, need_weights: bool = False
    ) -> Seq2SeqOutput:
        """Teacher-forced logits: position ``t`` of ``tgt (B, N)`` predicts target token ``t + 1``.

        Raises
        ------
        TypeError, ValueError
            If ``src`` or ``tgt`` is not an integer ``(B, N)`` tensor of ids
            of its vocabulary no longer than ``max_len``, or their batch sizes differ.
        """
        check_token_ids(tgt, "tgt", self.config.tgt_vocab_size, self.config.max_len)
        memory, enc_layers = self.encode(src, need_weights=need_weights)
        if tgt.shape[0] != src.shape[0]:
            raise ValueError(
                f"src and tgt must have the same batch size, got {src.shape[0]} and {tgt.shape[0]}"
            )
        n, m = tgt.shape[1], src.shape[1]
        dec, cross = self._layer_graphs(1, n, m), self._layer_graphs(2, n, m)
        x = self._embed(tgt, self.tgt_emb, self.tgt_pos)  # (B, N, C)
        logits, self_layers, cross_layers = self._decode(
            x, memory, (dec, cross), self._valid(tgt), self._valid(src), need_weights
        )
        return Seq2SeqOutput(logits, enc_layers, self_layers, cross_layers)

    def loss(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of ``tgt[:, 1:]`` given ``tgt[:, :-1]`` (``bos, y..., eos, pad...``).

        Padding targets are ignored.

        Raises
        ------
        TypeError, ValueError
            On bad ids or sizes (as :meth:`forward`), a ``tgt`` shorter than 2
            tokens, or one whose targets ``tgt[:, 1:]`` are all ``pad_id``.
        """
        check_token_ids(tgt, "tgt", self.config.tgt_vocab_size, self.config.max_len)
        pad = self.config.pad_id
        if tgt.shape[1] < 2:
            raise ValueError(
                f"tgt must hold at least 2 tokens (bos_id, then a target), got shape "
                f"{tuple(tgt.shape)}"
            )
        if bool((tgt[:, 1:] == pad).all()):
            raise ValueError(f"tgt[:, 1:] holds only pad_id={pad}: no target to score")
        logits = self(src, tgt[:, :-1]).logits  # (B, N-1, V)
        target = tgt[:, 1:].masked_fill(tgt[:, 1:] == pad, -100)  # (B, N-1)
        return F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=-100)

    @torch.no_grad()
    def generate(
        self,
        src: torch.Tensor,
        *,
        max_new_tokens: int,
        num_beams: int = 1,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """Translate ``src (B, M)``: greedy (``num_beams=1``) or beam search.

        The decoder graphs are built once for ``L = max_new_tokens + 1``
        decoder tokens and step ``t`` uses their rows ``0..t``, so a
        decoder self graph must be causal (no edge ``j -> i`` with ``j > i``);
        then the key/value cache (``use_cache``) changes no token.

        Returns
        -------
        LongTensor ``(B, T)``
            Tokens after ``bos_id``, ``T <= max_new_tokens``, ``pad_id`` after ``eos_id``.

        Raises
        ------
        TypeError, ValueError
            On bad ids, sizes, ``num_beams`` that is not a positive int,
            ``use_cache`` that is not a bool, or a decoder self graph with
            edges from later tokens.
        """
        length = check_positive_int(max_new_tokens, "max_new_tokens") + 1
        num_beams = check_positive_int(num_beams, "num_beams")
        use_cache = check_bool(use_cache, "use_cache")
        if length > self.config.max_len:
            raise ValueError(
                f"max_new_tokens + 1 must be <= max_len={self.config.max_len}, got {length}"
            )
        stepper = _Stepper(self, src, length, use_cache)
        c = self.config
        kw = {"bos_id": c.bos_id, "eos_id": c.eos_id, "pad_id": c.pad_id}
        kw["max_new_tokens"] = max_new_tokens
        if num_beams == 1:
            return greedy_search(stepper, src.shape[0], **kw).to(src.device)
        return beam_search(stepper, src.shape[0], num_beams=num_beams, **kw).to(src.device)


class _Stepper:
    """Next-token logits for :meth:`GraphSeq2Seq.generate`, with or without a KV cache."""

    def __init__(self, model: GraphSeq2Seq, src: torch.Tensor, length: int, use_cache: bool):
        self.model = model
        self.memory, _ = model.encode(src)  # (B, M, C)
        self.src_valid = model._valid(src)
        m = src.shape[1]
        self.dec, self.cross = model._layer_graphs(1, length, m), model._layer_graphs(2, length, m)
        for k, g in enumerate(self.dec):
            if bool((g.src > g.dst).any()):
                raise ValueError(f"generate needs causal decoder graphs; layer {k}'s {g!r} is not")
        n_layers = len(self.dec)
        self.caches = [LayerKVCache() for _ in range(n_layers)] if use_cache else None

    def next_logits(self, seqs: torch.Tensor) -> torch.Tensor:
        seqs = seqs.to(self.memory.device)  # (B, T)
        t, m = seqs.shape[1], self.memory.shape[1]
        start = t - 1 if self.caches is not None else 0
        dec = [rows_graph(g, start, t, t) for g in self.dec]
        cross = [rows_graph(g, start, t, m) for g in self.cross]
        model = self.model
        x = model._embed(seqs[:, start:], model.tgt_emb, model.tgt_pos, start)  # (B, T', C)
        logits, _, _ = model._decode(
            x, self.memory, (dec, cross), None, self.src_valid, False, self.caches
        )
        return logits[:, -1]  # (B, V)

    def reorder(self, index: torch.Tensor) -> None:
        index = index.to(self.memory.device)
        self.memory = self.memory[index]  # (B', M, C)
        if self.src_valid is not None:
            self.src_valid = self.src_valid[index]  # (B', M)
        for cache in self.caches or ():
            cache.reorder(index)

