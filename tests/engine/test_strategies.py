"""Training strategies on real AV-digits batches, each loss checked against a hand computation."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from fusebench.config import RunConfig, apply_overrides, load_config, validate_config
from fusebench.data.batch import Batch
from fusebench.data.loader import as_compute
from fusebench.data.patterns import pattern_mask
from fusebench.engine.build import build_model
from fusebench.engine.datasets import DataSplits, load_splits
from fusebench.engine.module import FusionModule
from fusebench.engine.run import execute_run, load_lightning_weights
from fusebench.engine.strategies import (
    OGMGE,
    ContrastiveAlignment,
    ModalityDropout,
    blending_weights_from_runs,
    build_strategies,
    discrepancy_ratios,
    drop_chosen_modality,
    drop_one_modality,
    estimate_blending_weights,
    head_shares,
    modality_scores,
    ogm_coefficients,
)
from fusebench.models.losses import hard_negative_contrastive_loss, info_nce_loss
from fusebench.models.multimodal import ModelOutput
from fusebench.models.weights import save_encoder
from fusebench.tasks import Task

MODALITIES = ("audio", "image")
ROOT = Path(__file__).resolve().parents[2]
STRATEGY_CONFIGS = sorted((ROOT / "configs" / "avdigits" / "strategies").glob("*.yaml"))
LIMITS = {"train": 300, "validation": 100, "test": 100}


def raw_config(runs_dir: Path, **strategy: Any) -> dict[str, Any]:
    """Small CNNs of different widths (audio 32, image 24), 1 epoch on 300 training pairs."""
    return {
        "experiment": {"name": "strategies", "seed": 0, "runs_dir": str(runs_dir), "threads": 1},
        "data": {"limit": dict(LIMITS), "batch_size": 64},
        "model": {
            "encoders": {
                "audio": {"kind": "cnn", "out_dim": 32, "widths": [8, 16]},
                "image": {"kind": "cnn", "out_dim": 24, "widths": [8, 16]},
            },
            "fusion": {"type": "late", "method": "concat", "hidden_dim": 64, "dropout": 0.1},
        },
        "training": {"epochs": 1, "optimizer": {"lr": 0.003}, "strategy": strategy},
        "logging": {"progress_bar": False},
    }


def make_config(tmp_path: Path, overrides: list[str] | None = None, **strategy: Any) -> RunConfig:
    return validate_config(apply_overrides(raw_config(tmp_path, **strategy), overrides or []))


@pytest.fixture(scope="module")
def data() -> DataSplits:
    config = make_config(Path("unused"))
    return load_splits(config.data, MODALITIES, seed=0)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def real_batch(data: DataSplits, size: int = 48, mixed: bool = True) -> Batch:
    """The first ``size`` training pairs; with ``mixed``, every third sample lacks audio, every fifth image."""
    mask = torch.ones(size, 2, dtype=torch.bool)
    if mixed:
        mask[::3, 0] = False
        mask[1::5, 1] = False
    return Batch(
        {m: as_compute(x[:size]) for m, x in data.train.inputs.items()}, mask, data.train.target[:size], MODALITIES
    )


def model_and_strategies(config: RunConfig, data: DataSplits) -> tuple[nn.Module, list]:
    model = build_model(config, data.input_shapes, data.task.output_size)
    return model, build_strategies(config, model, data.modalities, data.task)


# ------------------------------------------------------------------ modality dropout
@pytest.mark.parametrize("p", [0.1, 0.5], ids=["p=0.1", "p=0.5"])
def test_modality_dropout_rate_uniform_choice_and_never_all_missing(p: float) -> None:
    mask = torch.ones(20_000, 2, dtype=torch.bool)
    dropped = drop_one_modality(mask, p, torch.Generator().manual_seed(3))
    assert bool(dropped.any(dim=1).all())  # never an empty pattern
    assert abs(float((~dropped).any(dim=1).float().mean()) - p) < 0.015
    per_modality = (~dropped).float().mean(dim=0)  # uniform choice: p / 2 each
    assert torch.allclose(per_modality, torch.full((2,), p / 2), atol=0.012)
    single = torch.tensor([[True, False], [False, True]]).repeat(500, 1)
    assert torch.equal(drop_one_modality(single, p, torch.Generator().manual_seed(3)), single)


def test_modality_dropout_changes_only_the_mask_deterministically_per_seed_and_step(data: DataSplits) -> None:
    batch = real_batch(data, mixed=False)
    strategy = ModalityDropout(0.5, MODALITIES, seed=7)
    first, again = strategy.transform_batch(batch, 11), strategy.transform_batch(batch, 11)
    assert torch.equal(first.mask, again.mask) and not bool(first.mask.all())
    assert not torch.equal(first.mask, strategy.transform_batch(batch, 12).mask)
    assert not torch.equal(first.mask, ModalityDropout(0.5, MODALITIES, seed=8).transform_batch(batch, 11).mask)
    assert first.inputs is batch.inputs and torch.equal(first.target, batch.target)


def test_paper_dropout_drops_only_the_chosen_modality_where_the_draw_is_below_p() -> None:
    """MMPT 004 Sec. 4.1: the chosen modality is dropped with probability p, the other never."""
    mask = torch.tensor([[True, True], [True, True], [True, False], [True, True], [False, True]])
    u = torch.rand(5, generator=torch.Generator().manual_seed(5))  # the draws the function makes
    dropped = drop_chosen_modality(mask, 0, 0.5, torch.Generator().manual_seed(5))
    # by hand: sample i loses audio (column 0) iff u_i < 0.5, it has audio and it has image too
    expected = mask.clone()
    for i in range(5):
        if u[i] < 0.5 and mask[i, 0] and mask[i, 1]:
            expected[i, 0] = False
    assert torch.equal(dropped, expected) and torch.equal(dropped[:, 1], mask[:, 1])
    assert torch.equal(dropped[2], mask[2])  # audio alone is never dropped (no empty pattern)
    many = drop_chosen_modality(torch.ones(20_000, 2, dtype=torch.bool), 1, 0.5, torch.Generator().manual_seed(1))
    assert many[:, 0].all() and abs(float((~many[:, 1]).float().mean()) - 0.5) < 0.015


def test_paper_dropout_is_the_default_protocol_with_p_one_half(tmp_path: Path, data: DataSplits) -> None:
    config = make_config(tmp_path, modality_dropout_of="image")
    assert config.training.strategy.modality_dropout == 0.5  # the paper's p
    _, (strategy,) = model_and_strategies(config, data)
    assert isinstance(strategy, ModalityDropout) and strategy.drop == "image" and strategy.p == 0.5
    batch = real_batch(data, mixed=False)
    out = strategy.transform_batch(batch, 3)
    assert out.mask[:, 0].all() and not out.mask[:, 1].all()  # audio kept, image dropped on some samples
    variant = make_config(tmp_path, modality_dropout=0.3, modality_dropout_of="any")
    assert model_and_strategies(variant, data)[1][0].drop == "any"
    with pytest.raises(ValueError, match="needs `modality_dropout_of`: a modality name"):
        make_config(tmp_path, modality_dropout=0.3)
    with pytest.raises(ValueError, match="drops nothing"):
        make_config(tmp_path, modality_dropout=0.0, modality_dropout_of="audio")
    with pytest.raises(ValueError, match="must be one of the run's modalities"):
        model_and_strategies(make_config(tmp_path, modality_dropout_of="text"), data)


# ----------------------------------------------------------- auxiliary unimodal heads
def test_aux_head_losses_equal_alpha_times_cross_entropy_on_present_samples(tmp_path: Path, data: DataSplits) -> None:
    alpha = {"audio": 0.7, "image": 0.3}
    config = make_config(tmp_path, aux_heads=alpha)
    model, strategies = model_and_strategies(config, data)
    batch = real_batch(data)
    output = model(batch.inputs, batch.mask)
    extras = strategies[0].extra_losses(model, output, batch)
    assert set(extras) == {"aux_audio", "aux_image"}
    for j, m in enumerate(MODALITIES):
        rows = batch.mask[:, j]
        expected = alpha[m] * F.cross_entropy(model.aux_heads[m](output.embeddings[m][rows]), batch.target[rows])
        torch.testing.assert_close(extras[f"aux_{m}"], expected)
    module = FusionModule(
        model,
        MODALITIES,
        Task("multiclass", 10),
        optimizer=config.training.optimizer,
        scheduler=config.training.scheduler,
        metric_names=["accuracy"],
    )
    optimised = {id(p) for group in module.configure_optimizers().param_groups for p in group["params"]}
    assert {id(p) for p in model.aux_heads.parameters()} <= optimised


# ------------------------------------------------------------------ gradient blending
def test_gradient_blending_loss_is_the_weighted_sum_of_heads(tmp_path: Path, data: DataSplits) -> None:
    config = make_config(tmp_path, gradient_blending={"audio+image": 0.5, "audio": 0.3, "image": 0.2})
    model, (strategy,) = model_and_strategies(config, data)
    batch = real_batch(data)
    output = model(batch.inputs, batch.mask)
    fused = F.cross_entropy(output.logits, batch.target)  # what the engine computes, scaled by w_mm
    total = strategy.task_loss_scale() * fused + sum(strategy.extra_losses(model, output, batch).values())
    expected = 0.5 * fused
    for j, (m, w) in enumerate([("audio", 0.3), ("image", 0.2)]):
        rows = batch.mask[:, j]
        expected = expected + w * F.cross_entropy(model.aux_heads[m](output.embeddings[m][rows]), batch.target[rows])
    torch.testing.assert_close(total, expected)


@pytest.mark.parametrize(
    ("overfitting", "expected_raw"),
    [
        # audio: dG = 2.1 - 1.5 = 0.6; O: 0.1 -> 0.5, dO = 0.4; image: dG = 0.45, O: 0.05 -> 0.10, dO = 0.05;
        # fused: dG = 0.8, O: 0.0 -> 0.4, dO = 0.4
        pytest.param("delta", {"audio": 0.6 / 0.16, "image": 0.45 / 0.0025, "audio+image": 0.8 / 0.16}, id="delta"),
        pytest.param("final", {"audio": 0.6 / 0.25, "image": 0.45 / 0.01, "audio+image": 0.8 / 0.16}, id="final"),
    ],
)
def test_blending_weights_follow_generalisation_over_squared_overfitting(
    tmp_path: Path, overfitting: str, expected_raw: dict[str, float]
) -> None:
    train = {"audio": [2.0, 1.6, 1.0], "image": [2.0, 1.7, 1.5], "audio+image": [2.0, 1.4, 0.8]}
    val = {"audio": [2.1, 1.8, 1.5], "image": [2.05, 1.8, 1.6], "audio+image": [2.0, 1.5, 1.2]}
    total = sum(expected_raw.values())
    expected = {k: v / total for k, v in expected_raw.items()}
    weights = estimate_blending_weights(train, val, overfitting=overfitting)  # type: ignore[arg-type]
    assert weights == pytest.approx(expected, rel=1e-9)
    for head in train:  # the same numbers read from run directories
        epochs = [
            {"epoch": i + 1, "train": {"loss": t}, "validation": {"loss": v}}
            for i, (t, v) in enumerate(zip(train[head], val[head], strict=True))
        ]
        (tmp_path / head).mkdir()
        (tmp_path / head / "epoch_metrics.json").write_text(json.dumps(epochs))
    from_runs = blending_weights_from_runs({h: tmp_path / h for h in train}, overfitting=overfitting)  # type: ignore[arg-type]
    assert from_runs == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="No head's validation loss fell"):
        estimate_blending_weights({"audio": [1.0, 1.0]}, {"audio": [1.0, 1.2]})


# ---------------------------------------------------------------------- distillation
def test_distillation_is_zero_for_the_teacher_itself_and_the_mean_squared_l2_otherwise(
    tmp_path: Path, data: DataSplits
) -> None:
    config = make_config(tmp_path)
    teacher_file = save_encoder(build_model(config, data.input_shapes, 10).encoders["audio"], tmp_path / "audio.st")
    # the teacher defaults to `model.pretrained`, so the student starts equal to it
    config = make_config(tmp_path, [f"model.pretrained.audio={teacher_file}"], distill={"audio": 2.0})
    model, (strategy,) = model_and_strategies(config, data)
    batch = real_batch(data)
    model.eval()  # train-mode BatchNorm would use batch statistics, the frozen teacher never does
    with torch.no_grad():
        zero = strategy.extra_losses(model, model(batch.inputs, batch.mask), batch)["distill_audio"]
        assert float(zero) == pytest.approx(0.0, abs=1e-10)
        teacher = [p.clone() for p in model.encoders["audio"].parameters()]
        for parameter in model.encoders["audio"].parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        output = model(batch.inputs, batch.mask)
        loss = strategy.extra_losses(model, output, batch)["distill_audio"]
        rows = batch.mask[:, 0]
        for parameter, original in zip(model.encoders["audio"].parameters(), teacher, strict=True):
            parameter.copy_(original)
        reference = model.encoders["audio"](batch.inputs["audio"][rows])
    expected = 2.0 * ((output.embeddings["audio"][rows] - reference) ** 2).sum(dim=1).mean()
    assert float(loss) > 0
    torch.testing.assert_close(loss, expected)


# ---------------------------------------------------------------------------- OGM-GE
def test_ogm_coefficients_follow_eq10_and_the_continuous_variant() -> None:
    # Peng et al., CVPR 2022, Eq. 10: k = 1 - tanh(alpha * rho) for rho > 1, else 1.
    two = ogm_coefficients({"audio": 30.0, "image": 10.0}, alpha=0.5)  # rho_audio = 3, rho_image = 1/3
    assert two == pytest.approx({"audio": 1 - math.tanh(1.5), "image": 1.0})
    near = ogm_coefficients({"audio": 12.0, "image": 10.0}, alpha=0.5)  # rho = 1.2: Eq. 10 jumps at rho = 1
    assert near == pytest.approx({"audio": 1 - math.tanh(0.6), "image": 1.0})
    continuous = ogm_coefficients({"audio": 12.0, "image": 10.0}, alpha=0.5, coefficient="continuous")
    assert continuous == pytest.approx({"audio": 1 - math.tanh(0.1), "image": 1.0})
    three = ogm_coefficients({"audio": 3.0, "image": 1.0, "text": 1.0}, alpha=0.5)  # vs the others' mean
    assert three == pytest.approx({"audio": 1 - math.tanh(1.5), "image": 1.0, "text": 1.0})
    assert ogm_coefficients({"audio": 5.0, "image": 5.0}, alpha=2.0) == {"audio": 1.0, "image": 1.0}  # rho = 1
    assert discrepancy_ratios({"audio": 30.0, "image": 10.0}) == pytest.approx({"audio": 3.0, "image": 1 / 3})


def _hand_sum_model() -> nn.Module:
    """Late sum fusion over two 2-d embeddings with identity projections and head, head bias (0.2, -0.2)."""
    from fusebench.models.fusion import build_late_fusion
    from fusebench.models.multimodal import MultimodalModel

    encoders = {m: nn.Linear(1, 2) for m in MODALITIES}
    for encoder in encoders.values():
        encoder.out_dim = 2  # type: ignore[assignment]
    fusion = build_late_fusion("sum", {"audio": 2, "image": 2}, hidden_dim=2, dropout=0.5)
    head = nn.Linear(2, 2)
    with torch.no_grad():
        for m in MODALITIES:
            fusion.project[m].weight.copy_(torch.eye(2))
            fusion.project[m].bias.zero_()
        head.weight.copy_(torch.eye(2))
        head.bias.copy_(torch.tensor([0.2, -0.2]))
    return MultimodalModel(encoders, fusion, head)


def test_ogm_head_shares_and_scores_by_hand() -> None:
    # Eq. 8: s_m = sum_i softmax(W_m z_m + b/2)_i[y_i]; z_audio = (1, 0), z_image = (0, 2), y = 0.
    model = _hand_sum_model()
    z = {"audio": torch.tensor([[1.0, 0.0]]), "image": torch.tensor([[0.0, 2.0]])}
    shares = head_shares(model, z)
    torch.testing.assert_close(shares["audio"], torch.tensor([[1.1, -0.1]]))  # (1, 0) + (0.1, -0.1)
    torch.testing.assert_close(shares["image"], torch.tensor([[0.1, 1.9]]))  # (0, 2) + (0.1, -0.1)
    model.eval()
    torch.testing.assert_close(shares["audio"] + shares["image"], model.fuse(z, torch.ones(1, 2, dtype=torch.bool)))
    scores = modality_scores(model, z, torch.tensor([0]), MODALITIES, "head_share")
    s_audio, s_image = 1 / (1 + math.exp(-1.2)), 1 / (1 + math.exp(1.8))  # two-class softmax of the shares
    assert scores == pytest.approx({"audio": s_audio, "image": s_image})
    k = ogm_coefficients(scores, alpha=0.1)
    assert k == pytest.approx({"audio": 1 - math.tanh(0.1 * s_audio / s_image), "image": 1.0})


def test_ogm_scores_by_hand_and_gradients_scaled_by_k(tmp_path: Path, data: DataSplits) -> None:
    config = make_config(tmp_path, ["model.fusion.method=sum"], ogm_ge=True, ogm_alpha=3.0, ogm_noise=False)
    model, (strategy,) = model_and_strategies(config, data)
    assert isinstance(strategy, OGMGE) and strategy.scores == "head_share" and strategy.coefficient == "eq10"
    batch = real_batch(data)
    strategy.transform_batch(batch, 5)
    model.encoders["image"].eval()  # a frozen encoder's eval mode must survive the scoring
    output = model(batch.inputs, batch.mask)
    assert strategy.extra_losses(model, output, batch) == {}
    assert model.training and not model.encoders["image"].training
    full = batch.mask.all(dim=1)
    n = int(full.sum())
    with torch.no_grad():  # Eq. 8 by hand: W (P_m z_m + c_m) + b / 2, softmax, true-class sum
        weight, bias = model.head.weight, model.head.bias
        scores = {
            m: float(
                (model.fusion.project[m](output.embeddings[m][full]) @ weight.T + bias / 2)
                .softmax(dim=1)[torch.arange(n), batch.target[full]]
                .sum()
            )
            for m in MODALITIES
        }
    assert strategy.coefficients == pytest.approx(ogm_coefficients(scores, 3.0))
    F.cross_entropy(output.logits, batch.target).backward()
    before = {m: [p.grad.clone() for p in model.encoders[m].parameters()] for m in MODALITIES}
    strategy.coefficients = {"audio": 0.25, "image": 1.0}  # audio dominant
    strategy.after_backward(model)
    for m, k in (("audio", 0.25), ("image", 1.0)):
        for parameter, grad in zip(model.encoders[m].parameters(), before[m], strict=True):
            torch.testing.assert_close(parameter.grad, k * grad)
    assert set(strategy.log_values()) == {"ogm_k_audio", "ogm_k_image", "ogm_rho_audio", "ogm_rho_image"}


def test_ogm_masked_fuse_variant_scores_with_one_modality_present(tmp_path: Path, data: DataSplits) -> None:
    config = make_config(tmp_path, ogm_ge=True, ogm_alpha=3.0, ogm_scores="masked_fuse", ogm_coefficient="continuous")
    model, (strategy,) = model_and_strategies(config, data)  # concat fusion: only the variant applies
    batch = real_batch(data)
    output = model(batch.inputs, batch.mask)
    strategy.extra_losses(model, output, batch)
    full = batch.mask.all(dim=1)
    model.eval()
    with torch.no_grad():
        scores = {
            m: float(
                model.fuse(
                    {k: z[full] for k, z in output.embeddings.items()}, pattern_mask((m,), MODALITIES, int(full.sum()))
                )
                .softmax(dim=1)[torch.arange(int(full.sum())), batch.target[full]]
                .sum()
            )
            for m in MODALITIES
        }
    assert strategy.coefficients == pytest.approx(ogm_coefficients(scores, 3.0, "continuous"))


def test_ogm_window_and_weight_tensors_only(tmp_path: Path, data: DataSplits) -> None:
    config = make_config(
        tmp_path,
        ["model.fusion.method=sum"],
        ogm_ge=True,
        ogm_noise=False,
        ogm_parameters="weights",
        ogm_start_epoch=2,
        ogm_end_epoch=3,
    )
    model, (strategy,) = model_and_strategies(config, data)
    batch = real_batch(data, mixed=False)
    for epoch, active in ((1, False), (2, True), (3, True), (4, False)):
        strategy.on_epoch_start(epoch)
        model.zero_grad()
        output = model(batch.inputs, batch.mask)
        strategy.extra_losses(model, output, batch)
        F.cross_entropy(output.logits, batch.target).backward()
        before = {name: p.grad.clone() for name, p in model.encoders.named_parameters()}
        strategy.coefficients = {"audio": 0.5, "image": 0.5}
        strategy.after_backward(model)
        for name, parameter in model.encoders.named_parameters():
            scaled = active and parameter.dim() >= 2  # conv kernels and linear weights, never biases / BN
            torch.testing.assert_close(parameter.grad, 0.5 * before[name] if scaled else before[name])
    assert any(p.dim() < 2 for p in model.encoders.parameters())


def test_ogm_ge_noise_has_the_gradient_std_and_is_seeded(tmp_path: Path, data: DataSplits) -> None:
    config = make_config(tmp_path, ["model.fusion.method=sum"], ogm_ge=True)
    model, (strategy,) = model_and_strategies(config, data)
    weights = {m: model.encoders[m].project.weight for m in MODALITIES}  # [32 | 24, 256]
    grads = {m: torch.randn_like(w) for m, w in weights.items()}
    results = []
    for _ in range(2):
        for parameter in model.parameters():
            parameter.grad = None
        for m, w in weights.items():
            w.grad = grads[m].clone()
        strategy.step, strategy.coefficients = 3, {"audio": 0.5, "image": 1.0}
        strategy.after_backward(model)
        results.append({m: w.grad.clone() for m, w in weights.items()})
    for m, k in (("audio", 0.5), ("image", 1.0)):  # noise on every encoder, as in the authors' code
        torch.testing.assert_close(results[0][m], results[1][m])
        noise = results[0][m] - k * grads[m]
        assert float(noise.std() / grads[m].std()) == pytest.approx(1.0, abs=0.05)


def test_ogm_rejects_fusions_without_head_shares_and_non_multiclass_tasks(tmp_path: Path, data: DataSplits) -> None:
    with pytest.raises(ValueError, match=r"ogm_scores: head_share.*got `ConcatFusion`.*method` `sum`.*masked_fuse"):
        model_and_strategies(make_config(tmp_path, ogm_ge=True), data)
    config = make_config(tmp_path, ["model.fusion.method=sum"], ogm_ge=True)
    model = build_model(config, data.input_shapes, data.task.output_size)
    regression = Task(kind="regression", output_size=1)
    with pytest.raises(ValueError, match="softmax score of the true class.*needs a multiclass task.*regression"):
        build_strategies(config, model, data.modalities, task=regression)


# ----------------------------------------------------------------------- contrastive
def _feature_early_config(tmp_path: Path, **contrastive: Any) -> RunConfig:
    """Feature early fusion, both extractors 24 wide, the paper's projector on audio."""
    return make_config(
        tmp_path,
        [
            "model.encoders.audio.out_dim=24",
            "model.fusion.type=early",
            "model.fusion.method=feature",
            "model.fusion.params={projectors: [audio]}",
        ],
        contrastive={"anchors": ["image"], "other": "audio", **contrastive},
    )


