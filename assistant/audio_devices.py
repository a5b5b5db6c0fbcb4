"""PyAudio (PortAudio) device access with readable errors.

PortAudio prints ALSA/JACK probing noise on stderr while it initializes; that
is silenced here so the user sees only QuickTurn's own messages.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from core.errors import AudioDeviceError

NO_DEVICE_HELP = (
    "no audio {kind} device found. Connect a microphone/speaker, or start a sound server "
    "(e.g. `pulseaudio --start`), then check `quickturn mic --list-devices`"
)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence fd 2 (C-level prints) for the duration of the block."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def open_pyaudio() -> Any:
    try:
        import pyaudio
    except ImportError as exc:
        raise AudioDeviceError("pyaudio is not installed: pip install 'quickturn[mic]' (needs portaudio19-dev)") from exc
    with quiet_stderr():
        return pyaudio.PyAudio()


@dataclass(frozen=True)
class Device:
    index: int
    name: str
    inputs: int
    outputs: int
    default_rate_hz: int


def list_devices(pa: Any) -> list[Device]:
    out = []
    for i in range(pa.get_device_count()):
        d = pa.get_device_info_by_index(i)
        out.append(Device(i, str(d["name"]), int(d["maxInputChannels"]), int(d["maxOutputChannels"]), int(d["defaultSampleRate"])))
    return out


def pick_device(pa: Any, wanted: str | None, kind: str) -> Device:
    """Find a device by index or name substring, or the default one.

    Raises:
        AudioDeviceError: none exists, or ``wanted`` matches nothing.
    """
    devices = [d for d in list_devices(pa) if (d.inputs if kind == "input" else d.outputs) > 0]
    if not devices:
        raise AudioDeviceError(NO_DEVICE_HELP.format(kind=kind))
    if wanted is None:
        try:
            info = pa.get_default_input_device_info() if kind == "input" else pa.get_default_output_device_info()
            return next(d for d in devices if d.index == int(info["index"]))
        except (OSError, StopIteration):
            return devices[0]
    if wanted.isdigit():
        for d in devices:
            if d.index == int(wanted):
                return d
    else:
        for d in devices:
            if wanted.lower() in d.name.lower():
                return d
    names = ", ".join(f"{d.index}:{d.name}" for d in devices)
    raise AudioDeviceError(f"no {kind} device matches {wanted!r}; available: {names}")
