"""Pre-trained encoder files are checked for what they are: modality, encoder kind, input shape, layers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests._helpers.runs import tiny_pretrain_config, tiny_raw
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.engine.run import execute_run
from fusebench.models.encoder_specs import CNNOptions, MLPOptions, build_encoder_from
from fusebench.models.weights import load_encoder, read_encoder_metadata, save_encoder

runner = CliRunner()


@pytest.fixture(scope="module")
def image_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``encoders/image.safetensors`` of a real 1-epoch image pre-training (CNN widths 8/16, like the audio one)."""
    root = tmp_path_factory.mktemp("pretrain")
    config = tiny_pretrain_config(root, "image", ["training.epochs=1", "monitoring.enabled=false"])
    return execute_run(config, root / "image").run_dir / "encoders" / "image.safetensors"


def test_pretraining_records_modality_kind_and_input_shape(image_encoder: Path) -> None:
    metadata = read_encoder_metadata(image_encoder)
    assert (metadata["modality"], metadata["kind"], json.loads(metadata["input_shape"])) == (
        "image",
        "cnn",
        [1, 28, 28],
    )


def test_an_image_encoder_loaded_as_audio_is_refused_at_dry_run(image_encoder: Path, tmp_path: Path) -> None:
    # Same CNN widths: every layer name and shape matches (adaptive pooling), so only the header can tell.
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny_raw(tmp_path / "runs")))
    result = runner.invoke(app, ["train", str(config), "--dry-run", f"model.pretrained.audio={image_encoder}"])
    assert result.exit_code == 2, result.output
    assert "the `image` `cnn` encoder" in result.output and "loaded into the `audio` encoder" in result.output
    assert "model.pretrained.audio" in result.output


def test_another_encoder_kind_is_named_before_its_layers(image_encoder: Path) -> None:
    mlp = build_encoder_from(MLPOptions(out_dim=32, hidden=[16]), (1, 28, 28))
    with pytest.raises(ValueError, match=r"the `image` `cnn` encoder.*this model's `image` encoder is `mlp`"):
        load_encoder(mlp, image_encoder, "image", kind="mlp")


def test_another_input_shape_is_refused(tmp_path: Path) -> None:
    encoder = build_encoder_from(CNNOptions(out_dim=32, widths=[8, 16]), (1, 64, 40))
    path = save_encoder(
        encoder, tmp_path / "audio.safetensors", {"modality": "audio", "kind": "cnn", "input_shape": "[1, 64, 40]"}
    )
    with pytest.raises(ValueError, match=r"trained on inputs of shape \[1, 64, 40\].*have shape \[1, 40, 40\]"):
        load_encoder(
            build_encoder_from(CNNOptions(out_dim=32, widths=[8, 16]), (1, 40, 40)),
            path,
            "audio",
            kind="cnn",
            input_shape=(1, 40, 40),
        )


@pytest.mark.parametrize(
    "content", [b"", b"\x00" * 10, b"random bytes that are not a header"], ids=["empty", "zeros", "random"]
)
def test_a_broken_weights_file_is_one_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "audio.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"are not a safetensors file"):
        load_encoder(build_encoder_from(CNNOptions(out_dim=32, widths=[8, 16]), (1, 40, 40)), path, "audio")