def test_contrastive_early_fusion_loss_is_the_papers_from_anchor_rows_to_the_projected_modality(
    tmp_path: Path, data: DataSplits
) -> None:
    config = _feature_early_config(tmp_path, weight=0.5, temperature=0.2)
    assert config.training.strategy.contrastive.eps == 1e-7 and not config.training.strategy.contrastive.symmetric
    model, (strategy,) = model_and_strategies(config, data)
    assert isinstance(strategy, ContrastiveAlignment) and not hasattr(model, "contrastive_projections")
    batch = real_batch(data)
    model.eval()  # the projector's dropout off, so the two forward passes below agree
    output = model(batch.inputs, batch.mask)
    loss = strategy.extra_losses(model, output, batch)["contrastive"]
    rows = batch.mask.all(dim=1)
    anchor = output.embeddings["image"][rows]  # the anchor is not projected
    h = model.projectors["audio"].linear(output.embeddings["audio"][rows])  # Linear
    enhanced = h + torch.tanh(h)  # -> Tanh -> (Dropout) + residual to the projection
    expected = hard_negative_contrastive_loss(anchor, enhanced, 0.2, k=5, eps=1e-7, symmetric=False)
    torch.testing.assert_close(loss, 0.5 * expected)
    # the classifier sees the enhanced audio: fuse == classifier(concat(enhanced audio, image))
    full = torch.ones(batch.size, 2, dtype=torch.bool)
    features = {m: z for m, z in model.encode(batch.inputs).items()}
    h_all = model.projectors["audio"].linear(features["audio"])
    torch.testing.assert_close(
        model.fuse(features, full), model.classifier(torch.cat([h_all + torch.tanh(h_all), features["image"]], dim=1))
    )


