"""Early fusion models: the missing-modality options, the classifier design and the contract."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from tests._helpers.fusion_cases import (
    INPUT_SHAPES,
    NUM_CLASSES,
    TWO_MODALITIES,
    build_model,
    fusion_params,
    make_inputs,
    mask_for,
    mixed_mask,
    pattern_params,
    perturb_absent,
    save_and_reload,
    single_thread,
    train_losses,
)
from torch import nn
from torch.testing import assert_close

from fusebench.models.early import FeatureEarlyFusionModel, ResidualTanhProjector, TokenEarlyFusionModel
from fusebench.models.encoders import MLPEncoder
from fusebench.models.registry import build_feature_early_fusion, build_token_early_fusion
from fusebench.models.tokens import ImagePatchTokenizer, SequenceTokenizer

SHAPES = {m: INPUT_SHAPES[m] for m in TWO_MODALITIES}


@pytest.fixture(autouse=True)
def _seed() -> Iterator[None]:
    torch.manual_seed(0)
    with single_thread():
        yield


def _feature_model(missing: str = "zero") -> FeatureEarlyFusionModel:
    extractors = {"audio": MLPEncoder(40 * 32, 6, hidden=(8,)), "image": MLPEncoder(28 * 28, 5, hidden=(8,))}
    return FeatureEarlyFusionModel(extractors, NUM_CLASSES, hidden_dim=16, missing=missing)


def _token_model(missing: str = "mask") -> TokenEarlyFusionModel:
    return build_token_early_fusion(SHAPES, NUM_CLASSES, dim=16, depth=2, heads=2, dropout=0.0, missing=missing)


MODELS = [
    pytest.param(lambda: _feature_model("zero"), id="feature-zero"),
    pytest.param(lambda: _feature_model("learned"), id="feature-learned"),
    pytest.param(lambda: _token_model("mask"), id="token-mask"),
    pytest.param(lambda: _token_model("zero"), id="token-zero"),
    pytest.param(lambda: _token_model("learned"), id="token-learned"),
]


@pytest.mark.parametrize("pattern", pattern_params(TWO_MODALITIES))
@pytest.mark.parametrize("make", MODELS)
def test_absent_inputs_have_no_influence(make, pattern: tuple[str, ...]) -> None:
    model = make().eval()
    assert model.reruns_per_pattern is True
    inputs = make_inputs(TWO_MODALITIES, 3)
    mask = mask_for(pattern, TWO_MODALITIES, 3)
    out = model(inputs, mask)
    assert out.logits.shape == (3, NUM_CLASSES)
    assert set(out.embeddings) == set(TWO_MODALITIES)
    assert_close(model(perturb_absent(inputs, mask, TWO_MODALITIES), mask).logits, out.logits)


@pytest.mark.parametrize("family_kind", fusion_params("early"))
def test_mixed_batch_rows_do_not_see_absent_inputs(family_kind: tuple[str, str]) -> None:
    model = build_model(*family_kind).eval()
    inputs, mask = make_inputs(TWO_MODALITIES, 6), mixed_mask(TWO_MODALITIES, 6)
    out = model(inputs, mask).logits
    assert_close(model(perturb_absent(inputs, mask, TWO_MODALITIES), mask).logits, out)


def test_feature_model_never_runs_extractors_on_absent_rows() -> None:
    seen: list[int] = []
    model = _feature_model()
    model.extractors["audio"].register_forward_hook(lambda mod, args, out: seen.append(len(args[0])))
    mask = torch.tensor([[True, True], [False, True], [True, False]])
    features = model.encode(make_inputs(TWO_MODALITIES, 3), mask)
    assert seen == [2]
    assert_close(features["audio"][1], torch.zeros(6))
    assert model.encode(make_inputs(TWO_MODALITIES, 3))["audio"].shape == (3, 6)


def test_feature_model_classifier_is_two_linear_batchnorm_relu_blocks() -> None:
    layers = [type(layer) for layer in _feature_model().classifier]
    assert layers == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout] * 2 + [nn.Linear]


def test_feature_model_learned_features_replace_absent_and_get_gradients() -> None:
    model = _feature_model("learned")
    with torch.no_grad():
        model.missing_features["audio"].fill_(3.0)
    model.train()
    mask = torch.tensor([[False, True]] * 4)
    model(make_inputs(TWO_MODALITIES, 4), mask).logits.sum().backward()
    assert model.missing_features["audio"].grad is not None
    assert model.missing_features["audio"].grad.abs().sum() > 0


def test_token_model_masks_only_the_absent_tokens() -> None:
    model = _token_model("mask")
    assert model.sequence_length() == 1 + 49 + 32  # CLS + 7x7 image patches + 32 audio frames
    inputs = make_inputs(TWO_MODALITIES, 2)
    only_image = mask_for(("image",), TWO_MODALITIES, 2)
    image_model = build_token_early_fusion(
        {"image": SHAPES["image"]}, NUM_CLASSES, dim=16, depth=2, heads=2, dropout=0.0
    )
    # Dropping the masked audio tokens must equal a model that never had audio.
    image_model.load_state_dict({k: v for k, v in model.state_dict().items() if "audio" not in k}, strict=True)
    assert_close(
        model.eval()(inputs, only_image).logits,
        image_model.eval()({"image": inputs["image"]}, only_image[:, 1:]).logits,
    )


def test_token_model_learned_tokens_get_gradients_when_absent() -> None:
    model = _token_model("learned")
    mask = torch.tensor([[True, False]] * 4)
    model(make_inputs(TWO_MODALITIES, 4), mask).logits.sum().backward()
    assert model.missing_tokens["image"].grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        pytest.param(
            lambda: _feature_model("mask"), r"`missing` in \['zero', 'learned'\], got `mask`", id="feature-missing"
        ),
        pytest.param(lambda: _token_model("mean"), r"`missing` in \['mask', 'zero', 'learned'\]", id="token-missing"),
        pytest.param(
            lambda: TokenEarlyFusionModel({"audio": SequenceTokenizer(3, 8, length=2)}, 2, dim=16, heads=2),
            r"tokenizer `audio` with `dim`=16",
            id="token-dim",
        ),
        pytest.param(
            lambda: TokenEarlyFusionModel({"image": ImagePatchTokenizer(dim=16)}, 2, dim=16, heads=3),
            r"`heads` >= 1 dividing `dim`=16, got heads=3",
            id="heads",
        ),
        pytest.param(
            lambda: FeatureEarlyFusionModel({"audio": nn.Linear(3, 4)}, 2),
            r"`audio` encoder to follow the Encoder protocol \(an int `out_dim`\)",
            id="no-out-dim",
        ),
    ],
)
def test_invalid_arguments_raise(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_wrong_mask_columns_raise() -> None:
    with pytest.raises(ValueError, match=r"`mask` of shape \[B, 2\]"):
        _token_model()(make_inputs(TWO_MODALITIES, 2), torch.ones(2, 3, dtype=torch.bool))


def test_feature_builder_wraps_the_given_encoders() -> None:
    encoders = {"image": MLPEncoder(28 * 28, 8), "text": MLPEncoder(12 * 20, 3)}
    model = build_feature_early_fusion(encoders, NUM_CLASSES, hidden_dim=16, missing="learned")
    assert model.extractors["image"] is encoders["image"]
    assert model.feature_dims == {"image": 8, "text": 3}
    assert model.classifier[0].in_features == 11 and model.classifier[-1].out_features == NUM_CLASSES


@pytest.mark.parametrize("family_kind", fusion_params("early"))
def test_safetensors_round_trip_gives_identical_outputs(family_kind: tuple[str, str], tmp_path) -> None:
    model = build_model(*family_kind).eval()
    torch.manual_seed(1)
    reloaded = save_and_reload(model, build_model(*family_kind), tmp_path / "model.safetensors")
    inputs, mask = make_inputs(TWO_MODALITIES, 5), mixed_mask(TWO_MODALITIES, 5)
    assert_close(reloaded.eval()(inputs, mask).logits, model(inputs, mask).logits, rtol=0, atol=0)


@pytest.mark.parametrize("family_kind", fusion_params("early"))
def test_training_reduces_the_loss(family_kind: tuple[str, str]) -> None:
    losses = train_losses(build_model(*family_kind))
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:5]) / 5, losses


def test_projector_is_linear_tanh_dropout_plus_residual_by_hand() -> None:
    # 003_*.txt Sec. 3.2: h = Linear(x); out = h + Dropout(Tanh(h)).
    projector = ResidualTanhProjector(2, 2, dropout=0.5)
    with torch.no_grad():
        projector.linear.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, -1.0]]))
        projector.linear.bias.copy_(torch.tensor([0.0, 0.5]))
    x = torch.tensor([[1.0, 2.0]])  # h = (1, -0.5)
    assert_close(projector.eval()(x), torch.tensor([[1 + math.tanh(1.0), -0.5 + math.tanh(-0.5)]]))
    projector.train()
    torch.manual_seed(3)
    out = projector(x)  # dropout zeroes or doubles each Tanh entry, the residual always stays
    branch = (out - torch.tensor([[1.0, -0.5]])) / torch.tensor([[math.tanh(1.0), math.tanh(-0.5)]])
    assert set(branch.round(decimals=4).flatten().tolist()) <= {0.0, 2.0}


@pytest.mark.parametrize("missing", ["zero", "learned"])
def test_feature_model_projects_the_enhanced_modality_and_replaces_it_after_projection(missing: str) -> None:
    extractors = {"audio": MLPEncoder(40 * 32, 6, hidden=(8,)), "image": MLPEncoder(28 * 28, 5, hidden=(8,))}
    model = build_feature_early_fusion(
        extractors, NUM_CLASSES, hidden_dim=16, missing=missing, projectors=["audio"], projector_dim=5
    ).eval()
    assert model.fused_dims == {"audio": 5, "image": 5} and model.classifier[0].in_features == 10
    assert set(model.projectors) == {"audio"}
    inputs, mask = make_inputs(TWO_MODALITIES, 4), mixed_mask(TWO_MODALITIES, 4)
    features = model.encode(inputs, mask)
    enhanced = model.projectors["audio"](features["audio"])
    fill = {m: model.missing_features[m] if missing == "learned" else torch.zeros(5) for m in TWO_MODALITIES}
    parts = [
        torch.where(mask[:, j : j + 1], z, fill[m])
        for j, (m, z) in enumerate((("audio", enhanced), ("image", features["image"])))
    ]
    assert_close(model(inputs, mask).logits, model.classifier(torch.cat(parts, dim=1)))
    with pytest.raises(ValueError, match=r"`projectors` among the modalities \['audio', 'image'\], got \['text'\]"):
        FeatureEarlyFusionModel(extractors, NUM_CLASSES, projectors=["text"])
