"""Source lookup order, readers, checksum verification and the download path (file:// URLs)."""

from __future__ import annotations

import gzip
import shutil
import struct
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fusebench.data import sources
from fusebench.data.sources import (
    DATA_ENV_VAR,
    MNIST_FILES,
    combined_digest,
    expected_fsdd_checksums,
    fsdd_index,
    locate_sources,
    read_mnist_file,
    read_wav,
    source_checksums,
    verify_fsdd,
)


@pytest.fixture(scope="module")
def shared() -> sources.SourcePaths:
    return locate_sources(allow_download=False)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)


def _link_root(root: Path, shared: sources.SourcePaths) -> Path:
    """A data root whose folders are symlinks to the shared sources (nothing is copied)."""
    (root / "fsdd").mkdir(parents=True)
    (root / "mnist").symlink_to(shared.mnist, target_is_directory=True)
    (root / "fsdd" / "recordings").symlink_to(shared.fsdd, target_is_directory=True)
    return root


def _gzip(path: Path, payload: bytes) -> Path:
    path.write_bytes(gzip.compress(payload))
    return path


# --------------------------------------------------------------------------- readers


def test_read_mnist_file_reads_images_and_labels(shared: sources.SourcePaths) -> None:
    images = read_mnist_file(shared.mnist / "t10k-images-idx3-ubyte.gz", "test_images")
    labels = read_mnist_file(shared.mnist / "t10k-labels-idx1-ubyte.gz", "test_labels")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])


def test_idx_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent-idx1-ubyte.gz"
    with pytest.raises(FileNotFoundError, match="absent-idx1-ubyte.gz"):
        read_mnist_file(missing, "test_labels")
    not_gzip = tmp_path / "junk-idx3-ubyte.gz"
    not_gzip.write_bytes(b"this is not gzip data at all")
    with pytest.raises(ValueError, match="junk-idx3-ubyte.gz.*not a readable gzip"):
        read_mnist_file(not_gzip, "test_images")
    truncated = tmp_path / "cut-idx3-ubyte.gz"
    truncated.write_bytes(gzip.compress(struct.pack(">IIII", 2051, 2, 28, 28) + bytes(100))[:40])
    with pytest.raises(ValueError, match="cut-idx3-ubyte.gz"):
        read_mnist_file(truncated, "test_images")
    magic = _gzip(tmp_path / "magic-idx1-ubyte.gz", struct.pack(">II", 1234, 3) + bytes(3))
    with pytest.raises(ValueError, match=r"magic-idx1-ubyte.gz has IDX magic number 1234"):
        read_mnist_file(magic, "test_labels")
    short = _gzip(tmp_path / "short-idx1-ubyte.gz", struct.pack(">II", 2049, 5) + bytes(3))
    with pytest.raises(ValueError, match=r"short-idx1-ubyte.gz header says shape \(5,\)"):
        read_mnist_file(short, "test_labels")


def test_read_mnist_file_checks_role_count_and_content(tmp_path: Path) -> None:
    labels = _gzip(tmp_path / "l.gz", struct.pack(">II", 2049, 3) + bytes([1, 2, 3]))
    with pytest.raises(ValueError, match="expected 2051 for train_images"):
        read_mnist_file(labels, "train_images")
    with pytest.raises(ValueError, match="holds 3 items, expected 60000"):
        read_mnist_file(labels, "train_labels")
    fake = _gzip(tmp_path / "t10k.gz", struct.pack(">II", 2049, 10_000) + bytes(10_000))
    with pytest.raises(ValueError, match=r"t10k.gz: decompressed content has sha256 .* expected"):
        read_mnist_file(fake, "test_labels")


def test_read_wav_gives_float_samples_and_rejects_other_formats(tmp_path: Path, shared: sources.SourcePaths) -> None:
    samples, rate = read_wav(shared.fsdd / "7_jackson_32.wav")
    assert rate == 8000 and samples.dtype == np.float32 and samples.ndim == 1
    assert 800 < len(samples) < 18_300 and float(np.abs(samples).max()) <= 1.0
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes(bytes(400))
    with pytest.raises(ValueError, match="stereo.wav must be 16-bit mono PCM, got 2 channel"):
        read_wav(stereo)
    bogus = tmp_path / "bogus.wav"
    bogus.write_bytes(b"RIFF nonsense")
    with pytest.raises(ValueError, match="bogus.wav is not a readable WAV"):
        read_wav(bogus)
    with pytest.raises(FileNotFoundError, match="nothing.wav"):
        read_wav(tmp_path / "nothing.wav")


