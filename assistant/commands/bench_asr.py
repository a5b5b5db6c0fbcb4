"""``quickturn bench asr``: measure the Whisper windowing choices on real and generated speech.

Each configuration decodes every utterance once (after one warm-up) with the
audio trimmed to the VAD's speech region plus 160 ms of trailing silence —
what the pipeline's speculative decode sees. Printed per configuration:
corpus WER (real recordings and generated voices apart), median / p95
decode time, and how often the long-window fallback ran.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from assistant.commands.bench import bench_items
from assistant.metrics import percentile, wer
from core.audio import load_audio, write_wav
from core.errors import InvalidInput
from core.settings import load_settings
from services.asr.decoder import WhisperDecoder
from services.asr.hints import domain_hint_words
from services.model_files import WHISPER_TINY_EN, verified_dir
from services.vad.endpointing import Endpointer
from services.vad.silero import FRAME_SAMPLES, SileroVad

CONFIGS = {
    "full-30s": dict(min_window_s=30.0, fallback_window_s=30.0, loop_guard=False),
    "cut-to-utterance": dict(min_window_s=0.0, fallback_window_s=0.0, loop_guard=False),
    "cut+rate-loop-cut": dict(min_window_s=0.0, fallback_window_s=0.0, loop_guard=True),
    "pad-6s": dict(min_window_s=6.0, fallback_window_s=0.0, loop_guard=True),
    "pad-6s+fallback-30s": dict(min_window_s=6.0, fallback_window_s=30.0, loop_guard=True, beam_size=1),
    "pad-8s+fallback-30s": dict(min_window_s=8.0, fallback_window_s=30.0, loop_guard=True),
    "pad-6s+fallback-30s+beam5": dict(min_window_s=6.0, fallback_window_s=30.0, loop_guard=True, beam_size=5),
    "pad-6s+fallback-10s/30s+beam5 (default final)": dict(min_window_s=6.0, fallback_window_s=10.0, loop_guard=True,
                                                          beam_size=5),
    "pad-6s+fallback-10s/30s+beam5+timestamp-cut": dict(min_window_s=6.0, fallback_window_s=10.0, loop_guard=True,
                                                         beam_size=5, timestamp_cut=True),
    "pad-5s+fallback-10s/30s+beam5": dict(min_window_s=5.0, fallback_window_s=10.0, loop_guard=True, beam_size=5),
    "pad-4s+fallback-10s/30s+beam5": dict(min_window_s=4.0, fallback_window_s=10.0, loop_guard=True, beam_size=5),
    "pad-6s+fallback-10s/30s+beam3": dict(min_window_s=6.0, fallback_window_s=10.0, loop_guard=True, beam_size=3),
    "pad-6s+fallback-10s/30s+beam2": dict(min_window_s=6.0, fallback_window_s=10.0, loop_guard=True, beam_size=2),
    "pad-6s+fallback-15s/30s+beam5": dict(min_window_s=6.0, fallback_window_s=15.0, loop_guard=True, beam_size=5),
    "pad-6s+fallback-30s+domain-hints": dict(min_window_s=6.0, fallback_window_s=30.0, loop_guard=True, hints=True),
}


def speech_region(pcm: np.ndarray, vad: SileroVad, tail_ms: int = 160) -> np.ndarray:
    """The audio from 200 ms before speech start to ``tail_ms`` after the last speech frame."""
    vad.reset()
    ep = Endpointer(silence_ms=10_000)
    start = end = None
    for i in range(len(pcm) // FRAME_SAMPLES):
        for ev in ep.push(vad(pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])):
            if ev.kind == "start" and start is None:
                start = ev.audio_ms
        if ep.in_speech:
            end = ep.last_speech_ms
    if start is None or end is None:
        return pcm
    a = int(max(0.0, start - 200) * 16)
    b = int(min(len(pcm), (end + tail_ms) * 16))
    return pcm[a:b]


def bench_asr_main(argv: list[str]) -> int:
    if "--one-word" in argv:
        return one_word_main([a for a in argv if a != "--one-word"])
    parser = argparse.ArgumentParser(prog="quickturn bench asr", description=__doc__.splitlines()[0])
    parser.add_argument("--configs", help=f"comma-separated subset of: {', '.join(CONFIGS)}")
    parser.add_argument("--voices", help="generated voices to include (default: all)")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one-word", action="store_true", help="one-word answers with/without dialog hints instead")
    args = parser.parse_args(argv)
    settings = load_settings()
    items = bench_items(settings, args.limit, args.voices.split(",") if args.voices else None, True)
    vad = SileroVad()
    audio = [speech_region(load_audio(Path(str(it["path"]))), vad) for it in items]
    names = [n.strip() for n in args.configs.split(",")] if args.configs else list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise InvalidInput(f"--configs: unknown {', '.join(map(repr, unknown))} (choose from: {', '.join(CONFIGS)})")
    directory = verified_dir(WHISPER_TINY_EN)
    results = {}
    for name in names:
        cfg = dict(CONFIGS[name])
        loop_guard = bool(cfg.pop("loop_guard"))
        hints = list(domain_hint_words()) if cfg.pop("hints", False) else None
        dec = WhisperDecoder(directory, threads=settings.asr.threads, **cfg)  # type: ignore[arg-type]
        dec.loop_guard = loop_guard
        dec.decode(audio[0], final=True)
        hyps, times, fallbacks, last_resort = [], [], 0, 0
        for pcm in audio:
            t0 = time.perf_counter()
            h = dec.decode(pcm, hints, final=True)
            times.append((time.perf_counter() - t0) * 1000)
            hyps.append(h.text)
            fallbacks += int(h.fallback)
            last_resort += int(h.fallback_window_s > dec.fallback_window_s)  # went on past the first re-decode window
        real = [i for i, it in enumerate(items) if it["source"] == "real"]
        gen = [i for i, it in enumerate(items) if it["source"] != "real"]
        refs = [str(it["text"]) for it in items]
        results[name] = {
            "wer_real": round(wer([refs[i] for i in real], [hyps[i] for i in real]), 4) if real else None,
            "wer_generated": round(wer([refs[i] for i in gen], [hyps[i] for i in gen]), 4) if gen else None,
            "wer_all": round(wer(refs, hyps), 4),
            "decode_ms_p50": round(percentile(times, 50), 1),
            "decode_ms_p95": round(percentile(times, 95), 1),
            "fallback_rate": round(fallbacks / len(audio), 3),
            "last_resort_30s_rate": round(last_resort / len(audio), 3),
            "n_real": len(real),
            "n_generated": len(gen),
        }
        if not args.json:
            r = results[name]
            print(f"{name:>22}: WER real {r['wer_real']}  generated {r['wer_generated']}  all {r['wer_all']}  "
                  f"decode p50 {r['decode_ms_p50']} ms p95 {r['decode_ms_p95']} ms  fallback {r['fallback_rate']:.0%}", flush=True)
    if args.json:
        print(json.dumps(results))
    return 0


ONE_WORD_SETS = {
    "digits": "one two three four five six seven eight nine ten".split(),
    "sizes": "small medium large".split(),
    "drinks": "latte cappuccino espresso americano mocha".split(),
    "answers": "yes no".split(),
}


def one_word_items() -> list[tuple[str, str, np.ndarray]]:
    """(set name, word, 16 kHz audio) for one-word answers in every generated voice (cached in DATA_DIR)."""
    from assistant.commands.setup import VOICES, synthesize

    out_dir = load_settings().data_dir / "utterances" / "one_word"
    items = []
    for set_name, words in ONE_WORD_SETS.items():
        for word in words:
            for voice in VOICES:
                path = out_dir / voice.name / f"{word}.wav"
                if not path.is_file():
                    from core.audio import resample, to_pcm16

                    pcm, rate = synthesize(voice, word)
                    audio = to_pcm16(resample(pcm.astype(np.float32) / 32768.0, rate, 16000))
                    write_wav(path, np.concatenate([np.zeros(3200, np.int16), audio, np.zeros(3200, np.int16)]), 16000)
                items.append((set_name, word, load_audio(path)))
    return items


def one_word_main(argv: list[str]) -> int:
    """``quickturn bench asr --one-word``: accuracy of one-word answers with and without dialog hints."""
    parser = argparse.ArgumentParser(prog="quickturn bench asr --one-word")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings()
    a = settings.asr
    dec = WhisperDecoder(verified_dir(WHISPER_TINY_EN), threads=a.threads, min_window_s=a.min_window_s,
                         fallback_window_s=a.fallback_window_s)
    vad = SileroVad()
    items = [(s, w, speech_region(pcm, vad)) for s, w, pcm in one_word_items()]
    report: dict[str, dict[str, float]] = {}
    for set_name in ONE_WORD_SETS:
        sub = [(w, pcm) for s, w, pcm in items if s == set_name]
        right_plain = sum(dec.decode(pcm, final=True).text == w for w, pcm in sub)
        right_hint = sum(dec.decode(pcm, ONE_WORD_SETS[set_name], final=True).text == w for w, pcm in sub)
        report[set_name] = {"n": len(sub), "accuracy_no_hints": round(right_plain / len(sub), 3),
                            "accuracy_with_hints": round(right_hint / len(sub), 3)}
        if not args.json:
            r = report[set_name]
            print(f"{set_name:>8}: n={r['n']:3d}  exact without hints {r['accuracy_no_hints']:.0%}  "
                  f"with dialog hints {r['accuracy_with_hints']:.0%}", flush=True)
    if args.json:
        print(json.dumps(report))
    return 0
