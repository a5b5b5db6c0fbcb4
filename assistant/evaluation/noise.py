"""Seeded background noise for robustness evaluations (`quickturn eval --noise-snr DB`).

Speech-to-intent benchmarks (Picovoice's among them) score clean recordings and the
same recordings mixed with noise at falling signal-to-noise ratios. Without a noise
corpus on this machine, the noise is pink (power falling as 1/f, closer to room and
street noise than white noise). It also fills half a second before and after the
recording, so the VAD has to find the speech in it and end the turn inside it, as in a
real room. The SNR is measured against the *speech* (frames within 30 dB of the
loudest), not the whole file, so leading silence does not make the noise louder.
"""

from __future__ import annotations

import zlib

import numpy as np

SAMPLE_RATE_HZ = 16000
LEAD_S = 0.5
FRAME = 320  # 20 ms
MIN_SNR_DB, MAX_SNR_DB = -10.0, 60.0


def check_snr(snr_db: float) -> None:
    """Refuse a ratio outside MIN_SNR_DB..MAX_SNR_DB (or NaN): beyond them the mix is noise alone or clean audio.

    Raises:
        ValueError: with the message ``quickturn eval --noise-snr`` shows.
    """
    if not MIN_SNR_DB <= snr_db <= MAX_SNR_DB:
        raise ValueError(f"--noise-snr must be between {MIN_SNR_DB:g} and {MAX_SNR_DB:g} dB, got {snr_db:g}")


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of unit-power pink noise (white noise shaped by 1/sqrt(f) in the spectrum)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    noise -= noise.mean()
    return noise / np.sqrt(np.mean(noise**2))


def speech_power(x: np.ndarray) -> float:
    """Mean power of the 20 ms frames within 30 dB of the loudest frame (the speech, not the pauses)."""
    n = len(x) // FRAME
    if n == 0:
        return float(np.mean(x**2)) if len(x) else 0.0
    frames = np.mean(x[: n * FRAME].reshape(n, FRAME) ** 2, axis=1)
    loud = frames[frames >= frames.max() * 1e-3]
    return float(loud.mean())


def add_noise(pcm: np.ndarray, snr_db: float, seed: int, key: str) -> np.ndarray:
    """``pcm`` (int16, 16 kHz) with LEAD_S of noise before and after, mixed at ``snr_db``.

    The noise depends only on ``seed`` and the file's ``key``: a rerun, a resumed run
    or another worker count hears the same noise on the same file.
    """
    check_snr(snr_db)
    x = pcm.astype(np.float64)
    lead = int(LEAD_S * SAMPLE_RATE_HZ)
    padded = np.concatenate([np.zeros(lead), x, np.zeros(lead)])
    power = speech_power(x)
    if power <= 0.0:
        return np.clip(padded, -32768, 32767).astype(np.int16)
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    noise = pink_noise(len(padded), rng) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(np.round(padded + noise), -32768, 32767).astype(np.int16)