def test_fsdd_index_parses_names(tmp_path: Path, shared: sources.SourcePaths) -> None:
    index = fsdd_index(shared.fsdd)
    assert len(index) == 3000
    assert {r.speaker for r in index} == {"george", "jackson", "lucas", "nicolas", "theo", "yweweler"}
    assert sum(r.take < 5 for r in index) == 300
    first = index[0]
    assert (first.path.name, first.digit, first.speaker, first.take) == ("0_george_0.wav", 0, "george", 0)
    (tmp_path / "seven.wav").write_bytes(b"")
    with pytest.raises(ValueError, match="seven.wav is not named"):
        fsdd_index(tmp_path)
    with pytest.raises(FileNotFoundError, match="No FSDD recordings"):
        fsdd_index(tmp_path / "empty")


def _recordings_copy(tmp_path: Path, shared: sources.SourcePaths) -> Path:
    folder = tmp_path / "recordings"
    folder.mkdir()
    for path in shared.fsdd.glob("*.wav"):
        (folder / path.name).symlink_to(path)
    return folder


def test_verify_fsdd_accepts_the_release_and_names_a_changed_file(tmp_path: Path, shared: sources.SourcePaths) -> None:
    assert verify_fsdd(shared.fsdd) == combined_digest(expected_fsdd_checksums())
    folder = _recordings_copy(tmp_path, shared)
    (folder / "3_theo_7.wav").unlink()
    (folder / "3_theo_7.wav").write_bytes((shared.fsdd / "3_theo_8.wav").read_bytes())
    with pytest.raises(ValueError, match=r"3_theo_7.wav has sha256 .* expected"):
        verify_fsdd(folder)
    (folder / "3_theo_7.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks 1 of the 3000 .*3_theo_7.wav"):
        verify_fsdd(folder)
    (folder / "3_theo_7.wav").symlink_to(shared.fsdd / "3_theo_7.wav")
    (folder / "3_newcomer_0.wav").write_bytes(b"")
    with pytest.raises(ValueError, match="not in the pinned FSDD release.*3_newcomer_0.wav"):
        verify_fsdd(folder)


def test_source_checksums_cover_all_mnist_files_and_the_fsdd_folder(
    shared: sources.SourcePaths,
) -> None:
    sums = source_checksums(shared)
    assert set(sums) == {spec.name for spec in MNIST_FILES.values()} | {"fsdd/recordings"}
    assert sums["fsdd/recordings"] == combined_digest(expected_fsdd_checksums())


# --------------------------------------------------------------------------- lookup order


def test_explicit_path_beats_environment_beats_shared(
    tmp_path: Path, shared: sources.SourcePaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit, env = _link_root(tmp_path / "explicit", shared), _link_root(tmp_path / "env", shared)
    monkeypatch.setenv(DATA_ENV_VAR, str(env))
    found = locate_sources(explicit, allow_download=False)
    assert (found.origin, found.mnist) == ("explicit", explicit / "mnist")
    found = locate_sources(allow_download=False)
    assert (found.origin, found.fsdd) == ("env", env / "fsdd" / "recordings")
    monkeypatch.delenv(DATA_ENV_VAR)
    found = locate_sources(allow_download=False)
    assert found.origin == "shared" and found.mnist.parent.name == "data"


def test_shared_data_is_found_from_a_working_directory_outside_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no pyproject.toml above: found via the package's own repo
    assert locate_sources(allow_download=False).origin == "shared"


def test_a_configured_path_without_data_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(FileNotFoundError, match=r"explicit data path .*nowhere.*mnist/"):
        locate_sources(tmp_path / "nowhere", allow_download=False)
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "unset-place"))
    with pytest.raises(FileNotFoundError, match=r"\$FUSEBENCH_DATA .*unset-place"):
        locate_sources(allow_download=False)


@pytest.fixture
def no_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "_shared_candidates", lambda: [])


def test_user_cache_is_used_when_nothing_else_is_there(
    tmp_path: Path, shared: sources.SourcePaths, no_shared: None
) -> None:
    _link_root(tmp_path / "cache" / "sources", shared)
    found = locate_sources(allow_download=False, cache_root=tmp_path / "cache")
    assert (found.origin, found.mnist) == ("cache", tmp_path / "cache" / "sources" / "mnist")


