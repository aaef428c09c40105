"""engine/build: the model a run config describes, on AV-digits shapes; pre-trained weights and freezing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests._helpers.runs import tiny_config, tiny_pretrain_config

from fusebench.data.registry import LoadedDataset
from fusebench.engine.build import build_model, frozen_modalities, used_settings
from fusebench.engine.datasets import load_dataset
from fusebench.errors import ConfigError
from fusebench.models.early import FeatureEarlyFusionModel
from fusebench.models.encoders import ConvEncoder
from fusebench.models.fusion import ConcatFusion
from fusebench.models.multimodal import MultimodalModel
from fusebench.models.unimodal import UnimodalModel
from fusebench.models.weights import save_encoder

LIMITS = ["data.limit={train: 40, validation: 10, test: 10}"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> LoadedDataset:
    return load_dataset(tiny_config(tmp_path_factory.mktemp("runs"), LIMITS).data)


def _shapes(loaded: LoadedDataset) -> dict[str, tuple[int, ...]]:
    return {m: tuple(x.shape[1:]) for m, x in loaded.train.inputs.items()}


def _logits(model: torch.nn.Module, loaded: LoadedDataset, modalities: list[str]) -> torch.Tensor:
    inputs = {m: loaded.train.inputs[m][:6] for m in modalities}
    output: torch.Tensor = model(inputs, torch.ones(6, len(modalities), dtype=torch.bool)).logits
    return output


def test_a_late_fusion_config_builds_its_encoders_fusion_and_head(loaded: LoadedDataset, tmp_path: Path) -> None:
    model = build_model(tiny_config(tmp_path, LIMITS), _shapes(loaded), 10)
    assert isinstance(model, MultimodalModel) and isinstance(model.fusion, ConcatFusion)
    assert {m: (type(e), e.out_dim) for m, e in model.encoders.items()} == {
        "audio": (ConvEncoder, 32),
        "image": (ConvEncoder, 32),
    }
    assert _logits(model, loaded, ["audio", "image"]).shape == (6, 10)


def test_a_pretraining_config_builds_one_encoder_with_a_linear_head(loaded: LoadedDataset, tmp_path: Path) -> None:
    model = build_model(tiny_pretrain_config(tmp_path, "audio", LIMITS), _shapes(loaded), 10)
    assert isinstance(model, UnimodalModel) and set(model.encoders) == {"audio"}
    assert isinstance(model.encoders["audio"], ConvEncoder)
    assert _logits(model, loaded, ["audio"]).shape == (6, 10)


def test_fusion_params_that_do_not_fit_the_run_are_config_errors(loaded: LoadedDataset, tmp_path: Path) -> None:
    feature = ["model.fusion={type: early, method: feature, params: {projectors: [audio]}}"]
    assert isinstance(
        build_model(tiny_config(tmp_path, [*LIMITS, *feature]), _shapes(loaded), 10), FeatureEarlyFusionModel
    )
    with pytest.raises(
        ConfigError,
        match=r"`model.fusion.params.projectors` names `audio`, which this run does not "
        r"have; its modalities \(`model.encoders`\) are `image`",
    ):
        build_model(tiny_config(tmp_path, [*LIMITS, *feature, "data.modalities=[image]"]), _shapes(loaded), 10)
    token = ["model.fusion={type: early, method: token, params: {dim: 16, heads: 2, image_patch: [8, 8]}}"]
    with pytest.raises(
        ConfigError,
        match=r"Cannot build fusion `early/token` \(`model.fusion.params`\) .*`image_patch` \[8, 8\] does not fit "
        r"`image`: Expected `patch` \(8, 8\) to divide `image_size` \(28, 28\)",
    ):
        build_model(tiny_config(tmp_path, [*LIMITS, *token]), _shapes(loaded), 10)


def test_pretrained_weights_are_loaded_and_frozen_as_asked(loaded: LoadedDataset, tmp_path: Path) -> None:
    shapes = _shapes(loaded)
    pretrained = build_model(tiny_pretrain_config(tmp_path, "image", LIMITS), shapes, 10)
    assert isinstance(pretrained, UnimodalModel)
    path = save_encoder(
        pretrained.encoders["image"],
        tmp_path / "image.safetensors",
        {"modality": "image", "kind": "cnn", "input_shape": str(list(shapes["image"]))},
    )
    config = tiny_config(tmp_path, [*LIMITS, f"model.pretrained.image={path}", "model.freeze.image=true"])
    model = build_model(config, shapes, 10)
    assert isinstance(model, MultimodalModel)
    image, expected = model.encoders["image"].state_dict(), pretrained.encoders["image"].state_dict()
    assert all(torch.equal(image[k], expected[k]) for k in expected)
    assert not any(p.requires_grad for p in model.encoders["image"].parameters())
    assert all(p.requires_grad for p in model.encoders["audio"].parameters())
    assert frozen_modalities(config) == ["image"]
    only_audio = tiny_config(tmp_path, [*LIMITS, "data.modalities=[audio]", "model.freeze.image=true"])
    assert used_settings(only_audio, only_audio.model.freeze) == {} and frozen_modalities(only_audio) == []
