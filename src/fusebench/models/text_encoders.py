"""Encoders of token-id sequences: a learned embedding pooled over the valid tokens only.

Text arrives padded, ``int64 [B, T]`` with ``lengths [B]`` (see :mod:`fusebench.data.text`):
only the first ``lengths[b]`` ids of a row are words. Padding positions are replaced by
the pad id before the lookup and excluded from the pooling (mean) or skipped by packing
(GRU), so what the padding holds and how long it is never change an output.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from fusebench.models.sequence import masked_mean, step_mask

TokenPooling = Literal["mean", "gru"]


class TokenEncoder(nn.Module):
    """Embedding of word ids, then the mean over valid tokens or a GRU's last valid state, then a Linear.

    Args:
        vocab_size: number of ids the embedding holds (id 0 is padding).
        embed_dim: width of a word vector.
        out_dim: embedding width of the encoder.
        pool: ``mean`` (bag of words) or ``gru`` (order-aware).
        hidden: GRU hidden size (``pool="gru"``).
    """

    def __init__(
        self, vocab_size: int, embed_dim: int = 128, out_dim: int = 64, pool: TokenPooling = "mean", hidden: int = 128
    ) -> None:
        super().__init__()
        if pool not in ("mean", "gru"):
            raise ValueError(f"Expected `pool` in ['mean', 'gru'], got `{pool}`.")
        self.vocab_size, self.pool, self.out_dim = vocab_size, pool, out_dim
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.gru = nn.GRU(embed_dim, hidden, batch_first=True) if pool == "gru" else None
        self.project = nn.Linear(hidden if pool == "gru" else embed_dim, out_dim)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if x.dim() != 2 or x.dtype not in (torch.int64, torch.int32):  # uint8 is UTF-8 text, not ids
            raise TypeError(
                f"Expected token ids as an integer tensor [B, T], got {x.dtype} {tuple(x.shape)}; the `embedding` "
                "encoder reads word-id sequences (for MM-IMDB raw text: `data.text: tokens`)."
            )
        valid = step_mask(lengths, x.shape[0], x.shape[1], x.device)  # [B, T]
        ids = x.long().masked_fill(~valid, 0)
        if len(ids) and (int(ids.max()) >= self.vocab_size or int(ids.min()) < 0):
            raise ValueError(
                f"Expected token ids in 0..{self.vocab_size - 1} (the encoder's `vocab_size` is {self.vocab_size}), "
                f"got ids from {int(ids.min())} to {int(ids.max())}; set the encoder's `vocab_size` to at least the "
                "dataset's (e.g. `data.vocab_size` of mmimdb_raw)."
            )
        vectors = self.embedding(ids)  # [B, T, E]
        if self.gru is None:
            pooled = masked_mean(vectors, valid)  # [B, E]
        else:
            steps = valid.sum(dim=1).cpu()
            packed = pack_padded_sequence(vectors, steps, batch_first=True, enforce_sorted=False)
            _, h = self.gru(packed)  # h: [1, B, hidden], the state after each row's last valid token
            pooled = h[-1]
        out: Tensor = self.project(pooled)  # [B, out_dim]
        return out
