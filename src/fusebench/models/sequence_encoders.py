"""Encoders of padded variable-length sequences: GRU, LSTM and a small Transformer.

Each maps ``x`` ``[B, T, F]`` feature sequences (``[B, 1, F, T]`` spectrograms, read as T steps
of F, or ``[B, T]`` token ids when built with ``vocab_size``) and optional ``lengths`` ``[B]``
to an embedding ``[B, out_dim]`` that depends only on the first ``lengths[b]`` steps of
each sequence: whatever the padding steps hold never changes the output.

- The recurrent encoders pack the batch (``torch.nn.utils.rnn.pack_padded_sequence`` with
  ``enforce_sorted=False``), so the recurrence stops at each sequence's last real step.
  ``pool="last"`` (default) takes the final hidden state of the top layer at that step (both
  directions' final states when bidirectional); ``pool="mean"`` averages the top layer's
  outputs over the real steps.
- The Transformer masks padding steps out of every attention with a key-padding mask and
  averages its (normalised) outputs over the real steps.

Without ``lengths`` every step is real.
"""

from __future__ import annotations

from typing import Literal, get_args

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from fusebench.models.sequence import masked_mean, step_mask
from fusebench.models.tokens import learned_embedding, transformer_block

RecurrentCell = Literal["gru", "lstm"]
RecurrentPool = Literal["last", "mean"]


def _steps_first(x: Tensor, embed: nn.Module | None) -> Tensor:
    """``[B, T, F]`` from any accepted input (token ids are embedded, spectrograms transposed)."""
    if embed is not None:
        if x.dim() != 2 or x.is_floating_point():
            raise ValueError(
                f"Expected [B, T] integer token ids for an encoder with a vocabulary, got "
                f"{x.dtype} of shape {tuple(x.shape)}."
            )
        embedded: Tensor = embed(x)  # [B, T, E]
        return embedded
    if x.dim() == 4 and x.shape[1] == 1:  # [B, 1, F, T] spectrogram -> [B, T, F]
        return x.squeeze(1).transpose(1, 2)
    if x.dim() != 3:
        raise ValueError(f"Expected [B, T, F] sequences (or [B, 1, F, T] spectrograms), got shape {tuple(x.shape)}.")
    return x


class RecurrentEncoder(nn.Module):
    """A GRU or LSTM over the real steps of each sequence (see the module docstring).

    Args:
        cell: ``"gru"`` or ``"lstm"``.
        in_features: features per step (ignored with ``vocab_size``: ``embed_dim`` is used).
        out_dim: embedding width (a linear projection of the pooled state).
        hidden: hidden size per direction.
        layers: stacked recurrent layers.
        bidirectional: run a second recurrence backwards over the real steps.
        pool: ``"last"`` hidden state or ``"mean"`` of outputs over real steps.
        dropout: dropout between stacked layers (PyTorch's ``dropout`` argument).
        vocab_size: read ``[B, T]`` token ids through an embedding table of this size.
        embed_dim: width of that embedding.
    """

    def __init__(
        self,
        cell: RecurrentCell,
        in_features: int,
        out_dim: int = 64,
        hidden: int = 64,
        layers: int = 1,
        *,
        bidirectional: bool = False,
        pool: RecurrentPool = "last",
        dropout: float = 0.0,
        vocab_size: int | None = None,
        embed_dim: int = 64,
    ) -> None:
        super().__init__()
        if cell not in get_args(RecurrentCell):
            raise ValueError(f"Expected `cell` in {list(get_args(RecurrentCell))}, got `{cell}`.")
        if pool not in get_args(RecurrentPool):
            raise ValueError(f"Expected `pool` in {list(get_args(RecurrentPool))}, got `{pool}`.")
        self.embed = nn.Embedding(vocab_size, embed_dim) if vocab_size is not None else None
        width = embed_dim if vocab_size is not None else in_features
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(
            width,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.cell, self.pool, self.directions = cell, pool, 2 if bidirectional else 1
        self.project = nn.Linear(hidden * self.directions, out_dim)
        self.out_dim = out_dim

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        x = _steps_first(x, self.embed)  # [B, T, F]
        batch, steps = x.shape[:2]
        valid = step_mask(lengths, batch, steps, x.device)  # [B, T]; checks lengths in 1..T
        if lengths is None:
            outputs, state = self.rnn(x)  # outputs [B, T, H * dirs]
        else:
            packed = pack_padded_sequence(x, lengths.detach().cpu().long(), batch_first=True, enforce_sorted=False)
            packed_out, state = self.rnn(packed)  # state in the batch's original order
            if self.pool == "mean":
                outputs = pad_packed_sequence(packed_out, batch_first=True, total_length=steps)[0]  # zeros after
        if self.pool == "mean":
            pooled = masked_mean(outputs, valid)  # [B, H * dirs]
        else:
            hidden = state[0] if self.cell == "lstm" else state  # [layers * dirs, B, H]
            top = hidden[-self.directions :]  # [dirs, B, H]: the top layer, forward (then backward)
            pooled = top.transpose(0, 1).reshape(batch, -1)  # [B, H * dirs]
        embedding: Tensor = self.project(pooled)  # [B, out_dim]
        return embedding


class TransformerSequenceEncoder(nn.Module):
    """Linear step embedding + learned positions, pre-norm Transformer blocks with a key-padding
    mask, and the mean of the normalised outputs over real steps.

    Args:
        in_features: features per step (ignored with ``vocab_size``).
        max_steps: the padded length T (fixes the positional table).
        out_dim: embedding width.
        dim: token width inside the blocks.
        layers: Transformer blocks.
        heads: attention heads (must divide ``dim``).
        ff_mult: feed-forward width as a multiple of ``dim``.
        dropout: dropout inside the blocks.
        vocab_size: read ``[B, T]`` token ids through an embedding table of this size.
    """

    def __init__(
        self,
        in_features: int,
        max_steps: int,
        out_dim: int = 64,
        dim: int = 64,
        layers: int = 2,
        heads: int = 4,
        ff_mult: int = 2,
        dropout: float = 0.1,
        *,
        vocab_size: int | None = None,
    ) -> None:
        super().__init__()
        if max_steps < 1:
            raise ValueError(f"Expected `max_steps` >= 1, got {max_steps}.")
        self.embed = nn.Embedding(vocab_size, dim) if vocab_size is not None else None
        self.input = nn.Identity() if vocab_size is not None else nn.Linear(in_features, dim)
        self.positions = learned_embedding(max_steps, dim)
        self.blocks = nn.ModuleList([transformer_block(dim, heads, ff_mult, dropout) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.project = nn.Linear(dim, out_dim)
        self.max_steps, self.out_dim = max_steps, out_dim

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        x = _steps_first(x, self.embed)  # [B, T, F]
        batch, steps = x.shape[:2]
        if steps > self.max_steps:
            raise ValueError(f"Expected sequences of at most {self.max_steps} steps, got {steps}.")
        valid = step_mask(lengths, batch, steps, x.device)  # [B, T]
        tokens = self.input(x) + self.positions[:steps]  # [B, T, dim]
        padding = None if lengths is None else ~valid  # True = ignored by attention
        for block in self.blocks:
            tokens = block(tokens, src_key_padding_mask=padding)
        embedding: Tensor = self.project(masked_mean(self.norm(tokens), valid))  # [B, out_dim]
        return embedding
