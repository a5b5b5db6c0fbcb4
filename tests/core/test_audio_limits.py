"""Audio bombs are refused from the header before decoding; long legitimate files are read in blocks.

Each bomb is a sparse file (seek + write), so making it costs no disk and no time. Memory is measured
in a child process, from its own high-water mark (see :data:`_PEAK_WRAPPER`): pytest's (models loaded
by other tests) cannot hide a jump, nor be taken for one.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.audio import MAX_CHANNELS, load_audio, probe_audio, resample, stream_audio, to_pcm16
from core.errors import InvalidAudio
from core.settings import REPO_ROOT
from tests.conftest import QUICKTURN

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "lamp_piper_joe.wav"


def sparse_wav(path: Path, *, rate: int, channels: int, seconds: float) -> Path:
    """A PCM16 WAV whose header is honest and whose data is a hole: the full size, no blocks written."""
    data_bytes = int(rate * seconds) * channels * 2
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
    header += b"data" + struct.pack("<I", data_bytes)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.seek(len(header) + data_bytes - 1)
        fh.write(b"\0")
    return path


def sparse_raw(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        fh.seek(size - 1)
        fh.write(b"\0")
    return path


_PEAK_WRAPPER = (
    "import atexit, resource, sys\n"
    "report = sys.argv.pop(1)\n"
    "def peak():\n"
    "    own = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
    "    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "    open(report, 'w').write(str(max(own, kids)))\n"
    "atexit.register(peak)\n"
    "from assistant.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
"""Runs the CLI in process and writes its peak RSS (kB) at exit: VmHWM of its own address space (born at
exec) and the peak of its worker processes. ``os.wait4``'s ru_maxrss is not usable here: the kernel folds
the old address space's high-water mark into it at exec, and under vfork that is pytest's own peak (1.8 GB
in a full run), not the child's."""


