"""Audio features without torchaudio: fixed-length clips, noise at an SNR, log-mel spectrograms.

The core install avoids torchaudio/librosa (see ``DESIGN.md``, "Dependencies"), so the
mel filterbank is built here from its textbook definition and the STFT is ``torch.stft``.
Everything works on whole batches ``[N, T]`` so that building 70,000 spectrograms is a
handful of tensor operations per chunk rather than a Python loop per recording.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


def hz_to_mel(frequency: Tensor | float) -> Tensor:
    """HTK mel scale: ``2595 * log10(1 + f / 700)``.

    The formula of O'Shaughnessy (1987, *Speech Communication*), as used by the HTK Book.
    """
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(frequency, dtype=torch.float64) / 700.0)


def mel_to_hz(mel: Tensor | float) -> Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (torch.as_tensor(mel, dtype=torch.float64) / 2595.0) - 1.0)


def mel_filterbank(
    n_mels: int,
    n_fft: int,
    sample_rate: int,
    f_min: float = 0.0,
    f_max: float | None = None,
) -> Tensor:
    """Triangular filters equally spaced on the HTK mel scale.

    Filter ``m`` rises linearly from centre ``m-1`` to centre ``m`` and falls to centre
    ``m+1`` (peak height 1, no area normalisation: the log and the later standardisation
    make the scale irrelevant).

    Args:
        n_mels: number of filters.
        n_fft: FFT size; the filters cover its ``n_fft // 2 + 1`` frequency bins.
        sample_rate: in Hz.
        f_min: lowest edge in Hz.
        f_max: highest edge in Hz; the Nyquist frequency when ``None``.

    Returns:
        float32 ``[n_mels, n_fft // 2 + 1]``.

    Raises:
        ValueError: bad frequency range, or so many filters that one covers no FFT bin.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"Expected 0 <= f_min < f_max <= {sample_rate / 2} Hz, got f_min={f_min}, f_max={f_max}.")
    edges = mel_to_hz(torch.linspace(hz_to_mel(f_min).item(), hz_to_mel(f_max).item(), n_mels + 2))
    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    empty = (weights.sum(dim=1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"n_mels={n_mels} is too many for n_fft={n_fft} at {sample_rate} Hz: "
            f"filters {empty} cover no FFT bin; use fewer mels or a larger n_fft."
        )
    return weights.to(torch.float32)


def log_mel_spectrogram(
    waveforms: Tensor,
    sample_rate: int,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    *,
    f_min: float = 0.0,
    f_max: float | None = None,
    eps: float = 1e-6,
    chunk_size: int = 2048,
) -> Tensor:
    """Natural-log mel power spectrogram of a batch of equal-length waveforms.

    Uses ``torch.stft`` with a periodic Hann window of ``n_fft`` samples and centred frames,
    so a clip of ``T`` samples gives ``1 + T // hop_length`` frames. Works in chunks of
    ``chunk_size`` waveforms to bound the memory of the complex STFT.

    Args:
        waveforms: float ``[N, T]``.
        eps: added before the log, so silence maps to a finite floor.

    Returns:
        float32 ``[N, n_mels, 1 + T // hop_length]``.
    """
    if waveforms.ndim != 2:
        raise ValueError(f"Expected waveforms [N, T], got shape {tuple(waveforms.shape)}.")
    filters = mel_filterbank(n_mels, n_fft, sample_rate, f_min, f_max)
    window = torch.hann_window(n_fft)
    outputs = []
    for start in range(0, len(waveforms), chunk_size):
        chunk = waveforms[start : start + chunk_size].to(torch.float32)
        spectrum = torch.stft(chunk, n_fft, hop_length=hop_length, window=window, center=True, return_complex=True)
        power = spectrum.real.square() + spectrum.imag.square()
        outputs.append(torch.log(torch.matmul(filters, power) + eps))
    if not outputs:
        return torch.empty(0, n_mels, 1 + waveforms.shape[1] // hop_length)
    return torch.cat(outputs)


def fix_length(recordings: Sequence[np.ndarray], length: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad or crop variable-length recordings to one length.

    Recordings are left-aligned (FSDD files are trimmed of silence, so the word starts at
    sample 0) and cropped at the end when longer.

    Returns:
        float32 ``[N, length]`` and the int64 number of real (un-padded) samples per row.
    """
    clips = np.zeros((len(recordings), length), dtype=np.float32)
    lengths = np.zeros(len(recordings), dtype=np.int64)
    for row, samples in enumerate(recordings):
        kept = min(len(samples), length)
        clips[row, :kept] = samples[:kept]
        lengths[row] = kept
    return clips, lengths


def coloured_noise(shape: tuple[int, int], colour: str, rng: np.random.Generator) -> Tensor:
    """Gaussian noise with a flat ("white") or 1/f ("pink") power spectrum, unit RMS per row.

    Pink noise has power ``1/f`` above ``sample_rate / 400`` (20 Hz at 8 kHz) and a flat
    spectrum below; it puts more energy at low frequencies where speech lives, which makes
    it a closer stand-in for environmental noise than white noise.

    Args:
        shape: ``(N, T)``.
        colour: ``"white"`` or ``"pink"``.
        rng: the seeded generator to draw from (the only source of randomness).
    """
    if colour not in ("white", "pink"):
        raise ValueError(f"Expected noise colour 'white' or 'pink', got {colour!r}.")
    rows, length = shape
    if colour == "white":
        noise = torch.from_numpy(rng.standard_normal((rows, length), dtype=np.float32))
    else:
        # Draw the spectrum directly (independent complex Gaussian bins, as the FFT of white
        # noise would give) and shape it; this skips one forward FFT per row.
        bins = length // 2 + 1
        parts = torch.from_numpy(rng.standard_normal((rows, 2 * bins), dtype=np.float32))
        # Bin k is k / length cycles per sample; below 1/400 of the sampling rate (20 Hz at
        # 8 kHz, the lower limit of hearing) the spectrum is flat instead of growing without
        # bound, so the noise power stays in the band where it can mask speech.
        corner = max(length / 400.0, 1.0)
        scale = torch.arange(bins, dtype=torch.float32).clamp(min=corner).rsqrt()
        scale[0] = 0.0
        spectrum = torch.complex(parts[:, :bins], parts[:, bins:]) * scale
        noise = torch.fft.irfft(spectrum, n=length, dim=1)
    rms = torch.linalg.vector_norm(noise, dim=1, keepdim=True) / length**0.5
    return noise.div_(rms.clamp_(min=1e-12))


def mix_at_snr(signal: Tensor, noise: Tensor, snr_db: float, valid_lengths: Tensor) -> Tensor:
    """Add noise to each signal so that its signal-to-noise ratio is ``snr_db``.

    Both powers are measured over the real part of each recording only (its first
    ``valid_lengths[i]`` samples): zero padding would otherwise lower the signal power and
    make short recordings noisier than long ones at the same nominal SNR. The scaled noise
    is added over the whole clip, padding included, so the padding is not a silent giveaway.

    Args:
        signal: ``[N, T]`` zero-padded recordings.
        noise: ``[N, T]`` noise, any scale.
        snr_db: target ``10 * log10(P_signal / P_noise)``.
        valid_lengths: ``[N]`` number of real samples per row, each in ``1..T``.

    Returns:
        ``[N, T]`` mixtures.
    """
    if signal.shape != noise.shape or signal.ndim != 2:
        raise ValueError(
            f"Expected signal and noise of equal shape [N, T], got {tuple(signal.shape)} and {tuple(noise.shape)}."
        )
    lengths = torch.as_tensor(valid_lengths).to(signal.device)
    length = signal.shape[1]
    if lengths.shape != (len(signal),) or bool((lengths < 1).any() or (lengths > length).any()):
        raise ValueError(
            f"Expected valid_lengths of shape ({len(signal)},) with values in 1..{length}, "
            f"got shape {tuple(lengths.shape)} and range "
            f"{lengths.min().item() if lengths.numel() else None}..."
            f"{lengths.max().item() if lengths.numel() else None}."
        )
    count = lengths.to(signal.dtype)
    signal_power = _prefix_sum_of_squares(signal, lengths) / count
    noise_power = _prefix_sum_of_squares(noise, lengths) / count
    gain = torch.sqrt(signal_power / (noise_power.clamp(min=1e-20) * 10.0 ** (snr_db / 10.0)))
    return torch.addcmul(signal, gain[:, None], noise)


def _prefix_sum_of_squares(x: Tensor, lengths: Tensor) -> Tensor:
    """``sum(x[i, :lengths[i]] ** 2)`` per row; a cumulative sum beats building a mask."""
    return torch.cumsum(x.square(), dim=1).gather(1, (lengths - 1)[:, None]).squeeze(1)


def snr_db(signal: Tensor, noise: Tensor, valid_lengths: Tensor) -> Tensor:
    """Measured SNR per row over the first ``valid_lengths[i]`` samples (for checks)."""
    mask = torch.arange(signal.shape[1])[None, :] < torch.as_tensor(valid_lengths)[:, None]
    ratio = (signal.square() * mask).sum(dim=1) / (noise.square() * mask).sum(dim=1)
    return 10.0 * torch.log10(ratio)


__all__ = [
    "coloured_noise",
    "fix_length",
    "hz_to_mel",
    "log_mel_spectrogram",
    "mel_filterbank",
    "mel_to_hz",
    "mix_at_snr",
    "snr_db",
]