def test_contrastive_two_anchors_are_averaged_each_on_its_own_present_pairs(tmp_path: Path, data: DataSplits) -> None:
    from fusebench.engine.strategies.contrastive import ContrastiveAlignment as Alignment
    from fusebench.models.losses import HardNegativeContrastiveLoss

    names = ("audio", "image", "text")
    loss = HardNegativeContrastiveLoss(temperature=0.5, k=2)
    strategy = Alignment(["image", "text"], "audio", names, loss, weight=2.0)
    torch.manual_seed(1)
    embeddings = {m: torch.randn(6, 4) for m in names}
    mask = torch.ones(6, 3, dtype=torch.bool)
    mask[0, 1] = False  # sample 0 lacks image
    mask[5, 2] = False  # sample 5 lacks text
    batch = Batch({m: torch.zeros(6, 1) for m in names}, mask, torch.zeros(6, dtype=torch.long), names)
    output = ModelOutput(torch.zeros(6, 3), embeddings)
    got = strategy.extra_losses(nn.Module(), output, batch)["contrastive"]
    audio = embeddings["audio"]
    image_loss = hard_negative_contrastive_loss(embeddings["image"][1:], audio[1:], 0.5, 2)  # rows 1..5
    text_loss = hard_negative_contrastive_loss(embeddings["text"][:5], audio[:5], 0.5, 2)  # rows 0..4
    torch.testing.assert_close(got, 2.0 * (image_loss + text_loss) / 2)  # (text_loss + image_loss) / 2
    only_one = batch.with_mask(torch.tensor([[True, True, False]] * 6))  # text absent everywhere: image alone
    torch.testing.assert_close(
        strategy.extra_losses(nn.Module(), output, only_one)["contrastive"],
        2.0 * hard_negative_contrastive_loss(embeddings["image"], embeddings["audio"], 0.5, 2),
    )


