"""AV-digits on real data: shapes, pairing, PCA energy, determinism, and cache behaviour."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fusebench.data import avdigits, avdigits_cache
from fusebench.data.avdigits import SplitTensors, load_avdigits, prepare_avdigits
from fusebench.data.avdigits_cache import cache_folder, read_manifest
from fusebench.data.avdigits_recipe import MODALITIES, SPLITS, AVDigitsRecipe
from fusebench.data.source_files import MNIST_FILES, read_mnist_file
from fusebench.data.sources import locate_sources

TINY = AVDigitsRecipe(subset=40)


def _recipe_of(folder: Path) -> AVDigitsRecipe:
    return AVDigitsRecipe(**read_manifest(folder)["recipe"])


def _mnist(name: str) -> np.ndarray:
    role = next(role for role, spec in MNIST_FILES.items() if spec.name == name)
    return read_mnist_file(locate_sources(allow_download=False).mnist / name, role)


def _build(recipe: AVDigitsRecipe, cache_dir: Path, **kwargs: object) -> Path:
    return prepare_avdigits(recipe, cache_dir=cache_dir, allow_download=False, **kwargs)


# --------------------------------------------------------------------------- content


def test_shapes_and_dtypes(avdigits_small: dict[str, SplitTensors], avdigits_small_folder: Path) -> None:
    recipe = _recipe_of(avdigits_small_folder)
    assert tuple(avdigits_small) == SPLITS and MODALITIES == ("audio", "image")
    for split in avdigits_small.values():
        n = len(split)
        assert n == recipe.subset
        assert split.inputs["audio"].shape == (n, 1, recipe.n_mels, recipe.frames)
        assert split.inputs["image"].shape == (n, 1, 28, 28)
        assert all(x.dtype == avdigits.torch.float16 for x in split.inputs.values())  # the cache's storage
        assert split.target.dtype == avdigits.torch.int64 and split.target.shape == (n,)
        assert split.audio_source.shape == (n,) and split.image_source.shape == (n,)


def test_inputs_are_memory_maps_of_the_cache_not_copies(avdigits_small_folder: Path) -> None:
    """Every process that loads the cache shares its pages; batches are cut at float32 (``TensorLoader``)."""
    from fusebench.data.loader import TensorLoader

    loaded = load_avdigits(
        _recipe_of(avdigits_small_folder),
        cache_dir=avdigits_small_folder.parent,
        allow_download=False,
        limit={"train": 50},
    )
    maps = Path("/proc/self/maps")
    if not maps.is_file():
        pytest.skip("needs Linux's /proc/self/maps to see where the tensors live")
    regions = [line.split() for line in maps.read_text().splitlines()]
    for modality, x in loaded["train"].inputs.items():
        path = str(avdigits_small_folder / f"train.{modality}.npy")
        spans = [tuple(int(a, 16) for a in r[0].split("-")) for r in regions if len(r) >= 6 and r[5] == path]
        assert any(low <= x.data_ptr() < high for low, high in spans), f"{modality} is not a map of {path}"
    train = loaded["train"]
    batch = next(iter(TensorLoader(train.inputs, train.target, 16)))
    assert batch.inputs["image"].dtype == avdigits.torch.float32
    assert avdigits.torch.equal(batch.inputs["image"], train.inputs["image"][:16].float())


def test_each_pair_hears_its_own_digit(avdigits_small: dict[str, SplitTensors], avdigits_small_folder: Path) -> None:
    names = read_manifest(avdigits_small_folder)["fsdd_files"]
    for split in avdigits_small.values():
        spoken = np.array([int(names[i].split("_")[0]) for i in split.audio_source])
        np.testing.assert_array_equal(spoken, split.target.numpy())


def test_test_pairs_use_takes_0_to_4_and_the_others_takes_5_to_49(
    avdigits_small: dict[str, SplitTensors], avdigits_small_folder: Path
) -> None:
    names = read_manifest(avdigits_small_folder)["fsdd_files"]

    def takes(split: str) -> np.ndarray:
        return np.array([int(names[i][:-4].split("_")[2]) for i in avdigits_small[split].audio_source])

    assert takes("test").max() <= 4
    assert takes("train").min() >= 5 and takes("validation").min() >= 5


def test_images_and_labels_come_from_the_matching_mnist_split(
    avdigits_small: dict[str, SplitTensors],
) -> None:
    train_labels = _mnist("train-labels-idx1-ubyte.gz")
    test_labels = _mnist("t10k-labels-idx1-ubyte.gz")
    train, validation, test = (avdigits_small[s] for s in SPLITS)
    assert not set(train.image_source) & set(validation.image_source)
    np.testing.assert_array_equal(train_labels[train.image_source], train.target.numpy())
    np.testing.assert_array_equal(train_labels[validation.image_source], validation.target.numpy())
    np.testing.assert_array_equal(test.image_source, np.arange(len(test)))
    np.testing.assert_array_equal(test_labels[: len(test)], test.target.numpy())


def test_recordings_are_dealt_evenly(avdigits_small: dict[str, SplitTensors]) -> None:
    source, target = avdigits_small["test"].audio_source, avdigits_small["test"].target.numpy()
    for digit in range(10):
        counts = np.bincount(source[target == digit])
        used = counts[counts > 0]
        # 30 test recordings per digit: each is used once before any is used twice
        assert used.max() - used.min() <= 1 and (len(used) == 30 or used.max() == 1)


def test_inputs_are_standardised_with_training_statistics(
    avdigits_small: dict[str, SplitTensors],
) -> None:
    image, audio = (avdigits_small["train"].inputs[m].float().numpy() for m in ("image", "audio"))
    assert abs(image.mean()) < 1e-2 and image.std() == pytest.approx(1, abs=1e-2)
    np.testing.assert_allclose(audio.mean(axis=(0, 1, 3)), 0, atol=1e-2)
    np.testing.assert_allclose(audio.std(axis=(0, 1, 3)), 1, atol=1e-2)


def test_pca_projection_keeps_the_requested_share_of_energy(
    avdigits_small: dict[str, SplitTensors], avdigits_small_folder: Path
) -> None:
    manifest = read_manifest(avdigits_small_folder)
    requested = manifest["recipe"]["image_energy_kept"]
    train = avdigits_small["train"]
    original = _mnist("train-images-idx3-ubyte.gz")[train.image_source].reshape(len(train), -1) / 255
    stats = manifest["normalisation"]
    kept = train.inputs["image"].float().numpy().reshape(len(train), -1) * stats["image_std"]
    kept += stats["image_mean"]
    mean = original.mean(axis=0)
    share = np.sum((kept - mean) ** 2) / np.sum((original - mean) ** 2)
    assert share == pytest.approx(manifest["pca"]["energy_kept"], abs=5e-3)
    # k is the fewest leading components that reach the request
    eigenvalues = np.linalg.eigvalsh(np.cov(original, rowvar=False, bias=True))[::-1]
    cumulative = np.cumsum(eigenvalues) / eigenvalues.sum()
    k = manifest["pca"]["components"]
    assert cumulative[k - 2] < requested <= cumulative[k - 1] + 1e-9
    assert cumulative[k - 1] == pytest.approx(manifest["pca"]["energy_kept"], abs=1e-6)


# --------------------------------------------------------------------------- API


def test_limit_reads_the_first_rows(avdigits_small_folder: Path, avdigits_small: dict) -> None:
    recipe = _recipe_of(avdigits_small_folder)
    part = load_avdigits(recipe, cache_dir=avdigits_small_folder.parent, limit={"train": 7}, allow_download=False)
    assert len(part["train"]) == 7 and len(part["test"]) == recipe.subset
    assert np.array_equal(part["train"].inputs["audio"], avdigits_small["train"].inputs["audio"][:7])
    with pytest.raises(ValueError, match="limit keys among"):
        load_avdigits(recipe, cache_dir=avdigits_small_folder.parent, limit={"val": 3})


def test_recipe_validates_fields_and_digests_all_of_them() -> None:
    recipe = AVDigitsRecipe()
    assert recipe.digest() == AVDigitsRecipe().digest() and len(recipe.digest()) == 16
    changed = {
        replace(recipe, snr_db=recipe.snr_db + 1).digest(),
        replace(recipe, subset=10).digest(),
        replace(recipe, pairing_seed=1).digest(),
        replace(recipe, noise="white").digest(),
    }
    assert recipe.digest() not in changed and len(changed) == 4
    assert recipe.clip_samples == (recipe.frames - 1) * recipe.hop_length
    with pytest.raises(ValueError, match="image_energy_kept in"):
        AVDigitsRecipe(image_energy_kept=1.5)
    with pytest.raises(ValueError, match="noise 'pink' or 'white', got 'blue'"):
        AVDigitsRecipe(noise="blue")
    with pytest.raises(ValueError, match="validation_size"):
        AVDigitsRecipe(validation_size=60_000)


def test_default_cache_folder_follows_fusebench_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUSEBENCH_CACHE", str(tmp_path))
    assert cache_folder(TINY) == tmp_path / "avdigits" / TINY.digest()
    assert cache_folder(TINY, tmp_path / "x") == tmp_path / "x" / TINY.digest()


# --------------------------------------------------------------------------- cache


def _arrays(folder: Path) -> dict[str, np.ndarray]:
    return {path.name: np.load(path) for path in sorted(folder.glob("*.npy"))}


@pytest.fixture(scope="module")
def tiny_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """TINY built into two cache roots, and TINY with another seed beside the first."""
    root = tmp_path_factory.mktemp("tiny")
    return {
        "a": _build(TINY, root / "a"),
        "b": _build(TINY, root / "b"),
        "reseeded": _build(replace(TINY, pairing_seed=1), root / "a"),
    }


def test_builds_are_reproducible_and_the_seed_matters(tiny_builds: dict[str, Path]) -> None:
    a, b = _arrays(tiny_builds["a"]), _arrays(tiny_builds["b"])
    assert len(a) == 15 and a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    reseeded = _arrays(tiny_builds["reseeded"])
    assert not np.array_equal(reseeded["train.audio_source.npy"], a["train.audio_source.npy"])
    assert not np.array_equal(reseeded["train.image_source.npy"], a["train.image_source.npy"])
    assert not np.array_equal(reseeded["test.audio.npy"], a["test.audio.npy"])


def test_cache_is_reused_and_a_new_recipe_gets_a_new_folder(tiny_builds: dict[str, Path]) -> None:
    folder = tiny_builds["a"]
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    assert _build(TINY, folder.parent) == folder
    load_avdigits(TINY, cache_dir=folder.parent, allow_download=False)
    assert (folder / "manifest.json").stat().st_mtime_ns == stamp
    assert tiny_builds["reseeded"] != folder and tiny_builds["reseeded"].parent == folder.parent
    manifest = read_manifest(folder)
    assert manifest["recipe"]["subset"] == 40 and manifest["fusebench_version"]
    assert set(manifest["sources"]["checksums"]) >= {"train-images-idx3-ubyte.gz", "fsdd/recordings"}


def test_force_rebuilds_and_changed_source_checksums_too(tmp_path: Path) -> None:
    folder = _build(TINY, tmp_path)
    path = folder / "manifest.json"
    stamp = path.stat().st_mtime_ns
    _build(TINY, tmp_path, force=True)
    assert path.stat().st_mtime_ns != stamp
    manifest = json.loads(path.read_text())
    expected = dict(manifest["sources"]["checksums"])
    manifest["sources"]["checksums"]["t10k-labels-idx1-ubyte.gz"] = "0" * 64
    path.write_text(json.dumps(manifest))
    _build(TINY, tmp_path)
    assert read_manifest(folder)["sources"]["checksums"] == expected


def test_an_interrupted_build_never_looks_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_save, calls = np.save, []

    def failing_save(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-write
        real_save(*args, **kwargs)

    monkeypatch.setattr(avdigits.np, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        _build(TINY, tmp_path)
    folder = cache_folder(TINY, tmp_path)
    assert not (folder / "manifest.json").exists()
    assert len(list(folder.glob("*.npy"))) == 3 and not list(folder.glob("*.tmp"))
    monkeypatch.setattr(avdigits.np, "save", real_save)
    data = load_avdigits(TINY, cache_dir=tmp_path, allow_download=False)
    assert len(data["train"]) == 40 and (folder / "manifest.json").exists()


def test_a_complete_cache_is_used_when_the_sources_are_gone(
    tmp_path: Path, tiny_builds: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tiny_builds["b"]
    stamp = (folder / "manifest.json").stat().st_mtime_ns

    def nowhere(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("AV-digits sources not found")

    monkeypatch.setattr(avdigits_cache, "locate_sources", nowhere)
    monkeypatch.setattr(avdigits, "locate_sources", nowhere)
    monkeypatch.delenv("FUSEBENCH_DATA", raising=False)
    assert len(load_avdigits(TINY, cache_dir=folder.parent)["test"]) == 40
    assert (folder / "manifest.json").stat().st_mtime_ns == stamp
    with pytest.raises(FileNotFoundError, match="sources not found"):
        load_avdigits(TINY, source_root=tmp_path / "missing", cache_dir=folder.parent)


def test_recordings_at_another_sample_rate_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"sampled at 8000 Hz, expected recipe.sample_rate=16000"):
        _build(replace(TINY, sample_rate=16000), tmp_path)
