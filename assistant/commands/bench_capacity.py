"""``quickturn bench capacity``: how many real-time conversations one server holds, measured from the outside.

Starts real ``quickturn serve web`` processes (one per mode: cross-stream ASR batching on, and
off with ``QUICKTURN_ASR__MAX_BATCH=1``, the former one-decode-at-a-time path), then for each N
opens N websocket sessions at once. Each session speaks real speech in real time (20 ms binary
frames paced like a microphone): real customers' coffee orders (barista-dev, cut to their speech
region) or the generated utterances, turn after turn, each followed by 2.5 s of silence (the
longest hold of the end-of-turn policy), with a short seeded pause between turns. The sessions'
starts are staggered over one turn's length, so turns overlap as real users' do, not in lockstep.

Per N and mode:

* **latency**: end of speech → first reply audio = arrival of the first binary reply frame of the
  turn minus the moment the client sent the frame holding the turn's last speech sample
  (Silero VAD on the clip; what a user waits, endpointing included), p50/p95;
* **lost turns**: no reply audio within the timeout, or a reply that began before the speaker
  finished (a cut-off), or a clip heard as two turns;
* **server CPU** (cores busy: CPU seconds of the server process tree over wall seconds) and peak
  **RSS** (process tree, sampled every 200 ms).

The modes alternate per N (which one goes first flips), both servers stay loaded, and only the
measured server works while the other idles, so old and new see the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.commands.bench_asr import speech_region
from assistant.commands.setup import utterance_manifest
from assistant.metrics import percentile
from assistant.web.client import Received, WebClient
from core.audio import load_audio
from core.errors import InvalidInput
from core.settings import load_settings
from services.serving.triton_server import (
    DEFAULT_REPOSITORY,
    TritonPorts,
    TritonProcess,
    find_tritonserver,
    free_ports,
)
from services.vad.silero import SileroVad

RATE_HZ = 16000
FRAME_MS = 20
TAIL_MS = 160
"""speech_region keeps this much audio after the last speech frame: the clip's end of speech is len - TAIL_MS."""

MODES = {
    "batched": {"QUICKTURN_ASR__MAX_BATCH": "4", "QUICKTURN_ASR__BATCH_FINALS": "0"},
    "batched-finals": {"QUICKTURN_ASR__MAX_BATCH": "4", "QUICKTURN_ASR__BATCH_FINALS": "1"},
    "unbatched": {"QUICKTURN_ASR__MAX_BATCH": "1"},
    "triton": {},
}
"""Mode → the ASR batching environment of its server (the default; finals batched too; the former path).

``triton``: the same web server with ``--backend triton://``, its stages served by a tritonserver
started from the model repository (``models/``; the ASR model's sequence batcher batches the
streams' windows); its CPU and RSS are counted with the web server's."""


@dataclass
class Clip:
    name: str
    pcm: np.ndarray
    speech_end_sample: int


