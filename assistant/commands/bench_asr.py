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

from assistant.audio_io import load_audio
from assistant.commands.bench import bench_items
from assistant.metrics import percentile, wer
from assistant.settings import load_settings
from services.asr.decoder import WhisperDecoder
from services.model_files import WHISPER_TINY_EN, verified_dir
from services.vad.endpointing import Endpointer
from services.vad.silero import FRAME_SAMPLES, SileroVad

CONFIGS = {
    "full-30s": dict(min_window_s=30.0, fallback_window_s=30.0, loop_guard=False),
    "cut-to-utterance": dict(min_window_s=0.0, fallback_window_s=0.0, loop_guard=False),
    "cut+rate-loop-cut": dict(min_window_s=0.0, fallback_window_s=0.0, loop_guard=True),
    "pad-6s": dict(min_window_s=6.0, fallback_window_s=0.0, loop_guard=True),
    "pad-6s+fallback-30s": dict(min_window_s=6.0, fallback_window_s=30.0, loop_guard=True),
    "pad-8s+fallback-30s": dict(min_window_s=8.0, fallback_window_s=30.0, loop_guard=True),
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
    parser = argparse.ArgumentParser(prog="quickturn bench asr", description=__doc__.splitlines()[0])
    parser.add_argument("--configs", help=f"comma-separated subset of: {', '.join(CONFIGS)}")
    parser.add_argument("--voices", help="generated voices to include (default: all)")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings()
    items = bench_items(settings, args.limit, args.voices.split(",") if args.voices else None, True)
    vad = SileroVad()
    audio = [speech_region(load_audio(Path(str(it["path"]))), vad) for it in items]
    names = args.configs.split(",") if args.configs else list(CONFIGS)
    directory = verified_dir(WHISPER_TINY_EN)
    results = {}
    for name in names:
        cfg = dict(CONFIGS[name])
        loop_guard = bool(cfg.pop("loop_guard"))
        dec = WhisperDecoder(directory, threads=settings.asr.threads, **cfg)  # type: ignore[arg-type]
        dec.loop_guard = loop_guard
        dec.decode(audio[0])
        hyps, times, fallbacks = [], [], 0
        for pcm in audio:
            t0 = time.perf_counter()
            h = dec.decode(pcm)
            times.append((time.perf_counter() - t0) * 1000)
            hyps.append(h.text)
            fallbacks += int(h.fallback)
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