def test_nothing_found_says_where_it_looked_and_what_to_put_where(tmp_path: Path, no_shared: None) -> None:
    with pytest.raises(FileNotFoundError) as error:
        locate_sources(allow_download=False, cache_root=tmp_path / "cache")
    message = str(error.value)
    for expected in (
        "FUSEBENCH_DATA",
        str(tmp_path / "cache" / "sources"),
        "train-images-idx3-ubyte.gz",
        "fsdd/recordings/",
        "downloading is disabled",
    ):
        assert expected in message


# --------------------------------------------------------------------------- download


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory, shared: sources.SourcePaths) -> Path:
    """A local stand-in for the public sources: MNIST files and an FSDD GitHub-style zip."""
    root = tmp_path_factory.mktemp("mirror")
    (root / "mnist").mkdir()
    for spec in MNIST_FILES.values():
        shutil.copyfile(shared.mnist / spec.name, root / "mnist" / spec.name)
    with zipfile.ZipFile(root / "fsdd.zip", "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr("free-spoken-digit-dataset-master/README.md", "FSDD")
        for path in sorted(shared.fsdd.glob("*.wav")):
            bundle.write(path, f"free-spoken-digit-dataset-master/recordings/{path.name}")
    return root


def test_download_fetches_verifies_and_then_finds_the_cache(tmp_path: Path, mirror: Path, no_shared: None) -> None:
    cache = tmp_path / "cache"
    found = locate_sources(
        cache_root=cache,
        mnist_base_urls=[(tmp_path / "offline").as_uri(), (mirror / "mnist").as_uri()],
        fsdd_archive_url=(mirror / "fsdd.zip").as_uri(),
    )
    assert found.origin == "download"
    assert verify_fsdd(found.fsdd) == combined_digest(expected_fsdd_checksums())
    assert read_mnist_file(found.mnist / "t10k-labels-idx1-ubyte.gz", "test_labels").shape == (10_000,)
    assert not [p for p in (cache / "sources").rglob(".*") if p.name != ".lock"]  # no leftovers
    assert locate_sources(allow_download=False, cache_root=cache).origin == "cache"


def test_download_rejects_a_file_that_fails_its_checksum(tmp_path: Path, mirror: Path, no_shared: None) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(mirror / "mnist", bad)
    raw = bytearray(gzip.decompress((bad / "train-labels-idx1-ubyte.gz").read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # one label changed: still a valid IDX file
    _gzip(bad / "train-labels-idx1-ubyte.gz", bytes(raw))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz.*sha256 .* expected 65a50cbb"):
        locate_sources(
            cache_root=tmp_path / "cache",
            mnist_base_urls=[bad.as_uri()],
            fsdd_archive_url=(mirror / "fsdd.zip").as_uri(),
        )
    assert not (tmp_path / "cache" / "sources" / "mnist" / "train-labels-idx1-ubyte.gz").exists()


def test_fsdd_download_verifies_every_recording_before_it_appears(
    tmp_path: Path, mirror: Path, shared: sources.SourcePaths, no_shared: None
) -> None:
    archive = tmp_path / "tampered.zip"
    with zipfile.ZipFile(mirror / "fsdd.zip") as source, zipfile.ZipFile(archive, "w") as out:
        for member in source.namelist():
            data = source.read(member)
            if member.endswith("/5_lucas_20.wav"):
                data = data[:-2] + b"\x00\x01"
            out.writestr(member, data)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=r"5_lucas_20.wav in .*tampered.zip has sha256"):
        locate_sources(
            cache_root=cache, mnist_base_urls=[(mirror / "mnist").as_uri()], fsdd_archive_url=archive.as_uri()
        )
    recordings = cache / "sources" / "fsdd" / "recordings"
    assert not recordings.exists()
    assert list((cache / "sources" / "fsdd").iterdir()) == []  # staging folder removed


def test_unreachable_download_is_a_file_not_found_error(tmp_path: Path, no_shared: None) -> None:
    with pytest.raises(FileNotFoundError, match="the download failed.*train-images-idx3-ubyte.gz"):
        locate_sources(
            cache_root=tmp_path / "cache",
            mnist_base_urls=[(tmp_path / "nowhere").as_uri()],
            fsdd_archive_url=(tmp_path / "nowhere.zip").as_uri(),
        )
