"""Sequence encoders: padding values never change an output, and the result is that of the real steps alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tests._helpers.mosi_files import write_mmsa, write_multibench
from torch import Tensor

from fusebench.config import ConfigError, validate_config
from fusebench.data.mosi import MOSIOptions, load
from fusebench.engine.build import build_model
from fusebench.models.encoder_specs import (
    GRUOptions,
    LSTMOptions,
    TransformerOptions,
    build_encoder_from,
    sequence_kinds,
)

STEPS, FEATURES = 12, 7
LENGTHS = torch.tensor([12, 3, 1, 7, 5])
ENCODERS = {
    "gru": GRUOptions(),
    "gru-mean-bi-2layers": GRUOptions(pool="mean", bidirectional=True, layers=2, dropout=0.2),
    "lstm": LSTMOptions(),
    "lstm-mean-bi": LSTMOptions(pool="mean", bidirectional=True),
    "transformer": TransformerOptions(dim=32, layers=2, heads=4),
}


def _padded(junk: bool, seed: int = 0) -> Tensor:
    """``[5, 12, 7]`` sequences; after ``LENGTHS[b]`` steps: large random junk, or zeros."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(LENGTHS), STEPS, FEATURES, generator=g)
    pad = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed + 1)) * 100 if junk else torch.zeros(())
    after = torch.arange(STEPS)[None, :, None] >= LENGTHS[:, None, None]
    return torch.where(after, pad, x)


def _run(encoder: torch.nn.Module, x: Tensor, lengths: Tensor | None, train: bool) -> Tensor:
    encoder.train(train)
    torch.manual_seed(7)  # the same dropout masks for both calls
    with torch.set_grad_enabled(train):
        return encoder(x, lengths)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_padding_values_never_change_the_embedding(name: str, train: bool) -> None:
    torch.manual_seed(0)
    encoder = build_encoder_from(ENCODERS[name], (STEPS, FEATURES))
    junk = _run(encoder, _padded(junk=True), LENGTHS, train)
    zeros = _run(encoder, _padded(junk=False), LENGTHS, train)
    assert junk.shape == (len(LENGTHS), 64)
    assert torch.equal(junk, zeros)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_a_padded_batch_encodes_each_sequence_as_its_real_steps_alone(name: str) -> None:
    torch.manual_seed(0)
    encoder = build_encoder_from(ENCODERS[name], (STEPS, FEATURES)).eval()
    x = _padded(junk=True)
    with torch.no_grad():
        batched = encoder(x, LENGTHS)
        alone = torch.cat([encoder(x[b : b + 1, : int(n)]) for b, n in enumerate(LENGTHS)])
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # without lengths every step is read: the junk then matters
        assert not torch.allclose(encoder(x), batched)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_lengths_outside_the_steps_are_errors(name: str) -> None:
    encoder = build_encoder_from(ENCODERS[name], (STEPS, FEATURES))
    with pytest.raises(ValueError, match=r"Expected sequence lengths in 1..12, got values from 0 to 12"):
        encoder(_padded(junk=False), torch.tensor([12, 3, 0, 7, 5]))


@pytest.mark.parametrize("kind", ["gru", "lstm", "transformer"])
def test_token_ids_read_through_an_embedding_and_padding_ids_do_not_matter(kind: str) -> None:
    options = {"gru": GRUOptions, "lstm": LSTMOptions, "transformer": TransformerOptions}[kind](vocab_size=50)
    encoder = build_encoder_from(options, (STEPS,)).eval()
    ids = torch.randint(1, 50, (len(LENGTHS), STEPS), generator=torch.Generator().manual_seed(0))
    other = torch.where(torch.arange(STEPS)[None] >= LENGTHS[:, None], torch.randint_like(ids, 1, 50), ids)
    with torch.no_grad():
        assert torch.equal(encoder(ids, LENGTHS), encoder(other, LENGTHS))
    with pytest.raises(ValueError, match=r"Expected \[T\] token ids .* got per-sample shape \(12, 7\)"):
        build_encoder_from(options, (STEPS, FEATURES))


