"""Shared fixtures: settings, the loaded stages, generated utterances, a PulseAudio virtual microphone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QUICKTURN = REPO / ".venv" / "bin" / "quickturn"


def _disfluency_model_dir() -> Path:
    from core.settings import REPO_ROOT, load_settings
    from services.disfluency import model_dir

    return model_dir(load_settings(overrides={"models_dir": str(REPO_ROOT / "models")}))


#: The shipped disfluency model (the repository's, whatever QUICKTURN_MODELS_DIR says).
DISFLUENCY_MODEL_DIR = _disfluency_model_dir()
needs_disfluency_model = pytest.mark.skipif(
    not (DISFLUENCY_MODEL_DIR / "model_int8.onnx").is_file(), reason="shipped disfluency model not present"
)


@pytest.fixture(scope="session")
def settings():  # type: ignore[no-untyped-def]
    from core.settings import load_settings

    return load_settings()


@pytest.fixture(scope="session")
def utterances(settings) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """Rows of the generated utterance manifest, with absolute ``path``."""
    from assistant.commands.setup import utterance_manifest

    manifest = utterance_manifest()
    rows = []
    for line in manifest.read_text().splitlines():
        row = json.loads(line)
        row["path"] = manifest.parent / row["audio_filepath"]
        rows.append(row)
    return rows


def utterance(rows: list[dict[str, object]], text: str, voice: str = "piper-joe") -> dict[str, object]:
    return next(r for r in rows if r["text"] == text and r["voice"] == voice)


@pytest.fixture(scope="session")
def components(settings, tmp_path_factory):  # type: ignore[no-untyped-def]
    from assistant.components import Components

    return Components.load(settings, db_path=tmp_path_factory.mktemp("db") / "dialog.sqlite")


@pytest.fixture(scope="session")
def shared_dir(settings) -> Path:  # type: ignore[no-untyped-def]
    if not (settings.shared_dir / "data").is_dir():
        pytest.skip(f"../shared is absent ({settings.shared_dir}): real recordings unavailable")
    return settings.shared_dir


def _pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True, timeout=20).stdout.strip()


@pytest.fixture(scope="session")
def pulse_mic() -> Iterator[dict[str, str]]:
    """A real-time virtual microphone: null sink ``qt_test_mic_sink`` whose monitor is remapped
    into the default source, plus a separate null sink as the default speaker.

    Audio played into the mic sink with ``paplay`` is what PortAudio captures.
    """
    if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
        pytest.fail("pulseaudio / pulseaudio-utils are not installed (deploy/install.sh installs them)")
    if subprocess.run(["pactl", "info"], capture_output=True, timeout=20).returncode != 0:
        subprocess.run(["pulseaudio", "--start", "--exit-idle-time=-1"], capture_output=True, timeout=30)
        for _ in range(50):
            if subprocess.run(["pactl", "info"], capture_output=True, timeout=20).returncode == 0:
                break
            time.sleep(0.2)
        else:
            pytest.fail("could not start a PulseAudio server")
    modules = [
        _pactl("load-module", "module-null-sink", "sink_name=qt_test_mic_sink"),
        _pactl("load-module", "module-null-sink", "sink_name=qt_test_speaker"),
        _pactl("load-module", "module-remap-source", "master=qt_test_mic_sink.monitor", "source_name=qt_test_mic"),
    ]
    previous_source = _pactl("get-default-source")
    previous_sink = _pactl("get-default-sink")
    _pactl("set-default-source", "qt_test_mic")
    _pactl("set-default-sink", "qt_test_speaker")
    try:
        yield {"mic_sink": "qt_test_mic_sink", "speaker": "qt_test_speaker", "source": "qt_test_mic"}
    finally:
        for name, value in (("set-default-source", previous_source), ("set-default-sink", previous_sink)):
            subprocess.run(["pactl", name, value], capture_output=True, timeout=20)
        for module in reversed(modules):
            subprocess.run(["pactl", "unload-module", module], capture_output=True, timeout=20)


@pytest.fixture
def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("QUICKTURN_CONFIG", None)
    return env
