"""WordPiece tokenization for BERT checkpoints, read from ``tokenizer.json``.

A thin wrapper around Hugging Face ``tokenizers`` (a JSON file, no pickle) that
turns one text or a list of texts into a padded id tensor and the token strings
that label the nodes of a token graph.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

__all__ = ["BertTokenizer"]


class BertTokenizer:
    """Tokenize text into BERT input ids and token labels.

    Truncation and padding stored in ``tokenizer.json`` are switched off: a text
    is never silently shortened, and batches are padded here to their longest
    member with ``pad_token``.

    Parameters
    ----------
    tokenizer : tokenizers.Tokenizer
        A loaded Hugging Face fast tokenizer (it adds ``[CLS]`` and ``[SEP]``).
    max_length : int
        The most positions one text may take (the model's position table).
    pad_token : str
        The padding token, which must be in the vocabulary.

    Raises
    ------
    ValueError
        If ``pad_token`` is not in the vocabulary or ``max_length < 1``.

    Examples
    --------
    >>> from graphattn.pretrained.tokenize import BertTokenizer, char_tokenizer
    >>> tok = BertTokenizer(char_tokenizer(["bank"]), max_length=32)
    >>> ids, tokens = tok("The bank")
    >>> tokens
    ['[CLS]', 't', '##h', '##e', 'bank', '[SEP]']
    >>> ids.shape
    torch.Size([1, 6])
    """

    def __init__(self, tokenizer, max_length: int, pad_token: str = "[PAD]") -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        pad_id = tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise ValueError(f"pad_token {pad_token!r} is not in the tokenizer's vocabulary")
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tok = tokenizer
        self.max_length = int(max_length)
        self.pad_token = pad_token
        self.pad_id = int(pad_id)

    @classmethod
    def from_file(cls, path: str | os.PathLike, max_length: int) -> BertTokenizer:
        """Load ``tokenizer.json`` from ``path``.

        Parameters
        ----------
        path : str or os.PathLike
            The ``tokenizer.json`` file of a checkpoint.
        max_length : int
            The most positions one text may take.

        Returns
        -------
        BertTokenizer

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.

        Examples
        --------
        >>> import tempfile, os
        >>> from graphattn.pretrained.tokenize import char_tokenizer
        >>> path = os.path.join(tempfile.mkdtemp(), "tokenizer.json")
        >>> char_tokenizer([]).save(path)
        >>> BertTokenizer.from_file(path, max_length=8)("hi")[1]
        ['[CLS]', 'h', '##i', '[SEP]']
        """
        from tokenizers import Tokenizer

        if not os.path.isfile(path):
            raise FileNotFoundError(f"tokenizer file not found: {path}")
        return cls(Tokenizer.from_file(os.fspath(path)), max_length)

    @property
    def vocab_size(self) -> int:
        """Number of entries in the vocabulary."""
        return self._tok.get_vocab_size()

    def id_to_token(self, i: int) -> str:
        """The token string of id ``i``."""
        return self._tok.id_to_token(int(i))

    def __call__(
        self, text_or_texts: str | Sequence[str]
    ) -> tuple[torch.Tensor, list[str] | list[list[str]]]:
        """Tokenize one text or a list of texts.

        Parameters
        ----------
        text_or_texts : str or sequence of str
            Non-empty text(s).

        Returns
        -------
        input_ids : LongTensor, shape (B, N)
            Ids padded with :attr:`pad_id` to the longest text; ``B = 1`` for one text.
        tokens : list of str, or list of list of str
            The tokens of the one text, or of each text (without padding).

        Raises
        ------
        TypeError
            If the input is not a string or a sequence of strings.
        ValueError
            If a text is empty or blank, or takes more than :attr:`max_length` positions.
        """
        single = isinstance(text_or_texts, str)
        texts = [text_or_texts] if single else text_or_texts
        if not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
            raise TypeError(
                f"text_or_texts must be a str or a sequence of str, got "
                f"{type(text_or_texts).__name__}"
            )
        if len(texts) == 0:
            raise ValueError("text_or_texts must hold at least one text, got an empty list")
        for i, t in enumerate(texts):
            if not t.strip():
                raise ValueError(f"text {i} is empty; give at least one word")
        encodings = self._tok.encode_batch(list(texts))
        for i, enc in enumerate(encodings):
            if len(enc.ids) > self.max_length:
                raise ValueError(
                    f"text {i} takes {len(enc.ids)} token positions, more than the model's "
                    f"{self.max_length}; shorten it"
                )
        n = max(len(enc.ids) for enc in encodings)
        input_ids = torch.full((len(texts), n), self.pad_id, dtype=torch.long)  # (B, N)
        for b, enc in enumerate(encodings):
            input_ids[b, : len(enc.ids)] = torch.tensor(enc.ids, dtype=torch.long)
        tokens = [list(enc.tokens) for enc in encodings]
        return input_ids, (tokens[0] if single else tokens)


# Words kept whole by the built-in character tokenizer (the demo's sentences and a
# few common words); every other word is spelled out in characters.
BASIC_WORDS = (
    "the a an and or of to in on at by for with from he she it they we you i "
    "is was are were be been has have had do did not this that there left roses "
    "bank money deposited river sky blue today cat sat mat dog"
).split()


def char_tokenizer(words: Sequence[str] = BASIC_WORDS):
    """A small BERT-style WordPiece tokenizer: ``words`` kept whole, others spelled out.

    Used by the built-in (randomly initialized) model when no checkpoint is
    installed. The vocabulary is ``[PAD] [UNK] [CLS] [SEP] [MASK]``, then
    ``words``, the printable ASCII characters and their ``##`` continuations.

    Parameters
    ----------
    words : sequence of str
        Lower-case words to keep as single tokens.

    Returns
    -------
    tokenizers.Tokenizer

    Examples
    --------
    >>> char_tokenizer(["cat"]).encode("A cat!").tokens
    ['[CLS]', 'a', 'cat', '!', '[SEP]']
    """
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    chars = [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    vocab: dict[str, int] = {}
    for tok in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *chars]:
        vocab.setdefault(tok, len(vocab))
    for c in chars:
        vocab.setdefault("##" + c, len(vocab))
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return tok