def test_contrastive_only_stage_scales_the_task_loss_to_zero(tmp_path: Path, data: DataSplits) -> None:
    config = _feature_early_config(tmp_path, contrastive_epochs=1)
    config = config.model_copy(update={"training": config.training.model_copy(update={"epochs": 2})})
    result = execute_run(config, tmp_path / "stage", data=data)

    def cross_entropy(epoch: dict[str, Any]) -> float:  # the epoch's mean training cross-entropy
        groups = [v for k, v in epoch["train"].items() if isinstance(v, dict) and "count" in v]
        return sum(g["loss"] * g["count"] for g in groups) / sum(g["count"] for g in groups)

    first, second = result.epoch_metrics
    # epoch 1: the loss is 0.1 x contrastive alone (far below the ~2.3 cross-entropy of an untrained
    # classifier); epoch 2: cross-entropy + 0.1 x contrastive
    assert first["train"]["loss"] < 0.5 < cross_entropy(first)
    assert second["train"]["loss"] > cross_entropy(second)
    _, (strategy,) = model_and_strategies(config, data)
    strategy.on_epoch_start(1)
    assert strategy.task_loss_scale() == 0.0
    strategy.on_epoch_start(2)
    assert strategy.task_loss_scale() == 1.0


@pytest.mark.parametrize("kind", ["hard_negative", "infonce"])
def test_contrastive_late_fusion_projectors_enhanced_and_linear(tmp_path: Path, data: DataSplits, kind: str) -> None:
    # enhanced (default): the paper's projector on `other` only, to the anchor's width (audio 32 -> image 24)
    config = make_config(
        tmp_path,
        contrastive={
            "anchors": ["image"],
            "other": "audio",
            "kind": kind,
            "weight": 0.5,
            "temperature": 0.2,
            "dropout": 0.0,
        },
    )
    model, (strategy,) = model_and_strategies(config, data)
    projector = model.contrastive_projections["audio"]
    assert set(model.contrastive_projections) == {"audio"} and projector.out_dim == 24
    batch = real_batch(data)
    output = model(batch.inputs, batch.mask)
    loss = strategy.extra_losses(model, output, batch)["contrastive"]
    rows = batch.mask.all(dim=1)
    a, o = output.embeddings["image"][rows], projector(output.embeddings["audio"][rows])
    reference = (
        hard_negative_contrastive_loss(a, o, 0.2, k=5)
        if kind == "hard_negative"
        else info_nce_loss(a, o, 0.2, symmetric=False)
    )
    torch.testing.assert_close(loss, 0.5 * reference)
    absent = {m: z.clone() for m, z in output.embeddings.items()}
    absent["audio"][~rows] = 1e3 * torch.randn_like(absent["audio"][~rows])  # absent rows never count
    torch.testing.assert_close(
        strategy.extra_losses(model, output._replace(embeddings=absent), batch)["contrastive"], loss
    )
    one_pair = batch.with_mask(torch.tensor([[True, True]] + [[True, False]] * (batch.size - 1)))
    assert float(strategy.extra_losses(model, output, one_pair)["contrastive"]) == 0.0
    # linear (fusebench's CLIP-style variant): both sides projected linearly to the smaller width
    linear = make_config(tmp_path, contrastive={"anchors": ["image"], "other": "audio", "projector": "linear"})
    model, (strategy,) = model_and_strategies(linear, data)
    projections = model.contrastive_projections
    assert projections["audio"].out_features == projections["image"].out_features == 24