def run_measured(args: list[str], tmp: Path, timeout: float = 120) -> tuple[int, str, str, float, float]:
    """Run ``quickturn ARGS...``; return its exit code, stdout, stderr, its peak RSS (MB) and wall time (s)."""
    assert args[0] == str(QUICKTURN)
    report = tmp / "peak_kb.txt"
    cmd = [sys.executable, "-c", _PEAK_WRAPPER, str(report), *args[1:]]
    t0 = time.perf_counter()
    with open(tmp / "out.txt", "w") as out, open(tmp / "err.txt", "w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"{args} did not finish in {timeout} s") from None
    return (proc.returncode, (tmp / "out.txt").read_text(), (tmp / "err.txt").read_text(),
            int(report.read_text()) / 1024, time.perf_counter() - t0)


_LOAD = (
    "import sys, resource, numpy as np\n"
    "from core.audio import load_audio\n"
    "from core.errors import InvalidAudio\n"
    "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "try:\n"
    "    pcm = load_audio(sys.argv[1], max_seconds=float(sys.argv[2]))\n"
    "    print('ok', pcm.size, pcm.dtype)\n"
    "except InvalidAudio as exc:\n"
    "    print('InvalidAudio', exc)\n"
    "print('delta_mb', (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)\n"
)


def load_in_child(path: Path, max_seconds: float) -> tuple[str, float]:
    """load_audio in a fresh interpreter: its printed result and its peak RSS growth during the call (MB)."""
    out = subprocess.run([sys.executable, "-c", _LOAD, str(path), str(max_seconds)], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    return lines[0], float(lines[-1].split()[1])


def test_a_2gb_raw_is_refused_from_its_size_without_reading_it(tmp_path: Path) -> None:
    bomb = sparse_raw(tmp_path / "bomb.raw", 2 * 1024**3)
    t0 = time.perf_counter()
    with pytest.raises(InvalidAudio, match=r"over the 120 s limit"):
        load_audio(bomb)
    assert time.perf_counter() - t0 < 0.5
    result, delta_mb = load_in_child(bomb, 120)
    assert result.startswith("InvalidAudio") and "over the 120 s limit" in result, result
    assert delta_mb < 20, f"refusing a 2 GB .raw grew the peak RSS by {delta_mb:.0f} MB"


def test_a_sparse_29s_48k_512_channel_wav_is_refused_by_its_channel_count(tmp_path: Path) -> None:
    bomb = sparse_wav(tmp_path / "bomb.wav", rate=48000, channels=512, seconds=29)
    assert bomb.stat().st_size > 1.4e9 and bomb.stat().st_blocks * 512 < 1e6  # big, and sparse
    t0 = time.perf_counter()
    with pytest.raises(InvalidAudio, match=r"512 channels; at most 8"):
        load_audio(bomb, max_seconds=30)
    assert time.perf_counter() - t0 < 0.5
    result, delta_mb = load_in_child(bomb, 30)
    assert result.startswith("InvalidAudio") and "512 channels" in result, result
    assert delta_mb < 20, f"refusing the 512-channel WAV grew the peak RSS by {delta_mb:.0f} MB"


def test_channel_rate_and_sample_budget_limits(tmp_path: Path) -> None:
    ok = sparse_wav(tmp_path / "eight.wav", rate=48000, channels=MAX_CHANNELS, seconds=1)
    assert probe_audio(ok).channels == MAX_CHANNELS
    with pytest.raises(InvalidAudio, match="9 channels"):
        probe_audio(sparse_wav(tmp_path / "nine.wav", rate=48000, channels=MAX_CHANNELS + 1, seconds=1))
    with pytest.raises(InvalidAudio, match="sample rate 1000000 Hz"):
        probe_audio(sparse_wav(tmp_path / "fast.wav", rate=1_000_000, channels=1, seconds=0.1))
    with pytest.raises(InvalidAudio, match="sample rate 100 Hz"):
        probe_audio(sparse_wav(tmp_path / "slow.wav", rate=100, channels=1, seconds=1))
    # 192 kHz x 4 channels is 768k samples per second, twice the decoding budget.
    with pytest.raises(InvalidAudio, match="samples to decode"):
        probe_audio(sparse_wav(tmp_path / "wide.wav", rate=192000, channels=4, seconds=1), max_seconds=1)
    assert probe_audio(sparse_wav(tmp_path / "hifi.wav", rate=192000, channels=2, seconds=1), max_seconds=1).frames == 192000
    raw = sparse_raw(tmp_path / "thirty.raw", 16000 * 2 * 31)
    with pytest.raises(InvalidAudio, match=r"31\.0 s of audio is over the 30 s limit"):
        probe_audio(raw, max_seconds=30)


def test_a_long_legitimate_8_channel_recording_is_read_in_blocks(tmp_path: Path) -> None:
    """100 s at 48 kHz x 8 ch is 147 MiB as float32 if decoded whole; in blocks only the 3 MB output grows."""
    long = sparse_wav(tmp_path / "long.wav", rate=48000, channels=8, seconds=100)
    result, delta_mb = load_in_child(long, 120)
    assert result == f"ok {100 * 16000} int16", result
    assert delta_mb < 40, f"reading 100 s of 8-channel audio grew the peak RSS by {delta_mb:.0f} MB"


def test_block_streaming_equals_one_shot_conversion(tmp_path: Path) -> None:
    """Block joins leave no trace: 48 kHz stereo and 44.1 kHz FLAC decode to what one soxr call gives."""
    speech = load_audio(FIXTURE).astype(np.float32) / 32768
    up = resample(speech, 16000, 48000)
    sf.write(tmp_path / "s48.wav", np.stack([up, 0.5 * up], axis=1), 48000, subtype="PCM_16")
    sf.write(tmp_path / "m44.flac", resample(speech, 16000, 44100), 44100)
    for name in ("s48.wav", "m44.flac"):
        data, rate = sf.read(tmp_path / name, dtype="float32", always_2d=True)
        whole = to_pcm16(resample(data.mean(axis=1), rate))
        streamed = load_audio(tmp_path / name)
        assert len(streamed) == len(whole)
        assert int(np.abs(streamed.astype(np.int32) - whole).max()) <= 1
        assert len(list(stream_audio(tmp_path / name))) > 4  # it really was read in blocks


def test_nan_samples_are_refused(tmp_path: Path) -> None:
    x = np.zeros(16000, np.float32)
    x[12345] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(InvalidAudio, match="NaN"):
        load_audio(tmp_path / "nan.wav")


@pytest.mark.parametrize(("name", "make", "needle"), [
    ("bomb.raw", lambda p: sparse_raw(p, 2 * 1024**3), "over the 30 s limit"),
    ("bomb.wav", lambda p: sparse_wav(p, rate=48000, channels=512, seconds=29), "512 channels"),
])  # fmt: skip
def test_chat_refuses_bombs_with_one_line_and_flat_memory(tmp_path: Path, name: str, make, needle: str) -> None:  # type: ignore[no-untyped-def]
    bomb = make(tmp_path / name)
    rc, _, err, peak_mb, wall = run_measured([str(QUICKTURN), "chat", str(bomb), "--fast", "--db", str(tmp_path / "d.db")], tmp_path)
    assert rc == 1 and "Traceback" not in err, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("quickturn: error")]
    assert len(lines) == 1 and needle in lines[0], err[-2000:]
    # The whole CLI (imports included) stays far below the 2-6 GB the bomb would take decoded.
    assert peak_mb < 400, f"quickturn chat {name}: peak RSS {peak_mb:.0f} MB"
    assert wall < 30


def test_eval_reports_bombs_as_failed_files_and_evaluates_a_48k_8_channel_one(tmp_path: Path) -> None:
    """``quickturn eval`` on a folder: each bomb is one failed row, a legitimate 8-channel file is heard."""
    folder = tmp_path / "audio"
    folder.mkdir()
    sparse_raw(folder / "bomb.raw", 2 * 1024**3)
    sparse_wav(folder / "bomb.wav", rate=48000, channels=512, seconds=29)
    up = resample(load_audio(FIXTURE).astype(np.float32) / 32768, 16000, 48000)
    sf.write(folder / "lamp8ch.wav", np.stack([up] * 8, axis=1), 48000, subtype="PCM_16")
    out = tmp_path / "out"
    rc, _, err, peak_mb, _ = run_measured(
        [str(QUICKTURN), "eval", str(folder), "--out", str(out), "--fast", "-q", "--no-report"], tmp_path, timeout=300
    )
    assert rc == 3, err[-2000:]  # 3: some files failed
    rows = {r["key"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert rows["bomb.raw"]["status"] == "failed" and "over the 120 s limit" in rows["bomb.raw"]["error"]
    assert rows["bomb.wav"]["status"] == "failed" and "512 channels" in rows["bomb.wav"]["error"]
    assert rows["lamp8ch.wav"]["status"] == "ok" and "lamp" in rows["lamp8ch.wav"]["transcript"], rows["lamp8ch.wav"]
    # The peak covers the eval process and its workers: models (~0.5 GB), not the bombs (2.7-6 GB).
    assert peak_mb < 1500, f"quickturn eval peak RSS {peak_mb:.0f} MB"
