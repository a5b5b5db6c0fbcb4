"""``quickturn bench turns``: turn-taking measured from the outside, as a browser meets it.

Streams every clip of the turn-taking set (:mod:`assistant.evaluation.turn_clips`) in real
time, in 20 ms binary frames followed by silence (a browser keeps sending audio), through a
real websocket server in this process, once per end-of-turn policy (``turn.policy``:
``semantic``, ``fixed``) on the same clips in the same run, alternating which policy goes
first per clip. Every message is stamped on arrival at the client, so:

* **cut-off**: the first turn ended more than 100 ms before the speaker's true end of speech
  (the input position at which the server closed it: ``speech-ended``'s ``audio_ms`` +
  ``endpoint_delay_ms``), or a second turn started while the clip still had speech;
* **latency**: end of speech → first reply audio = arrival of the first binary audio frame minus
  the moment the client sent the frame holding the last speech sample (clips not cut off);
* **hold**: on clips with pauses, the longest silence the assistant waited through without
  ending the turn (the pause itself when it held, the silence before the end when it did not,
  or a ``turn-decision`` ``incomplete`` event's ``silence_ms``).

The scoring (:func:`score_clip`, :func:`summarize`) is pure over the recorded message logs.
docs/turn-taking.md describes the clips, the rules and the options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.evaluation.turn_clips import (
    KINDS,
    RATE_HZ,
    TurnClip,
    counts,
    load_clip_set,
    read_clips,
    select_clips,
)
from assistant.metrics import percentile
from core.errors import InvalidInput

log = logging.getLogger(__name__)

POLICIES = ("semantic", "fixed")
CUT_OFF_MARGIN_MS = 100.0
PAUSE_LIMIT_S = 1.2
"""The Must-show cut-off rate counts clips whose longest pause is at most this long (complete clips included)."""
HOLD_TOLERANCE_MS = 150.0
FRAME_MS = 20
TERMINAL = {"stage-metrics", "turn-cancelled", "error"}


# --------------------------------------------------------------------------- logs and scoring


@dataclass
class LoggedMessage:
    """One server message as the client saw it: arrival time (monotonic ns), the JSON (or audio header)."""

    t_ns: int
    message: dict[str, Any]
    audio_samples: int = 0
    is_audio: bool = False

    @property
    def type(self) -> str:
        return str(self.message.get("type", ""))

    @property
    def turn_id(self) -> str:
        return str(self.message.get("turn_id", ""))


@dataclass
class ClipLog:
    """What one session of one clip recorded.

    Attributes:
        frame_samples: samples per sent frame (320 = 20 ms at 16 kHz).
        frame_t_ns: when each frame of the clip was sent (monotonic ns); frame k holds the clip's
            samples [k * frame_samples, (k + 1) * frame_samples).
        offset_ms: position of the clip's first sample in the session's input stream (the context
            request and the silence after it come first).
        messages: every message received after ``session-started``, in arrival order.
        context_turns: turn ids of the context request (not scored).
    """

    frame_samples: int
    frame_t_ns: list[int]
    offset_ms: float = 0.0
    messages: list[LoggedMessage] = field(default_factory=list)
    context_turns: frozenset[str] = frozenset()
    error: str = ""


def _finished(messages: Sequence[LoggedMessage]) -> set[str]:
    """Turn ids whose processing is over: metrics after the reply, cancelled, failed, or nothing recognised."""
    done = set()
    for m in messages:
        if m.type in TERMINAL or (m.type == "transcript-final" and not m.message.get("text")):
            done.add(m.turn_id)
    return done


def turns_settled(messages: Sequence[LoggedMessage], ignore: frozenset[str] = frozenset()) -> bool:
    """At least one turn started, every started turn ended, and every ended turn finished."""
    started = {m.turn_id for m in messages if m.type == "speech-started" and m.turn_id not in ignore}
    ended = {m.turn_id for m in messages if m.type == "speech-ended" and m.turn_id not in ignore}
    return bool(started) and started <= ended and ended <= _finished(messages)


def score_clip(clip: TurnClip, log: ClipLog, *, margin_ms: float = CUT_OFF_MARGIN_MS) -> dict[str, Any]:
    """One clip's result from its message log (pure: no server, no clock).

    Positions are in milliseconds from the clip's first sample; ``audio_ms`` of the server's
    events is a position in the session's input stream, shifted by ``log.offset_ms``.
    """
    msgs = [m for m in log.messages if m.turn_id not in log.context_turns]
    true_end_ms = clip.true_end_s * 1000.0

    def pos(m: LoggedMessage) -> float:
        return float(m.message.get("audio_ms", 0.0)) - log.offset_ms

    def decided(m: LoggedMessage) -> float:
        return pos(m) + float(m.message.get("endpoint_delay_ms", 0.0))

    started = [m for m in msgs if m.type == "speech-started"]
    ended = [m for m in msgs if m.type == "speech-ended"]
    first_end = ended[0] if ended else None
    speech_end_ms = pos(first_end) if first_end else None
    ended_ms = decided(first_end) if first_end else None
    reasons = []
    if ended_ms is not None and ended_ms < true_end_ms - margin_ms:
        reasons.append("ended-early")
    if any(pos(m) < true_end_ms - margin_ms for m in started[1:]):
        reasons.append("second-turn")
    cut_off = bool(reasons)

    # The moment the last speech sample left the client: the send time of the frame holding it.
    t_true_ns = None
    if log.frame_t_ns:
        last = max(0, round(clip.true_end_s * RATE_HZ) - 1)
        t_true_ns = log.frame_t_ns[min(last // log.frame_samples, len(log.frame_t_ns) - 1)]
    audio = [m for m in msgs if m.is_audio]
    latency_ms = None
    if audio and not cut_off and t_true_ns is not None:
        latency_ms = round((audio[0].t_ns - t_true_ns) / 1e6, 2)
    ended_wire_ms = None
    if first_end is not None and log.frame_t_ns:
        ended_wire_ms = round((first_end.t_ns - log.frame_t_ns[0]) / 1e6, 1)

    decisions = [{"decision": m.message.get("decision"), "reason": m.message.get("reason", ""),
                  "silence_ms": m.message.get("silence_ms"), "signals": m.message.get("signals", {})}
                 for m in msgs if m.type == "turn-decision"]
    incomplete = [float(d["silence_ms"] or 0.0) for d in decisions if d["decision"] == "incomplete"]
    ends = [decided(m) for m in ended]
    held = []
    for start_s, dur_s, _ in clip.pauses:
        p0, p1 = start_s * 1000.0, (start_s + dur_s) * 1000.0
        inside = [d for d in ends if p0 <= d <= p1 + HOLD_TOLERANCE_MS]
        held.append(min(inside) - p0 if inside else dur_s * 1000.0)
    hold_ms = round(max(held + incomplete), 1) if held or incomplete else None

    order = [m.turn_id for m in started]
    by_turn: dict[str, dict[str, Any]] = {t: {} for t in order}
    for m in msgs:
        t = by_turn.get(m.turn_id)
        if t is None:
            continue
        if m.type == "transcript-final":
            t["transcript"] = m.message.get("text", "")
        elif m.type == "nlu-result":
            t["intent"] = (m.message.get("result") or {}).get("intent")
        elif m.type == "dialog-action":
            t["reply"] = m.message.get("text", "")
    turns = [by_turn[t] for t in order]
    errors = [str(m.message.get("message", "")) for m in msgs if m.type == "error"]
    return {
        "id": clip.id, "kind": clip.kind, "split": clip.split, "domain": clip.domain, "voice": clip.voice,
        "rate": clip.rate, "source": clip.source, "text": clip.text, "request": clip.request,
        "pauses": [list(p) for p in clip.pauses], "max_pause_s": clip.max_pause_s,
        "true_end_ms": round(true_end_ms, 1), "turns": len(started), "cut_off": cut_off, "cut_reasons": reasons,
        "ended_ms": None if ended_ms is None else round(ended_ms, 1),
        "speech_end_ms": None if speech_end_ms is None else round(speech_end_ms, 1),
        "ended_wire_ms": ended_wire_ms,
        "cut_off_by_speech_end": speech_end_ms is not None and speech_end_ms < true_end_ms - margin_ms,
        "latency_ms": latency_ms, "reply_audio": bool(audio), "hold_ms": hold_ms, "decisions": decisions,
        "transcript": " | ".join(str(t.get("transcript", "")) for t in turns),
        "intent": turns[0].get("intent") if turns else None,
        "intents": [t.get("intent") for t in turns],
        "reply": " | ".join(str(t.get("reply", "")) for t in turns if t.get("reply")),
        "errors": errors + ([log.error] if log.error else []),
    }


def _stats(values: Sequence[float]) -> dict[str, Any]:
    vals = [float(v) for v in values]
    if not vals:
        return {"n": 0, "p50": None, "p95": None, "mean": None, "max": None}
    return {"n": len(vals), "p50": round(percentile(vals, 50), 1), "p95": round(percentile(vals, 95), 1),
            "mean": round(sum(vals) / len(vals), 1), "max": round(max(vals), 1)}


def _pct(k: int, n: int) -> float | None:
    return round(100.0 * k / n, 1) if n else None


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one policy over its per-clip rows."""
    within = [r for r in rows if r["max_pause_s"] <= PAUSE_LIMIT_S]
    cut = [r for r in rows if r["cut_off"]]
    cut_within = [r for r in within if r["cut_off"]]
    alt = [r for r in rows if r["cut_off_by_speech_end"] or "second-turn" in r["cut_reasons"]]
    hes = [r for r in rows if r["kind"] == "hesitation" and r["hold_ms"] is not None]
    not_cut = [r for r in rows if not r["cut_off"]]
    per_kind = {}
    for kind in sorted({r["kind"] for r in rows}, key=lambda k: KINDS.index(k) if k in KINDS else 99):
        rs = [r for r in rows if r["kind"] == kind]
        lat = _stats([r["latency_ms"] for r in rs if r["latency_ms"] is not None])
        holds = _stats([r["hold_ms"] for r in rs if r["hold_ms"] is not None])
        k_cut = sum(r["cut_off"] for r in rs)
        per_kind[kind] = {"clips": len(rs), "cut_offs": k_cut, "cut_off_pct": _pct(k_cut, len(rs)),
                          "latency_p50_ms": lat["p50"], "latency_p95_ms": lat["p95"], "latency_n": lat["n"],
                          "hold_mean_ms": holds["mean"], "hold_max_ms": holds["max"]}
    return {
        "clips": len(rows),
        "cut_offs": {
            "count": len(cut), "pct": _pct(len(cut), len(rows)),
            "count_pauses_le_1_2s": len(cut_within), "clips_pauses_le_1_2s": len(within),
            "pct_pauses_le_1_2s": _pct(len(cut_within), len(within)),
        },
        "cut_offs_by_speech_end": {"count": len(alt), "pct": _pct(len(alt), len(rows)),
                                   "note": "speech-ended audio_ms alone (the VAD's speech end) > 100 ms before "
                                           "the true end, or a second turn: differs from cut_offs only where "
                                           "the VAD hears speech stop early but the turn was closed after the true end"},
        "latency_complete_ms": _stats([r["latency_ms"] for r in rows
                                       if r["kind"] == "complete" and r["latency_ms"] is not None]),
        "latency_all_ms": _stats([r["latency_ms"] for r in not_cut if r["latency_ms"] is not None]),
        "hold_hesitation_ms": _stats([r["hold_ms"] for r in hes]),
        "no_reply": sum(1 for r in not_cut if not r["reply_audio"]),
        "turns_per_clip_mean": round(sum(r["turns"] for r in rows) / len(rows), 2) if rows else None,
        "decisions": dict(Counter(d["decision"] for r in rows for d in r["decisions"])),
        "per_kind": per_kind,
    }