# ------------------------------------------------------------- end to end + checkpoints
def test_all_strategies_train_on_real_data_and_survive_checkpoints(tmp_path: Path, data: DataSplits) -> None:
    teacher = save_encoder(
        build_model(make_config(tmp_path), data.input_shapes, 10).encoders["image"], tmp_path / "image.safetensors"
    )
    strategy = {
        "modality_dropout": 0.3,
        "modality_dropout_of": "any",
        "aux_heads": {"audio": 0.5, "image": 0.5},
        "distill": {"image": 0.1},
        "distill_teachers": {"image": str(teacher)},
        "ogm_ge": True,
        "ogm_scores": "masked_fuse",
        "contrastive": {"anchors": ["image"], "other": "audio", "weight": 0.1},
    }
    config = make_config(tmp_path, **strategy)
    result = execute_run(config, tmp_path / "all", data=data)
    assert result.status == "completed" and math.isfinite(result.epoch_metrics[0]["train"]["loss"])
    assert result.test_metrics["audio+image"]["count"] == LIMITS["test"]
    checkpoint = torch.load(tmp_path / "all" / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    prefixes = {".".join(k.split(".")[:2]) for k in checkpoint}
    assert {"model.aux_heads", "model.contrastive_projections"} <= prefixes
    model, strategies = model_and_strategies(config, data)
    module = FusionModule(
        model,
        MODALITIES,
        Task("multiclass", 10),
        optimizer=config.training.optimizer,
        scheduler=config.training.scheduler,
        metric_names=["accuracy"],
        strategies=strategies,
    )
    load_lightning_weights(module, tmp_path / "all" / "checkpoints" / "best.ckpt")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, checkpoint[f"model.{key}"])
    again = execute_run(config, tmp_path / "all", skip_train=True, data=data)  # `fusebench evaluate`
    assert again.test_metrics == result.test_metrics
    blend = make_config(tmp_path, gradient_blending={"audio+image": 1.0, "audio": 0.5, "image": 0.5})
    assert execute_run(blend, tmp_path / "blend", data=data).status == "completed"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        pytest.param(
            ["training.strategy.aux_heads.text=1.0"],
            r"`training.strategy.aux_heads.text` names a modality this run does not have; "
            r"its modalities are `audio`, `image`",
            id="aux",
        ),
        pytest.param(
            ["training.strategy.gradient_blending.audio=1.0"],
            "must weigh the fused head `audio\\+image`",
            id="blend-no-fused",
        ),
        pytest.param(
            ["training.strategy.gradient_blending={audio+image: 1, audio+text: 1}"],
            "keys must be in",
            id="blend-pattern",
        ),
        pytest.param(
            ["training.strategy.gradient_blending={audio+image: 1}", "training.strategy.aux_heads.audio=1"],
            "either `training.strategy.aux_heads` or",
            id="aux-and-blend",
        ),
        pytest.param(["training.strategy.distill.audio=1.0"], "distill.audio` needs a teacher", id="teacher"),
        pytest.param(["training.strategy.distill_teachers.audio=x.safetensors"], "no weight in", id="teacher-weight"),
        pytest.param(
            ["training.strategy.contrastive={anchors: [text], other: audio}"],
            "contrastive.anchors` must name this run's modalities",
            id="contrastive-modality",
        ),
        pytest.param(
            ["training.strategy.contrastive={anchor: image, other: audio}"],
            r"unknown key `training.strategy.contrastive.anchor` \(did you mean "
            r"`training.strategy.contrastive.anchors`\?\)",
            id="anchor-key",
        ),
        pytest.param(
            ["training.strategy.contrastive={anchors: [image], other: audio, kind: triplet}"],
            r"contrastive.kind` is `triplet`, which is not registered \(expected one of "
            r"\['hard_negative', 'infonce'\]\)",
            id="contrastive-kind",
        ),
        pytest.param(
            ["training.strategy.contrastive={anchors: [image], other: audio, kind: infonce, k: 3}"],
            r"unknown key `training.strategy.contrastive.k`",
            id="contrastive-key",
        ),
        pytest.param(
            ["training.strategy.contrastive={anchors: [image], other: audio, dim: 8}"],
            r"unknown key `training.strategy.contrastive.dim`",
            id="contrastive-dim-enhanced",
        ),
        pytest.param(
            ["training.strategy.contrastive={anchors: [image], other: audio, projector: none}"],
            r"widths must agree with `audio` \(32\)",
            id="contrastive-widths",
        ),
        pytest.param(
            ["training.strategy.contrastive={anchors: [image], other: audio, contrastive_epochs: 1}"],
            r"contrastive_epochs` is 1, but `training.epochs` is 1",
            id="contrastive-stage",
        ),
        pytest.param(
            [
                "training.strategy.contrastive={anchors: [image], other: audio, contrastive_epochs: 1}",
                "training.epochs=3",
                "training.early_stopping.enabled=true",
            ],
            "set `training.early_stopping.enabled: false`",
            id="contrastive-stage-stopping",
        ),
        pytest.param(["training.strategy.modality_dropout=1.5"], "modality_dropout", id="dropout"),
        pytest.param(
            [
                "training.strategy.ogm_ge=true",
                "model.fusion.method=sum",
                "model.freeze.audio=true",
                "model.freeze.image=true",
            ],
            "frozen",
            id="ogm-frozen",
        ),
    ],
)
def test_invalid_strategy_settings_name_the_key(
    tmp_path: Path, data: DataSplits, overrides: list[str], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        model_and_strategies(make_config(tmp_path, overrides), data)


def test_two_modality_strategies_reject_a_pretraining_run(tmp_path: Path, data: DataSplits) -> None:
    raw = raw_config(tmp_path, ogm_ge=True)
    raw["model"]["encoders"].pop("image")
    raw["pretrain"] = {"modality": "audio"}
    config = validate_config(raw)
    with pytest.raises(ValueError, match="ogm_ge` needs at least two modalities"):
        build_strategies(config, build_model(config, data.input_shapes, 10), ("audio",), data.task)


@pytest.mark.parametrize("path", STRATEGY_CONFIGS, ids=[p.stem for p in STRATEGY_CONFIGS])
def test_shipped_strategy_configs_build_their_strategies(path: Path, tmp_path: Path, data: DataSplits) -> None:
    config = load_config(path)
    settings = config.training.strategy
    overrides = []
    if settings.distill:  # teachers of the shipped encoder shape, instead of the runs the comment describes
        for m in settings.distill:
            encoder = build_model(config, data.input_shapes, data.task.output_size).encoders[m]
            overrides.append(f"training.strategy.distill_teachers.{m}={save_encoder(encoder, tmp_path / f'{m}.st')}")
    if settings.gradient_blending == "auto":  # resolved by the run; any weights stand in here
        overrides.append("training.strategy.gradient_blending={audio+image: 0.5, audio: 0.25, image: 0.25}")
    config = load_config(path, overrides)
    model = build_model(config, data.input_shapes, data.task.output_size)
    assert build_strategies(config, model, data.modalities, data.task)
