"""Tokenisers (one modality tensor -> ``[B, N, dim]`` tokens) and token pooling.

Early and mid fusion run one transformer over several modalities, so each modality first
becomes a sequence of ``dim``-wide tokens. Every tokeniser exposes ``num_tokens`` and ``dim``
so positional embeddings and cost counts are fixed when the model is built.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol, get_args, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SpectrogramMode = Literal["frames", "patches"]
PoolKind = Literal["mean", "max", "attention"]


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"Expected `{name}` as one or two positive ints, got {value}.")
    return int(pair[0]), int(pair[1])


def _as_grid(x: Tensor) -> Tensor:
    """``[B, H, W]`` or ``[B, C, H, W]`` -> ``[B, C, H, W]``."""
    return x.unsqueeze(1) if x.dim() == 3 else x


def check_heads(dim: int, heads: int) -> None:
    """Multi-head attention splits ``dim`` evenly across ``heads``."""
    if heads < 1 or dim % heads:
        raise ValueError(f"Expected `heads` >= 1 dividing `dim`={dim}, got heads={heads}.")


def transformer_block(dim: int, heads: int, ff_mult: int = 2, dropout: float = 0.1) -> nn.Module:
    """One pre-norm transformer encoder block (pre-norm trains stably without warm-up)."""
    check_heads(dim, heads)
    return nn.TransformerEncoderLayer(
        dim, heads, dim * ff_mult, dropout, activation="gelu", batch_first=True, norm_first=True
    )


def learned_embedding(*shape: int) -> nn.Parameter:
    """A learned embedding table, initialised small (std 0.02, as in ViT and BERT)."""
    return nn.Parameter(torch.randn(*shape) * 0.02)


@runtime_checkable
class Tokenizer(Protocol):
    """One modality's tokeniser: ``[B, ...] -> [B, num_tokens, dim]``, both fixed when it is built."""

    dim: int
    num_tokens: int

    def __call__(self, x: Tensor) -> Tensor: ...


def check_tokenizers(tokenizers: Mapping[str, nn.Module], dim: int) -> dict[str, int]:
    """modality -> ``num_tokens``, after checking every tokeniser emits ``dim``-wide tokens."""
    if not tokenizers:
        raise ValueError("Expected `tokenizers` with at least one modality, got none.")
    counts: dict[str, int] = {}
    for m in sorted(tokenizers):
        tokenizer = tokenizers[m]
        if not isinstance(tokenizer, Tokenizer) or tokenizer.dim != dim or not isinstance(tokenizer.num_tokens, int):
            found = f"`{type(tokenizer).__name__}`, which is no Tokenizer"
            if isinstance(tokenizer, Tokenizer):
                found = f"dim={tokenizer.dim}, num_tokens={tokenizer.num_tokens}"
            raise ValueError(f"Expected tokenizer `{m}` with `dim`={dim} and an int `num_tokens`, got {found}.")
        counts[m] = tokenizer.num_tokens
    return counts


class ImagePatchTokenizer(nn.Module):
    """Non-overlapping patches, each linearly embedded (ViT; Dosovitskiy et al., 2021).

    A Conv2d whose kernel and stride both equal the patch size is exactly a shared linear
    map on each flattened patch. A 28x28 image gives 49 tokens with 4x4 patches and 196
    with 2x2 patches.
    """

    def __init__(
        self,
        image_size: int | Sequence[int] = (28, 28),
        patch: int | Sequence[int] = (4, 4),
        dim: int = 64,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        self.image_size = _pair(image_size, "image_size")
        self.patch = _pair(patch, "patch")
        (h, w), (ph, pw) = self.image_size, self.patch
        if h % ph or w % pw:
            raise ValueError(
                f"Expected `patch` {self.patch} to divide `image_size` {self.image_size}, "
                f"got remainders ({h % ph}, {w % pw})."
            )
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=self.patch, stride=self.patch)
        self.grid = (h // ph, w // pw)
        self.num_tokens = self.grid[0] * self.grid[1]
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        x = _as_grid(x)  # [B, C, H, W]
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(f"Expected images of size {self.image_size}, got {tuple(x.shape[-2:])}.")
        out: Tensor = self.proj(x).flatten(2).transpose(1, 2)  # [B, N, dim]
        return out


class SpectrogramTokenizer(nn.Module):
    """Log-mel spectrogram ``[B, 1, n_mels, frames]`` -> tokens.

    ``mode="frames"``: one token per time frame, a Linear over the ``n_mels`` bins, which
    keeps full time resolution. ``mode="patches"``: time-frequency patches as in the Audio
    Spectrogram Transformer (Gong et al., 2021), with the spectrogram zero-padded at the
    high-frequency and late-time edges up to a multiple of ``patch`` (frame counts are
    rarely a multiple of the patch size).
    """

    def __init__(
        self,
        n_mels: int,
        frames: int,
        mode: SpectrogramMode = "frames",
        dim: int = 64,
        patch: int | Sequence[int] = (8, 8),
    ) -> None:
        super().__init__()
        if mode not in get_args(SpectrogramMode):
            raise ValueError(f"Expected `mode` in {list(get_args(SpectrogramMode))}, got `{mode}`.")
        self.n_mels, self.frames, self.mode, self.dim = n_mels, frames, mode, dim
        self.patch = _pair(patch, "patch")
        self.proj: nn.Module
        if mode == "frames":
            self.proj = nn.Linear(n_mels, dim)
            self.num_tokens = frames
        else:
            self.proj = nn.Conv2d(1, dim, kernel_size=self.patch, stride=self.patch)
            self.grid = (math.ceil(n_mels / self.patch[0]), math.ceil(frames / self.patch[1]))
            self.num_tokens = self.grid[0] * self.grid[1]

    def forward(self, x: Tensor) -> Tensor:
        x = _as_grid(x)  # [B, 1, n_mels, frames]
        if tuple(x.shape[1:]) != (1, self.n_mels, self.frames):
            raise ValueError(
                f"Expected spectrograms of shape (1, n_mels, frames) = "
                f"{(1, self.n_mels, self.frames)}, got {tuple(x.shape[1:])}."
            )
        if self.mode == "frames":
            frames: Tensor = self.proj(x[:, 0].transpose(1, 2))  # [B, frames, dim]
            return frames
        pad_f = self.grid[0] * self.patch[0] - self.n_mels
        pad_t = self.grid[1] * self.patch[1] - self.frames
        x = F.pad(x, (0, pad_t, 0, pad_f))  # [B, 1, grid_f * pf, grid_t * pt]
        out: Tensor = self.proj(x).flatten(2).transpose(1, 2)  # [B, N, dim]
        return out


class SequenceTokenizer(nn.Module):
    """Feature sequences ``[B, T, F]`` -> ``[B, T, dim]``: one token per step, a shared Linear.

    A feature vector ``[B, F]`` (pre-extracted text or image features) is one step
    (``length=1``). ``length`` fixes ``num_tokens`` because positional embeddings need it.
    """

    def __init__(self, in_features: int, dim: int = 64, *, length: int) -> None:
        super().__init__()
        if length < 1:
            raise ValueError(f"Expected `length` >= 1, got {length}.")
        self.proj = nn.Linear(in_features, dim)
        self.num_tokens = length
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)  # [B, F] -> [B, 1, F]
        if x.shape[1] != self.num_tokens:
            raise ValueError(f"Expected sequences of length {self.num_tokens}, got {x.shape[1]}.")
        out: Tensor = self.proj(x)  # [B, T, dim]
        return out


