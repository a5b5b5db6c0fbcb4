"""The turn-taking clip set of ``quickturn bench turns`` (docs/turn-taking.md).

Generated clips are built from requests to the built-in domains (hand-written phrases plus
seeded samples of the domains' templates) in three kinds:

* ``complete``: the request said in one go;
* ``hesitation``: the same kind of request with a silent pause of 0.3-1.5 s at a hesitation
  point (after an article, a preposition, "and", or after a spoken filler "um"/"uh");
* ``filled``: a filler in the middle with no silent gap or a short one (≤ 0.25 s).

Every segment between two pauses is synthesized on its own (piper joe at three speaking rates,
three espeak-ng voices), resampled to 16 kHz, trimmed of its leading and trailing silence by
energy and concatenated with exact digital silence for the pauses, after 0.3 s of lead-in. So
the true end of speech and every pause position are known from the synthesis, not from a VAD.
Short answers ("large", "two", "ten minutes") carry a *context*: the request said first in the
same session, which makes the assistant ask the question they answer.

Real recordings (``../shared/data/speech-samples``, a seeded choice of ``barista-dev``) are read
where they are, never copied. Their end of speech comes from Whisper tiny.en's word timestamps,
refined by the recording's energy (see :func:`speech_end_from_words`), never from the Silero VAD
the benchmark tests.

Every clip has a ``tune`` / ``report`` split from a hash of its request text (generated clips: all
voices and kinds of one sentence stay together) or of its id (real recordings). Thresholds are
chosen on ``tune`` only.

The generated audio is cached in ``DATA_DIR/turns/<version-hash>/`` (WAVs and ``clips.jsonl``);
the hash covers the generator version, the voices and the whole clip plan, so a change to any of
them builds a new set. The real recordings' end times are cached in ``DATA_DIR/turns/real-<hash>.jsonl``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.audio import load_audio, resample, to_pcm16, write_wav
from core.text import normalize_transcript

log = logging.getLogger(__name__)

GENERATOR_VERSION = "1"
"""Bump when the synthesis or assembly changes in a way the clip plan does not show."""
REAL_VERSION = "3"
"""Bump when the real recordings' alignment changes."""

RATE_HZ = 16000
LEAD_S = 0.3
SEED = 2026
KINDS = ("complete", "hesitation", "filled", "real")
SPLITS = ("tune", "report")
FILLERS = ("um", "uh")
HESITATION_AFTER = frozenset({"a", "an", "the", "my", "for", "to", "in", "with", "at", "on", "and"})
"""Words after which people hesitate: articles, prepositions, "and" (plus any spoken filler)."""
PAUSE_RANGE_S = (0.3, 1.5)
FILLED_GAPS_S = (0.0, 0.0, 0.1, 0.15, 0.2, 0.25)
TRIM_WINDOW_MS = 10
TRIM_BELOW_PEAK_DB = 45.0
TRIM_FLOOR_DBFS = -60.0
FADE_MS = 3
N_BARISTA = 60


# --------------------------------------------------------------------------- voices


@dataclass(frozen=True)
class Voice:
    """A synthetic speaker: piper (``rate`` = length scale, > 1 slower) or espeak-ng (``rate`` = words/minute)."""

    name: str
    engine: str
    voice: str
    rate: float


PIPER_VOICES = (
    Voice("piper-joe", "piper", "en_US-joe-medium", 1.0),
    Voice("piper-joe-fast", "piper", "en_US-joe-medium", 0.85),
    Voice("piper-joe-slow", "piper", "en_US-joe-medium", 1.2),
)
ESPEAK_VOICES = (
    Voice("espeak-us", "espeak", "en-us", 165),
    Voice("espeak-gb", "espeak", "en-gb", 145),
    Voice("espeak-us-f3", "espeak", "en-us+f3", 185),
)
VOICES = PIPER_VOICES + ESPEAK_VOICES


def piper_available() -> bool:
    """Whether the piper package and the packaged joe voice are installed (cheap check, no loading)."""
    if importlib.util.find_spec("piper") is None:
        return False
    try:
        from services.model_files import PIPER_JOE

        return PIPER_JOE.directory().is_dir()
    except Exception:
        return False