def load_clips(source: str, shared_dir: Path, limit: int) -> list[Clip]:
    """Real speech clips cut to their speech region (200 ms before, 160 ms after)."""
    if source == "barista":
        manifest = shared_dir / "data" / "barista-dev" / "manifest.jsonl"
        if not manifest.is_file():
            raise InvalidInput(f"{manifest} is missing: use --source generated")
        paths = [manifest.parent / str(json.loads(x)["audio_filepath"]) for x in manifest.read_text().splitlines()]
    else:
        manifest = utterance_manifest()
        paths = [manifest.parent / str(json.loads(x)["audio_filepath"]) for x in manifest.read_text().splitlines()]
    random.Random(28).shuffle(paths)
    vad = SileroVad()
    clips = []
    for p in paths[:limit]:
        pcm = speech_region(load_audio(p), vad)
        clips.append(Clip(p.name, pcm, max(0, len(pcm) - TAIL_MS * RATE_HZ // 1000)))
    return clips


# ------------------------------------------------------------------ the server under test


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of the process tree."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in _tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def tree_rss_mb(pid: int) -> float:
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


class Server:
    """A ``quickturn serve web`` subprocess on a free port with its own token and database; for the
    ``triton`` mode, with a tritonserver on free ports behind it (started first, ready before the web
    server connects to it)."""

    def __init__(self, mode: str, workdir: Path, extra_env: dict[str, str]) -> None:
        self.mode = mode
        self.token = secrets.token_urlsafe(16)
        self.out = workdir / f"serve-{mode}.out"
        self.err = workdir / f"serve-{mode}.err"
        exe = Path(sys.executable).parent / "quickturn"
        self._cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "assistant.cli"]
        self._cmd += ["serve", "web", "--port", "0", f"--token={self.token}", "--max-sessions", "64",
                      "--db", str(workdir / f"dialog-{mode}.sqlite")]
        self._env = {**os.environ, **extra_env, **MODES[mode]}
        self.triton: TritonProcess | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        if mode == "triton":
            binary = find_tritonserver(runtime_dir=workdir / "triton-runtime")
            self.triton = TritonProcess(DEFAULT_REPOSITORY, TritonPorts(*free_ports(3)), binary,
                                        log_path=workdir / "triton.log")
            self.triton.start()
            self._cmd += ["--backend", f"triton://127.0.0.1:{self.triton.ports.grpc}"]
        else:
            self._launch()
        self.port = 0

    def _launch(self) -> None:
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(self._cmd, stdout=out, stderr=err, env=self._env)

    @property
    def pids(self) -> list[int]:
        """The processes whose CPU and memory are the server's (the web server; tritonserver too)."""
        return [p.pid for p in (self.proc, self.triton.proc if self.triton else None) if p is not None]

    async def ready(self, timeout_s: float = 180.0) -> None:
        if self.proc is None:
            assert self.triton is not None
            await asyncio.to_thread(self.triton.wait_ready, timeout_s)
            self._launch()
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"quickturn serve web ({self.mode}) exited: {self.err.read_text()[-2000:]}")
            for line in self.out.read_text().splitlines():
                if line.startswith("QuickTurn web client:"):
                    self.port = int(line.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
                    return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"quickturn serve web ({self.mode}) did not start in {timeout_s} s")

    async def settle(self, max_wait_s: float = 60.0, idle_cores: float = 0.15) -> None:
        """Wait until the server is idle (its reply openers are synthesized in the background at start)."""
        deadline = time.monotonic() + max_wait_s
        while time.monotonic() < deadline:
            c0 = self.cpu_s()
            await asyncio.sleep(1.0)
            if self.cpu_s() - c0 < idle_cores:
                return

    def cpu_s(self) -> float:
        return sum(tree_cpu_s(pid) for pid in self.pids)

    def rss_mb(self) -> float:
        return sum(tree_rss_mb(pid) for pid in self.pids)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?token={self.token}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.triton is not None:
            self.triton.stop()


# ------------------------------------------------------------------ one session


@dataclass
class TurnLog:
    clip: str
    t_first_frame_ns: int
    t_speech_end_ns: int = 0
    t_last_frame_ns: int = 0


@dataclass
class SessionLog:
    turns: list[TurnLog] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    error: str | None = None


async def run_session(url: str, clips: list[Clip], *, start_delay_s: float, trailing_silence_ms: int,
                      gap_s: tuple[float, float], seed: int, turn_timeout_s: float) -> SessionLog:
    """One user: connect, then speak each clip in real time, waiting for the reply (or a timeout) between turns."""
    log = SessionLog()
    rng = random.Random(seed)
    await asyncio.sleep(start_delay_s)
    step = RATE_HZ * FRAME_MS // 1000
    silence = np.zeros(RATE_HZ * trailing_silence_ms // 1000, np.int16)
    try:
        async with WebClient(url) as client:
            await client.start(sample_rate_hz=RATE_HZ, barge_in=False)
            for clip in clips:
                audio = np.concatenate([clip.pcm, silence])
                seen = len(log.received)
                t0 = time.monotonic()
                turn = TurnLog(clip.name, time.monotonic_ns())
                for k, i in enumerate(range(0, len(audio), step)):
                    await client.send_audio(audio[i : i + step])
                    t = time.monotonic_ns()
                    if i <= clip.speech_end_sample < i + step:
                        turn.t_speech_end_ns = t
                    turn.t_last_frame_ns = t
                    _drain(client, log)
                    delay = t0 + (k + 1) * FRAME_MS / 1000 - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                log.turns.append(turn)
                # The reply: wait for this turn's stage-metrics (or a cancel / error / empty final).
                deadline = time.monotonic() + turn_timeout_s
                while time.monotonic() < deadline and not _turn_done(log.received[seen:]):
                    with contextlib.suppress(TimeoutError):
                        log.received.append(await client.next(max(0.05, deadline - time.monotonic())))
                await asyncio.sleep(rng.uniform(*gap_s))  # the reply plays; the user thinks
                _drain(client, log)
            _drain(client, log)
    except Exception as exc:  # the session's failure is a result (its turns count as lost)
        log.error = f"{type(exc).__name__}: {exc}"
    return log


def _drain(client: WebClient, log: SessionLog) -> None:
    while not client.inbox.empty():
        log.received.append(client.inbox.get_nowait())


def _turn_done(messages: list[Received]) -> bool:
    return any(m.type in {"stage-metrics", "turn-cancelled", "error"}
               or (m.type == "transcript-final" and not m.message.get("text")) for m in messages)


def score_session(log: SessionLog) -> list[dict[str, object]]:
    """Per turn: latency (ms) or why it was lost."""
    rows = []
    bounds = [t.t_first_frame_ns for t in log.turns] + [2**63]
    for k, turn in enumerate(log.turns):
        window = [m for m in log.received if bounds[k] <= m.t_recv_ns < bounds[k + 1]]
        started = [m for m in window if m.type == "speech-started"]
        turn_ids = {m.turn_id for m in started}
        audio = [m for m in log.received if m.pcm is not None and m.turn_id in turn_ids and m.t_recv_ns >= bounds[k]]
        row: dict[str, object] = {"clip": turn.clip, "turns_heard": len(started)}
        if not audio:
            row["lost"] = "no reply audio"
        elif len(started) > 1:
            row["lost"] = "heard as two turns"
        elif audio[0].t_recv_ns < turn.t_speech_end_ns:
            row["lost"] = "cut off (reply before the end of speech)"
        else:
            row["latency_ms"] = round((audio[0].t_recv_ns - turn.t_speech_end_ns) / 1e6, 1)
            ended = [m for m in window if m.type == "speech-ended" and m.turn_id in turn_ids]
            if ended:  # the latency in two: until the server ended the turn, and from there to the first audio
                row["until_turn_ended_ms"] = round((ended[0].t_recv_ns - turn.t_speech_end_ns) / 1e6, 1)
                row["after_turn_ended_ms"] = round((audio[0].t_recv_ns - ended[0].t_recv_ns) / 1e6, 1)
        metrics = [m for m in log.received if m.type == "stage-metrics" and m.turn_id in turn_ids]
        if metrics:  # the server's own view: silence waited (endpoint) and end of turn → first audio (total)
            stages = metrics[0].message.get("latency_ms", {})
            row["server_endpoint_ms"] = stages.get("endpoint")
            row["server_total_ms"] = stages.get("total")
            row["server_asr_ms"] = stages.get("asr")
        decisions = [m for m in log.received if m.type == "turn-decision" and m.turn_id in turn_ids
                     and m.message.get("decision") != "incomplete"]
        if decisions:  # the speculation the decision waited for (decode at the first silence, parse, plan)
            spec = (decisions[0].message.get("signals") or {}).get("speculation_ms") or {}
            row["speculation_asr_ms"] = spec.get("asr")
        finals = [m for m in window if m.type == "transcript-final" and m.turn_id in turn_ids]
        row["transcript"] = str(finals[0].message.get("text", "")) if finals else ""
        rows.append(row)
    return rows


# ------------------------------------------------------------------ one load level


async def run_level(server: Server, clips: list[Clip], n: int, turns: int, *, trailing_silence_ms: int,
                    turn_timeout_s: float, seed: int) -> dict[str, object]:
    """N concurrent sessions of ``turns`` turns each; the server's CPU and peak RSS over the run."""
    rng = random.Random(seed)
    mean_turn_s = float(np.mean([len(c.pcm) for c in clips])) / RATE_HZ + trailing_silence_ms / 1000 + 1.0
    plans = []
    for s in range(n):
        picks = [clips[(s * turns + t + seed) % len(clips)] for t in range(turns)]
        plans.append((picks, s * mean_turn_s / n + rng.uniform(0, 0.2)))
    rss_peak = server.rss_mb()
    stop = asyncio.Event()

    async def sample_rss() -> None:
        nonlocal rss_peak
        while not stop.is_set():
            rss_peak = max(rss_peak, await asyncio.to_thread(server.rss_mb))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)

    sampler = asyncio.create_task(sample_rss())
    cpu0, t0 = server.cpu_s(), time.monotonic()
    logs = await asyncio.gather(*(
        run_session(server.ws_url, picks, start_delay_s=delay, trailing_silence_ms=trailing_silence_ms,
                    gap_s=(0.3, 1.2), seed=seed * 100 + s, turn_timeout_s=turn_timeout_s)
        for s, (picks, delay) in enumerate(plans)
    ))
    wall = time.monotonic() - t0
    cpu = server.cpu_s() - cpu0
    stop.set()
    await sampler
    rows = [r for log in logs for r in score_session(log)]
    lat = [float(r["latency_ms"]) for r in rows if "latency_ms" in r]  # type: ignore[arg-type]
    def p(key: str, q: float) -> float | None:
        vals = [float(r[key]) for r in rows if r.get(key) is not None and "latency_ms" in r]  # type: ignore[arg-type]
        return round(percentile(vals, q), 1) if vals else None

    return {
        "sessions": n,
        "turns": len(rows),
        "server_endpoint_p50_ms": p("server_endpoint_ms", 50), "server_endpoint_p95_ms": p("server_endpoint_ms", 95),
        "server_total_p50_ms": p("server_total_ms", 50), "server_total_p95_ms": p("server_total_ms", 95),
        "server_asr_p95_ms": p("server_asr_ms", 95),
        "speculation_asr_p50_ms": p("speculation_asr_ms", 50), "speculation_asr_p95_ms": p("speculation_asr_ms", 95),
        "until_turn_ended_p50_ms": p("until_turn_ended_ms", 50), "until_turn_ended_p95_ms": p("until_turn_ended_ms", 95),
        "after_turn_ended_p50_ms": p("after_turn_ended_ms", 50), "after_turn_ended_p95_ms": p("after_turn_ended_ms", 95),
        "p50_ms": round(percentile(lat, 50), 1) if lat else None,
        "p95_ms": round(percentile(lat, 95), 1) if lat else None,
        "max_ms": round(max(lat), 1) if lat else None,
        "lost_turns": sum(1 for r in rows if "lost" in r),
        "lost_reasons": sorted({str(r["lost"]) for r in rows if "lost" in r}),
        "session_errors": [log.error for log in logs if log.error],
        "server_cpu_cores": round(cpu / wall, 2),
        "server_rss_peak_mb": round(rss_peak, 1),
        "wall_s": round(wall, 1),
        "rows": rows,
    }


async def run_capacity(clips: list[Clip], sessions: list[int], modes: list[str], turns: int, *, workdir: Path,
                       trailing_silence_ms: int, turn_timeout_s: float, progress: bool) -> dict[str, object]:
    servers: dict[str, Server] = {}
    try:
        for m in modes:
            servers[m] = Server(m, workdir, {})
        for s in servers.values():
            await s.ready()
        for s in servers.values():  # one warm-up turn each, then wait until idle
            await run_session(s.ws_url, clips[:1], start_delay_s=0, trailing_silence_ms=trailing_silence_ms,
                              gap_s=(0.0, 0.0), seed=0, turn_timeout_s=turn_timeout_s)
            await s.settle()
        levels: dict[str, list[dict[str, object]]] = {m: [] for m in modes}
        for k, n in enumerate(sessions):
            order = modes if k % 2 == 0 else list(reversed(modes))
            for m in order:
                await servers[m].settle(max_wait_s=20)
                level = await run_level(servers[m], clips, n, turns, trailing_silence_ms=trailing_silence_ms,
                                        turn_timeout_s=turn_timeout_s, seed=k + 1)
                level["load_avg_1m"] = round(os.getloadavg()[0], 2)
                levels[m].append(level)
                if progress:
                    print(f"  {m:>14} N={n}: p50 {level['p50_ms']} ms, p95 {level['p95_ms']} ms, lost "
                          f"{level['lost_turns']}/{level['turns']}, CPU {level['server_cpu_cores']} cores, "
                          f"RSS {level['server_rss_peak_mb']} MB", file=sys.stderr)
        return {"levels": levels}
    finally:
        for s in servers.values():
            s.stop()


def _capacity(levels: list[dict[str, object]], target_ms: float, rss_mb: float) -> int:
    """The largest N whose p95 is within ``target_ms`` with no lost turn and RSS within ``rss_mb`` (0: none)."""
    ok = [int(lv["sessions"]) for lv in levels  # type: ignore[call-overload]
          if lv["p95_ms"] is not None and float(lv["p95_ms"]) <= target_ms  # type: ignore[arg-type]
          and lv["lost_turns"] == 0 and float(lv["server_rss_peak_mb"]) <= rss_mb]  # type: ignore[arg-type]
    return max(ok, default=0)


def bench_capacity_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="quickturn bench capacity", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,2,4", help="concurrent sessions per level (default 1,2,4)")
    parser.add_argument("--turns", type=int, default=6, help="turns per session (default 6)")
    parser.add_argument("--modes", default="batched,unbatched",
                        help="servers to compare: batched (cross-stream ASR batching, the default), batched-finals "
                             "(finals batched too), unbatched (max_batch 1, the former path), triton (the stages on a "
                             "tritonserver started from models/)")
    parser.add_argument("--no-batching", action="store_true", help="only the unbatched server (same as --modes unbatched)")
    parser.add_argument("--source", choices=["barista", "generated"], default="barista",
                        help="real customers' coffee orders (default) or the generated utterances")
    parser.add_argument("--clips", type=int, default=60, help="distinct clips to cycle through (default 60)")
    parser.add_argument("--trailing-silence-ms", type=int, default=2500)
    parser.add_argument("--turn-timeout-s", type=float, default=20.0)
    parser.add_argument("--target-ms", type=float, default=400.0, help="p95 target (default 400)")
    parser.add_argument("--rss-mb", type=float, default=1536.0, help="RSS limit (default 1536)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        sessions = [int(x) for x in args.sessions.split(",") if x.strip()]
    except ValueError as exc:
        raise InvalidInput(f"--sessions: comma-separated integers, got {args.sessions!r}") from exc
    modes = ["unbatched"] if args.no_batching else [m.strip() for m in args.modes.split(",") if m.strip()]
    if not sessions or min(sessions) < 1 or not modes or any(m not in MODES for m in modes):
        raise InvalidInput(f"--sessions needs positive integers and --modes some of {', '.join(MODES)}")
    settings = load_settings()
    clips = load_clips(args.source, settings.shared_dir, args.clips)
    t0 = time.monotonic()
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(run_capacity(clips, sessions, modes, args.turns, workdir=Path(tmp),
                                          trailing_silence_ms=args.trailing_silence_ms,
                                          turn_timeout_s=args.turn_timeout_s, progress=not args.json))
    levels: dict[str, list[dict[str, object]]] = result["levels"]  # type: ignore[assignment]
    summary: dict[str, object] = {
        "source": args.source, "clips": len(clips), "turns_per_session": args.turns, "sessions": sessions,
        "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load0],
        "target_p95_ms": args.target_ms, "rss_limit_mb": args.rss_mb,
        "capacity": {m: _capacity(levels[m], args.target_ms, args.rss_mb) for m in modes},
        "levels": levels, "run_s": round(time.monotonic() - t0, 1),
    }
    if "batched" in levels and "triton" in levels:
        summary["ratios_triton_over_batched"] = [
            {"sessions": b["sessions"],
             "p50": round(float(t["p50_ms"]) / float(b["p50_ms"]), 2) if b["p50_ms"] and t["p50_ms"] else None,  # type: ignore[arg-type]
             "p95": round(float(t["p95_ms"]) / float(b["p95_ms"]), 2) if b["p95_ms"] and t["p95_ms"] else None}  # type: ignore[arg-type]
            for b, t in zip(levels["batched"], levels["triton"], strict=True)
        ]
    if "batched" in levels and "unbatched" in levels:
        summary["ratios_unbatched_over_batched"] = [
            {"sessions": b["sessions"],
             "p50": round(float(u["p50_ms"]) / float(b["p50_ms"]), 2) if b["p50_ms"] and u["p50_ms"] else None,  # type: ignore[arg-type]
             "p95": round(float(u["p95_ms"]) / float(b["p95_ms"]), 2) if b["p95_ms"] and u["p95_ms"] else None,  # type: ignore[arg-type]
             "cpu": round(float(u["server_cpu_cores"]) / float(b["server_cpu_cores"]), 2)  # type: ignore[arg-type]
             if b["server_cpu_cores"] else None}
            for b, u in zip(levels["batched"], levels["unbatched"], strict=True)
        ]
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"quickturn bench capacity: {args.source} clips ({len(clips)}), {args.turns} turns per session, real time, "
          f"staggered; {summary['cpus']} CPUs, load before {summary['loadavg_before'][0]}")  # type: ignore[index]
    print("  end of speech → first reply audio (client clocks), per mode and N:")
    print("          mode   N  turns   p50 ms   p95 ms   max ms  lost  server CPU (cores)  peak RSS MB  load 1m")
    for m in modes:
        for lv in levels[m]:
            print(f"  {m:>14} {lv['sessions']:>2} {lv['turns']:>6} {lv['p50_ms']!s:>8} {lv['p95_ms']!s:>8} "
                  f"{lv['max_ms']!s:>8} {lv['lost_turns']:>5} {lv['server_cpu_cores']:>19} "
                  f"{lv['server_rss_peak_mb']:>12} {lv['load_avg_1m']:>8}")
            print(f"             server: silence waited p50 {lv['server_endpoint_p50_ms']} / p95 "
                  f"{lv['server_endpoint_p95_ms']} ms; end of turn → first audio p50 {lv['server_total_p50_ms']} / "
                  f"p95 {lv['server_total_p95_ms']} ms (ASR p95 {lv['server_asr_p95_ms']} ms)")
            print(f"             client: end of speech → speech-ended received p50 {lv['until_turn_ended_p50_ms']} / p95 "
                  f"{lv['until_turn_ended_p95_ms']} ms; speech-ended → first audio p50 {lv['after_turn_ended_p50_ms']} / "
                  f"p95 {lv['after_turn_ended_p95_ms']} ms; the speculation's ASR decode (at the first silence) "
                  f"p50 {lv['speculation_asr_p50_ms']} / p95 {lv['speculation_asr_p95_ms']} ms")
            for r in lv["rows"]:  # type: ignore[attr-defined]
                if "lost" in r:
                    print(f"             lost: {r['clip']}: {r['lost']} (heard {r['transcript']!r})")
    for r in summary.get("ratios_unbatched_over_batched", []):  # type: ignore[attr-defined]
        print(f"  N={r['sessions']}: unbatched / batched p50 {r['p50']}x, p95 {r['p95']}x, CPU {r['cpu']}x")
    for r in summary.get("ratios_triton_over_batched", []):  # type: ignore[attr-defined]
        print(f"  N={r['sessions']}: triton / embedded (batched) p50 {r['p50']}x, p95 {r['p95']}x")
    for m, cap in summary["capacity"].items():  # type: ignore[attr-defined]
        print(f"  capacity ({m}): {cap} sessions at p95 ≤ {args.target_ms:g} ms, no lost turn, RSS ≤ {args.rss_mb:g} MB")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(bench_capacity_main(sys.argv[1:]))