def test_spectrograms_are_read_as_steps_of_mel_bins() -> None:
    encoder = build_encoder_from(GRUOptions(), (1, FEATURES, STEPS)).eval()
    x = _padded(junk=False)  # [B, T, F]
    with torch.no_grad():
        torch.testing.assert_close(encoder(x.transpose(1, 2).unsqueeze(1), LENGTHS), encoder(x, LENGTHS))


def test_sequence_kinds_are_the_registered_sequence_encoders() -> None:
    kinds = sequence_kinds()
    assert {"gru", "lstm", "transformer"} <= set(kinds) and not {"cnn", "mlp", "resnet18"} & set(kinds)


def _mosi_config(tmp_path: Path, file: str, encoder: dict[str, Any], **data: Any) -> Any:
    raw = {
        "experiment": {"runs_dir": str(tmp_path / "runs")},
        "data": {"dataset": "mosi", "root": str(tmp_path), "file": file, **data},
        "model": {"encoders": {m: dict(encoder) for m in ("audio", "text", "vision")}},
    }
    return validate_config(raw)


@pytest.mark.parametrize("layout", ["multibench", "mmsa-aligned", "mmsa-unaligned"])
@pytest.mark.parametrize("kind", ["gru", "lstm", "transformer"])
def test_aligned_and_unaligned_mosi_encode_without_reading_padding(tmp_path: Path, layout: str, kind: str) -> None:
    if layout == "multibench":
        path, _ = write_multibench(tmp_path, sizes={"train": 6, "valid": 2, "test": 2})
    else:
        path, _ = write_mmsa(tmp_path, aligned=layout == "mmsa-aligned", sizes={"train": 6, "valid": 2, "test": 2})
    config = _mosi_config(tmp_path, path.name, {"kind": kind, "out_dim": 16})
    data = load(MOSIOptions(root=str(tmp_path), file=path.name))
    shapes = {m: tuple(x.shape[1:]) for m, x in data.train.inputs.items()}
    model = build_model(config, shapes, 1, data.info.modalities).eval()
    assert data.train.lengths is not None
    junk = {}
    for m, x in data.train.inputs.items():
        after = torch.arange(x.shape[1])[None, :, None] >= data.train.lengths[m][:, None, None]
        junk[m] = torch.where(after, torch.randn(x.shape) * 50, x)
    mask = torch.ones(len(data.train), 3, dtype=torch.bool)
    with torch.no_grad():
        clean = model(data.train.inputs, mask, data.train.lengths)
        noisy = model(junk, mask, data.train.lengths)
    assert torch.equal(clean.logits, noisy.logits)
    assert all(torch.equal(clean.embeddings[m], noisy.embeddings[m]) for m in clean.embeddings)


@pytest.mark.parametrize("encoder", [{"kind": "mlp"}, {"kind": "cnn"}])
def test_a_variable_length_modality_needs_a_sequence_encoder(tmp_path: Path, encoder: dict[str, Any]) -> None:
    path, _ = write_multibench(tmp_path, sizes={"train": 4, "valid": 2, "test": 2})
    config = _mosi_config(tmp_path, path.name, encoder)
    data = load(MOSIOptions(root=str(tmp_path)))
    shapes = {m: tuple(x.shape[1:]) for m, x in data.train.inputs.items()}
    with pytest.raises(
        ConfigError,
        match=rf"`model.encoders.audio.kind: {encoder['kind']}` cannot read `audio`: "
        r"its samples are variable-length .* \(gru, lstm, transformer",
    ):
        build_model(config, shapes, 1, data.info.modalities)
    fixed = load(MOSIOptions(root=str(tmp_path), lengths="full"))  # every step is data: any encoder may read it
    if encoder["kind"] == "mlp":
        build_model(_mosi_config(tmp_path, path.name, encoder, lengths="full"), shapes, 1, fixed.info.modalities)
