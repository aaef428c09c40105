"""Tokenisers and token pooling (models/tokens) against hand-computed tokens and pools."""

from __future__ import annotations

import pytest
import torch

from fusebench.models.tokens import ImagePatchTokenizer, SequenceTokenizer, SpectrogramTokenizer, TokenPool


def test_an_image_patch_token_is_the_linear_map_of_its_flattened_patch() -> None:
    tokenizer = ImagePatchTokenizer((28, 28), patch=(7, 14), dim=6)
    image = torch.randn(2, 1, 28, 28)
    tokens = tokenizer(image)
    assert tokenizer.num_tokens == 8 and tokens.shape == (2, 8, 6)  # a 4 x 2 grid of 7x14 patches
    weight, bias = tokenizer.proj.weight.view(6, -1), tokenizer.proj.bias
    row, col = 2, 1  # token 2 * 2 + 1, row-major
    patch = image[:, 0, row * 7 : (row + 1) * 7, col * 14 : (col + 1) * 14].reshape(2, -1)
    assert torch.allclose(tokens[:, row * 2 + col], patch @ weight.T + bias, atol=1e-5)


def test_a_patch_that_does_not_divide_the_image_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Expected `patch` \(8, 8\) to divide `image_size` \(28, 28\)"):
        ImagePatchTokenizer((28, 28), patch=8)


def test_spectrogram_frames_are_one_token_each_and_patches_are_zero_padded_at_the_edges() -> None:
    spectrogram = torch.randn(2, 1, 10, 13)
    frames = SpectrogramTokenizer(10, 13, "frames", dim=4)
    tokens = frames(spectrogram)
    assert tokens.shape == (2, 13, 4)
    assert torch.allclose(tokens[:, 5], frames.proj(spectrogram[:, 0, :, 5]), atol=1e-6)
    patches = SpectrogramTokenizer(10, 13, "patches", dim=4, patch=(8, 8))
    tokens = patches(spectrogram)
    assert patches.grid == (2, 2) and tokens.shape == (2, 4, 4)
    corner = torch.zeros(2, 8, 8)  # the last patch: mel bins 8-9, frames 8-12, the rest zero padding
    corner[:, :2, :5] = spectrogram[:, 0, 8:, 8:]
    weight, bias = patches.proj.weight.view(4, -1), patches.proj.bias
    assert torch.allclose(tokens[:, 3], corner.reshape(2, -1) @ weight.T + bias, atol=1e-5)


def test_a_feature_vector_is_one_step_and_the_length_is_checked() -> None:
    tokenizer = SequenceTokenizer(5, dim=3, length=1)
    assert tokenizer(torch.randn(4, 5)).shape == (4, 1, 3)
    with pytest.raises(ValueError, match="Expected sequences of length 1, got 2"):
        tokenizer(torch.randn(4, 2, 5))


TOKENS = torch.tensor([[[1.0], [2.0], [3.0], [100.0]]])  # [B=1, N=4, dim=1]
VALID = torch.tensor([[True, True, True, False]])  # three real tokens, then padding


@pytest.mark.parametrize(
    ("kind", "out", "expected"),
    [
        ("mean", 1, [2.0]),
        ("max", 1, [3.0]),
        # two groups of L=3 real tokens: 0..ceil(1.5)-1 = {0, 1} and floor(1.5)..ceil(3)-1 = {1, 2}
        ("mean", 2, [1.5, 2.5]),
        ("max", 2, [2.0, 3.0]),
    ],
)
def test_pooling_a_padded_sequence_uses_only_its_real_tokens(kind: str, out: int, expected: list[float]) -> None:
    pool = TokenPool(kind, out, dim=1, heads=1)  # type: ignore[arg-type]
    assert pool(TOKENS, VALID).flatten().tolist() == pytest.approx(expected)
    assert pool(TOKENS).shape == (1, out, 1)


def test_attention_pooling_ignores_the_padding() -> None:
    torch.manual_seed(0)
    pool = TokenPool("attention", 2, dim=4, heads=2).eval()
    tokens = torch.randn(1, 4, 4)
    changed = tokens.clone()
    changed[0, 3] = 1e3  # only the padded token differs
    assert pool(tokens, VALID).shape == (1, 2, 4)
    assert torch.allclose(pool(tokens, VALID), pool(changed, VALID), atol=1e-6)
    assert not torch.allclose(pool(tokens), pool(changed))


def test_a_patch_that_does_not_divide_the_image_is_named_by_its_option() -> None:
    from fusebench.models.registry import build_tokenizer

    with pytest.raises(ValueError, match=r"^`image_patch` 5 does not fit `image`: Expected `patch` \(5, 5\) to divide"):
        build_tokenizer("image", (1, 28, 28), 16, image_patch=5)