def ratios(summaries: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """semantic / fixed latency ratios (p50, p95; complete clips and all clips not cut off)."""
    if "semantic" not in summaries or "fixed" not in summaries:
        return {}
    out: dict[str, float | None] = {}
    for key in ("latency_complete_ms", "latency_all_ms"):
        for q in ("p50", "p95"):
            s, f = summaries["semantic"][key][q], summaries["fixed"][key][q]
            out[f"{key.removeprefix('latency_').removesuffix('_ms')}_{q}"] = round(s / f, 3) if s and f else None
    return out


# --------------------------------------------------------------------------- streaming


def _frames(pcm: np.ndarray, n: int) -> list[np.ndarray]:
    return [pcm[i : i + n] for i in range(0, len(pcm), n)]


async def stream_clip(url: str, pcm: np.ndarray, *, context_pcm: np.ndarray | None = None,
                      trailing_silence_s: float = 3.0, frame_ms: int = FRAME_MS, barge_in: bool = True,
                      context_timeout_s: float = 20.0, settle_timeout_s: float = 15.0) -> ClipLog:
    """One new session: (the context request, its reply's playing time), the clip, then silence; the log.

    Audio goes out in real time (frame k at start + k·frame_ms). After the clip, silence frames keep
    coming until every turn has ended and finished, or ``trailing_silence_s`` have passed.
    """
    from assistant.web.client import WebClient

    n = RATE_HZ * frame_ms // 1000
    silence = np.zeros(n, np.int16)
    messages: list[LoggedMessage] = []
    async with WebClient(url) as client:
        await client.start(sample_rate_hz=RATE_HZ, barge_in=barge_in)

        def drain() -> None:
            while not client.inbox.empty():
                r = client.inbox.get_nowait()
                messages.append(LoggedMessage(r.t_recv_ns, r.message, 0 if r.pcm is None else len(r.pcm),
                                              r.pcm is not None))

        t_next = time.monotonic()
        sent = 0

        async def send(frame: np.ndarray) -> int:
            nonlocal t_next, sent
            delay = t_next - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            t = time.monotonic_ns()
            await client.send_audio(frame)
            t_next += frame_ms / 1000
            sent += len(frame)
            return t

        context: frozenset[str] = frozenset()
        if context_pcm is not None:
            for frame in _frames(context_pcm, n):
                await send(frame)
            deadline = time.monotonic() + context_timeout_s
            while time.monotonic() < deadline:
                await send(silence)
                drain()
                if turns_settled(messages):
                    audio = [m for m in messages if m.is_audio]
                    rate = float(audio[0].message.get("sample_rate_hz", 22050)) if audio else 22050.0
                    played_until = (audio[0].t_ns + sum(m.audio_samples for m in audio) / rate * 1e9) if audio else 0
                    if time.monotonic_ns() >= played_until + 0.3e9:  # the reply has played: now the answer
                        break
            context = frozenset(m.turn_id for m in messages if m.turn_id)
        offset_ms = sent * 1000.0 / RATE_HZ
        frame_t = [await send(frame) for frame in _frames(pcm, n)]
        cap = time.monotonic() + trailing_silence_s
        while time.monotonic() < cap:
            await send(silence)
            drain()
            if turns_settled(messages, context):
                break
        # No more audio: wait for the replies in flight (an open turn cannot end without audio).
        deadline = time.monotonic() + settle_timeout_s
        while time.monotonic() < deadline:
            drain()
            started = {m.turn_id for m in messages if m.type == "speech-started" and m.turn_id not in context}
            ended = {m.turn_id for m in messages if m.type == "speech-ended" and m.turn_id not in context}
            if (ended & started) <= _finished(messages):
                break
            await asyncio.sleep(0.02)
        drain()
    return ClipLog(frame_samples=n, frame_t_ns=frame_t, offset_ms=offset_ms, messages=messages,
                   context_turns=context)


def _load_pcm(path: str) -> np.ndarray:
    from core.audio import load_audio

    return load_audio(Path(path))


async def run_policies(urls: dict[str, str], clips: Sequence[TurnClip], *, trailing_silence_s: float,
                       progress: bool = True, barge_in: bool = True) -> list[dict[str, Any]]:
    """Each clip through each policy's server, alternating which goes first; the scored rows."""
    from tqdm import tqdm

    policies = list(urls)
    rows: list[dict[str, Any]] = []
    bar = tqdm(clips, desc="turn clips", unit="clip", disable=not progress, file=sys.stderr)
    for k, clip in enumerate(bar):
        pcm = _load_pcm(clip.audio)
        ctx = _load_pcm(clip.context_audio) if clip.context_audio else None
        order = policies if k % 2 == 0 else policies[::-1]
        for position, policy in enumerate(order):
            try:
                clip_log = await stream_clip(urls[policy], pcm, context_pcm=ctx, trailing_silence_s=trailing_silence_s,
                                             barge_in=barge_in)
            except Exception as exc:  # one failed session must not end the benchmark
                log.warning("clip %s (%s) failed: %s", clip.id, policy, exc)
                clip_log = ClipLog(frame_samples=RATE_HZ * FRAME_MS // 1000, frame_t_ns=[], error=str(exc) or type(exc).__name__)
            row = score_clip(clip, clip_log)
            row.update(policy=policy, order=position)
            rows.append(row)
            await asyncio.sleep(0.1)  # let the server close the session before the next one
        if progress:
            last = [r for r in rows[-len(order):]]
            bar.set_postfix_str(" ".join(
                f"{r['policy'][:3]}:{'CUT' if r['cut_off'] else r['latency_ms']}" for r in sorted(last, key=lambda r: r["policy"])))
    bar.close()
    return rows


def run_bench(components: Any, clips: Sequence[TurnClip], policies: Sequence[str], *, trailing_silence_s: float = 3.0,
              progress: bool = True) -> dict[str, Any]:
    """Start one websocket server per policy (the same loaded stages), run the clips, summarize."""
    from assistant.web.server import ServerThread
    from assistant.web.settings import WebSettings

    web = WebSettings(port=0, rate_messages_per_s=1000, rate_burst_messages=2000)
    threads = {}
    try:
        for policy in policies:
            settings = components.settings
            s = settings.model_copy(update={"turn": settings.turn.model_copy(update={"policy": policy})})
            threads[policy] = ServerThread(dataclasses.replace(components, settings=s), web).start()
        urls = {p: t.server.ws_url(token=t.server.token) for p, t in threads.items()}
        t0 = time.perf_counter()
        rows = asyncio.run(run_policies(urls, clips, trailing_silence_s=trailing_silence_s, progress=progress))
        elapsed = time.perf_counter() - t0
    finally:
        for t in threads.values():
            with contextlib.suppress(Exception):
                t.stop()
    summaries = {p: summarize([r for r in rows if r["policy"] == p]) for p in policies}
    return {"policies": list(policies), "summary": summaries, "ratio_semantic_over_fixed": ratios(summaries),
            "run_s": round(elapsed, 1), "rows": rows}


# --------------------------------------------------------------------------- command


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        v = f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}"
    return f"{v}{unit}"


def print_report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 110))  # a pipe gets 80 columns: too narrow here
    policies = result["policies"]
    ratio = result["ratio_semantic_over_fixed"]
    s = result["summary"]
    t = Table(title=f"quickturn bench turns: {result['clips']} clips ({result['split']} split), real time over the websocket")
    t.add_column("")
    for p in policies:
        t.add_column(p, justify="right")
    if ratio:
        t.add_column("semantic/fixed", justify="right")

    def row(label: str, values: list[str], r: float | None = None) -> None:
        t.add_row(label, *values, *([f"{r:.2f}" if r is not None else ""] if ratio else []))

    row("clips", [str(s[p]["clips"]) for p in policies])
    row(f"cut-offs, pauses ≤ {PAUSE_LIMIT_S} s", [
        f"{s[p]['cut_offs']['count_pauses_le_1_2s']}/{s[p]['cut_offs']['clips_pauses_le_1_2s']} "
        f"({_fmt(s[p]['cut_offs']['pct_pauses_le_1_2s'], ' %')})" for p in policies])
    row("cut-offs, all clips", [f"{s[p]['cut_offs']['count']}/{s[p]['clips']} ({_fmt(s[p]['cut_offs']['pct'], ' %')})"
                                for p in policies])
    for key, label, rkey in (("latency_complete_ms", "complete", "complete"), ("latency_all_ms", "not cut off", "all")):
        for q in ("p50", "p95"):
            row(f"speech end → audio {q}, {label}", [
                f"{_fmt(s[p][key][q], ' ms')} (n={s[p][key]['n']})" for p in policies], ratio.get(f"{rkey}_{q}"))
    row("hold on hesitations, mean / max", [
        f"{_fmt(s[p]['hold_hesitation_ms']['mean'])} / {_fmt(s[p]['hold_hesitation_ms']['max'], ' ms')}" for p in policies])
    row("no reply (not cut off)", [str(s[p]["no_reply"]) for p in policies])
    row("turn decisions", [", ".join(f"{k} {v}" for k, v in s[p]["decisions"].items()) or "–" for p in policies])
    console.print(t)

    k = Table(title="per kind (latency: clips not cut off; hold: longest silence held, ms)")
    for name in ("kind", "policy", "clips", "cut-offs", "p50 ms", "p95 ms", "hold mean", "hold max"):
        k.add_column(name, justify="left" if name in {"kind", "policy"} else "right")
    kinds = sorted({kind for p in policies for kind in s[p]["per_kind"]}, key=lambda x: KINDS.index(x) if x in KINDS else 99)
    for kind in kinds:
        for p in policies:
            d = s[p]["per_kind"].get(kind)
            if d is not None:
                k.add_row(kind, p, str(d["clips"]), f"{d['cut_offs']} ({_fmt(d['cut_off_pct'], ' %')})",
                          _fmt(d["latency_p50_ms"]), _fmt(d["latency_p95_ms"]), _fmt(d["hold_mean_ms"]),
                          _fmt(d["hold_max_ms"]))
    console.print(k)
    console.print(f"run {result['run_s']} s, models loaded in {result['load_s']} s; clip set {result['clip_set']['source']}")


