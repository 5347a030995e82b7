"""A BERT encoder whose self-attention runs as message passing on token graphs.

The modules hold BERT's own parameters (separate ``query``/``key``/``value``
projections, post-norm residual blocks, exact erf GELU) and call
:func:`graphattn.functional.graph_attention` on a token graph per layer. On
BERT's own graph (every real token attends to every real token) the outputs
equal the original model's; any other :class:`~graphattn.graph.TokenGraph`
(causal, sliding window, BigBird, hand-made) can replace it.

A batch is run as one graph: sentence ``b`` owns nodes ``b*N .. b*N+N-1`` of a
:meth:`TokenGraph.batch` of per-sentence graphs, so padding is simply a node
that no real token attends to.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from graphattn.flow import ContributionRun
from graphattn.functional import graph_attention
from graphattn.graph import TokenGraph
from graphattn.pretrained.contrib import bert_run

__all__ = ["BertConfig", "BertLayer", "BertModel", "BertOutput", "GraphSpec"]

# What may stand for one layer's graph: None (BERT's own full graph), one
# TokenGraph over the N padded positions, or a builder called with each
# sentence's real length n that returns a TokenGraph over n tokens.
GraphSpec = TokenGraph | Callable[[int], TokenGraph] | None


@dataclass(frozen=True)
class BertConfig:
    """Sizes of a BERT encoder (the fields of Hugging Face ``config.json``).

    Examples
    --------
    >>> BertConfig(hidden_size=64, num_attention_heads=4).head_dim
    16
    """

    vocab_size: int = 30522  # rows of the word embedding table
    hidden_size: int = 384  # C, the model width
    num_hidden_layers: int = 6  # L
    num_attention_heads: int = 12  # H
    intermediate_size: int = 1536  # width of the feed-forward block
    max_position_embeddings: int = 512  # the most token positions a text may take
    type_vocab_size: int = 2  # segment embeddings (all inputs use segment 0)
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1  # used only in training mode
    attention_probs_dropout_prob: float = 0.1  # used only in training mode
    pad_token_id: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"BertConfig.{f.name} must be a number, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by "
                f"num_attention_heads ({self.num_attention_heads})"
            )

    @property
    def head_dim(self) -> int:
        """D, the width of one head."""
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BertConfig:
        """Read a Hugging Face BERT ``config.json`` dictionary.

        Parameters
        ----------
        d : dict
            The parsed ``config.json``; keys not listed as fields are ignored.

        Returns
        -------
        BertConfig

        Raises
        ------
        ValueError
            If the checkpoint is not a BERT with absolute positions and GELU.

        Examples
        --------
        >>> BertConfig.from_dict({"model_type": "bert", "hidden_size": 64,
        ...                       "num_attention_heads": 2}).hidden_size
        64
        """
        if d.get("model_type", "bert") != "bert":
            raise ValueError(f"config model_type must be 'bert', got {d.get('model_type')!r}")
        if d.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"config hidden_act must be 'gelu', got {d.get('hidden_act')!r}")
        if d.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(
                "config position_embedding_type must be 'absolute', got "
                f"{d.get('position_embedding_type')!r}"
            )
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names and v is not None})


@dataclass
class BertOutput:
    """What :class:`BertModel` returns.

    Attributes
    ----------
    last_hidden_state : Tensor, shape (B, N, C)
        The encoder's output for every position (padding positions included).
    attention_mask : BoolTensor, shape (B, N)
        True at real tokens, False at padding.
    attentions : list of (TokenGraph, Tensor) or None
        With ``need_weights=True``, per layer the graph attention ran on (all
        ``B * N`` positions of the batch as one graph) and its weights
        ``(E, H)`` in that graph's edge order. :meth:`sentence` cuts out one text.
    hidden_states : list of Tensor or None
        With ``need_hidden_states=True``, the ``L + 1`` tensors ``(B, N, C)``:
        the embeddings, then every layer's output.
    """

    last_hidden_state: torch.Tensor
    attention_mask: torch.Tensor
    attentions: list[tuple[TokenGraph, torch.Tensor]] | None = None
    hidden_states: list[torch.Tensor] | None = None

    def pooled(self) -> torch.Tensor:
        """Sentence embeddings ``(B, C)``: mean over the real tokens, L2-normalized.

        Examples
        --------
        >>> from graphattn.pretrained import tiny_bert
        >>> model = tiny_bert()
        >>> model(model.tokenize("the bank")[0]).pooled().norm(dim=1)
        tensor([1.0000], grad_fn=<LinalgVectorNormBackward0>)
        """
        h = self.last_hidden_state
        m = self.attention_mask.unsqueeze(-1).to(h.dtype)  # (B, N, 1)
        return F.normalize((h * m).sum(1) / m.sum(1), p=2, dim=1)  # (B, C)

    def sentence(self, b: int = 0) -> list[tuple[TokenGraph, torch.Tensor]]:
        """Every layer's ``(graph, weights)`` for text ``b``, over its real tokens only.

        The result is what :mod:`graphattn.flow` and :mod:`graphattn.plot` take.

        Parameters
        ----------
        b : int
            Index of the text in the batch.

        Returns
        -------
        list of (TokenGraph, Tensor)
            Per layer a graph over the ``n_b`` real tokens (labelled with them)
            and its weights ``(E_b, H)``.

        Raises
        ------
        ValueError
            If the output has no attentions or ``b`` is out of range.

        Examples
        --------
        >>> from graphattn.pretrained import tiny_bert
        >>> model = tiny_bert()
        >>> ids, _ = model.tokenize(["the bank", "a"])
        >>> g, w = model(ids, need_weights=True).sentence(1)[0]
        >>> g.tokens, w.shape
        (['[CLS]', 'a', '[SEP]'], torch.Size([9, 2]))
        """
        if self.attentions is None:
            raise ValueError("this output has no attentions; call the model with need_weights=True")
        B, N = self.attention_mask.shape
        if not 0 <= b < B:
            raise ValueError(f"b must be in [0, {B}), got {b}")
        n = int(self.attention_mask[b].sum())
        lo = b * N
        result = []
        for g, w in self.attentions:
            e0, e1 = int(g.indptr[lo]), int(g.indptr[lo + n])  # edges into the real tokens of b
            tokens = None if g.tokens is None else g.tokens[lo : lo + n]
            sub = TokenGraph(g.edge_index[:, e0:e1] - lo, n, tokens=tokens, name=g.name)
            result.append((sub, w[e0:e1]))
        return result


class BertEmbeddings(nn.Module):
    """Word + position + segment embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        C = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, C, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, C)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, C)
        self.norm = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``input_ids (B, N)`` -> embeddings ``(B, N, C)`` (segment 0 everywhere)."""
        N = input_ids.shape[1]
        pos = torch.arange(N, device=input_ids.device)  # (N,)
        x = self.word_embeddings(input_ids) + self.position_embeddings(pos)  # (B, N, C)
        x = x + self.token_type_embeddings.weight[0]  # (B, N, C)
        return self.dropout(self.norm(x))


class BertLayer(nn.Module):
    """One post-norm BERT block with its attention along the edges of a token graph.

    ``x = norm(x + attn(x)); x = norm(x + ffn(x))`` with ``ffn`` a GELU MLP.

    Parameters
    ----------
    config : BertConfig

    Examples
    --------
    >>> layer = BertLayer(BertConfig(hidden_size=8, num_attention_heads=2,
    ...                              intermediate_size=16)).eval()
    >>> g = TokenGraph([[0, 0, 1, 0, 1, 2], [0, 1, 1, 2, 2, 2]])  # causal over 3 tokens
    >>> out, w = layer(torch.randn(3, 8), g, need_weights=True)
    >>> out.shape, w.shape
    (torch.Size([3, 8]), torch.Size([6, 2]))

    With ``context`` the same weights attend across a cross graph: here 2
    targets read the 3 context tokens (sources).

    >>> cross = TokenGraph([[0, 1, 2, 0, 1, 2], [0, 0, 0, 1, 1, 1]], 2, num_src_nodes=3)
    >>> out, w = layer(torch.randn(2, 8), cross, context=torch.randn(3, 8), need_weights=True)
    >>> out.shape, w.shape
    (torch.Size([2, 8]), torch.Size([6, 2]))
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        C, eps = config.hidden_size, config.layer_norm_eps
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.attn_dropout = config.attention_probs_dropout_prob
        self.query = nn.Linear(C, C)
        self.key = nn.Linear(C, C)
        self.value = nn.Linear(C, C)
        self.attn_out = nn.Linear(C, C)
        self.attn_norm = nn.LayerNorm(C, eps=eps)
        self.ffn_in = nn.Linear(C, config.intermediate_size)
        self.ffn_out = nn.Linear(config.intermediate_size, C)
        self.ffn_norm = nn.LayerNorm(C, eps=eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        x: torch.Tensor,
        graph: TokenGraph,
        *,
        context: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x (T, C)`` on the targets of ``graph`` -> ``(x, weights (E, H) or None)``.

        Keys and values come from ``x`` itself, or from ``context (M, C)`` (the
        sources of a cross graph) when given.
        """
        T, C = x.shape
        H, D = self.num_heads, self.head_dim
        src = x if context is None else context  # (M, C)
        if graph.num_nodes != T or graph.num_src_nodes != src.shape[0]:
            raise ValueError(
                f"graph must have {T} targets and {src.shape[0]} sources, got {graph!r}"
            )
        q = self.query(x).view(T, H, D)  # (T, H, D)
        k = self.key(src).view(-1, H, D)  # (M, H, D)
        v = self.value(src).view(-1, H, D)  # (M, H, D)
        out = graph_attention(
            q,
            k,
            v,
            graph,
            scale=1.0 / math.sqrt(D),
            dropout_p=self.attn_dropout if self.training else 0.0,
            return_weights=need_weights,
        )
        out, weights = out if need_weights else (out, None)
        a = self.attn_out(out.reshape(T, C))  # (T, C)
        x = self.attn_norm(x + self.dropout(a))
        h = self.ffn_out(F.gelu(self.ffn_in(x)))  # (T, C), exact erf GELU as in BERT
        x = self.ffn_norm(x + self.dropout(h))
        return x, weights


def _full_graph(N: int, n: int) -> TokenGraph:
    """BERT's own graph over ``N`` padded positions: every position attends to the ``n`` real."""
    dst = torch.arange(N).repeat_interleave(n)  # (N * n,)
    src = torch.arange(n).repeat(N)  # (N * n,)
    return TokenGraph(torch.stack([src, dst]), N, name="full")


def _sentence_graph(spec: GraphSpec, N: int, n: int) -> TokenGraph:
    """One text's graph over its ``N`` padded positions, with no edge out of padding."""
    if spec is None:
        return _full_graph(N, n)
    if isinstance(spec, TokenGraph):
        if spec.is_cross or spec.num_nodes != N:
            raise ValueError(
                f"graph must be a self-attention TokenGraph over the input's {N} positions, "
                f"got {spec!r} (cross={spec.is_cross}, num_nodes={spec.num_nodes})"
            )
        if n == N:
            return spec
        keep = spec.src < n  # (E,) edges out of real tokens
        return TokenGraph(spec.edge_index[:, keep], N, name=spec.name)
    g = spec(n)
    if not isinstance(g, TokenGraph) or g.is_cross or g.num_nodes != n:
        raise ValueError(
            f"a graph builder called with n={n} must return a self-attention TokenGraph "
            f"over {n} tokens, got {g!r}"
        )
    return g if n == N else TokenGraph(g.edge_index, N, name=g.name)


class BertModel(nn.Module):
    """A BERT encoder running on token graphs; load real weights with :func:`load_bert`.

    Parameters
    ----------
    config : BertConfig
    tokenizer : BertTokenizer, optional
        Enables :meth:`tokenize`, :meth:`embed` and token labels on graphs.

    Examples
    --------
    >>> from graphattn.pretrained import tiny_bert
    >>> model = tiny_bert()
    >>> ids, tokens = model.tokenize("the bank")
    >>> out = model(ids, need_weights=True)
    >>> out.last_hidden_state.shape, len(out.attentions)
    (torch.Size([1, 4, 32]), 2)
    >>> i, j = torch.tril_indices(4, 4)  # target i, source j <= i
    >>> model(ids, TokenGraph(torch.stack([j, i]), 4)).last_hidden_state.shape
    torch.Size([1, 4, 32])
    """

    def __init__(self, config: BertConfig, tokenizer=None) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def tokenize(
        self, text_or_texts: str | Sequence[str]
    ) -> tuple[torch.Tensor, list[str] | list[list[str]]]:
        """Token ids ``(B, N)`` (padded) and token strings of one text or a list of texts.

        See :meth:`BertTokenizer.__call__`; raises ``ValueError`` for an empty text,
        one longer than ``max_position_embeddings``, or a model without tokenizer.
        """
        if self.tokenizer is None:
            raise ValueError("this model has no tokenizer; pass input_ids to the model instead")
        return self.tokenizer(text_or_texts)

    def check_ids(self, input_ids: Any, attention_mask: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate ``input_ids (B, N)`` and the mask; return the mask ``(B, N)``, lengths ``(B,)``.

        Raises ``TypeError``/``ValueError`` as :meth:`forward` documents.
        """
        if not isinstance(input_ids, torch.Tensor) or input_ids.dtype != torch.long:
            raise TypeError(
                f"input_ids must be a LongTensor (B, N), got "
                f"{getattr(input_ids, 'dtype', type(input_ids).__name__)}"
            )
        if input_ids.dim() != 2 or input_ids.shape[1] == 0:
            raise ValueError(
                f"input_ids must have shape (B, N) with N >= 1, got {tuple(input_ids.shape)}"
            )
        N, max_n = input_ids.shape[1], self.config.max_position_embeddings
        if N > max_n:
            raise ValueError(f"input_ids has {N} positions, more than the model's {max_n}")
        if int(input_ids.min()) < 0 or int(input_ids.max()) >= self.config.vocab_size:
            raise ValueError(
                f"input_ids must lie in [0, {self.config.vocab_size}), got values in "
                f"[{int(input_ids.min())}, {int(input_ids.max())}]"
            )
        if attention_mask is None:
            mask = input_ids != self.config.pad_token_id  # (B, N)
        else:
            mask = torch.as_tensor(attention_mask, device=input_ids.device).bool()
            if mask.shape != input_ids.shape:
                raise ValueError(
                    f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, "
                    f"got {tuple(mask.shape)}"
                )
        lengths = mask.sum(1)  # (B,)
        prefix = torch.arange(N, device=mask.device) < lengths[:, None]  # (B, N)
        if not torch.equal(mask, prefix) or int(lengths.min()) == 0:
            raise ValueError(
                "attention_mask must mark a non-empty prefix of each row (padding on the right)"
            )
        return mask, lengths

    def layer_graphs(
        self, graph: GraphSpec | Sequence[GraphSpec], ids: torch.Tensor, lengths: torch.Tensor
    ) -> list[TokenGraph]:
        """One graph per layer over the batch of ``ids (B, N)`` with real ``lengths (B,)``.

        ``graph`` is as in :meth:`forward`; a batch of more than one text gets
        the :meth:`TokenGraph.batch` of the texts' graphs.
        """
        L = self.config.num_hidden_layers
        per_layer = isinstance(graph, Sequence) and not isinstance(graph, str)
        if per_layer and len(graph) != L:
            raise ValueError(f"graph must give one graph per layer ({L}), got {len(graph)}")
        specs = list(graph) if per_layer else [graph]
        for s in specs:
            if not (s is None or isinstance(s, TokenGraph) or callable(s)):
                raise TypeError(
                    f"graph must be None, a TokenGraph, a callable n -> TokenGraph or a list of "
                    f"those per layer, got {type(s).__name__}"
                )
        labels = [None] * ids.shape[0]
        if self.tokenizer is not None:
            labels = [[self.tokenizer.id_to_token(i) for i in row] for row in ids.tolist()]
        built = []
        for s in specs:
            gs = [
                _sentence_graph(s, ids.shape[1], int(n)).with_tokens(lab)
                for n, lab in zip(lengths.tolist(), labels, strict=True)
            ]
            built.append(gs[0] if len(gs) == 1 else TokenGraph.batch(gs))
        return built if per_layer else built * L

    def forward(
        self,
        input_ids: torch.Tensor,
        graph: GraphSpec | Sequence[GraphSpec] = None,
        *,
        attention_mask: torch.Tensor | None = None,
        need_weights: bool = False,
        need_hidden_states: bool = False,
    ) -> BertOutput:
        """Encode ``input_ids`` with attention along ``graph``.

        Parameters
        ----------
        input_ids : LongTensor, shape (B, N)
            Token ids, padding on the right (see :meth:`tokenize`).
        graph : None, TokenGraph, callable or list of those (one per layer)
            ``None`` is BERT's own graph: every position attends to every real
            token. A ``TokenGraph`` over the ``N`` positions is used for every
            text (edges out of padding dropped). A callable ``f(n)`` returns the
            graph of a text with ``n`` real tokens (e.g. ``lambda n:
            patterns.get("causal", n)``); its padding positions get no edges.
        attention_mask : BoolTensor (B, N), optional
            True at real tokens; defaults to ``input_ids != pad_token_id``.
        need_weights : bool
            Also return every layer's ``(graph, weights)``.
        need_hidden_states : bool
            Also return the embeddings and every layer's output.

        Returns
        -------
        BertOutput

        Raises
        ------
        TypeError
            If ``input_ids`` is not a LongTensor or ``graph`` is of the wrong type.
        ValueError
            If ``input_ids`` is not ``(B, N)``, has more positions than the model
            or ids outside the vocabulary, the mask is not a right-padding
            prefix, or a graph does not fit the input.
        """
        mask, lengths = self.check_ids(input_ids, attention_mask)
        graphs = self.layer_graphs(graph, input_ids, lengths)
        B, N = input_ids.shape
        x = self.embeddings(input_ids).reshape(B * N, -1)  # (B*N, C): the batch as one graph
        attentions = [] if need_weights else None
        hidden = [x.view(B, N, -1)] if need_hidden_states else None
        for layer, g in zip(self.layers, graphs, strict=True):
            x, w = layer(x, g, need_weights=need_weights)
            if need_weights:
                attentions.append((g, w))
            if need_hidden_states:
                hidden.append(x.view(B, N, -1))
        return BertOutput(x.view(B, N, -1), mask, attentions, hidden)

    def contribution_run(self, input_ids: Any, graph: Any = None) -> ContributionRun:
        """The layers' decomposition terms, for :func:`graphattn.flow.contributions`.

        See :func:`graphattn.pretrained.contrib.bert_run`.

        Examples
        --------
        >>> from graphattn.flow import contributions
        >>> from graphattn.pretrained import tiny_bert
        >>> model = tiny_bert()
        >>> g, c = contributions(model, model.tokenize("the bank")[0], "globenc")[-1]
        >>> c.shape, round(float(c.sum()), 4)
        (torch.Size([1, 16]), 4.0)
        """
        return bert_run(self, input_ids, graph)

    def embed(
        self, texts: str | Sequence[str], graph: GraphSpec | Sequence[GraphSpec] = None
    ) -> torch.Tensor:
        """Sentence embeddings: mean of the real tokens' outputs, L2-normalized.

        This is sentence-transformers' pooling for all-MiniLM-L6-v2. Runs without
        gradients. ``graph`` is as in :meth:`forward`; a callable suits texts of
        different lengths.

        Parameters
        ----------
        texts : str or sequence of str
        graph : None, TokenGraph, callable or list of those

        Returns
        -------
        Tensor
            ``(C,)`` for one text, ``(B, C)`` for a list, unit length.

        Examples
        --------
        >>> from graphattn.pretrained import tiny_bert
        >>> e = tiny_bert().embed(["the bank", "the river bank"])
        >>> e.shape, torch.allclose(e.norm(dim=1), torch.ones(2))
        (torch.Size([2, 32]), True)
        """
        ids, _ = self.tokenize(texts)
        with torch.no_grad():
            pooled = self(ids, graph).pooled()
        return pooled[0] if isinstance(texts, str) else pooled
