"""fsdd_speakers: speaker identification on FSDD, on AV-digits' audio pipeline (real FSDD and tiny WAV files)."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.data.avdigits_dataset import avdigits_info
from fusebench.data.avdigits_recipe import AVDigitsRecipe
from fusebench.data.fsdd_speakers import FSDD_SPEAKERS, FsddSpeakersOptions, load, split_recordings
from fusebench.data.registry import get_dataset
from fusebench.data.source_files import fsdd_index
from fusebench.data.sources import locate_sources
from fusebench.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
SPEAKER_CONFIG = ROOT / "configs" / "fsdd_speakers" / "pretrain_audio.yaml"


def write_recordings(
    root: Path, speakers: dict[str, float], digits: int = 2, takes: int = 12, rate: int = 8000
) -> Path:
    """``root/fsdd/recordings/{digit}_{speaker}_{take}.wav``: 16-bit mono tones, one pitch per speaker."""
    folder = root / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for (speaker, pitch), digit, take in (
        (s, d, t) for s in speakers.items() for d in range(digits) for t in range(takes)
    ):
        seconds = 0.4 + 0.05 * digit
        time = np.arange(int(seconds * rate)) / rate
        wave_form = 0.5 * np.sin(2 * np.pi * pitch * (1 + 0.1 * digit) * time) + 0.01 * rng.standard_normal(len(time))
        with wave.open(str(folder / f"{digit}_{speaker}_{take}.wav"), "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(rate)
            handle.writeframes((wave_form * 32767).astype("<i2").tobytes())
    return root


@pytest.fixture(scope="module")
def real() -> tuple[FsddSpeakersOptions, object]:
    options = FsddSpeakersOptions()
    return options, load(options)


def test_real_fsdd_splits_by_take_with_avdigits_audio_shape(real: tuple[FsddSpeakersOptions, object]) -> None:
    options, data = real
    assert (len(data.train), len(data.validation), len(data.test)) == (6 * 10 * 40 * 2, 6 * 10 * 5, 6 * 10 * 5)
    shape = tuple(data.train.inputs["audio"].shape[1:])
    assert data.info.modalities["audio"].shape == shape == avdigits_info(AVDigitsRecipe()).modalities["audio"].shape
    assert data.train.target.bincount().tolist() == [800] * 6 and data.test.target.bincount().tolist() == [50] * 6
    assert data.info.task.label_names == FSDD_SPEAKERS and data.info.task.output_size == 6
    bands = data.train.inputs["audio"][:, 0]  # [N, mels, frames], standardised per band on train
    torch.testing.assert_close(bands.mean(dim=(0, 2)), torch.zeros(40), atol=1e-4, rtol=0)
    torch.testing.assert_close(bands.std(dim=(0, 2)), torch.ones(40), atol=1e-3, rtol=0)


def test_test_takes_are_avdigits_test_audio_and_never_trained_on() -> None:
    recordings = fsdd_index(locate_sources(None, allow_download=False).fsdd)
    splits = split_recordings(recordings, FsddSpeakersOptions())
    assert {r.take for r in splits["test"]} == set(range(5))  # AV-digits pairs its test images with takes 0-4
    assert {r.take for r in splits["validation"]} == set(range(5, 10))
    names = {split: {r.path.name for r in members} for split, members in splits.items()}
    assert not names["test"] & (names["train"] | names["validation"])


def test_tiny_files_are_read_deterministically_and_the_noise_follows_the_seed(tmp_path: Path) -> None:
    root = write_recordings(tmp_path, {"ann": 220.0, "bob": 440.0})
    options = FsddSpeakersOptions(root=str(root), speakers=["ann", "bob"], validation_takes=2, noise_draws=3)
    first, again = load(options), load(options)
    assert (len(first.train), len(first.validation), len(first.test)) == (2 * 2 * 5 * 3, 2 * 2 * 2, 2 * 2 * 5)
    torch.testing.assert_close(first.train.inputs["audio"], again.train.inputs["audio"], rtol=0, atol=0)
    other = load(options.model_copy(update={"seed": 1}))
    assert not torch.equal(first.train.inputs["audio"], other.train.inputs["audio"])
    copies = first.train.inputs["audio"].reshape(3, 20, 1, 40, 40)  # draw-major: the same 20 clips, new noise
    assert not torch.equal(copies[0], copies[1])
    assert first.train.target.reshape(3, 20).unique(dim=0).shape[0] == 1


def test_speakers_option_selects_the_classes(tmp_path: Path) -> None:
    root = write_recordings(tmp_path, {"ann": 220.0, "bob": 440.0, "cat": 330.0})
    data = load(FsddSpeakersOptions(root=str(root), speakers=["cat", "ann"], validation_takes=2))
    assert data.info.task.label_names == ("cat", "ann") and len(data.test) == 2 * 2 * 5
    assert get_dataset("fsdd_speakers").task(FsddSpeakersOptions(speakers=["a", "b", "c"])).output_size == 3


@pytest.mark.parametrize(
    ("setup", "options", "match"),
    [
        ("none", {}, r"`data.root` is `.*`, which holds no FSDD recordings; expected fsdd/recordings/"),
        ("files", {"speakers": ["ann", "zed"]}, r"no test recording \(takes 0-4\) of speakers \['zed'\]"),
        ("files", {"validation_takes": 7}, r"no train recording \(takes 12 and above\)"),
        ("files", {"sample_rate": 16000}, r"sampled at 8000 Hz, expected `data.sample_rate` 16000"),
    ],
    ids=["no-recordings", "unknown-speaker", "no-train-takes", "sample-rate"],
)
def test_bad_data_is_one_clear_error(tmp_path: Path, setup: str, options: dict[str, object], match: str) -> None:
    if setup == "files":
        write_recordings(tmp_path, {"ann": 220.0, "bob": 440.0})
    chosen = {"speakers": ["ann", "bob"], "validation_takes": 2, **options}
    with pytest.raises((DataError, FileNotFoundError), match=match):
        load(FsddSpeakersOptions(root=str(tmp_path), **chosen))  # type: ignore[arg-type]


def test_options_are_strict() -> None:
    with pytest.raises(ValueError, match="noise_draw"):
        FsddSpeakersOptions.model_validate({"noise_draw": 2})
    with pytest.raises(ValueError, match="must not repeat"):
        FsddSpeakersOptions(speakers=["a", "a"])


@pytest.mark.slow
def test_shipped_config_pretrains_an_encoder_that_loads_into_avdigits_fusion(tmp_path: Path) -> None:
    """The related-task path end to end: pre-train on speakers (tiny files), fine-tune AV-digits with it."""
    root = write_recordings(tmp_path / "data", {"ann": 220.0, "bob": 440.0})
    runner = CliRunner()
    runs = tmp_path / "runs"
    pre = runner.invoke(
        app,
        [
            "pretrain",
            str(SPEAKER_CONFIG),
            f"data.root={root}",
            "data.speakers=[ann, bob]",
            "data.validation_takes=2",
            "training.epochs=1",
            f"experiment.runs_dir={runs}",
            "logging.progress_bar=false",
            "monitoring.enabled=false",
            "--run-id",
            "speakers",
        ],
    )
    assert pre.exit_code == 0, pre.output
    run = runs / "fsdd_speakers_pretrain_audio" / "speakers"
    recorded = json.loads((run / "data.json").read_text())
    assert recorded["task"]["label_names"] == ["ann", "bob"]
    weights = run / "encoders" / "audio.safetensors"
    fused = runner.invoke(
        app,
        [
            "train",
            str(ROOT / "configs" / "avdigits" / "demo.yaml"),
            "training.epochs=1",
            "data.recipe={subset: 1200}",
            "data.limit={train: 200, validation: 100, test: 100}",
            f"model.pretrained.audio={weights}",
            f"experiment.runs_dir={runs}",
            "logging.progress_bar=false",
            "monitoring.enabled=false",
            "--run-id",
            "fused",
        ],
    )
    assert fused.exit_code == 0, fused.output
    config = (runs / "avdigits_demo" / "fused" / "config.yaml").read_text()
    assert str(weights) in config