def bench_turns_main(argv: list[str]) -> int:
    from assistant.logs import setup_logging
    from core.settings import load_settings

    parser = argparse.ArgumentParser(prog="quickturn bench turns", description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["tune", "report", "all"], default="report",
                        help="which part of the clip set (default report; choose thresholds on tune only)")
    parser.add_argument("--policies", default=",".join(POLICIES),
                        help="comma-separated end-of-turn policies, each on the same clips in the same run "
                             "(default semantic,fixed)")
    parser.add_argument("--limit", type=int, help="at most N clips per split, spread over kinds (seeded)")
    parser.add_argument("--kinds", help=f"comma-separated clip kinds ({', '.join(KINDS)})")
    parser.add_argument("--trailing-silence-s", type=float, default=3.0,
                        help="longest silence streamed after a clip while waiting for the turn to end and the "
                             "reply (default 3.0: the 2 s maximum hold plus the reply)")
    parser.add_argument("--clips", metavar="CLIPS_JSONL",
                        help="use this clip set (a clips.jsonl, audio paths relative to it) instead of the built-in one")
    parser.add_argument("--no-real", action="store_true", help="leave out the real recordings of ../shared")
    parser.add_argument("--no-tts-cache", action="store_true",
                        help="turn the TTS phrase cache off (by default it is on and warmed with the reply "
                             "templates' openers before the first clip, as `serve web` does, for every policy alike)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (summary and per-clip rows)")
    parser.add_argument("--config")
    parser.add_argument("--backend", help="embedded | triton://HOST:PORT | riva://HOST:PORT")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)

    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    bad = [p for p in policies if p not in POLICIES]
    if not policies or bad or len(set(policies)) != len(policies):
        raise InvalidInput(f"--policies: give distinct policies out of {', '.join(POLICIES)} (got {args.policies!r})")
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds else None
    if kinds and (unknown := [k for k in kinds if k not in KINDS]):
        raise InvalidInput(f"--kinds: unknown kind(s) {', '.join(unknown)} (valid: {', '.join(KINDS)})")
    if args.limit is not None and args.limit < 1:
        raise InvalidInput("--limit must be at least 1")
    if args.trailing_silence_s < 0.5:
        raise InvalidInput("--trailing-silence-s must be at least 0.5")

    overrides: dict[str, Any] = {"tts": {"cache_phrases": 0}} if args.no_tts_cache else {}
    if args.backend:
        overrides["backend"] = {"uri": args.backend}
    # Load with the first policy that needs the most (semantic may load an extra model); the
    # other policies reuse the loaded stages with their own settings.
    first = "semantic" if "semantic" in policies else policies[0]
    overrides["turn"] = {"policy": first}
    settings = load_settings(args.config, overrides)

    progress = not args.quiet
    if args.clips:
        path = Path(args.clips)
        if not path.is_file():
            raise InvalidInput(f"--clips: no such file {path}")
        all_clips = read_clips(path)
        source = str(path)
    else:
        all_clips = load_clip_set(settings, real=not args.no_real, progress=progress)
        source = str(Path(settings.data_dir) / "turns")
    clips = select_clips(all_clips, split=args.split, kinds=kinds, limit=args.limit)
    if not clips:
        raise InvalidInput(f"no clips in split {args.split!r}" + (f" of kinds {', '.join(kinds)}" if kinds else ""))

    from assistant.components import Components, warm_replies

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        components = Components.load(settings, db_path=Path(tmp) / "bench-turns.sqlite")
        warm_replies(components)
        load_s = time.perf_counter() - t0
        result = run_bench(components, clips, policies, trailing_silence_s=args.trailing_silence_s, progress=progress)
    result = {"split": args.split, "clips": len(clips), "load_s": round(load_s, 1),
              "trailing_silence_s": args.trailing_silence_s,
              "clip_set": {"source": source, "selected": counts(clips), "available": counts(all_clips)},
              "rules": {"cut_off_margin_ms": CUT_OFF_MARGIN_MS, "pause_limit_s": PAUSE_LIMIT_S, "frame_ms": FRAME_MS},
              **result}
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(bench_turns_main(sys.argv[1:]))
