"""Read, validate and convert audio to the pipeline's format (16 kHz mono PCM16).

Any common container soundfile understands (WAV, FLAC, OGG, MP3 via libsndfile
≥ 1.1) at any rate and channel count is accepted: channels are averaged and the
rate converted with soxr. Everything else becomes a one-line
:class:`~core.errors.InvalidAudio`.

Memory stays flat whatever the file claims (issue 29, item 5). A file is judged
from its header before a single sample is decoded (:func:`probe_audio`: the
``.raw`` size from ``os.stat``, everything else from ``soundfile.info``), so a
2 GB ``.raw`` or a 29 s, 48 kHz, 512-channel WAV is refused in milliseconds
instead of allocating gigabytes. What passes is decoded in short blocks
(``soundfile.blocks``), mixed to mono and resampled block by block
(``soxr.ResampleStream``): the only thing that grows is the 16 kHz mono int16
output (32 KB per second), and the decoded length is counted again while reading
in case the header lies.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from core.errors import InvalidAudio

PIPELINE_RATE_HZ = 16000
RAW_SUFFIXES = frozenset({".raw", ".pcm"})
"""Headerless 16 kHz mono little-endian PCM16: the length is the file size."""
MAX_CHANNELS = 8
"""More channels than any microphone array we serve (7.1 is 8); a header claiming 512 is a bomb."""
MIN_RATE_HZ = 4000
MAX_RATE_HZ = 192000
MAX_SAMPLES_PER_S = 384_000
"""Decoded samples (frames × channels) per second of audio allowed: 48 kHz × 8 ch or 192 kHz × 2 ch.
With the duration limit this caps the total decoding work whatever the rate and channel count."""
BLOCK_S = 0.25
"""Seconds decoded at a time: at most 192 kHz × 8 ch × 4 B × 0.25 s = 1.5 MB in flight."""


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What a file's header (or, for ``.raw``, its size) says, checked against the limits."""

    path: Path
    rate_hz: int
    channels: int
    frames: int
    raw: bool

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate_hz if self.rate_hz else 0.0


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float [-1, 1] → int16 with clipping."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


def resample(samples: np.ndarray, rate_hz: int, target_hz: int = PIPELINE_RATE_HZ) -> np.ndarray:
    """Resample float32 mono samples (soxr, high quality)."""
    if rate_hz == target_hz:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples.astype(np.float32), rate_hz, target_hz).astype(np.float32)


def _over(p: Path, seconds: float, max_seconds: float) -> InvalidAudio:
    return InvalidAudio(f"{p}: {seconds:.1f} s of audio is over the {max_seconds:.0f} s limit")


def probe_audio(path: str | Path, *, max_seconds: float = 120.0, max_channels: int = MAX_CHANNELS) -> AudioInfo:
    """Check a file against the limits from its header alone, without decoding any audio.

    Raises:
        InvalidAudio: missing, empty, unreadable header, too long, too many channels, a sample rate
            outside [MIN_RATE_HZ, MAX_RATE_HZ], or more samples to decode than the budget allows.
    """
    p = Path(path)
    if not p.exists():
        raise InvalidAudio(f"{p}: no such file")
    if p.is_dir():
        raise InvalidAudio(f"{p}: is a directory, not an audio file")
    size = os.stat(p).st_size
    if size == 0:
        raise InvalidAudio(f"{p}: file is empty")
    if p.suffix.lower() in RAW_SUFFIXES:
        frames = size // 2
        if frames / PIPELINE_RATE_HZ > max_seconds:  # refused from its size: nothing is read
            raise _over(p, frames / PIPELINE_RATE_HZ, max_seconds)
        return AudioInfo(p, PIPELINE_RATE_HZ, 1, frames, raw=True)
    try:
        info = sf.info(str(p))
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError
        raise InvalidAudio(f"{p}: not a readable audio file ({_short(exc)})") from exc
    rate, channels, frames = int(info.samplerate), int(info.channels), int(info.frames)
    if channels < 1 or channels > max_channels:
        raise InvalidAudio(f"{p}: {channels} channels; at most {max_channels} are accepted")
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise InvalidAudio(f"{p}: sample rate {rate} Hz is outside {MIN_RATE_HZ}-{MAX_RATE_HZ} Hz")
    if frames / rate > max_seconds:
        raise _over(p, frames / rate, max_seconds)
    if frames * channels > max_seconds * MAX_SAMPLES_PER_S:
        raise InvalidAudio(
            f"{p}: {channels} channels at {rate} Hz is {frames * channels:,} samples to decode, over the "
            f"{int(max_seconds * MAX_SAMPLES_PER_S):,} allowed for {max_seconds:.0f} s"
        )
    return AudioInfo(p, rate, channels, frames, raw=False)


