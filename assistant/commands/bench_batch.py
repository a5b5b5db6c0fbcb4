"""``quickturn bench batch``: the cost of one batched Whisper decode against batch size (the capacity model).

One measurement is one CTranslate2 call pair, encoder + ``generate``, on B real
speech windows at once, with the decoder's real settings: final decodes (beam
``asr.final_beam_size``, the 6 s minimum window, the duration token cap) and,
apart, partial decodes (greedy). The windows are what the pipeline decodes: the
speech region of each recording (Silero VAD, 200 ms before the speech, 160 ms
after it, as ``quickturn bench asr``) of the generated utterances
(``var/utterances``) and the real barista recordings (``../shared/data/barista-dev``).
Only windows of the most common batch key are used (shorter than the minimum
window, no hint prompt), so every batch is one the scheduler would form.

Each repetition decodes the same 8 windows at every batch size (8 calls of 1,
4 of 2, 2 of 4, 1 of 8; sizes in a shuffled order), so every size does the same
work on the same noisy shared machine. Printed per batch size: the median ms per
call, per stream, and the per-stream speed-up over batch 1; then, from the same
repetitions, one batched decode of 4 windows against the same 4 decoded one by
one, and whether the batched texts equal the single ones.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from assistant.commands.bench_asr import speech_region
from assistant.commands.setup import utterance_manifest
from core.audio import load_audio
from core.settings import load_settings
from services.asr.decoder import WhisperDecoder
from services.asr.embedded import EmbeddedAsr
from services.vad.silero import SileroVad

SIZES = (1, 2, 4, 8)


def speech_windows(shared_dir: Path, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """(source, speech window) of the generated utterances and the real barista-dev recordings."""
    paths: list[tuple[str, Path]] = []
    manifest = utterance_manifest()
    for line in manifest.read_text().splitlines():
        row = json.loads(line)
        paths.append((str(row["voice"]), manifest.parent / str(row["audio_filepath"])))
    barista = shared_dir / "data" / "barista-dev" / "manifest.jsonl"
    if barista.is_file():
        for line in barista.read_text().splitlines():
            paths.append(("barista-dev", barista.parent / str(json.loads(line)["audio_filepath"])))
    random.Random(28).shuffle(paths)
    if limit:
        paths = paths[:limit]
    vad = SileroVad()
    return [(source, speech_region(load_audio(p), vad)) for source, p in paths]


def _time_call(decoder: WhisperDecoder, pcms: list[np.ndarray], final: bool) -> tuple[float, list[str], int]:
    """Milliseconds of one encoder + generate call on ``pcms`` (their windows are prepared before the clock),
    the texts, and how many results hit their own token cap (a batched beam search must re-decode those)."""
    beam = decoder.final_beam_size if final else decoder.beam_size
    audios = [p.astype(np.float32) / 32768.0 for p in pcms]
    windows = [decoder.window(a, len(a) / 16000, decoder.min_window_s, None, False) for a in audios]
    t0 = time.perf_counter()
    results = decoder.generate(windows, beam)
    ms = (time.perf_counter() - t0) * 1000
    texts, capped = [], 0
    for w, (ids, _, _) in zip(windows, results, strict=True):
        text_ids = [i for i in ids if i < decoder._eot]
        texts.append(decoder.tokenizer.decode(text_ids).strip())
        capped += len(text_ids) >= w.max_tokens - 1
    return ms, texts, capped


def run_curve(decoder: WhisperDecoder, pcms: list[np.ndarray], *, repeats: int, final: bool,
              sizes: tuple[int, ...] = SIZES, progress: bool = True) -> dict[str, object]:
    """The batch-cost curve on the same audio at every size, and 4 batched vs the same 4 one by one.

    Each repetition takes the next ``max(sizes)`` windows and decodes all of them at every
    batch size (8 calls of 1, 4 of 2, 2 of 4, 1 of 8), sizes in a shuffled order: a batched
    call runs until its longest sequence ends (a window that loops to its token cap holds the
    whole batch), so the sizes must see the same windows to be comparable.
    """
    rng = random.Random(2028)
    width = max(sizes)
    calls: dict[int, list[float]] = {b: [] for b in sizes}
    per_stream: dict[int, list[float]] = {b: [] for b in sizes}
    batched4: list[float] = []
    sequential4: list[float] = []
    same = differ = capped = 0
    _time_call(decoder, pcms[:1], final)  # warm-up
    for rep in range(repeats):
        group = [pcms[(rep * width + i) % len(pcms)] for i in range(width)]
        order = list(sizes)
        rng.shuffle(order)
        texts: dict[int, list[str]] = {}
        ms_of: dict[int, list[float]] = {}
        for b in order:
            ms_of[b], texts[b] = [], []
            for i in range(0, width, b):
                ms, t, c = _time_call(decoder, group[i : i + b], final)
                ms_of[b].append(ms)
                texts[b] += t
                if b > 1:
                    capped += c
            calls[b] += ms_of[b]
            per_stream[b].append(sum(ms_of[b]) / width)
        if 4 in sizes and 1 in sizes:
            batched4.append(ms_of[4][0])
            sequential4.append(sum(ms_of[1][:4]))
        for b in sizes:
            if b > 1:
                same += sum(x == y for x, y in zip(texts[b], texts[1], strict=True))
                differ += sum(x != y for x, y in zip(texts[b], texts[1], strict=True))
        if progress:
            print(f"  [{'final' if final else 'partial'} {rep + 1}/{repeats}] ms per stream: "
                  + ", ".join(f"b{b} {per_stream[b][-1]:.0f}" for b in sizes), file=sys.stderr)
    base = statistics.median(per_stream[sizes[0]])
    curve = []
    for b in sizes:
        med = statistics.median(per_stream[b])
        curve.append({"batch": b, "median_ms": round(statistics.median(calls[b]), 1), "per_stream_ms": round(med, 1),
                      "per_stream_speedup": round(base / med, 2),
                      "min_ms": round(min(calls[b]), 1), "max_ms": round(max(calls[b]), 1)})
    out: dict[str, object] = {
        "mode": "final" if final else "partial",
        "beam": decoder.final_beam_size if final else decoder.beam_size,
        "curve": curve,
        "texts_same_as_batch_1": same,
        "texts_differ_from_batch_1": differ,
        "batched_results_at_token_cap": capped,
    }
    if batched4:
        ratios = [q / b for q, b in zip(sequential4, batched4, strict=True)]
        out["four"] = {
            "batched_median_ms": round(statistics.median(batched4), 1),
            "one_by_one_median_ms": round(statistics.median(sequential4), 1),
            "speedup_of_medians": round(statistics.median(sequential4) / statistics.median(batched4), 2),
            "speedup_paired_median": round(statistics.median(ratios), 2),
        }
    return out


def bench_batch_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="quickturn bench batch", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="repetitions per batch size (default 7)")
    parser.add_argument("--modes", default="final,partial",
                        help="final (beam search, the speculative/final decode) and/or partial (greedy)")
    parser.add_argument("--limit", type=int, help="use only N recordings")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in {"final", "partial"} for m in modes):
        parser.error("--modes: final and/or partial")
    settings = load_settings(args.config)
    a = settings.asr
    asr = EmbeddedAsr(a.model, a.threads, a.min_window_s, a.tokens_per_second, a.beam_size, a.fallback_window_s,
                      a.final_beam_size, a.timestamp_cut, max_batch=1)
    decoder = asr.decoder
    windows = speech_windows(settings.shared_dir, args.limit)
    keys: dict[tuple[int, int, int, bool], list[np.ndarray]] = {}
    for _, pcm in windows:
        keys.setdefault(decoder.batch_key(len(pcm), None, final=True), []).append(pcm)
    common = max(keys.values(), key=len)
    load_before = os.getloadavg()
    results = [run_curve(decoder, common, repeats=args.repeats, final=m == "final", progress=not args.json)
               for m in modes]
    summary: dict[str, object] = {
        "windows": len(common),
        "windows_other_keys": len(windows) - len(common),
        "window_s": a.min_window_s,
        "threads": a.threads,
        "cpus": os.cpu_count(),
        "repeats": args.repeats,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "modes": results,
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"quickturn bench batch: one encoder + generate call on B speech windows ({summary['windows']} windows "
          f"≤ {a.min_window_s:g} s, {summary['windows_other_keys']} longer ones left out), {args.repeats} repetitions, "
          f"{a.threads} decoder threads on {summary['cpus']} CPUs, load {summary['loadavg_before'][0]} → "
          f"{summary['loadavg_after'][0]}")
    for r in results:
        print(f"\n  {r['mode']} decodes (beam {r['beam']}):")
        print("    batch   median ms/call   ms/stream   per-stream speed-up   (min–max ms/call)")
        for c in r["curve"]:  # type: ignore[attr-defined]
            print(f"    {c['batch']:>5}   {c['median_ms']:>14}   {c['per_stream_ms']:>9}   {c['per_stream_speedup']:>19}x"
                  f"   ({c['min_ms']}–{c['max_ms']})")
        if "four" in r:
            f = r["four"]
            print(f"    4 streams: one batched call {f['batched_median_ms']} ms vs the same 4 one by one "
                  f"{f['one_by_one_median_ms']} ms → speed-up {f['speedup_of_medians']}x "
                  f"(paired median {f['speedup_paired_median']}x)")
        print(f"    batched texts equal to batch 1: {r['texts_same_as_batch_1']}, differ {r['texts_differ_from_batch_1']} "
              f"(raw generate output, before the loop guards); batched results at their token cap "
              f"{r['batched_results_at_token_cap']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(bench_batch_main(sys.argv[1:]))
