"""One-word answers by real speakers, cut from the barista-dev coffee orders.

Slot filling asks for exactly this ("What size?" — "large"), and a short word
is where recognition is weakest: there is no sentence around it to help the
decoder, and the VAD and the end-of-turn policy have little speech to go on.
Spoken-digit corpora with a clear licence are not in the package registries,
so the words come from real recordings we have (issue 25 allows it): in each
barista-dev order, the word that carries a one-word slot value (a size:
small/medium/large; a drink: latte, mocha, americano, cappuccino, espresso) is
located with tiny.en word timestamps (beam 5, on the whole order) and cut out
with margins that stop at the neighbouring words. Three cutting rules were compared
on the tune half by how often tiny.en (beam 5, no prompt) hears the cut word
right: margins of ±0.12 s stopping halfway to the neighbours, 9/49; 0.25 s
back to the previous word's end and 0.12 s forward to halfway, 10/49; the whole
gap between the neighbours, 10/49. The second is used; the words are hard to
hear alone whichever way they are cut.

Selection bias, stated: only words that tiny.en heard right *in the sentence*
can be located, so the set leaves out the words that are already misheard in
context; it measures what is lost when the sentence is taken away, not the
hardest words.

Split: ``tune`` / ``report`` by a hash of the recording's name (about half
each, the same on every machine), so every word of one speaker's order is on
the same side. The cuts are cached in ``DATA_DIR/words/<hash>/`` (WAVs and
``clips.jsonl``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.audio import load_audio, write_wav

VERSION = 3
RATE = 16_000
MARGIN_S = 0.12
"""Kept after the word's end timestamp (Whisper's word times are only ~±50-100 ms right)."""
ONSET_S = 0.25
"""Kept before the word's start timestamp, which runs late: a clipped onset makes "mocha" "oka"."""
ANSWERS = {
    # slot -> (the context that makes the dialog ask for it, the one-word values)
    "size": ("i'd like a latte", ("small", "medium", "large")),
    "coffeeDrink": ("can i get a large one", ("latte", "mocha", "americano", "cappuccino", "espresso")),
}
SPLITS = ("tune", "report")


@dataclass(frozen=True, slots=True)
class WordClip:
    """One spoken word cut from a real order, with the question it answers."""

    path: str  # WAV, 16 kHz, relative to the cache folder
    word: str  # the slot value it carries
    slot: str
    context: str  # the text turn that makes the dialog ask for ``slot``
    source: str  # the barista-dev recording it was cut from
    start_s: float
    end_s: float
    split: str


def split_of(recording: str) -> str:
    """``tune`` or ``report``, from a hash of the recording's file name."""
    h = int(hashlib.sha256(f"word-split:{recording}".encode()).hexdigest()[:8], 16)
    return SPLITS[h % 2]


def _rows(barista_dir: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (barista_dir / "manifest.jsonl").read_text().splitlines() if line.strip()]


def _cache_dir(data_dir: Path, barista_dir: Path) -> Path:
    manifest = (barista_dir / "manifest.jsonl").read_bytes()
    key = hashlib.sha256(manifest + f"|v{VERSION}|{MARGIN_S}|{ONSET_S}|{sorted(ANSWERS.items())}".encode()).hexdigest()[:12]
    return data_dir / "words" / key


def _wanted(row: dict[str, object]) -> Iterator[tuple[str, str]]:
    slots = row.get("slots") or {}
    assert isinstance(slots, dict)
    for slot, (_context, values) in ANSWERS.items():
        value = str(slots.get(slot, "")).strip()
        if value in values:
            yield slot, value


def build_word_clips(barista_dir: Path, data_dir: Path, progress: bool = True) -> tuple[Path, list[WordClip]]:
    """Cut (or load from the cache) the one-word clips; returns the cache folder and the clips."""
    out = _cache_dir(data_dir, barista_dir)
    index = out / "clips.jsonl"
    if index.is_file():
        return out, [WordClip(**json.loads(line)) for line in index.read_text().splitlines() if line.strip()]
    from faster_whisper import WhisperModel
    from tqdm import tqdm

    from services.model_files import WHISPER_TINY_EN, verified_dir

    model = WhisperModel(str(verified_dir(WHISPER_TINY_EN)), device="cpu", compute_type="int8", cpu_threads=2)
    rows = [r for r in _rows(barista_dir) if any(True for _ in _wanted(r))]
    clips: list[WordClip] = []
    (out / "audio").mkdir(parents=True, exist_ok=True)
    for row in tqdm(rows, desc="cutting words", unit="order", disable=not progress):
        source = str(row["audio_filepath"])
        pcm = load_audio(barista_dir / source)
        segments, _ = model.transcribe(pcm.astype(np.float32) / 32768.0, language="en", beam_size=5,
                                       word_timestamps=True, condition_on_previous_text=False)
        words = [(w.word.strip(" .,?!-").lower(), w.start, w.end) for s in segments for w in s.words or []]
        for slot, value in _wanted(row):
            hits = [i for i, (w, _a, _b) in enumerate(words) if w == value]
            if len(hits) != 1:  # not heard in context, or ambiguous (e.g. "medium roast ... medium")
                continue
            i = hits[0]
            a, b = words[i][1], words[i][2]
            # Whisper's word starts run late (a cut at the start loses the "m" of "mocha"), its ends are
            # closer: so back to the previous word's end (at most ONSET_S), and forward MARGIN_S but never
            # past the middle of the gap to the next word (half of "iced" after "small" is another answer).
            before = words[i - 1][2] if i > 0 else 0.0
            after = (b + words[i + 1][1]) / 2 if i + 1 < len(words) else len(pcm) / RATE
            lo = max(0, int(max(a - ONSET_S, before) * RATE))
            hi = min(len(pcm), int(min(b + MARGIN_S, after) * RATE))
            name = f"audio/{Path(source).stem}-{slot}.wav"
            write_wav(out / name, pcm[lo:hi], RATE)
            clips.append(WordClip(name, value, slot, ANSWERS[slot][0], source, round(lo / RATE, 3),
                                  round(hi / RATE, 3), split_of(Path(source).name)))
    index.write_text("".join(json.dumps(asdict(c)) + "\n" for c in clips))
    return out, clips


def telephone(pcm: np.ndarray) -> np.ndarray:
    """The same audio through an 8 kHz channel (resampled down and back up), like the spoken digits
    of the issue's report, which were 8 kHz recordings."""
    from core.audio import resample, to_pcm16

    x = pcm.astype(np.float32) / 32768.0
    return to_pcm16(resample(resample(x, RATE, 8000), 8000, RATE))
