"""``quickturn bench --transport web``: what the websocket adds to the reply latency.

Starts the web server in-process on a free port and, for each utterance,
runs one turn **embedded** (a :class:`~assistant.pipeline.Conversation` fed
directly) and one turn **over the websocket** (a fresh connection, audio sent in
20 ms frames at real-time pace), alternating so both see the same machine load.

Reported, p50 over the turns:

* ``embedded_ms``: end of speech detected → first reply audio chunk emitted
  (the pipeline's ``stage-metrics`` ``total``);
* ``web_ms``: the server's ``speech-ended`` event (its ``t_ns``) → first reply
  audio frame *received by the client* (same process, same monotonic clock);
* ``web_overhead_ms``: per web turn, ``web_ms`` minus that turn's own server-side
  ``total``: the cost of the transport alone, free of ASR-time noise;
* ``paired_difference_ms``: per utterance, ``web_ms`` minus ``embedded_ms``.

The TTS phrase cache is off by default here: the same utterance runs twice and
the second run would otherwise get its reply audio from the cache. The two p50s
can still differ by more than the transport when the machine is loaded: the
ASR time of one utterance varies from run to run (speculative decoding hits or
misses), so read the overhead line for the cost of the websocket itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from assistant.commands.setup import utterance_manifest
from assistant.components import Components
from assistant.logs import setup_logging
from assistant.metrics import percentile, summarize_latency
from assistant.pipeline import Conversation, feed_paced
from assistant.web.client import WebClient
from assistant.web.server import ServerThread, WebServer
from assistant.web.settings import WebSettings
from core.audio import load_audio
from core.events import StageMetrics
from core.settings import load_settings


def _items(limit: int | None, turns: int, voice: str) -> list[dict[str, object]]:
    manifest = utterance_manifest()
    rows = [json.loads(x) for x in manifest.read_text().splitlines()]
    rows = [r for r in rows if r["voice"] == voice] or rows
    if limit:
        rows = rows[:limit]
    out = []
    for k in range(turns):
        r = rows[k % len(rows)]
        out.append({"path": manifest.parent / str(r["audio_filepath"]), "text": r["text"]})
    return out


async def _embedded_turn(components: Components, pcm, k: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    conv = Conversation(components, f"bench-embedded-{k}", barge_in=False)
    await feed_paced(conv, pcm, realtime=True)
    latency: dict[str, float] = {}
    while not conv.events.empty():
        ev = conv.events.get_nowait()
        if isinstance(ev, StageMetrics):
            latency = dict(ev.latency_ms)
    await conv.close()
    return latency


async def _web_turn(server: WebServer, pcm, chunk_ms: int):  # type: ignore[no-untyped-def]
    async with WebClient(server.ws_url(token=server.token)) as client:
        await client.start(sample_rate_hz=16000, barge_in=False)
        return await client.run_turn(pcm, realtime=True, chunk_ms=chunk_ms)


async def run_bench(components: Components, items: list[dict[str, object]], *, progress: bool = True,
                    chunk_ms: int = 20) -> dict[str, object]:
    """Alternate embedded and websocket turns; return the summary with per-turn rows."""
    web = WebSettings(port=0, rate_messages_per_s=1000, rate_burst_messages=2000)
    rows: list[dict[str, object]] = []
    # The server runs on its own event loop (thread), as it would in its own process:
    # the client's pacing and reading must not share a loop with the pipeline.
    with ServerThread(components, web) as thread:
        server = thread.server
        for k, item in enumerate(items, 1):
            pcm = load_audio(Path(str(item["path"])))
            # Alternate which transport goes first, so neither always runs on a warmer machine.
            if k % 2:
                emb = await _embedded_turn(components, pcm, k)
                turn = await _web_turn(server, pcm, chunk_ms)
            else:
                turn = await _web_turn(server, pcm, chunk_ms)
                emb = await _embedded_turn(components, pcm, k)
            wire = turn.wire_first_audio_ms()
            server_total = turn.latency_ms.get("total")
            row = {
                "text": item["text"], "transcript": turn.transcript, "intent": turn.intent,
                "embedded_ms": emb.get("total"), "web_ms": None if wire is None else round(wire, 3),
                "web_server_total_ms": server_total,
                "web_overhead_ms": None if wire is None or server_total is None else round(wire - server_total, 3),
                "embedded_stages_ms": emb, "web_stages_ms": turn.latency_ms,
            }
            rows.append(row)
            if progress:
                print(f"[{k}/{len(items)}] embedded {row['embedded_ms']} ms | web {row['web_ms']} ms "
                      f"(transport {row['web_overhead_ms']} ms) | {turn.transcript}", file=sys.stderr)

    def p50(key: str) -> float | None:
        vals = [float(r[key]) for r in rows if r[key] is not None]  # type: ignore[arg-type]
        return round(percentile(vals, 50), 2) if vals else None

    summary: dict[str, object] = {
        "turns": len(rows),
        "embedded_p50_ms": p50("embedded_ms"),
        "web_p50_ms": p50("web_ms"),
        "web_overhead_p50_ms": p50("web_overhead_ms"),
        "web_overhead_max_ms": max((float(r["web_overhead_ms"]) for r in rows if r["web_overhead_ms"] is not None),  # type: ignore[arg-type]
                                   default=None),
        "turns_without_reply": sum(1 for r in rows if r["web_ms"] is None),
    }
    pairs = [float(r["web_ms"]) - float(r["embedded_ms"]) for r in rows  # type: ignore[arg-type]
             if r["web_ms"] is not None and r["embedded_ms"] is not None]
    summary["paired_difference_p50_ms"] = round(percentile(pairs, 50), 2) if pairs else None
    e, w = summary["embedded_p50_ms"], summary["web_p50_ms"]
    summary["difference_p50_ms"] = round(float(w) - float(e), 2) if e is not None and w is not None else None  # type: ignore[arg-type]
    stages = ["endpoint", "asr", "disfluency", "nlu", "dialog", "tts_first_audio", "total"]
    summary["stages_p50_ms"] = {
        side: {k: v["p50"] for k, v in summarize_latency([r[f"{side}_stages_ms"] for r in rows], stages).items()}  # type: ignore[misc]
        for side in ("embedded", "web")
    }
    summary["rows"] = rows
    return summary


def bench_web_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="quickturn bench --transport web", description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20, help="turns per transport (default 20)")
    parser.add_argument("--limit", type=int, help="use only the first N generated utterances (cycled)")
    parser.add_argument("--voice", default="piper-joe", help="generated voice to use (default piper-joe)")
    parser.add_argument("--chunk-ms", type=int, default=20, help="client audio frame length (default 20, as the page)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--tts-cache", action="store_true",
                        help="keep the TTS phrase cache (off by default: the second transport would get the "
                             "first one's reply audio from the cache)")
    parser.add_argument("--config")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    settings = load_settings(args.config, None if args.tts_cache else {"tts": {"cache_phrases": 0}})
    items = _items(args.limit, args.turns, args.voice)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        components = Components.load(settings, db_path=Path(tmp) / "bench-web.sqlite")
        load_s = time.perf_counter() - t0
        summary = asyncio.run(run_bench(components, items, progress=not args.quiet, chunk_ms=args.chunk_ms))
    summary["load_s"] = round(load_s, 2)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"quickturn bench --transport web: {summary['turns']} turns each, real-time pacing")
    print(f"  end of speech → first reply audio, p50: embedded {summary['embedded_p50_ms']} ms, "
          f"websocket {summary['web_p50_ms']} ms (difference {summary['difference_p50_ms']} ms)")
    print(f"  per-utterance difference (web − embedded, same utterance back to back), p50: "
          f"{summary['paired_difference_p50_ms']} ms")
    for side in ("embedded", "web"):
        parts = ", ".join(f"{k} {v}" for k, v in summary["stages_p50_ms"][side].items())  # type: ignore[index]
        print(f"  {side} stage p50 (ms): {parts}")
    print(f"  transport overhead per web turn (wire − server total): p50 {summary['web_overhead_p50_ms']} ms, "
          f"max {summary['web_overhead_max_ms']} ms; turns without reply: {summary['turns_without_reply']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(bench_web_main(sys.argv[1:]))
