"""Per-modality encoders: each maps one modality's tensor ``[B, ...]`` to an embedding ``[B, D]``.

Sequence encoders (GRU, LSTM, Transformer) live in :mod:`fusebench.models.sequence_encoders`.

Every encoder exposes ``out_dim`` so fusions can be built from a ``{modality: dim}`` dict.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fusebench.models.pixels import as_float_pixels


class ConvEncoder(nn.Module):
    """A small CNN for 2-D single-channel inputs (28x28 images, log-mel spectrograms).

    Conv-BN-ReLU-MaxPool blocks, then adaptive average pooling to a ``pool x pool`` grid
    and a linear projection. The grid keeps the coarse layout that tells digits apart
    (global average pooling throws it away and learns far slower), and makes the module
    fit any input height and width.
    """

    def __init__(
        self, in_channels: int = 1, out_dim: int = 64, widths: Sequence[int] = (32, 64), pool: int = 4
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(pool), nn.Flatten())
        self.project = nn.Linear(channels * pool * pool, out_dim)
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        h = self.features(as_float_pixels(x))  # [B, C * pool * pool]; uint8 pixels read as x / 255
        out: Tensor = self.project(h)  # [B, out_dim]
        return out


class _BasicBlock(nn.Module):
    """ResNet basic block (He et al., 2016): two 3x3 convs with an identity or 1x1 shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """ResNet-18/34 for one input channel and small inputs, as in the thesis' AV-MNIST runs.

    The ImageNet stem (7x7 stride 2 + max-pool) would shrink a 28x28 input to 7x7 before
    the first block, so the stem here is a 3x3 stride-1 convolution.
    """

    _BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}

    def __init__(self, depth: str, in_channels: int = 1, out_dim: int = 64, base_width: int = 64) -> None:
        super().__init__()
        if depth not in self._BLOCKS:
            raise ValueError(f"Expected `depth` in {sorted(self._BLOCKS)}, got `{depth}`.")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, base_width, 3, 1, 1, bias=False), nn.BatchNorm2d(base_width), nn.ReLU(inplace=True)
        )
        stages: list[nn.Module] = []
        channels = base_width
        for stage, count in enumerate(self._BLOCKS[depth]):
            width = base_width * 2**stage
            for block in range(count):
                stages.append(_BasicBlock(channels, width, stride=2 if stage > 0 and block == 0 else 1))
                channels = width
        self.stages = nn.Sequential(*stages)
        self.project = nn.Linear(channels, out_dim)
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        h = self.stages(self.stem(as_float_pixels(x)))  # [B, C, H', W']
        out: Tensor = self.project(h.mean(dim=(2, 3)))
        return out


class MLPEncoder(nn.Module):
    """Tabular or pre-extracted features: flatten, then Linear-ReLU blocks."""

    def __init__(self, in_features: int, out_dim: int = 64, hidden: Sequence[int] = (128,)) -> None:
        super().__init__()
        dims = [in_features, *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(dims[-1], out_dim))
        self.net = nn.Sequential(*layers)
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(x)
        return out
