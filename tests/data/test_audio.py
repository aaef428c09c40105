"""Audio features: mel filterbank, log-mel spectrograms, noise colour, mixing at an SNR."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fusebench.data.audio import (
    coloured_noise,
    fix_length,
    hz_to_mel,
    log_mel_spectrogram,
    mel_filterbank,
    mel_to_hz,
    mix_at_snr,
    snr_db,
)
from fusebench.data.source_files import fsdd_index, read_wav
from fusebench.data.sources import locate_sources


def test_htk_mel_scale_maps_1000_hz_to_about_1000_mel_and_inverts() -> None:
    assert hz_to_mel(1000.0).item() == pytest.approx(1000.0, abs=0.1)
    frequencies = torch.tensor([0.0, 125.0, 2000.0, 4000.0], dtype=torch.float64)
    torch.testing.assert_close(mel_to_hz(hz_to_mel(frequencies)), frequencies)


def test_mel_filterbank_rows_are_non_negative_triangles_rising_in_frequency() -> None:
    filters = mel_filterbank(40, 400, 8000)
    assert filters.shape == (40, 201) and filters.dtype == torch.float32
    assert bool((filters >= 0).all()) and bool((filters.sum(dim=1) > 0).all())
    assert float(filters.max()) <= 1.0
    peaks = filters.argmax(dim=1)
    assert bool((peaks[1:] > peaks[:-1]).all())
    # each filter is zero outside the span between its neighbours' centres
    assert int((filters > 0).sum(dim=0).max()) <= 2


def test_mel_filterbank_respects_its_frequency_range() -> None:
    filters = mel_filterbank(10, 512, 8000, f_min=300.0, f_max=3400.0)
    bins = torch.linspace(0, 4000, 257)
    covered = bins[filters.sum(dim=0) > 0]
    assert float(covered.min()) > 300.0 and float(covered.max()) < 3400.0


def test_mel_filterbank_rejects_more_filters_than_bins_can_hold() -> None:
    with pytest.raises(ValueError, match="n_mels=128 is too many for n_fft=64"):
        mel_filterbank(128, 64, 8000)
    with pytest.raises(ValueError, match="f_max=5000"):
        mel_filterbank(10, 256, 8000, f_max=5000)


def test_log_mel_of_a_tone_peaks_in_the_band_around_its_frequency() -> None:
    t = torch.arange(7800) / 8000
    tones = torch.stack([torch.sin(2 * math.pi * f * t) for f in (300.0, 1000.0, 3000.0)])
    spectrogram = log_mel_spectrogram(tones, 8000, 400, 200, 40)
    assert spectrogram.shape == (3, 40, 40) and spectrogram.dtype == torch.float32
    centres = mel_to_hz(torch.linspace(0, hz_to_mel(4000.0).item(), 42))[1:-1]
    for row, frequency in enumerate((300.0, 1000.0, 3000.0)):
        band = int(spectrogram[row, :, 5:-5].mean(dim=1).argmax())
        assert int((centres - frequency).abs().argmin()) == band


def test_log_mel_does_not_depend_on_chunking() -> None:
    waveforms = torch.randn(5, 2000, generator=torch.Generator().manual_seed(0))
    whole = log_mel_spectrogram(waveforms, 8000, 256, 100, 20)
    chunked = log_mel_spectrogram(waveforms, 8000, 256, 100, 20, chunk_size=2)
    torch.testing.assert_close(whole, chunked)
    with pytest.raises(ValueError, match=r"waveforms \[N, T\]"):
        log_mel_spectrogram(waveforms[0], 8000, 256, 100, 20)


def test_fix_length_pads_short_and_crops_long_recordings() -> None:
    clips, lengths = fix_length([np.ones(3, np.float32), np.arange(8, dtype=np.float32)], 5)
    np.testing.assert_array_equal(clips, [[1, 1, 1, 0, 0], [0, 1, 2, 3, 4]])
    np.testing.assert_array_equal(lengths, [3, 5])


def _band_power(noise: torch.Tensor, low: float, high: float) -> float:
    power = torch.fft.rfft(noise, dim=1).abs().square().mean(dim=0)
    frequencies = torch.fft.rfftfreq(noise.shape[1], 1 / 8000)
    return float(power[(frequencies >= low) & (frequencies < high)].sum())


def test_pink_noise_has_equal_power_per_octave_and_white_noise_per_hertz() -> None:
    pink = coloured_noise((64, 8000), "pink", np.random.default_rng(0))
    white = coloured_noise((64, 8000), "white", np.random.default_rng(0))
    for noise in (pink, white):
        torch.testing.assert_close(noise.square().mean(dim=1), torch.ones(64), rtol=1e-4, atol=1e-4)
    assert _band_power(pink, 1000, 2000) / _band_power(pink, 100, 200) == pytest.approx(1, rel=0.1)
    assert _band_power(white, 1000, 2000) / _band_power(white, 100, 200) == pytest.approx(10, rel=0.1)


def test_noise_is_reproducible_from_its_generator() -> None:
    first = coloured_noise((2, 100), "pink", np.random.default_rng(7))
    again = coloured_noise((2, 100), "pink", np.random.default_rng(7))
    other = coloured_noise((2, 100), "pink", np.random.default_rng(8))
    assert torch.equal(first, again) and not torch.equal(first, other)
    with pytest.raises(ValueError, match="'brown'"):
        coloured_noise((2, 100), "brown", np.random.default_rng(0))


@pytest.mark.parametrize("target", [-6.0, 0.0, 10.0])
def test_mix_at_snr_measured_over_the_real_part_equals_the_request(target: float) -> None:
    sources = locate_sources(allow_download=False)
    recordings = [read_wav(r.path)[0] for r in fsdd_index(sources.fsdd)[:16]]
    signal, lengths = fix_length(recordings, 7800)
    signal, lengths = torch.from_numpy(signal), torch.from_numpy(lengths)
    noise = coloured_noise(tuple(signal.shape), "pink", np.random.default_rng(0))
    mixed = mix_at_snr(signal, noise, target, lengths)
    added = mixed - signal
    torch.testing.assert_close(snr_db(signal, added, lengths), torch.full((16,), target), atol=1e-3, rtol=0)
    # independent check in float64 on one recording
    n = int(lengths[3])
    ratio = np.sum(signal[3, :n].double().numpy() ** 2) / np.sum(added[3, :n].double().numpy() ** 2)
    assert 10 * np.log10(ratio) == pytest.approx(target, abs=1e-3)
    # the padding is noisy too, so silence does not give the recording's length away
    short = int(lengths.argmin())
    assert float(added[short, int(lengths[short]) :].abs().sum()) > 0


def test_mix_at_snr_rejects_bad_shapes_and_lengths() -> None:
    signal = torch.zeros(2, 10)
    with pytest.raises(ValueError, match="equal shape"):
        mix_at_snr(signal, torch.zeros(2, 9), 0.0, torch.tensor([5, 5]))
    with pytest.raises(ValueError, match="valid_lengths"):
        mix_at_snr(signal, torch.ones(2, 10), 0.0, torch.tensor([0, 11]))
