"""Tokens from a (pre-trained, frozen) encoder's feature map, for the where-to-fuse model.

In "Where to fuse" (``../shared/papers/002_f1eed76e6f5c3665.txt``, section 2.2) the injected
image tokens are a frozen ViT's 196 patch tokens, computed once and cached ("running
inference with ViT separately and storing them in a database"), and they join the text
stream at layer ``k``. Here the same role is played by the run's configured encoder of a
modality (``model.encoders.<m>``, which ``model.pretrained.<m>`` can load from a
``fusebench pretrain`` run and ``model.freeze.<m>`` can freeze): its last feature map before
pooling, one token per spatial position, then a trainable linear projection to the
transformer's width. When the encoder is frozen the features are fixed, so a run computes
them once per split (``engine.token_cache``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fusebench.models.encoders import ConvEncoder, ResNetEncoder
from fusebench.models.pixels import as_float_pixels


def feature_map(encoder: nn.Module, x: Tensor) -> Tensor:
    """``[B, C, H', W']`` feature map of a CNN or ResNet encoder (before its pooling and projection)."""
    x = as_float_pixels(x)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if isinstance(encoder, ConvEncoder):
        grid: Tensor = encoder.features[:-1](x)  # conv blocks + adaptive pooling to the `pool x pool` grid
        return grid
    if isinstance(encoder, ResNetEncoder):
        stages: Tensor = encoder.stages(encoder.stem(x))
        return stages
    raise ValueError(
        f"Expected a `cnn` or `resnet18`/`resnet34` encoder to read tokens from, got "
        f"`{type(encoder).__name__}`, which has no spatial feature map."
    )


class EncoderTokenizer(nn.Module):
    """An encoder's feature map as tokens: ``[B, H' W', C]`` features, then ``Linear(C, dim)``.

    With ``precomputed`` set (by ``engine.token_cache`` when the encoder is frozen) the
    input already is the ``[B, N, C]`` features. A frozen encoder (no parameter requiring
    gradients) is kept in eval mode while the model trains (by ``train()`` and, since
    Lightning keeps the modes modules are in rather than calling ``train()``, by ``forward``),
    so its BatchNorm statistics are fixed and cached features equal computed ones.

    Args:
        encoder: a ``ConvEncoder`` or ``ResNetEncoder``.
        shape: one sample's input shape, e.g. ``(1, 40, 40)``.
        dim: token width.
    """

    def __init__(self, encoder: nn.Module, shape: Sequence[int], dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        was_training = encoder.training
        encoder.eval()
        with torch.no_grad():
            probe = feature_map(encoder, torch.zeros(1, *shape))  # [1, C, H', W']
        encoder.train(was_training)
        self.channels = int(probe.shape[1])
        self.num_tokens = int(probe.shape[2] * probe.shape[3])
        self.dim = dim
        self.proj = nn.Linear(self.channels, dim)
        self.precomputed = False

    @property
    def frozen(self) -> bool:
        return not any(p.requires_grad for p in self.encoder.parameters())

    def train(self, mode: bool = True) -> EncoderTokenizer:
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def features(self, x: Tensor) -> Tensor:
        """``[B, N, C]``: the feature map's positions as tokens."""
        return feature_map(self.encoder, x).flatten(2).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        if self.frozen and self.encoder.training:  # Lightning keeps the modes modules are in; a frozen one is eval
            self.encoder.eval()
        features = x if self.precomputed else self.features(x)
        if features.dim() != 3 or features.shape[1:] != (self.num_tokens, self.channels):
            raise ValueError(
                f"Expected encoder features [B, {self.num_tokens}, {self.channels}], got {tuple(features.shape)}."
            )
        tokens: Tensor = self.proj(features)  # [B, N, dim]
        return tokens