def resolve_voices(voices: Sequence[Voice] = VOICES, *, piper: bool | None = None) -> list[Voice]:
    """The voices as they can be synthesized here: without piper, its voices become espeak en-us at a matching rate."""
    has_piper = piper_available() if piper is None else piper
    if has_piper:
        return list(voices)
    out = []
    for v in voices:
        if v.engine == "piper":
            wpm = round(165 / v.rate)
            out.append(Voice(f"espeak-us-{wpm}", "espeak", "en-us", wpm))
        else:
            out.append(v)
    if any(v.engine == "piper" for v in voices):
        log.warning("piper (or its joe voice) is not installed: the piper voices of the turn clips fall back to "
                    "espeak-ng en-us at matching rates")
    return out


Synth = Callable[[Voice, str], tuple[np.ndarray, int]]
"""(voice, text) → (int16 or float samples, sample rate)."""


class Synthesizer:
    """Synthesizes text in any of the voices; piper is loaded once, on first use."""

    def __init__(self) -> None:
        self._piper: Any = None

    def __call__(self, voice: Voice, text: str) -> tuple[np.ndarray, int]:
        if voice.engine == "piper":
            if self._piper is None:
                from services.tts.piper_tts import PiperTts

                self._piper = PiperTts(threads=2)
            return self._piper.synthesize(text, length_scale=float(voice.rate)), int(self._piper.sample_rate_hz)
        from services.tts.espeak_tts import EspeakTts

        e = EspeakTts(voice.voice, speed_wpm=int(voice.rate))
        return e.synthesize(text), int(e.sample_rate_hz)


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Request:
    """A request as said in one go; ``context`` is said first in the same session (short answers)."""

    domain: str
    text: str
    context: str = ""


PHRASES: tuple[Request, ...] = (
    # timers
    Request("timers", "set a timer for ten minutes"),
    Request("timers", "set a timer for five minutes"),
    Request("timers", "start a timer for twenty minutes"),
    Request("timers", "can you set a timer for thirty seconds"),
    Request("timers", "set a pasta timer for twelve minutes"),
    Request("timers", "remind me in half an hour"),
    Request("timers", "set a timer for an hour and a half"),
    # alarms
    Request("alarms", "set an alarm for seven thirty"),
    Request("alarms", "wake me up at six in the morning"),
    Request("alarms", "set an alarm for quarter to eight"),
    Request("alarms", "set an alarm for eight o'clock tomorrow"),
    Request("alarms", "cancel the alarm for six thirty"),
    # coffee
    Request("coffee", "i'd like a large latte"),
    Request("coffee", "can i get a medium cappuccino"),
    Request("coffee", "i'd like a large latte with soy milk"),
    Request("coffee", "can i get a small americano with a bit of milk"),
    Request("coffee", "give me a double shot espresso"),
    Request("coffee", "may i have a medium iced mocha with almond milk and some sugar"),
    Request("coffee", "make me a large dark roast coffee with cream"),
    # smart home
    Request("smart_home", "turn off the bedroom lights"),
    Request("smart_home", "turn on the kitchen light"),
    Request("smart_home", "set the living room lamp to fifty percent"),
    Request("smart_home", "switch off the tv in the bedroom"),
    Request("smart_home", "dim the lights to twenty percent"),
    Request("smart_home", "turn on the fan in the office"),
    # weather
    Request("weather", "what's the weather in boston tomorrow"),
    Request("weather", "will it rain in seattle this weekend"),
    Request("weather", "what's the weather like in london"),
    Request("weather", "is it going to be cold tonight"),
    Request("weather", "what's the forecast for paris on friday"),
    Request("weather", "do i need an umbrella in new york today"),
    # music
    Request("music", "play some jazz"),
    Request("music", "play yellow submarine by the beatles"),
    Request("music", "put on the album abbey road"),
    Request("music", "play some music by miles davis"),
    Request("music", "add this song to my road trip playlist"),
    Request("music", "play the latest album by adele"),
    # short answers, each after the request that makes the assistant ask for it
    Request("answer", "large", context="i'd like a latte"),
    Request("answer", "medium", context="can i get a cappuccino"),
    Request("answer", "ten minutes", context="set a timer"),
    Request("answer", "seven thirty", context="set an alarm"),
    Request("answer", "the kitchen", context="turn on the lights"),
    Request("answer", "two", context="book a table"),
    Request("answer", "yes"),
    Request("answer", "no thanks"),
)
"""Hand-written requests (the domain templates below add more)."""

