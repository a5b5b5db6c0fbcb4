"""``quickturn setup``: synthesize the benchmark / demo utterances in several voices.

The voices differ on purpose (piper's neural voice at two speaking rates, two
espeak-ng voices) so that benchmarks do not measure one synthetic speaker
only. Output: ``DATA_DIR/utterances/<voice>/<nn>.wav`` and a NeMo-style
``DATA_DIR/utterances/manifest.jsonl`` (paths relative to it).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import yaml

from core.audio import resample, to_pcm16, write_wav
from core.settings import load_settings
from domains import load_domains

UTTERANCES_FILE = Path(__file__).resolve().parents[1] / "data" / "utterances.yml"


@dataclass(frozen=True)
class Voice:
    name: str
    engine: str
    option: str  # piper: length scale; espeak: voice name


VOICES = [
    Voice("piper-joe", "piper", "1.0"),
    Voice("piper-joe-fast", "piper", "0.85"),
    Voice("piper-joe-slow", "piper", "1.2"),
    Voice("espeak-us", "espeak", "en-us"),
]
"""Voices of the generated set. The female espeak variant (en-us+f3) was dropped from the
default set: Whisper tiny.en's WER on it is ~0.27-0.30 (formant synthesis far from human
speech), which measures the synthesizer more than the recognizer; `--voices` can still ask
for any espeak voice."""


def load_utterances() -> list[dict[str, object]]:
    data = yaml.safe_load(UTTERANCES_FILE.read_text())
    return list(data["utterances"])


def synthesize(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    if voice.engine == "piper":
        tts = _piper()
        return tts.synthesize(text, length_scale=float(voice.option)), tts.sample_rate_hz
    from services.tts.espeak_tts import EspeakTts

    e = EspeakTts(voice.option, speed_wpm=165)
    return e.synthesize(text), e.sample_rate_hz


@cache
def _piper():  # type: ignore[no-untyped-def]
    """One piper voice for the whole set-up run (loading costs seconds)."""
    from services.tts.piper_tts import PiperTts

    return PiperTts(threads=2)


def generate(out_dir: Path, voices: list[Voice] | None = None, force: bool = False) -> Path:
    """Write the utterance WAVs (16 kHz, with 300 ms lead-in silence) and the manifest; returns its path."""
    from tqdm import tqdm

    voices = voices or VOICES
    utterances = load_utterances()
    manifest = out_dir / "manifest.jsonl"
    if manifest.is_file() and not force:
        rows_have = [json.loads(x) for x in manifest.read_text().splitlines()]
        want = {(v.name, str(u["text"])) for v in voices for u in utterances}
        have = {(str(r.get("voice")), str(r.get("text"))) for r in rows_have}
        if have == want and all((out_dir / r["audio_filepath"]).is_file() for r in rows_have):
            return manifest
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    jobs = [(v, i, u) for v in voices for i, u in enumerate(utterances)]
    for voice, i, u in tqdm(jobs, desc="synthesizing utterances", unit="utt"):
        rel = Path(voice.name) / f"{i:02d}.wav"
        duration = _write_utterance(out_dir / rel, voice, str(u["text"]))
        rows.append(
            {
                "audio_filepath": str(rel),
                "duration": duration,
                "text": u["text"],
                "clean_text": u.get("clean_text", u["text"]),
                "intent": u["intent"],
                "slots": u.get("slots") or {},
                "voice": voice.name,
            }
        )
    _write_manifest(manifest, rows)
    return manifest


def _write_utterance(path: Path, voice: Voice, text: str) -> float:
    """Synthesize ``text`` as a 16 kHz WAV with 300 ms lead-in and 200 ms trailing silence; its seconds."""
    pcm, rate = synthesize(voice, text)
    audio = to_pcm16(resample(pcm.astype(np.float32) / 32768.0, rate, 16000))
    audio = np.concatenate([np.zeros(4800, np.int16), audio, np.zeros(3200, np.int16)])
    write_wav(path, audio, 16000)
    return round(len(audio) / 16000, 3)


def _write_manifest(manifest: Path, rows: list[dict[str, object]]) -> None:
    """Write the JSONL manifest atomically (a reader never sees half of it)."""
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(manifest)


def utterance_manifest(force: bool = False) -> Path:
    return generate(load_settings().data_dir / "utterances", force=force)


def domain_samples(domain_name: str, out_dir: Path, samples: int = 30, seed: int = 2026,
                   voices: list[Voice] | None = None) -> Path:
    """Synthesize ``samples`` utterances sampled from a domain's templates, with their intent and slots.

    An end-to-end check of one domain on speech (ASR errors included), in the shape
    `quickturn eval` reads. The generated command set above holds a few short commands
    per domain; a grammar such as the coffee one produces long orders (4-6 s), which
    exposed a token cap that cut their last words. The seed differs from the NLU
    training's template sampling, but a small grammar repeats itself: these are not
    held out from the NLU's training phrases, only from its audio.
    """
    import random

    from tqdm import tqdm

    domains = {d.name: d for d in load_domains()}
    if domain_name not in domains:
        raise ValueError(f"unknown domain {domain_name!r} (installed: {', '.join(sorted(domains))})")
    examples = [e for e in domains[domain_name].expand(per_template=3, seed=seed) if e.intent != "out_of_scope"]
    if not examples:
        raise ValueError(f"domain {domain_name!r} has no templates or examples to sample")
    random.Random(seed).shuffle(examples)
    examples = examples[:samples]
    voices = voices or [VOICES[0], VOICES[3]]
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for voice, (i, ex) in tqdm([(v, ie) for v in voices for ie in enumerate(examples)],
                               desc=f"synthesizing {domain_name} samples", unit="utt"):
        text = " ".join(ex.words)
        rel = Path(voice.name) / f"{i:02d}.wav"
        duration = _write_utterance(out_dir / rel, voice, text)
        slots = {sp.slot: " ".join(ex.words[sp.start : sp.end]) for sp in ex.spans}
        rows.append({"audio_filepath": str(rel), "duration": duration, "text": text,
                     "intent": ex.intent, "slots": slots, "voice": voice.name})
    manifest = out_dir / "manifest.jsonl"
    _write_manifest(manifest, rows)
    return manifest


def setup_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="quickturn setup", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="regenerate even if present")
    parser.add_argument("--domain", metavar="NAME",
                        help="instead: synthesize utterances sampled from this domain's templates "
                             "(piper and espeak voices) into DATA_DIR/domain-NAME/ for `quickturn eval`")
    parser.add_argument("--samples", type=int, default=30, help="with --domain: utterances per voice")
    parser.add_argument("--seed", type=int, default=2026, help="with --domain: sampling seed")
    args = parser.parse_args(argv)
    if args.domain:
        from core.errors import InvalidInput

        if args.samples < 1:
            raise InvalidInput("--samples must be at least 1")
        try:
            manifest = domain_samples(args.domain, load_settings().data_dir / f"domain-{args.domain}",
                                      args.samples, args.seed)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        print(f"{len(manifest.read_text().splitlines())} utterances in {manifest}")
        return 0
    manifest = utterance_manifest(force=args.force)
    n = len(manifest.read_text().splitlines())
    print(f"{n} utterances in {manifest}")
    return 0
