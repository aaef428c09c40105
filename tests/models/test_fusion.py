"""Late fusions against hand-computed values, the TFN/LMF identities and the mask contract."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from tests._helpers.fusion_cases import (
    ALL_FUSIONS,
    LATE_KINDS,
    MASK_AWARE_LATE_KINDS,
    THREE_MODALITIES,
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
from torch import Tensor, nn
from torch.testing import assert_close

from fusebench.models.fusion import (
    LATE_FUSIONS,
    AttentionFusion,
    GatedFusion,
    LateFusion,
    LowRankFusion,
    TensorFusion,
    build_late_fusion,
)
from fusebench.models.registry import FUSION_KINDS

DIMS = {"audio": 6, "image": 5, "text": 4}


@pytest.fixture(autouse=True)
def _seed() -> Iterator[None]:
    torch.manual_seed(0)
    with single_thread():
        yield


def _embeddings(modalities: tuple[str, ...], batch: int = 4) -> dict[str, Tensor]:
    return {m: torch.randn(batch, DIMS[m]) for m in modalities}


def _fusion(kind: str, modalities: tuple[str, ...], **kwargs) -> LateFusion:
    return build_late_fusion(kind, {m: DIMS[m] for m in modalities}, hidden_dim=8, **kwargs).eval()


def test_fusion_kinds_cover_every_fusion() -> None:
    expected = {(family, kind) for family, kinds in FUSION_KINDS.items() for kind in kinds}
    assert set(ALL_FUSIONS) == expected
    assert LATE_FUSIONS == LATE_KINDS


def test_unknown_kind_names_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"late fusion `kind` in .*'low_rank'.*got `median`"):
        build_late_fusion("median", {"audio": 3})


def test_unknown_option_is_an_error_not_ignored() -> None:
    with pytest.raises(TypeError, match="rank"):
        build_late_fusion("sum", {"audio": 3}, rank=2)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        pytest.param("tensor", r"`tensor_dim` >= 1", id="tensor"),
        pytest.param("low_rank", r"`rank` >= 1", id="low_rank"),
    ],
)
def test_bad_options_raise(kind: str, message: str) -> None:
    option = {"tensor": {"tensor_dim": 0}, "low_rank": {"rank": 0}}[kind]
    with pytest.raises(ValueError, match=message):
        build_late_fusion(kind, {"audio": 3}, **option)


# Concat is left out: it ignores the mask by design (the thesis baseline, API unchanged).
@pytest.mark.parametrize("kind", [k for k in LATE_KINDS if k != "concat"])
def test_mask_with_wrong_columns_raises(kind: str) -> None:
    fusion = _fusion(kind, TWO_MODALITIES)
    with pytest.raises(ValueError, match=r"Expected `mask` of shape \[B, 2\]"):
        fusion(_embeddings(TWO_MODALITIES), torch.ones(4, 3, dtype=torch.bool))


@pytest.mark.parametrize("modalities", [TWO_MODALITIES, THREE_MODALITIES], ids=["M2", "M3"])
@pytest.mark.parametrize("kind", LATE_KINDS)
def test_output_shape_for_every_pattern(kind: str, modalities: tuple[str, ...]) -> None:
    fusion = _fusion(kind, modalities)
    for pattern in [p.values[0] for p in pattern_params(modalities)]:
        out = fusion(_embeddings(modalities), mask_for(pattern, modalities, 4))
        assert out.shape == (4, fusion.out_dim) == (4, 8)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("modalities", [TWO_MODALITIES, THREE_MODALITIES], ids=["M2", "M3"])
@pytest.mark.parametrize("kind", MASK_AWARE_LATE_KINDS)
def test_mask_aware_fusion_ignores_absent_embeddings(kind: str, modalities: tuple[str, ...]) -> None:
    fusion = _fusion(kind, modalities)
    embeddings = _embeddings(modalities, batch=7)
    mask = mixed_mask(modalities, 7)
    changed = {
        m: torch.where(mask[:, [j]], embeddings[m], 1e3 * torch.randn_like(embeddings[m]))
        for j, m in enumerate(modalities)
    }
    assert_close(fusion(changed, mask), fusion(embeddings, mask))


@pytest.mark.parametrize("modalities", [TWO_MODALITIES, THREE_MODALITIES], ids=["M2", "M3"])
@pytest.mark.parametrize("family_kind", fusion_params("late"))
def test_model_ignores_absent_inputs_for_every_pattern(
    family_kind: tuple[str, str], modalities: tuple[str, ...]
) -> None:
    model = build_model(*family_kind, modalities=modalities).eval()
    inputs = make_inputs(modalities, 3)
    for pattern in [p.values[0] for p in pattern_params(modalities)]:
        mask = mask_for(pattern, modalities, 3)
        out = model(inputs, mask)
        assert out.logits.shape == (3, 4)
        assert_close(model(perturb_absent(inputs, mask, modalities), mask).logits, out.logits)


def _set_linear(layer: nn.Linear, weight: list[list[float]], bias: list[float]) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))


def _fixed(kind: str) -> LateFusion:
    """Projections h_audio = [[1, 0], [0, 2]] z + [0, 1], h_image = [[0, 1], [1, 0]] z + [1, 0]."""
    fusion = build_late_fusion(kind, {"audio": 2, "image": 2}, hidden_dim=2).eval()
    _set_linear(fusion.project["audio"], [[1, 0], [0, 2]], [0, 1])
    _set_linear(fusion.project["image"], [[0, 1], [1, 0]], [1, 0])
    return fusion


# audio z = [1, 2] -> h_audio = [1, 5]; image z = [3, -1] -> h_image = [0, 3].
FIXED_INPUT = {"audio": torch.tensor([[1.0, 2.0]]), "image": torch.tensor([[3.0, -1.0]])}
HAND_COMPUTED = {
    ("sum", ("audio", "image")): [1.0, 8.0],
    ("sum", ("audio",)): [1.0, 5.0],
    ("sum", ("image",)): [0.0, 3.0],
    ("mean", ("audio", "image")): [0.5, 4.0],
    ("mean", ("audio",)): [1.0, 5.0],
    ("mean", ("image",)): [0.0, 3.0],
    ("max", ("audio", "image")): [1.0, 5.0],
    ("max", ("audio",)): [1.0, 5.0],
    ("max", ("image",)): [0.0, 3.0],
}


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [pytest.param(kind, pattern, id=f"{kind}-{'+'.join(pattern)}") for kind, pattern in HAND_COMPUTED],
)
def test_pooling_matches_hand_computed_values(kind: str, pattern: tuple[str, ...]) -> None:
    out = _fixed(kind)(FIXED_INPUT, mask_for(pattern, TWO_MODALITIES, 1))
    assert_close(out, torch.tensor([HAND_COMPUTED[(kind, pattern)]]))


@pytest.mark.parametrize("pattern", pattern_params(TWO_MODALITIES))
def test_attention_matches_hand_computed_values(pattern: tuple[str, ...]) -> None:
    fusion = _fixed("attention")
    assert isinstance(fusion, AttentionFusion)
    _set_linear(fusion.score[0], [[1, 0], [0, 1]], [0, 0])
    with torch.no_grad():
        fusion.score[2].weight.copy_(torch.tensor([[1.0, 0.0]]))
    # Scores: u . tanh(h) = tanh(1) for audio, tanh(0) = 0 for image.
    audio_weight = math.exp(math.tanh(1)) / (math.exp(math.tanh(1)) + 1.0)
    weights = {("audio", "image"): (audio_weight, 1 - audio_weight), ("audio",): (1.0, 0.0), ("image",): (0.0, 1.0)}[
        pattern
    ]
    expected = [weights[0] * 1 + weights[1] * 0, weights[0] * 5 + weights[1] * 3]
    mask = mask_for(pattern, TWO_MODALITIES, 1)
    assert_close(fusion(FIXED_INPUT, mask), torch.tensor([expected]))
    assert_close(fusion.attention_weights(FIXED_INPUT, mask), torch.tensor([weights]))


@pytest.mark.parametrize("modalities", [TWO_MODALITIES, THREE_MODALITIES], ids=["M2", "M3"])
@pytest.mark.parametrize("kind", ["gated", "attention"])
def test_weights_sum_to_one_over_present_modalities(kind: str, modalities: tuple[str, ...]) -> None:
    fusion = _fusion(kind, modalities)
    embeddings = _embeddings(modalities, batch=7)
    mask = mixed_mask(modalities, 7)  # [B, M]
    if isinstance(fusion, GatedFusion):
        weights = fusion.gate_weights(embeddings, mask)  # [B, M, H]
    else:
        weights = fusion.attention_weights(embeddings, mask).unsqueeze(2)  # [B, M, 1]
    assert_close(weights.sum(dim=1), torch.ones(7, weights.shape[2]))
    assert (weights[~mask] == 0).all()
    assert (weights[mask] > 0).all()


@pytest.mark.parametrize("pattern", pattern_params(TWO_MODALITIES))
def test_gated_two_modalities_is_the_papers_unit(pattern: tuple[str, ...]) -> None:
    fusion = _fusion("gated", TWO_MODALITIES)
    assert isinstance(fusion, GatedFusion)
    z = _embeddings(TWO_MODALITIES)
    mask = mask_for(pattern, TWO_MODALITIES, 4)
    h_audio = torch.tanh(z["audio"] @ fusion.transform["audio"].weight.T)
    h_image = torch.tanh(z["image"] @ fusion.transform["image"].weight.T)
    gate = torch.sigmoid(fusion.gate(torch.cat([z["audio"], z["image"]], dim=1)))
    expected = {("audio", "image"): gate * h_audio + (1 - gate) * h_image, ("audio",): h_audio, ("image",): h_image}[
        pattern
    ]
    assert_close(fusion(z, mask), expected)


@pytest.mark.parametrize("modalities", [TWO_MODALITIES, THREE_MODALITIES], ids=["M2", "M3"])
def test_tensor_fusion_is_the_outer_product_of_augmented_embeddings(modalities: tuple[str, ...]) -> None:
    fusion = _fusion("tensor", modalities, tensor_dim=3)
    assert isinstance(fusion, TensorFusion)
    z = _embeddings(modalities)
    ones = torch.ones(4, 1)
    augmented = [torch.cat([fusion.project[m](z[m]), ones], dim=1) for m in modalities]
    equation = {2: "bi,bj->bij", 3: "bi,bj,bk->bijk"}[len(modalities)]
    product = torch.einsum(equation, *augmented).reshape(4, -1)
    assert fusion.product_dim == product.shape[1] == 4 ** len(modalities)
    assert_close(fusion.outer_product(z), product)
    mask = mask_for(modalities, modalities, 4)
    assert_close(fusion(z, mask), torch.relu(fusion.post[0](product)))


def test_tensor_fusion_without_projection_by_explicit_indices() -> None:
    fusion = _fusion("tensor", TWO_MODALITIES, tensor_dim=None)
    assert isinstance(fusion, TensorFusion)
    z = {"audio": torch.randn(2, 6), "image": torch.randn(2, 5)}
    product = fusion.outer_product(z)  # [2, 7 * 6]
    for b in range(2):
        a1 = [*z["audio"][b].tolist(), 1.0]
        i1 = [*z["image"][b].tolist(), 1.0]
        expected = [a * i for a in a1 for i in i1]
        assert_close(product[b], torch.tensor(expected))


@pytest.mark.parametrize("modalities", [TWO_MODALITIES, THREE_MODALITIES], ids=["M2", "M3"])
def test_low_rank_fusion_equals_tensor_fusion_with_a_rank_r_weight(modalities: tuple[str, ...]) -> None:
    fusion = _fusion("low_rank", modalities, rank=3)
    assert isinstance(fusion, LowRankFusion)
    z = _embeddings(modalities)
    ones = torch.ones(4, 1)
    augmented = [torch.cat([z[m], ones], dim=1) for m in modalities]
    factors = [fusion.factors[m] for m in modalities]  # [r, D_m + 1, H]
    letters = "ijk"[: len(modalities)]
    weight = torch.einsum(  # the full TFN weight tensor sum_r lambda_r (x)_m w_m^(r): [.., H]
        "r," + ",".join(f"r{c}h" for c in letters) + f"->{letters}h",
        fusion.rank_weights[0],
        *factors,
    )
    product = torch.einsum(",".join(f"b{c}" for c in letters) + f"->b{letters}", *augmented)
    expected = torch.einsum(f"b{letters},{letters}h->bh", product, weight) + fusion.bias
    assert_close(fusion(z, mask_for(modalities, modalities, 4)), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family_kind", fusion_params("late"))
def test_safetensors_round_trip_gives_identical_outputs(family_kind: tuple[str, str], tmp_path) -> None:
    model = build_model(*family_kind).eval()
    torch.manual_seed(1)
    reloaded = save_and_reload(model, build_model(*family_kind), tmp_path / "model.safetensors")
    inputs, mask = make_inputs(TWO_MODALITIES, 5), mixed_mask(TWO_MODALITIES, 5)
    assert_close(reloaded.eval()(inputs, mask).logits, model(inputs, mask).logits, rtol=0, atol=0)


@pytest.mark.parametrize("family_kind", fusion_params("late"))
def test_training_reduces_the_loss(family_kind: tuple[str, str]) -> None:
    losses = train_losses(build_model(*family_kind))
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:5]) / 5, losses