TEMPLATE_SAMPLES: tuple[tuple[str, str, str, tuple[int, ...], int], ...] = (
    # (domain folder, intent, clip domain label, which of the intent's templates, how many samples)
    ("timers", "SetTimer", "timers", (0, 3), 3),
    ("timers", "SetAlarm", "alarms", (0, 1), 3),
    ("coffee", "orderDrink", "coffee", (), 4),
    ("smart_home", "DeviceOn", "smart_home", (2, 3), 2),
    ("smart_home", "DeviceOff", "smart_home", (2, 3), 2),
    ("smart_home", "SetDeviceLevel", "smart_home", (0, 1), 1),
)
"""Templates that read as natural requests (some others make "new a cooking timer"); () = all of them."""


def words_of(text: str) -> list[str]:
    return text.split()


def hesitation_points(words: Sequence[str]) -> list[int]:
    """Indices of words after which a speaker may hesitate (never the last word)."""
    return [i for i, w in enumerate(words[:-1]) if w in HESITATION_AFTER]


def _article_ok(words: Sequence[str]) -> bool:
    """No "an large" or "a americano" (templates offer both articles)."""
    for w, nxt in zip(words, words[1:], strict=False):
        vowel = nxt[:1] in "aeiou"
        if (w == "a" and vowel) or (w == "an" and not vowel):
            return False
    return True


def template_requests(seed: int = SEED) -> list[Request]:
    """Seeded samples of the domains' templates: natural requests with a hesitation point, numbers spelled out."""
    from domains import load_domains

    domains = {d.name: d for d in load_domains()}
    taken = {r.text for r in PHRASES}
    out: list[Request] = []
    for folder, intent, label, which, n in TEMPLATE_SAMPLES:
        if folder not in domains:
            continue
        templates = [t for t in domains[folder].templates if t.intent == intent]
        lines = {templates[i].line for i in which if i < len(templates)} if which else {t.line for t in templates}
        examples = [e for e in domains[folder].expand(per_template=4, seed=seed) if e.intent == intent and e.line in lines]
        pool = sorted({e.text for e in examples
                       if 4 <= len(e.words) <= 14 and hesitation_points(e.words) and _article_ok(e.words)
                       and not any(ch.isdigit() for ch in e.text)})
        random.Random(f"{seed}:{folder}:{intent}").shuffle(pool)
        for text in pool:
            if n == 0:
                break
            if text not in taken:
                taken.add(text)
                out.append(Request(label, text))
                n -= 1
    return out


def all_requests(seed: int = SEED) -> list[Request]:
    return [*PHRASES, *template_requests(seed)]


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Segment:
    """Text synthesized in one piece, then ``gap_s`` of silence (after its last word, ``after_word``)."""

    text: str
    gap_s: float = 0.0
    after_word: str = ""


@dataclass(frozen=True)
class ClipPlan:
    id: str
    kind: str
    domain: str
    request: str
    voice: Voice
    segments: tuple[Segment, ...]
    split: str
    context: str = ""

    @property
    def text(self) -> str:
        return " ".join(s.text.rstrip(",") for s in self.segments)


def split_of(key: str) -> str:
    """``tune`` or ``report``, from a hash of ``key`` (about half each, the same on every machine)."""
    h = int(hashlib.sha256(f"turn-split:{key}".encode()).hexdigest()[:8], 16)
    return SPLITS[h % 2]


def request_key(request: Request) -> str:
    """The split key of a generated clip: its sentence (and context), whatever the voice and kind."""
    return f"{request.context} → {request.text}" if request.context else request.text


def _clip_id(kind: str, request: Request, voice: Voice, extra: str = "") -> str:
    digest = hashlib.sha1(f"{request_key(request)}|{kind}|{voice.name}|{extra}".encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9]+", "-", request.text.lower()).strip("-")[:32]
    return f"{kind}-{slug}-{voice.name}-{digest}"


def _join(words: Sequence[str]) -> str:
    return " ".join(words)