def _mono_blocks(info: AudioInfo, max_seconds: float) -> Iterator[np.ndarray]:
    """Float32 mono blocks at the file's rate, at most ``BLOCK_S`` long, NaN-checked and length-counted."""
    block = max(1, int(info.rate_hz * BLOCK_S))
    limit = int(max_seconds * info.rate_hz)
    seen = 0
    if info.raw:
        with open(info.path, "rb") as fh:
            while seen < info.frames:
                chunk = np.fromfile(fh, dtype="<i2", count=min(block, info.frames - seen))
                if chunk.size == 0:
                    break
                seen += chunk.size
                yield chunk.astype(np.float32) / 32768.0
        return
    try:
        for data in sf.blocks(str(info.path), blocksize=block, dtype="float32", always_2d=True):
            seen += data.shape[0]
            if seen > limit:  # the header under-stated the length: stop at the limit, do not read on
                raise _over(info.path, seen / info.rate_hz, max_seconds)
            mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
            if not np.all(np.isfinite(mono)):
                raise InvalidAudio(f"{info.path}: audio contains NaN or infinite samples")
            yield mono
    except InvalidAudio:
        raise
    except Exception as exc:
        raise InvalidAudio(f"{info.path}: corrupt audio ({_short(exc)})") from exc


def stream_audio(
    path: str | Path, *, max_seconds: float = 120.0, max_channels: int = MAX_CHANNELS
) -> Iterator[np.ndarray]:
    """Yield a file as 16 kHz mono int16 blocks (about ``BLOCK_S`` each), decoding and resampling as it goes.

    The header is checked first (:func:`probe_audio`), so an oversized file raises before any block.

    Raises:
        InvalidAudio: as :func:`probe_audio`, plus corrupt data or NaN/infinite samples while reading.
    """
    info = probe_audio(path, max_seconds=max_seconds, max_channels=max_channels)
    if info.rate_hz == PIPELINE_RATE_HZ:
        for mono in _mono_blocks(info, max_seconds):
            yield to_pcm16(mono)
        return
    stream = soxr.ResampleStream(info.rate_hz, PIPELINE_RATE_HZ, 1, dtype="float32", quality="HQ")
    for mono in _mono_blocks(info, max_seconds):
        out = stream.resample_chunk(np.ascontiguousarray(mono))
        if out.size:
            yield to_pcm16(out)
    tail = stream.resample_chunk(np.zeros(0, np.float32), last=True)
    if tail.size:
        yield to_pcm16(tail)


def load_audio(path: str | Path, *, max_seconds: float = 120.0, max_channels: int = MAX_CHANNELS) -> np.ndarray:
    """Load a file as 16 kHz mono int16.

    Args:
        path: the audio file.
        max_seconds: longest accepted input (seconds); longer files are rejected, not truncated.
        max_channels: most channels accepted (averaged to mono).

    Raises:
        InvalidAudio: missing, empty, corrupt, unsupported, too long, too many channels, an odd
            sample rate, or no samples at all.
    """
    blocks = list(stream_audio(path, max_seconds=max_seconds, max_channels=max_channels))
    if not blocks or sum(b.size for b in blocks) == 0:
        raise InvalidAudio(f"{Path(path)}: contains no audio samples")
    return np.concatenate(blocks)


def write_wav(path: str | Path, pcm: np.ndarray, rate_hz: int) -> Path:
    """Write int16 mono samples as a WAV file (parents created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(p), pcm.astype(np.int16), rate_hz, subtype="PCM_16")
    return p


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
