"""Read what ``quickturn eval`` evaluates: a JSONL manifest, a CSV/TSV, or a folder of audio.

Every input becomes a list of :class:`Item`. An entry that cannot be used
(a malformed line, a row without an audio path) is still an item, with
``error`` set, so it ends in ``failed`` instead of stopping the run.

Formats
-------
JSONL (NeMo style), one object per line::

    {"audio_filepath": "a/01.wav", "duration": 2.4, "text": "turn on the uh the lights",
     "clean_text": "turn on the lights", "intent": "DeviceOn", "slots": {"device": "lights"}}

Only ``audio_filepath`` is required. Relative paths resolve against the
manifest's folder. Other keys (``voice``, ``source``...) are kept and used to
group WER in the report.

CSV / TSV with a header row: ``audio_filepath`` (or ``file``, ``path``, ``audio``),
``text`` (or ``transcript``, ``reference``), optional ``clean_text``, ``intent``
and ``slots`` (a JSON object, or ``slot=value; slot=value``).

A folder: every audio file in it (recursively), with references from a CSV/TSV
inside it (``references.csv``/``.tsv`` or the only ``*.csv``/``*.tsv``) or from a
``manifest.jsonl`` inside it, joined on the file name or relative path. Files
without a reference are still run (latency only).

``--refs`` may also name a JSON object keyed by audio file name, the label file
of speech-to-intent benchmarks (Picovoice's ``label.json``)::

    {"0075d273.wav": {"intent": "orderDrink", "slots": {"size": "twelve ounce"}}, ...}
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from assistant.speech_samples import speech_samples
from core.errors import InvalidInput

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".raw", ".pcm"}
PATH_COLUMNS = ("audio_filepath", "file", "path", "audio", "filename", "wav")
TEXT_COLUMNS = ("text", "transcript", "reference", "sentence")
REFERENCE_KEYS = ("text", "clean_text", "intent", "slots")


@dataclass
class Item:
    """One entry to evaluate.

    Attributes:
        key: stable identity used to resume (the audio path as written; ``#2``... for repeats).
        audio: the resolved audio path (None when the entry is malformed).
        reference: ``text``, ``clean_text``, ``intent``, ``slots`` where given, plus extra fields.
        line: 1-based line/row number in the input (0 for folder scans).
        error: why the entry cannot be run (malformed line), else None.
    """

    key: str
    audio: Path | None
    reference: dict[str, object] = field(default_factory=dict)
    line: int = 0
    error: str | None = None

    @property
    def duration(self) -> float | None:
        d = self.reference.get("duration")
        return float(d) if isinstance(d, int | float) else None

    def to_task(self) -> dict[str, object]:
        """A picklable description for a worker process."""
        return {"key": self.key, "audio": str(self.audio) if self.audio else None, "reference": self.reference,
                "line": self.line, "error": self.error}


def read_input(path: str | Path, refs: str | Path | None = None) -> list[Item]:
    """Items from a JSONL manifest, a CSV/TSV, or a folder (optionally with an explicit references file).

    Raises:
        InvalidInput: the path does not exist or is not a supported input.
    """
    p = Path(path)
    if not p.exists():
        raise InvalidInput(f"{p}: no such manifest, CSV/TSV or folder")
    if p.is_dir():
        items = read_folder(p, Path(refs) if refs else None)
    elif p.suffix.lower() in {".csv", ".tsv"}:
        items = read_table(p)
    else:
        items = read_jsonl(p)
    return _dedupe(items)


def read_jsonl(path: Path) -> list[Item]:
    items: list[Item] = []
    base = path.parent
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read the manifest ({exc})") from exc
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path.name}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            items.append(Item(key=f"{where} (malformed)", audio=None, line=n,
                              error=f"line {n}: not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        items.append(_from_row(row, base, n, where))
    return items


def read_table(path: Path) -> list[Item]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read the table ({exc})") from exc
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if not any(h in PATH_COLUMNS for h in header):
        raise InvalidInput(f"{path}: the header needs an audio path column (one of {', '.join(PATH_COLUMNS)})")
    items: list[Item] = []
    for n, raw in enumerate(reader, 2):
        row = {str(k).strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in raw.items() if k}
        if None in raw:  # more cells than header columns
            items.append(Item(key=f"{path.name}:{n} (malformed)", audio=None, line=n,
                              error=f"row {n}: more cells than header columns"))
            continue
        audio = next((row[c] for c in PATH_COLUMNS if row.get(c)), None)
        out: dict[str, object] = {"audio_filepath": audio} if audio else {}
        text_value = next((row[c] for c in TEXT_COLUMNS if row.get(c) is not None), None)
        if text_value is not None:
            out["text"] = text_value
        for key in ("clean_text", "intent", "voice", "source"):
            if row.get(key):
                out[key] = row[key]
        if row.get("slots"):
            try:
                out["slots"] = parse_slots(str(row["slots"]))
            except ValueError as exc:
                items.append(Item(key=f"{audio or path.name}:{n}", audio=None, line=n, error=f"row {n}: {exc}"))
                continue
        elif "intent" in out:
            out["slots"] = {}
        items.append(_from_row(out, path.parent, n, f"{path.name}:{n}"))
    return items


def parse_slots(text: str) -> dict[str, str]:
    """``{"a": "b"}`` or ``a=b; c=d`` → dict."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"slots is not a JSON object ({exc.msg})") from exc
        if not isinstance(value, dict):
            raise ValueError("slots must be an object")
        return {str(k): str(v) for k, v in value.items()}
    out: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValueError(f"slot {part.strip()!r} is not slot=value")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def read_folder(folder: Path, refs: Path | None = None) -> list[Item]:
    audio = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    ref_items: list[Item] = []
    if refs is None:
        candidates = [folder / n for n in ("manifest.jsonl", "references.tsv", "references.csv")]
        found = [c for c in candidates if c.is_file()]
        if not found:
            tables = sorted(folder.glob("*.csv")) + sorted(folder.glob("*.tsv"))
            if len(tables) > 1:
                raise InvalidInput(f"{folder}: several CSV/TSV files; name the references with --refs")
            found = tables
        refs = found[0] if found else None
    if refs is not None:
        if not refs.is_file():
            raise InvalidInput(f"{refs}: no such references file")
        suffix = refs.suffix.lower()
        ref_items = (read_table(refs) if suffix in {".csv", ".tsv"}
                     else read_label_map(refs) if suffix == ".json" else read_jsonl(refs))
    by_path = {it.audio.resolve(): it for it in ref_items if it.audio is not None}
    by_name: dict[str, Item] = {}
    for it in ref_items:
        if it.audio is not None:
            by_name.setdefault(it.audio.name, it)
    items: list[Item] = [it for it in ref_items if it.audio is None]  # malformed rows
    used: set[int] = set()
    for p in audio:
        match = by_path.get(p.resolve()) or by_name.get(p.name)
        if match is not None:
            used.add(id(match))
            items.append(Item(key=str(p.relative_to(folder)), audio=p, reference=match.reference, line=match.line))
        else:
            items.append(Item(key=str(p.relative_to(folder)), audio=p, reference={}, line=0))
    # references naming files that are not there: report them as missing
    for it in ref_items:
        if it.audio is not None and id(it) not in used:
            items.append(it)
    return items


def read_label_map(path: Path) -> list[Item]:
    """References from a JSON object ``{audio file name: {intent, slots, text...}}``.

    Raises:
        InvalidInput: the file is not JSON or not an object (an entry that is not an object
            becomes a failed item, as a malformed manifest line does).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read the label file ({exc})") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: expected a JSON object keyed by audio file name")
    items: list[Item] = []
    for n, (name, ref) in enumerate(data.items(), 1):
        if not isinstance(ref, dict):
            items.append(Item(key=f"{path.name}:{name} (malformed)", audio=None, line=n,
                              error=f"entry {name!r}: not a JSON object"))
            continue
        items.append(_from_row({**ref, "audio_filepath": str(name)}, path.parent, n, f"{path.name}:{name}"))
    return items


def _from_row(row: object, base: Path, n: int, where: str) -> Item:
    if not isinstance(row, dict):
        return Item(key=f"{where} (malformed)", audio=None, line=n, error=f"line {n}: not a JSON object")
    audio = row.get("audio_filepath")
    if not isinstance(audio, str) or not audio.strip():
        return Item(key=f"{where} (malformed)", audio=None, line=n, error=f"line {n}: no audio_filepath")
    reference: dict[str, object] = {k: v for k, v in row.items() if k != "audio_filepath"}
    for key in ("text", "clean_text", "intent"):
        if key in reference and reference[key] is not None and not isinstance(reference[key], str):
            return Item(key=audio, audio=None, line=n, error=f"line {n}: {key} must be a string")
    slots = reference.get("slots")
    if slots is not None and not isinstance(slots, dict):
        return Item(key=audio, audio=None, line=n, error=f"line {n}: slots must be an object (slot -> value)")
    path = Path(os.path.expanduser(audio.strip()))
    if not path.is_absolute():
        path = Path(os.path.normpath(base / path))
    return Item(key=audio.strip(), audio=path, reference=reference, line=n)


def _dedupe(items: list[Item]) -> list[Item]:
    seen: dict[str, int] = {}
    for it in items:
        count = seen.get(it.key, 0) + 1
        seen[it.key] = count
        if count > 1:
            it.key = f"{it.key}#{count}"
    return items


def write_manifest(rows: list[dict[str, object]], path: Path) -> Path:
    """Write NeMo-style JSONL; ``audio_filepath`` made relative to the manifest's folder when possible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for row in rows:
        row = dict(row)
        audio = Path(str(row["audio_filepath"])).resolve()
        try:
            row["audio_filepath"] = os.path.relpath(audio, path.parent.resolve())
        except ValueError:  # other drive (Windows)
            row["audio_filepath"] = str(audio)
        lines.append(json.dumps(row, ensure_ascii=False))
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(x + "\n" for x in lines))
    tmp.replace(path)
    return path


def speech_samples_manifest(shared_dir: Path, path: Path) -> Path:
    """Write a manifest of ``<shared>/data/speech-samples`` (real recordings, ASR references only)."""
    import soundfile as sf

    pairs = speech_samples(shared_dir)
    if not pairs:
        raise InvalidInput(f"{shared_dir / 'data' / 'speech-samples'}: no recordings with transcripts found")
    root = shared_dir / "data" / "speech-samples"
    rows: list[dict[str, object]] = []
    for wav, text in pairs:
        row: dict[str, object] = {"audio_filepath": str(wav), "text": text}
        try:
            row["duration"] = round(float(sf.info(str(wav)).duration), 3)
        except Exception:  # an unreadable file is reported by the evaluation itself
            pass
        rel = wav.relative_to(root)
        row["source"] = rel.parts[0] if len(rel.parts) > 1 else wav.stem
        rows.append(row)
    return write_manifest(rows, path)