def hesitation_plan(request: Request, voice: Voice, seed: int = SEED) -> ClipPlan | None:
    """The request with one (sometimes two) silent pauses at hesitation points, some after a spoken filler."""
    words = words_of(request.text)
    points = hesitation_points(words)
    if not points:
        return None
    rng = random.Random(f"{seed}|hesitation|{request.text}|{voice.name}")
    n = 2 if len(points) >= 2 and rng.random() < 0.25 else 1
    chosen = sorted(rng.sample(points, n))
    segments: list[Segment] = []
    start = 0
    for i in chosen:
        piece = list(words[start : i + 1])
        if rng.random() < 0.5:
            piece.append(rng.choice(FILLERS))
        gap = round(rng.uniform(*PAUSE_RANGE_S), 2)
        # A trailing comma gives the piece a continuing (not a sentence-final) intonation.
        segments.append(Segment(_join(piece) + ",", gap, piece[-1]))
        start = i + 1
    segments.append(Segment(_join(words[start:])))
    extra = "|".join(f"{s.text}:{s.gap_s}" for s in segments)
    return ClipPlan(_clip_id("hesitation", request, voice, extra), "hesitation", request.domain, request.text, voice,
                    tuple(segments), split_of(request_key(request)), request.context)


def filled_plan(request: Request, voice: Voice, seed: int = SEED) -> ClipPlan | None:
    """The request with a filler in the middle and no silent gap (one piece) or a short one."""
    words = words_of(request.text)
    points = hesitation_points(words)
    if not points:
        return None
    rng = random.Random(f"{seed}|filled|{request.text}|{voice.name}")
    i = rng.choice(points)
    filler = rng.choice(FILLERS)
    gap = rng.choice(FILLED_GAPS_S)
    head = [*words[: i + 1], filler]
    tail = words[i + 1 :]
    if gap == 0.0:
        segments: tuple[Segment, ...] = (Segment(_join([*head, *tail])),)
    else:
        segments = (Segment(_join(head) + ",", gap, filler), Segment(_join(tail)))
    extra = "|".join(f"{s.text}:{s.gap_s}" for s in segments)
    return ClipPlan(_clip_id("filled", request, voice, extra), "filled", request.domain, request.text, voice,
                    segments, split_of(request_key(request)), request.context)


def complete_plan(request: Request, voice: Voice) -> ClipPlan:
    return ClipPlan(_clip_id("complete", request, voice), "complete", request.domain, request.text, voice,
                    (Segment(request.text),), split_of(request_key(request)), request.context)


