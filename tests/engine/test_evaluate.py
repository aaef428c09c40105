"""All-pattern evaluation: encoding once per batch must equal running each pattern separately."""

from __future__ import annotations

import pytest
import torch

from fusebench.data.loader import TensorLoader
from fusebench.data.patterns import all_patterns, pattern_mask, pattern_name
from fusebench.engine.evaluate import evaluate_patterns
from fusebench.models.encoder_specs import CNNOptions, build_encoder_from
from fusebench.models.fusion import ConcatFusion
from fusebench.models.missing import build_missing_strategy
from fusebench.models.multimodal import MultimodalModel


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _model(strategy: str) -> MultimodalModel:
    encoders = {
        "audio": build_encoder_from(CNNOptions(out_dim=16, widths=[8, 16]), (1, 40, 40)),
        "image": build_encoder_from(CNNOptions(out_dim=24, widths=[8, 16]), (1, 28, 28)),
    }
    dims = {"audio": 16, "image": 24}
    model = MultimodalModel(
        encoders, ConcatFusion(dims, 32), torch.nn.Linear(32, 10), build_missing_strategy(strategy, dims)
    )
    if strategy == "learned":
        with torch.no_grad():
            for token in model.missing.tokens.values():
                token.normal_()
    return model


@pytest.mark.parametrize("strategy", ["zero", "learned", "mean"])
def test_all_pattern_evaluation_equals_separate_runs(avdigits_small, strategy: str) -> None:
    split = avdigits_small["test"]
    model = _model(strategy)
    model.train()
    for _ in range(2):  # give the training-mean strategy something to average, and BN running stats
        model(split.inputs, torch.ones(len(split.target), 2, dtype=torch.bool))
    loader = TensorLoader(split.inputs, split.target, batch_size=37)
    evaluation = evaluate_patterns(model, loader, ("audio", "image"))
    model.eval()
    with torch.no_grad():
        for pattern in all_patterns(("audio", "image")):
            mask = pattern_mask(pattern, ("audio", "image"), len(split.target))
            separate = model(split.inputs, mask).logits
            torch.testing.assert_close(evaluation.logits[pattern_name(pattern)], separate, rtol=1e-5, atol=1e-5)
    assert torch.equal(evaluation.target, split.target)


def test_absent_modality_input_does_not_change_logits(avdigits_small) -> None:
    split = avdigits_small["test"]
    model = _model("zero").eval()
    mask = pattern_mask(("image",), ("audio", "image"), len(split.target))
    noisy = {"audio": torch.randn_like(split.inputs["audio"]) * 100, "image": split.inputs["image"]}
    with torch.no_grad():
        torch.testing.assert_close(model(split.inputs, mask).logits, model(noisy, mask).logits)
