"""``quickturn bench``: per-stage latency and ASR accuracy in simulated real time.

Every utterance (the generated set from ``quickturn setup`` plus the real
recordings in ``../shared/data/speech-samples``) is played into a fresh
session at real-time pace, exactly as a microphone would deliver it. Reported:
p50/p95 of each stage and of the turn (end of speech detected → first reply
audio), the endpointing delay apart, and corpus WER per source.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

from assistant.commands.setup import utterance_manifest
from assistant.components import Components
from assistant.logs import setup_logging
from assistant.metrics import summarize_latency, wer
from assistant.pipeline import Conversation
from assistant.speech_samples import speech_samples
from assistant.turn_result import run_audio
from core.audio import load_audio
from core.settings import load_settings

STAGES = ["endpoint", "asr", "disfluency", "nlu", "dialog", "tts_first_audio", "total"]


def bench_items(settings, limit: int | None, voices: list[str] | None, real: bool) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    items: list[dict[str, object]] = []
    manifest = utterance_manifest()
    for line in manifest.read_text().splitlines():
        row = json.loads(line)
        if voices and row["voice"] not in voices:
            continue
        items.append({"path": manifest.parent / row["audio_filepath"], "text": row["text"], "source": row["voice"]})
    if limit:
        # Spread the limit over voices instead of taking the first voice only.
        items = items[:: max(1, len(items) // limit)][:limit]
    if real:
        items += [{"path": p, "text": t, "source": "real"} for p, t in speech_samples(settings.shared_dir)]
    return items


async def _run(components: Components, items: list[dict[str, object]], realtime: bool, progress: bool) -> list[dict[str, object]]:
    rows = []
    for k, item in enumerate(items, 1):
        pcm = load_audio(Path(str(item["path"])))
        conv = Conversation(components, f"bench-{k}", barge_in=False)
        result = await run_audio(conv, pcm, realtime=realtime)
        rows.append({**item, "path": str(item["path"]), "hyp": result.transcript, "latency_ms": result.latency_ms,
                     "intent": result.intent, "errors": result.errors, "turns": result.turns})
        if progress:
            total = result.latency_ms.get("total", float("nan"))
            print(f"[{k}/{len(items)}] {item['source']:>15} total {total:7.1f} ms | {result.transcript}", file=sys.stderr)
    return rows


async def _run_concurrent(components: Components, items: list[dict[str, object]], users: int, realtime: bool) -> list[dict[str, object]]:
    """``users`` sessions talk at once, each through the same utterances (staggered by 0.5 s)."""

    async def user(u: int) -> list[dict[str, object]]:
        await asyncio.sleep(0.5 * u)
        out = []
        for k, item in enumerate(items):
            pcm = load_audio(Path(str(item["path"])))
            result = await run_audio(Conversation(components, f"bench-u{u}-{k}", barge_in=False), pcm, realtime=realtime)
            out.append({**item, "path": str(item["path"]), "hyp": result.transcript, "latency_ms": result.latency_ms,
                        "intent": result.intent, "errors": result.errors})
        return out

    per_user = await asyncio.gather(*(user(u) for u in range(users)))
    return [row for rows in per_user for row in rows]


def concurrency_report(components: Components, items: list[dict[str, object]], levels: list[int], realtime: bool) -> dict[str, object]:
    """p50/p95 turn latency per number of simultaneous real-time sessions."""
    table: dict[str, object] = {}
    sustained = 0
    for users in levels:
        t0 = time.perf_counter()
        rows = asyncio.run(_run_concurrent(components, items, users, realtime))
        lat = summarize_latency([r["latency_ms"] for r in rows if r["latency_ms"]], ["total", "asr", "tts_first_audio"])  # type: ignore[misc]
        total = lat.get("total", {})
        table[str(users)] = {
            "turns": len(rows),
            "latency_ms": lat,
            "wer": round(wer([str(r["text"]) for r in rows], [str(r["hyp"]) for r in rows]), 4),
            "wall_s": round(time.perf_counter() - t0, 1),
        }
        if total and total.get("p95", 1e9) <= 300:
            sustained = max(sustained, users)
        print(f"concurrency {users}: total p50 {total.get('p50')} ms p95 {total.get('p95')} ms", file=sys.stderr)
    return {"levels": table, "max_streams_p95_le_300ms": sustained}


def bench_main(argv: list[str]) -> int:
    if "--transport" in argv:
        i = argv.index("--transport")
        transport = argv[i + 1] if i + 1 < len(argv) else ""
        rest = argv[:i] + argv[i + 2 :]
        if transport == "web":
            from assistant.commands.bench_web import bench_web_main

            return bench_web_main(rest)
        if transport != "embedded":
            from core.errors import InvalidInput

            raise InvalidInput(f"unknown transport {transport!r} (valid: embedded, web)")
        argv = rest
    parser = argparse.ArgumentParser(prog="quickturn bench", description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["embedded", "web"], default="embedded",
                        help="embedded (in-process) or web (through the websocket server)")
    parser.add_argument("--concurrency", help="comma-separated numbers of simultaneous sessions, e.g. 1,2,4,8")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--limit", type=int, help="use at most N generated utterances (spread over voices)")
    parser.add_argument("--voices", help="comma-separated generated voices to use")
    parser.add_argument("--no-real", action="store_true", help="skip ../shared/data/speech-samples")
    parser.add_argument("--fast", action="store_true", help="no real-time pacing (latencies then mean less)")
    parser.add_argument("--config")
    parser.add_argument("--backend")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    overrides = {"backend": {"uri": args.backend}} if args.backend else None
    settings = load_settings(args.config, overrides)
    items = bench_items(settings, args.limit, args.voices.split(",") if args.voices else None, not args.no_real)
    t0 = time.perf_counter()
    components = Components.load(settings, db_path=None)
    load_s = time.perf_counter() - t0
    if args.concurrency:
        from core.errors import InvalidInput

        try:
            levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
        except ValueError as exc:
            raise InvalidInput(f"--concurrency takes numbers like 1,2,4,8, not {args.concurrency!r}") from exc
        conc_items = [it for it in items if it["source"] != "real"][: args.limit or 6]
        report = concurrency_report(components, conc_items, levels, not args.fast)
        report["backend"] = settings.backend.uri
        if args.json:
            print(json.dumps(report))
        else:
            for users, v in report["levels"].items():  # type: ignore[union-attr]
                t = v["latency_ms"].get("total", {})
                print(f"{users:>3} sessions: turn p50 {t.get('p50')} ms  p95 {t.get('p95')} ms  ({v['turns']} turns, WER {v['wer']})")
            print(f"sessions sustained with p95 ≤ 300 ms: {report['max_streams_p95_le_300ms']}")
        return 0
    rows = asyncio.run(_run(components, items, not args.fast, not args.quiet))
    latencies = [r["latency_ms"] for r in rows if r["latency_ms"]]
    by_source: dict[str, dict[str, object]] = {}
    for source in sorted({str(r["source"]) for r in rows}):
        sub = [r for r in rows if r["source"] == source]
        by_source[source] = {"n": len(sub), "wer": round(wer([str(r["text"]) for r in sub], [str(r["hyp"]) for r in sub]), 4)}
    generated = [r for r in rows if r["source"] != "real"]
    real = [r for r in rows if r["source"] == "real"]
    summary = {
        "utterances": len(rows),
        "realtime": not args.fast,
        "backend": settings.backend.uri,
        "asr_wer": round(wer([str(r["text"]) for r in rows], [str(r["hyp"]) for r in rows]), 4),
        "asr_wer_generated": round(wer([str(r["text"]) for r in generated], [str(r["hyp"]) for r in generated]), 4) if generated else None,
        "asr_wer_real": round(wer([str(r["text"]) for r in real], [str(r["hyp"]) for r in real]), 4) if real else None,
        "wer_by_source": by_source,
        "latency_ms": summarize_latency(latencies, STAGES),
        "processing_p50_ms": summarize_latency(latencies, ["total"]).get("total", {}).get("p50"),
        "endpointing_delay_ms": summarize_latency(latencies, ["endpoint"]).get("endpoint", {}).get("p50"),
        "turns_without_reply": sum(1 for r in rows if not r["latency_ms"].get("total")),
        # An utterance the endpointer cut in two is scored on its last turn only (the WER counts it).
        "split_utterances": sum(1 for r in rows if int(r.get("turns", 1) or 1) > 1),
        "load_s": round(load_s, 2),
        "errors": [e for r in rows for e in r["errors"]],
    }
    if args.json:
        print(json.dumps({**summary, "rows": rows}))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"quickturn bench: {len(rows)} utterances, {'real time' if not args.fast else 'fast'}")
    table.add_column("stage")
    for col in ("p50 ms", "p95 ms", "max ms", "n"):
        table.add_column(col, justify="right")
    for stage, v in summary["latency_ms"].items():  # type: ignore[union-attr]
        table.add_row(stage, f"{v['p50']:.1f}", f"{v['p95']:.1f}", f"{v['max']:.1f}", str(v["n"]))
    console = Console()
    console.print(table)
    console.print(f"ASR WER {summary['asr_wer']:.3f} (generated {summary['asr_wer_generated']}, real {summary['asr_wer_real']})")
    if summary["split_utterances"]:
        console.print(f"{summary['split_utterances']} utterance(s) were cut into two turns by the endpointer")
    console.print("WER by source: " + ", ".join(f"{k} {v['wer']:.3f} (n={v['n']})" for k, v in by_source.items()))
    console.print(f"median decode-independent endpoint delay {summary['endpointing_delay_ms']} ms; "
                  f"median of totals {statistics.median([r['total'] for r in latencies if 'total' in r]) if latencies else 'n/a'} ms")
    return 0