def plan_clips(requests: Sequence[Request] | None = None, voices: Sequence[Voice] | None = None,
               seed: int = SEED) -> list[ClipPlan]:
    """Every generated clip: each request complete and with hesitations in two voices (one piper rate, one
    espeak voice, rotating), with a filled pause in one of them; short answers complete only."""
    requests = list(requests) if requests is not None else all_requests(seed)
    voices = list(voices) if voices is not None else resolve_voices()
    first = [v for v in voices if v.name.startswith("piper")] or voices[: max(1, len(voices) // 2)]
    second = [v for v in voices if v not in first] or voices
    plans: list[ClipPlan] = []
    for i, request in enumerate(requests):
        pair = (first[i % len(first)], second[(i + 1) % len(second)])
        for voice in pair:
            plans.append(complete_plan(request, voice))
        if request.context or request.domain == "answer":
            continue
        for voice in pair:
            p = hesitation_plan(request, voice, seed)
            if p is not None:
                plans.append(p)
        f = filled_plan(request, pair[i % 2], seed)
        if f is not None:
            plans.append(f)
    return plans


# --------------------------------------------------------------------------- synthesis and assembly


def _window_db(pcm: np.ndarray, window: int) -> np.ndarray:
    x = pcm.astype(np.float32) / 32768.0
    n = len(x) // window
    if n == 0:
        return np.zeros(0, np.float32)
    rms = np.sqrt((x[: n * window].reshape(n, window) ** 2).mean(axis=1) + 1e-12)
    return 20.0 * np.log10(rms)


def trim_silence(pcm: np.ndarray, *, window_ms: int = TRIM_WINDOW_MS, below_peak_db: float = TRIM_BELOW_PEAK_DB,
                 floor_dbfs: float = TRIM_FLOOR_DBFS, fade_ms: int = FADE_MS, rate_hz: int = RATE_HZ) -> np.ndarray:
    """Cut leading and trailing windows quieter than ``below_peak_db`` under the loudest one (or ``floor_dbfs``).

    The cut edges get a ``fade_ms`` ramp, so no click marks them; the first and last kept windows
    are speech by this definition.
    """
    window = max(1, rate_hz * window_ms // 1000)
    db = _window_db(pcm, window)
    if db.size == 0:
        return pcm[:0].astype(np.int16)
    threshold = max(float(db.max()) - below_peak_db, floor_dbfs)
    active = np.flatnonzero(db > threshold)
    if active.size == 0:
        return pcm[:0].astype(np.int16)
    out = pcm[active[0] * window : (active[-1] + 1) * window].astype(np.float32)
    ramp = min(len(out) // 2, rate_hz * fade_ms // 1000)
    if ramp > 0:
        r = np.linspace(0.0, 1.0, ramp, endpoint=False, dtype=np.float32)
        out[:ramp] *= r
        out[-ramp:] *= r[::-1]
    return np.round(out).astype(np.int16)


def to_16k(samples: np.ndarray, rate_hz: int) -> np.ndarray:
    x = samples.astype(np.float32)
    if samples.dtype == np.int16:
        x = x / 32768.0
    return to_pcm16(resample(x, rate_hz, RATE_HZ))


@dataclass
class TurnClip:
    """One clip of the set, as ``clips.jsonl`` stores it.

    Attributes:
        id: unique and stable.
        kind: ``complete``, ``hesitation``, ``filled`` or ``real``.
        text: what was said, fillers included.
        request: the request without fillers (for real recordings: the reference or the ASR's transcript).
        pauses: ``(start_s, dur_s, after_word)``: silent gaps inside the speech (seconds from the clip's start).
        true_end_s: where speech ends in the clip (seconds).
        voice, rate: the synthetic voice and its rate (piper length scale, espeak words/minute); real: speaker set.
        split: ``tune`` or ``report``.
        audio: the WAV/FLAC file (relative to the clip-set folder in ``clips.jsonl``; absolute once loaded).
        domain: ``timers``, ``alarms``, ``coffee``, ``smart_home``, ``weather``, ``music``, ``answer`` or
            the real recording's folder.
        source: ``generated``, ``speech-samples`` or ``barista-dev``.
        context: a request said first in the same session (short answers); ``context_audio`` its file.
        asr_end_s: real recordings: the last word's end by Whisper's word timestamps, before refinement.
    """

    id: str
    kind: str
    text: str
    request: str
    pauses: list[tuple[float, float, str]]
    true_end_s: float
    voice: str
    rate: float | None
    split: str
    audio: str
    domain: str = ""
    source: str = "generated"
    duration_s: float = 0.0
    context: str = ""
    context_audio: str = ""
    asr_end_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def max_pause_s(self) -> float:
        return max((p[1] for p in self.pauses), default=0.0)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["pauses"] = [list(p) for p in self.pauses]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TurnClip:
        d = dict(d)
        d["pauses"] = [(float(a), float(b), str(c)) for a, b, c in d.get("pauses", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def assemble(pieces: Sequence[np.ndarray], gaps_s: Sequence[float], after_words: Sequence[str],
             *, lead_s: float = LEAD_S) -> tuple[np.ndarray, list[tuple[float, float, str]], float]:
    """Lead-in silence, then each trimmed piece followed by its exact gap of silence.

    Returns the samples, the pauses ``(start_s, dur_s, after_word)`` (gaps > 0 only) and the true end of
    speech (end of the last piece), all in seconds at 16 kHz.
    """
    parts = [np.zeros(round(lead_s * RATE_HZ), np.int16)]
    pos = len(parts[0])
    pauses: list[tuple[float, float, str]] = []
    end = pos
    for k, piece in enumerate(pieces):
        parts.append(piece.astype(np.int16))
        pos += len(piece)
        end = pos
        gap = gaps_s[k] if k < len(gaps_s) else 0.0
        if k < len(pieces) - 1 and gap > 0:
            n = round(gap * RATE_HZ)
            pauses.append((round(pos / RATE_HZ, 4), round(n / RATE_HZ, 4), after_words[k]))
            parts.append(np.zeros(n, np.int16))
            pos += n
    return np.concatenate(parts), pauses, round(end / RATE_HZ, 4)


def synthesize_plan(plan: ClipPlan, synth: Synth) -> tuple[np.ndarray, list[tuple[float, float, str]], float]:
    """Synthesize each segment apart, trim it by energy and assemble the clip (samples, pauses, true end)."""
    pieces = []
    for seg in plan.segments:
        samples, rate = synth(plan.voice, seg.text)
        piece = trim_silence(to_16k(np.asarray(samples), rate))
        if piece.size == 0:
            raise RuntimeError(f"{plan.voice.name} produced no audio for {seg.text!r}")
        pieces.append(piece)
    return assemble(pieces, [s.gap_s for s in plan.segments], [s.after_word for s in plan.segments])


def build_clip(plan: ClipPlan, synth: Synth, out_dir: Path) -> TurnClip:
    """Synthesize one planned clip into ``out_dir/audio/`` (and its context, if any); its record."""
    pcm, pauses, true_end = synthesize_plan(plan, synth)
    rel = Path("audio") / f"{plan.id}.wav"
    write_wav(out_dir / rel, pcm, RATE_HZ)
    ctx_rel = ""
    if plan.context:
        name = hashlib.sha1(f"{plan.context}|{plan.voice.name}".encode()).hexdigest()[:10]
        ctx_path = Path("audio") / f"context-{plan.voice.name}-{name}.wav"
        if not (out_dir / ctx_path).is_file():
            ctx, _, _ = synthesize_plan(replace(plan, segments=(Segment(plan.context),), context=""), synth)
            write_wav(out_dir / ctx_path, ctx, RATE_HZ)
        ctx_rel = str(ctx_path)
    return TurnClip(
        id=plan.id, kind=plan.kind, text=plan.text, request=plan.request, pauses=pauses, true_end_s=true_end,
        voice=plan.voice.name, rate=plan.voice.rate, split=plan.split, audio=str(rel), domain=plan.domain,
        source="generated", duration_s=round(len(pcm) / RATE_HZ, 4), context=plan.context, context_audio=ctx_rel,
    )


def plan_hash(plans: Sequence[ClipPlan]) -> str:
    payload = json.dumps({
        "version": GENERATOR_VERSION, "lead_s": LEAD_S,
        "trim": [TRIM_WINDOW_MS, TRIM_BELOW_PEAK_DB, TRIM_FLOOR_DBFS, FADE_MS],
        "plans": [[p.id, p.kind, p.split, asdict(p.voice), [asdict(s) for s in p.segments], p.context] for p in plans],
    }, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _resolve(clips: Iterable[TurnClip], root: Path) -> list[TurnClip]:
    out = []
    for c in clips:
        audio = str(root / c.audio)
        ctx = str(root / c.context_audio) if c.context_audio else ""
        out.append(replace(c, audio=audio, context_audio=ctx))
    return out


def read_clips(path: Path) -> list[TurnClip]:
    """A ``clips.jsonl`` (audio paths relative to its folder, or absolute), paths made absolute."""
    clips = [TurnClip.from_json(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    return _resolve(clips, path.parent)


def write_clips(path: Path, clips: Sequence[TurnClip]) -> None:
    """Write ``clips.jsonl`` atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(c.to_json()) + "\n" for c in clips))
    tmp.replace(path)


def generated_clips(data_dir: Path, *, plans: Sequence[ClipPlan] | None = None, synth: Synth | None = None,
                    progress: bool = True, force: bool = False) -> list[TurnClip]:
    """The generated clips, built into ``data_dir/turns/<version-hash>/`` unless already there."""
    plans = list(plans) if plans is not None else plan_clips()
    out_dir = data_dir / "turns" / plan_hash(plans)
    manifest = out_dir / "clips.jsonl"
    if manifest.is_file() and not force:
        clips = read_clips(manifest)
        if len(clips) == len(plans) and all(Path(c.audio).is_file() for c in clips):
            return clips
    from tqdm import tqdm

    synth = synth or Synthesizer()
    out_dir.mkdir(parents=True, exist_ok=True)
    clips = [build_clip(p, synth, out_dir)
             for p in tqdm(plans, desc="synthesizing turn clips", unit="clip", disable=not progress)]
    write_clips(manifest, clips)
    return _resolve(clips, out_dir)


# --------------------------------------------------------------------------- real recordings


def speech_end_from_words(pcm: np.ndarray, word_spans: Sequence[tuple[float, float, str]], *,
                          tolerance_s: float = 0.3, min_gap_s: float = 0.25) -> tuple[float, list[tuple[float, float, str]]]:
    """The end of speech of a recording from its ASR word timestamps, refined by its energy; internal pauses.

    Whisper tiny.en's last word ends are more than 100 ms away from the sound's end on 31 of the 71
    recordings (up to 1.07 s late, 0.42 s early): the benchmark's cut-off rule allows 100 ms. So the words say *which* sound is the last word and the energy says
    *where* it ends: the end of the last run of windows above the recording's noise floor (halfway
    from the floor to the speech level in dB, at most 30 dB under the speech level; 10 ms windows;
    runs bridged over gaps < ``min_gap_s``)
    that begins before the last word's end + ``tolerance_s``. A noise far before the first word or after
    the last one (a click, a breath) is not speech. Pauses are the gaps ≥ ``min_gap_s`` inside the speech, each named by the
    word the ASR puts before it. Without words, the ASR end is 0 and the whole energy is used.
    """
    window = RATE_HZ * TRIM_WINDOW_MS // 1000
    db = _window_db(pcm, window)
    asr_end = word_spans[-1][1] if word_spans else 0.0
    if db.size == 0:
        return asr_end, []
    heard = db[db > -100.0]  # digital silence (padding some files carry) is not the room's noise floor
    if heard.size == 0:
        return asr_end, []
    floor, level = float(np.percentile(heard, 10)), float(np.percentile(heard, 95))
    threshold = max(floor + 0.5 * (level - floor), level - 30.0)
    active = np.flatnonzero(db > threshold)
    if active.size == 0:
        return asr_end, []
    # Runs of active windows, bridged over short gaps.
    max_gap = round(min_gap_s * 1000 / TRIM_WINDOW_MS)
    runs: list[list[int]] = [[int(active[0]), int(active[0])]]
    for i in active[1:]:
        if i - runs[-1][1] <= max_gap:
            runs[-1][1] = int(i)
        else:
            runs.append([int(i), int(i)])
    last = (asr_end + tolerance_s) if word_spans else float("inf")
    first = (word_spans[0][0] - tolerance_s) if word_spans else float("-inf")
    ms = TRIM_WINDOW_MS / 1000
    speech = [r for r in runs if r[0] * ms <= last and (r[1] + 1) * ms >= first] or runs[:1]
    end_s = (speech[-1][1] + 1) * TRIM_WINDOW_MS / 1000
    pauses = []
    for a, b in zip(speech, speech[1:], strict=False):
        start = (a[1] + 1) * TRIM_WINDOW_MS / 1000
        dur = (b[0] - a[1] - 1) * TRIM_WINDOW_MS / 1000
        before = [w for _, e, w in word_spans if e <= start + 0.15]
        if before or not word_spans:  # a gap before the first word is a noise before speech, not a pause
            word = (normalize_transcript(before[-1]).split() or [""])[-1] if before else ""
            pauses.append((round(start, 3), round(dur, 3), word))
    return round(end_s, 3), pauses


def _barista_rows(shared_dir: Path, n: int, seed: int) -> list[dict[str, Any]]:
    manifest = shared_dir / "data" / "barista-dev" / "manifest.jsonl"
    if not manifest.is_file():
        return []
    rows = [json.loads(x) for x in manifest.read_text().splitlines() if x.strip()]
    rows.sort(key=lambda r: str(r["audio_filepath"]))
    return random.Random(f"{seed}|barista").sample(rows, min(n, len(rows)))


def real_sources(shared_dir: Path, *, n_barista: int = N_BARISTA, seed: int = SEED) -> list[tuple[Path, str, str]]:
    """(file, reference text or "", source folder) of the real recordings used; [] when ../shared is absent."""
    from assistant.speech_samples import speech_samples

    out = [(p, ref, "speech-samples") for p, ref in speech_samples(shared_dir)]
    base = shared_dir / "data" / "barista-dev"
    out += [(base / str(r["audio_filepath"]), "", "barista-dev") for r in _barista_rows(shared_dir, n_barista, seed)]
    return out


def real_clips(shared_dir: Path, data_dir: Path, *, n_barista: int = N_BARISTA, seed: int = SEED,
               progress: bool = True) -> list[TurnClip]:
    """The real recordings as clips (true end from Whisper's word timestamps + energy), cached by file list."""
    sources = real_sources(shared_dir, n_barista=n_barista, seed=seed)
    if not sources:
        log.warning("%s is absent: the turn benchmark runs without real recordings", shared_dir / "data")
        return []
    key = json.dumps([REAL_VERSION, [(str(p.relative_to(shared_dir)), ref) for p, ref, _ in sources]])
    cache = data_dir / "turns" / f"real-{hashlib.sha256(key.encode()).hexdigest()[:12]}.jsonl"
    if cache.is_file():
        clips = [TurnClip.from_json(json.loads(x)) for x in cache.read_text().splitlines() if x.strip()]
        return [replace(c, audio=str(shared_dir / c.audio)) for c in clips]
    from faster_whisper import WhisperModel
    from tqdm import tqdm

    from services import model_files

    model = WhisperModel(str(model_files.verified_dir(model_files.WHISPER_TINY_EN)), device="cpu",
                         compute_type="int8", cpu_threads=2)
    clips = []
    for path, ref, source in tqdm(sources, desc="aligning real recordings", unit="file", disable=not progress):
        pcm = load_audio(path)
        segments, _ = model.transcribe(pcm.astype(np.float32) / 32768.0, language="en", beam_size=5,
                                       word_timestamps=True, condition_on_previous_text=False)
        words = [(float(w.start), float(w.end), w.word.strip()) for s in segments for w in (s.words or [])]
        end_s, pauses = speech_end_from_words(pcm, words)
        heard = normalize_transcript(" ".join(w for _, _, w in words))
        rel = str(path.relative_to(shared_dir))
        request = ref or heard
        clips.append(TurnClip(
            id=f"real-{source}-{path.stem}", kind="real", text=request, request=request, pauses=pauses,
            true_end_s=end_s, voice=f"human ({source})", rate=None, split=split_of(f"real-{source}-{path.stem}"),
            audio=rel, domain=source, source=source, duration_s=round(len(pcm) / RATE_HZ, 3), asr_end_s=round(
                words[-1][1], 3) if words else None, extra={"asr_text": heard},
        ))
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_clips(cache, clips)
    return [replace(c, audio=str(shared_dir / c.audio)) for c in clips]


# --------------------------------------------------------------------------- selection


def load_clip_set(settings: Any, *, real: bool = True, progress: bool = True) -> list[TurnClip]:
    """Generated clips (built on first use) plus, unless ``real`` is False, the real recordings."""
    clips = generated_clips(Path(settings.data_dir), progress=progress)
    if real:
        clips += real_clips(Path(settings.shared_dir), Path(settings.data_dir), progress=progress)
    return clips


def select_clips(clips: Sequence[TurnClip], *, split: str = "report", kinds: Sequence[str] | None = None,
                 limit: int | None = None, seed: int = SEED) -> list[TurnClip]:
    """The clips of ``split`` (``tune``, ``report`` or ``all``) and ``kinds``; ``limit`` per split, spread over kinds.

    With a limit, the kinds take turns (each kind's clips in a seeded order), so ``--limit 12`` gets
    about as many of each kind, not the first twelve of one.
    """
    splits = SPLITS if split == "all" else (split,)
    out: list[TurnClip] = []
    for s in splits:
        pool = [c for c in clips if c.split == s and (not kinds or c.kind in kinds)]
        if limit is None or limit >= len(pool):
            out += pool
            continue
        by_kind: dict[str, list[TurnClip]] = {}
        for c in pool:
            by_kind.setdefault(c.kind, []).append(c)
        queues = []
        for kind in sorted(by_kind, key=lambda k: KINDS.index(k) if k in KINDS else len(KINDS)):
            items = sorted(by_kind[kind], key=lambda c: c.id)
            random.Random(f"{seed}|{s}|{kind}").shuffle(items)
            queues.append(items)
        picked: list[TurnClip] = []
        while len(picked) < limit and any(queues):
            for q in queues:
                if q and len(picked) < limit:
                    picked.append(q.pop(0))
        out += picked
    return out


def counts(clips: Sequence[TurnClip]) -> dict[str, dict[str, int]]:
    """Clips per kind, split, voice and domain."""
    out: dict[str, dict[str, int]] = {"kind": {}, "split": {}, "voice": {}, "domain": {}}
    for c in clips:
        for key, value in (("kind", c.kind), ("split", c.split), ("voice", c.voice), ("domain", c.domain)):
            out[key][value] = out[key].get(value, 0) + 1
    return out
