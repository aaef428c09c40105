"""Raw text as tensors: word-id sequences from a training-split vocabulary, or UTF-8 bytes.

A batch holds tensors only (``Batch.inputs``), so text travels in one of two forms, both
padded ``[N, T]`` with per-sample ``lengths`` (the rest of each row is padding that models
never read):

- **token ids** (``int64``): words of :func:`tokenize`, mapped by a :class:`Vocabulary`
  built from the training split; for encoders that learn their own embedding;
- **UTF-8 bytes** (``uint8``): the string itself, for encoders that bring their own
  tokenizer (the pre-trained ``sentence`` encoder decodes each row back to its string).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

#: Id 0 pads a sequence; id 1 stands for any word outside the vocabulary.
PAD_ID, UNK_ID = 0, 1
PAD_TOKEN, UNK_TOKEN = "<pad>", "<unk>"

# letters (with inner apostrophes: "don't"), digit runs, or one punctuation mark
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|\d+|[^\w\s]")
_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def tokenize(text: str) -> list[str]:
    """Lower-cased words, digit runs and single punctuation marks; HTML line breaks dropped.

    >>> tokenize("A cop's <br />2nd chance!")
    ['a', "cop's", '2', 'nd', 'chance', '!']
    """
    return _TOKEN.findall(_LINE_BREAK.sub(" ", text).lower())


@dataclass(frozen=True)
class Vocabulary:
    """Word -> id, built from training texts only (validation and test words never enter it).

    ``words[i]`` is the word of id ``i``; ids 0 and 1 are ``<pad>`` and ``<unk>``, then
    the training words seen at least ``min_count`` times, most frequent first (ties in
    alphabetical order, so the same texts always give the same ids), at most
    ``size`` ids in all.
    """

    words: tuple[str, ...]

    @classmethod
    def build(cls, texts: Iterable[Sequence[str]], size: int, min_count: int = 1) -> Vocabulary:
        if size < 3:
            raise ValueError(f"Expected a vocabulary `size` >= 3 (pad, unknown and one word), got {size}.")
        counts = Counter(word for words in texts for word in words)
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls((PAD_TOKEN, UNK_TOKEN, *kept[: size - 2]))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, words: Sequence[str]) -> list[int]:
        index = self._index
        return [index.get(w, UNK_ID) for w in words]

    @cached_property
    def _index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}


def pad_sequences(rows: Sequence[Sequence[int]], steps: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Rows truncated to ``steps`` and right-padded with 0: ``([N, steps], lengths [N])``.

    Raises:
        ValueError: if a row is empty (a model needs at least one valid step).
    """
    out = torch.zeros(len(rows), steps, dtype=dtype)
    lengths = torch.zeros(len(rows), dtype=torch.long)
    for i, row in enumerate(rows):
        kept = row[:steps]
        if not kept:
            raise ValueError(f"Expected every sequence to have at least one step, got an empty row at {i}.")
        out[i, : len(kept)] = torch.as_tensor(kept, dtype=dtype)
        lengths[i] = len(kept)
    return out, lengths


def utf8_bytes(text: str, max_bytes: int) -> bytes:
    """``text`` as UTF-8, cut to at most ``max_bytes`` without splitting a character."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return raw
    return raw[:max_bytes].decode("utf-8", errors="ignore").encode("utf-8")


def decode_utf8(rows: Tensor, lengths: Tensor | None) -> list[str]:
    """The strings held by a ``uint8 [B, T]`` byte tensor (first ``lengths[b]`` bytes of each row).

    Raises:
        TypeError: if ``rows`` is not ``uint8`` (token ids are not text bytes).
    """
    if rows.dtype != torch.uint8 or rows.dim() != 2:
        raise TypeError(
            f"Expected UTF-8 text as a uint8 tensor [B, T], got {rows.dtype} {tuple(rows.shape)}; "
            "a dataset gives text as bytes when its text format is `utf8` (e.g. `data.text: utf8`)."
        )
    data = rows.cpu().numpy()
    counts = [data.shape[1]] * len(data) if lengths is None else lengths.cpu().tolist()
    return [bytes(data[i, : counts[i]]).decode("utf-8", errors="replace") for i in range(len(data))]
