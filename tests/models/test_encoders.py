"""The built-in encoders (models/encoders): output width, any input size, pixel scaling, gradients."""

from __future__ import annotations

import pytest
import torch

from fusebench.models.encoders import ConvEncoder, MLPEncoder, ResNetEncoder


@pytest.mark.parametrize("size", [(28, 28), (40, 50)], ids=["image", "spectrogram"])
def test_the_cnn_gives_out_dim_features_for_any_input_size(size: tuple[int, int]) -> None:
    encoder = ConvEncoder(out_dim=24, widths=(8, 16))
    features = encoder(torch.randn(3, 1, *size))
    assert encoder.out_dim == 24 and features.shape == (3, 24)


@pytest.mark.parametrize(
    "encoder", [ConvEncoder(widths=(8,)), ResNetEncoder("resnet18", base_width=4)], ids=["cnn", "resnet18"]
)
def test_uint8_pixels_are_read_as_x_over_255(encoder: torch.nn.Module) -> None:
    encoder.eval()
    pixels = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    assert torch.allclose(encoder(pixels), encoder(pixels.float() / 255.0), atol=1e-6)


def test_resnet_depths_have_the_papers_block_counts_and_refuse_others() -> None:
    blocks = {
        depth: sum(type(m).__name__ == "_BasicBlock" for m in ResNetEncoder(depth, base_width=4).modules())
        for depth in ("resnet18", "resnet34")
    }
    assert blocks == {"resnet18": 8, "resnet34": 16}  # (2, 2, 2, 2) and (3, 4, 6, 3), He et al. 2016
    assert ResNetEncoder("resnet18", out_dim=10, base_width=4)(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"Expected `depth` in \['resnet18', 'resnet34'\], got `resnet50`"):
        ResNetEncoder("resnet50")


def test_the_mlp_flattens_its_input_and_stacks_the_hidden_layers() -> None:
    encoder = MLPEncoder(in_features=12, out_dim=5, hidden=(16, 8))
    linear = [m for m in encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(12, 16), (16, 8), (8, 5)]
    assert encoder(torch.randn(4, 3, 4)).shape == (4, 5)


@pytest.mark.parametrize(
    "encoder",
    [ConvEncoder(widths=(8,)), ResNetEncoder("resnet18", base_width=4), MLPEncoder(784)],
    ids=["cnn", "resnet18", "mlp"],
)
def test_every_parameter_gets_a_gradient(encoder: torch.nn.Module) -> None:
    encoder(torch.randn(2, 1, 28, 28)).sum().backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in encoder.parameters())