class TokenPool(nn.Module):
    """Reduce ``[B, N, dim]`` tokens to ``[B, num_tokens_out, dim]`` before they join a fusion.

    ``mean``/``max``: adaptive pooling over contiguous groups of tokens (196 image tokens
    from a 14x14 grid -> 14 row tokens -> 1 global token). ``attention``: ``num_tokens_out``
    learned queries cross-attend to the tokens (the Perceiver / Set Transformer PMA pooling),
    so the model chooses what each pooled token summarises.

    With ``valid`` ``[B, N]`` (True for the real tokens of a padded sequence, which come
    first) only real tokens are pooled: ``mean``/``max`` split each sample's ``L_b`` real
    tokens into the groups adaptive pooling would form over ``L_b`` tokens (group ``k`` is
    ``floor(k L / K) .. ceil((k + 1) L / K) - 1``, never empty), and ``attention`` masks the
    padding out of the keys. Padding values never reach the result.
    """

    def __init__(self, kind: PoolKind = "mean", num_tokens_out: int = 1, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        if kind not in get_args(PoolKind):
            raise ValueError(f"Expected pool `kind` in {list(get_args(PoolKind))}, got `{kind}`.")
        if num_tokens_out < 1:
            raise ValueError(f"Expected `num_tokens_out` >= 1, got {num_tokens_out}.")
        self.kind, self.num_tokens_out, self.dim = kind, num_tokens_out, dim
        if kind == "attention":
            check_heads(dim, heads)
            self.queries = nn.Parameter(torch.randn(num_tokens_out, dim) * 0.02)
            self.norm = nn.LayerNorm(dim)
            self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, tokens: Tensor, valid: Tensor | None = None) -> Tensor:
        if valid is not None and tuple(valid.shape) != tuple(tokens.shape[:2]):
            raise ValueError(f"Expected `valid` of shape {tuple(tokens.shape[:2])}, got {tuple(valid.shape)}.")
        if self.kind in ("mean", "max"):
            if valid is not None:
                return self._pool_real(tokens, valid)
            pool = F.adaptive_avg_pool1d if self.kind == "mean" else F.adaptive_max_pool1d
            grouped = pool(tokens.transpose(1, 2), self.num_tokens_out)  # [B, dim, K]
            return grouped.transpose(1, 2)  # [B, K, dim]
        keys = self.norm(tokens)  # [B, N, dim]
        queries = self.queries.unsqueeze(0).expand(tokens.shape[0], -1, -1)  # [B, K, dim]
        padding = None if valid is None else ~valid
        attended: tuple[Tensor, Tensor | None] = self.attn(
            queries, keys, keys, key_padding_mask=padding, need_weights=False
        )
        return attended[0]  # [B, K, dim]

    def _pool_real(self, tokens: Tensor, valid: Tensor) -> Tensor:
        """Adaptive mean/max pooling of each sample's real tokens only."""
        n, k = tokens.shape[1], self.num_tokens_out
        length = valid.sum(dim=1, keepdim=True)  # [B, 1]
        group = torch.arange(k, device=tokens.device).unsqueeze(0)  # [1, K]
        start = group * length // k  # [B, K]
        end = ((group + 1) * length + k - 1) // k  # [B, K]
        step = torch.arange(n, device=tokens.device).view(1, 1, n)
        member = (step >= start.unsqueeze(-1)) & (step < end.unsqueeze(-1))  # [B, K, N]
        if self.kind == "max":
            filled = torch.where(member.unsqueeze(-1), tokens.unsqueeze(1), float("-inf"))  # [B, K, N, dim]
            return filled.amax(dim=2)  # [B, K, dim]
        real = torch.where(valid.unsqueeze(-1), tokens, 0.0)  # [B, N, dim]
        return member.to(tokens.dtype) @ real / member.sum(dim=2, keepdim=True).to(tokens.dtype)  # [B, K, dim]
