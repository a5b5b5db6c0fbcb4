"""The real recordings in ``../shared/data/speech-samples`` with their references.

The folder's transcripts come in three layouts (a pocketsphinx
``.transcription`` file per sub-folder, and a JSGF grammar for
``goforward``); this module turns them into one list of (path, text).
"""

from __future__ import annotations

import re
from pathlib import Path

_LINE = re.compile(r"<s>(.*)</s>\s*\(([^)]+)\)")


def speech_samples(shared_dir: Path) -> list[tuple[Path, str]]:
    """(wav path, reference) pairs, or [] when the folder is absent."""
    root = shared_dir / "data" / "speech-samples"
    out: list[tuple[Path, str]] = []
    if not root.is_dir():
        return out
    for trans in sorted(root.rglob("*.transcription")) + sorted(root.rglob("transcription")):
        for line in trans.read_text().splitlines():
            m = _LINE.search(line)
            if m:
                wav = trans.parent / f"{m.group(2).strip()}.wav"
                if wav.is_file():
                    out.append((wav, " ".join(m.group(1).split())))
    if (root / "goforward.wav").is_file():
        # Reference from the unit tests' expected hypothesis (see SOURCE.txt).
        out.append((root / "goforward.wav", "go forward ten meters"))
    return out
