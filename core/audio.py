"""Read, validate and convert audio to the pipeline's format (16 kHz mono PCM16).

Any common container soundfile understands (WAV, FLAC, OGG, MP3 via libsndfile
≥ 1.1) at any rate and channel count is accepted: channels are averaged and the
rate converted with soxr. Everything else becomes a one-line
:class:`~core.errors.InvalidAudio`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from core.errors import InvalidAudio

PIPELINE_RATE_HZ = 16000


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float [-1, 1] → int16 with clipping."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


def resample(samples: np.ndarray, rate_hz: int, target_hz: int = PIPELINE_RATE_HZ) -> np.ndarray:
    """Resample float32 mono samples (soxr, high quality)."""
    if rate_hz == target_hz:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples.astype(np.float32), rate_hz, target_hz).astype(np.float32)


def load_audio(path: str | Path, *, max_seconds: float = 120.0) -> np.ndarray:
    """Load a file as 16 kHz mono int16.

    Args:
        path: the audio file.
        max_seconds: longest accepted input (seconds); longer files are rejected, not truncated.

    Raises:
        InvalidAudio: missing, empty, corrupt, unsupported, too long or silent-and-empty input.
    """
    p = Path(path)
    if not p.exists():
        raise InvalidAudio(f"{p}: no such file")
    if p.is_dir():
        raise InvalidAudio(f"{p}: is a directory, not an audio file")
    if p.stat().st_size == 0:
        raise InvalidAudio(f"{p}: file is empty")
    if p.suffix.lower() in {".raw", ".pcm"}:
        data = np.fromfile(p, dtype="<i2").astype(np.float32) / 32768.0
        rate = PIPELINE_RATE_HZ
    else:
        try:
            info = sf.info(str(p))
        except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError
            raise InvalidAudio(f"{p}: not a readable audio file ({_short(exc)})") from exc
        if info.duration > max_seconds:
            raise InvalidAudio(f"{p}: {info.duration:.1f} s of audio is over the {max_seconds:.0f} s limit")
        try:
            data, rate = sf.read(str(p), dtype="float32", always_2d=True)
        except Exception as exc:
            raise InvalidAudio(f"{p}: corrupt audio ({_short(exc)})") from exc
        data = data.mean(axis=1)
    if data.size == 0:
        raise InvalidAudio(f"{p}: contains no audio samples")
    if data.size / rate > max_seconds:
        raise InvalidAudio(f"{p}: {data.size / rate:.1f} s of audio is over the {max_seconds:.0f} s limit")
    if not np.all(np.isfinite(data)):
        raise InvalidAudio(f"{p}: audio contains NaN or infinite samples")
    return to_pcm16(resample(data, int(rate)))


def write_wav(path: str | Path, pcm: np.ndarray, rate_hz: int) -> Path:
    """Write int16 mono samples as a WAV file (parents created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(p), pcm.astype(np.int16), rate_hz, subtype="PCM_16")
    return p


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
