"""``quickturn bench churn``: the server's resident memory under websocket connection churn.

Issue 29, item 4: every connection that came and went left about 1 MB of native memory
behind, and an idle session cost 8-10 MB. This measures it from the outside, the way an
operator would see it: a real ``quickturn serve web`` is started as a child process (its
own interpreter, its own allocator, the shipped defaults), a pool of clients opens,
starts and closes sessions, and the server's ``VmRSS`` is read from ``/proc/<pid>/status``.

Reported:

* ``rss_start_mb``: right after the models loaded and the TTS cache warmed;
* ``rss_before_mb``: after ``--warmup`` cycles (first-use allocations: thread pools, lazily
  built caches, the allocator's first arenas) — the baseline growth is measured from;
* ``rss_after_mb``: after ``--cycles`` more connect / session-start / close cycles,
  ``--concurrency`` at a time, once the server has closed them;
* ``idle_session_mb``: RSS with ``--idle`` sessions open and idle, minus the RSS without
  them, per session;
* ``trajectory``: with ``--every N``, the settled RSS after every N cycles (also printed to
  stderr as it goes): whether growth is a one-off step (workspaces, arenas reaching their
  working size) or a slope that a long-running server would keep climbing.

``--env NAME=VALUE`` passes an environment variable to the server only (e.g.
``MALLOC_ARENA_MAX=2``), which is how the allocator was ruled in or out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.web.client import WebClient
from core.errors import BackendUnavailable

_URL_LINE = re.compile(r"QuickTurn web client: http://127\.0\.0\.1:(\d+)/")
_REFUSAL_CODE = re.compile(r"'code': '([^']+)'")


def rss_kb(pid: int) -> int:
    """Resident set size (kB) of a process, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BackendUnavailable(f"process {pid} has no VmRSS (gone?)")


def settled_rss_kb(pid: int, *, interval_s: float = 0.25, timeout_s: float = 5.0) -> int:
    """RSS once it stops moving: sessions close asynchronously after the client's close frame,
    so the first reading after a churn can still include sockets being torn down."""
    last = rss_kb(pid)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(interval_s)
        now = rss_kb(pid)
        if abs(now - last) < 256:
            return now
        last = now
    return last


class ServerProcess:
    """``quickturn serve web`` as a child process on a free port, with its own database and token.

    The server is the shipped entry point (``assistant.cli``), not a thread in the caller: its RSS
    is then the server's alone. ``command`` replaces the entry point: a variant of the server built
    to bisect a leak, taking the same arguments.
    """

    def __init__(self, workdir: Path, *, env: dict[str, str] | None = None, wait_warm_s: float = 180.0,
                 command: list[str] | None = None) -> None:
        self.workdir = workdir
        self.command = command or [sys.executable, "-m", "assistant.cli", "serve", "web"]
        self.token = secrets.token_urlsafe(12)
        self.extra_env = dict(env or {})
        self.wait_warm_s = wait_warm_s
        self.log_path = workdir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?token={self.token}"

    def start(self, timeout_s: float = 180.0) -> ServerProcess:
        """Start and wait until it listens and has warmed its TTS cache (the warm-up allocates, and would
        otherwise be counted as growth).

        Raises:
            BackendUnavailable: the server exited or did not listen within ``timeout_s``.
        """
        cmd = [*self.command, "--port", "0", f"--token={self.token}",
               "--db", str(self.workdir / "dialog.sqlite"), "--verbose"]
        env = {**os.environ, **self.extra_env, "PYTHONUNBUFFERED": "1"}
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while not self.port:
            self._check_alive()
            if time.monotonic() > deadline:
                self.stop()
                raise BackendUnavailable(f"quickturn serve web did not listen within {timeout_s:g} s ({self.log_path})")
            match = _URL_LINE.search(self.log_path.read_text(errors="replace"))
            if match:
                self.port = int(match.group(1))
            time.sleep(0.2)
        deadline = time.monotonic() + self.wait_warm_s
        while "TTS cache warmed" not in self.log_path.read_text(errors="replace") and time.monotonic() < deadline:
            self._check_alive()
            time.sleep(0.5)
        return self

    def _check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise BackendUnavailable(f"quickturn serve web exited with {self.proc.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with contextlib.suppress(AttributeError):
            self._log.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def one_cycle(url: str, *, sample_rate_hz: int = 16000, audio_ms: int = 0, speech: np.ndarray | None = None) -> None:
    """Connect, start a session, optionally send ``audio_ms`` of silence at microphone pace (the VAD and,
    at another rate, the resampler run), close.

    ``speech`` (int16 at ``sample_rate_hz``): then speak it as one turn and wait for the reply.

    Raises:
        RuntimeError: the server refused the session, or the turn gave no reply.
    """
    async with WebClient(url) as client:
        await client.start(sample_rate_hz=sample_rate_hz, barge_in=True)
        if audio_ms:
            await client.stream(np.zeros(sample_rate_hz * audio_ms // 1000, np.int16), realtime=True)
        if speech is not None:  # one whole turn: ASR, end-of-turn models, NLU, dialog, TTS all run
            turn = await client.run_turn(speech, realtime=True)
            if not turn.of("stage-metrics"):
                raise RuntimeError(f"the turn did not finish: {[m.type for m in turn.messages]}")


async def churn(url: str, cycles: int, concurrency: int, **cycle_kwargs: Any) -> Counter[str]:
    """``cycles`` cycles, ``concurrency`` at a time; returns the failures (refused or errored) by reason."""
    todo = iter(range(cycles))
    failures: Counter[str] = Counter()

    async def worker() -> None:
        for _ in todo:
            try:
                await one_cycle(url, **cycle_kwargs)
            except Exception as exc:  # counted and reported: a refused session is a finding, not a crash of the bench
                code = _REFUSAL_CODE.search(str(exc))
                failures[f"refused: {code.group(1)}" if code else f"{type(exc).__name__}: {exc}"[:160]] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


async def idle_cost_kb(url: str, pid: int, sessions: int, *, audio_ms: int = 1000, hold_s: float = 1.0) -> float:
    """RSS per idle session (kB): ``sessions`` started, each sent ``audio_ms`` of silence (a page with its
    microphone on and nobody speaking: the VAD has run), then left open; minus the RSS without them."""
    base = settled_rss_kb(pid)
    clients = [WebClient(url) for _ in range(sessions)]
    try:
        for c in clients:
            await c.__aenter__()
            await c.start(sample_rate_hz=16000)
            if audio_ms:
                await c.stream(np.zeros(16 * audio_ms, np.int16), realtime=False)
        await asyncio.sleep(hold_s)
        held = rss_kb(pid)
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                await c.close()
    return (held - base) / sessions


@dataclass
class ChurnReport:
    """The numbers ``quickturn bench churn`` prints (RSS in MB, 1 MB = 1024 kB)."""

    cycles: int
    concurrency: int
    warmup: int
    failures: int
    rss_start_mb: float
    rss_before_mb: float
    rss_after_mb: float
    growth_mb: float
    growth_kb_per_cycle: float
    idle_sessions: int
    idle_session_mb: float
    seconds: float
    failure_reasons: dict[str, int] = field(default_factory=dict)
    trajectory: list[tuple[int, float]] = field(default_factory=list)
    """(cycles done, settled RSS in MB) after every ``--every`` cycles."""

    def lines(self) -> list[str]:
        return [
            f"server RSS at start: {self.rss_start_mb:.1f} MB",
            f"server RSS before:   {self.rss_before_mb:.1f} MB (after {self.warmup} warm-up cycles)",
            f"server RSS after:    {self.rss_after_mb:.1f} MB ({self.cycles} cycles, {self.concurrency} at a time, "
            f"{self.failures} failed, {self.seconds:.1f} s)",
            f"growth:              {self.growth_mb:+.1f} MB ({self.growth_kb_per_cycle:+.1f} kB per cycle)",
            *([f"idle session:        {self.idle_session_mb:.2f} MB each ({self.idle_sessions} held)"]
              if self.idle_sessions else []),
            *(f"failed ×{n}: {reason}" for reason, n in self.failure_reasons.items()),
            *([f"RSS every {self.trajectory[0][0]} cycles: " + ", ".join(f"{mb:.1f}" for _, mb in self.trajectory) + " MB"]
              if self.trajectory else []),
        ]


def run_churn(server: ServerProcess, *, cycles: int, concurrency: int = 8, warmup: int = 16, idle: int = 8,
              sample_rate_hz: int = 16000, audio_ms: int = 0, speech: np.ndarray | None = None,
              every: int = 0) -> ChurnReport:
    """Measure a started server: idle-session cost, warm-up, baseline RSS, churn, RSS after.

    ``every``: also read the settled RSS after every ``every`` cycles (the churn pauses for the reading).
    """
    url, pid = server.ws_url(), server.pid
    kwargs: dict[str, Any] = {"sample_rate_hz": sample_rate_hz, "audio_ms": audio_ms, "speech": speech}
    start = settled_rss_kb(pid)
    # Idle cost first: after a churn, new sessions reuse the memory freed by earlier ones and look free.
    idle_kb = asyncio.run(idle_cost_kb(url, pid, idle)) if idle else 0.0
    asyncio.run(churn(url, warmup, concurrency, **kwargs))
    before = settled_rss_kb(pid)
    t0 = time.perf_counter()
    failed: Counter[str] = Counter()
    trajectory: list[tuple[int, float]] = []
    step = every if every > 0 else cycles
    for done in range(0, cycles, step):
        failed += asyncio.run(churn(url, min(step, cycles - done), concurrency, **kwargs))
        if every > 0:
            trajectory.append((min(done + step, cycles), round(settled_rss_kb(pid) / 1024, 1)))
            print(f"  {trajectory[-1][0]} cycles: {trajectory[-1][1]:.1f} MB", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - t0
    after = settled_rss_kb(pid)
    return ChurnReport(
        cycles=cycles, concurrency=concurrency, warmup=warmup, failures=sum(failed.values()),
        rss_start_mb=round(start / 1024, 1), rss_before_mb=round(before / 1024, 1), rss_after_mb=round(after / 1024, 1),
        growth_mb=round((after - before) / 1024, 1), growth_kb_per_cycle=round((after - before) / max(cycles, 1), 1),
        idle_sessions=idle, idle_session_mb=round(idle_kb / 1024, 2), seconds=round(seconds, 1), failure_reasons=dict(failed),
        trajectory=trajectory,
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quickturn bench churn",
                                description="Server RSS under websocket connect / session-start / close churn.")
    p.add_argument("--cycles", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--warmup", type=int, default=16, help="cycles before the baseline reading")
    p.add_argument("--idle", type=int, default=8, help="idle sessions held open to measure their cost (0: skip)")
    p.add_argument("--rate", type=int, default=16000, help="the session's declared sample rate (≠16000: resampler)")
    p.add_argument("--audio-ms", type=int, default=0, help="silence sent per session (runs the VAD)")
    p.add_argument("--speech", type=Path, help="a recording spoken as one turn per session (the whole pipeline runs)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="environment of the server only")
    p.add_argument("--every", type=int, default=0, metavar="N", help="also read the RSS after every N cycles")
    p.add_argument("--json", action="store_true")
    return p


def bench_churn_main(argv: list[str]) -> int:
    """Entry point of ``quickturn bench churn``."""
    args = build_parser().parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    speech = None
    if args.speech is not None:
        from core.audio import load_audio

        speech = load_audio(args.speech)
        if args.rate != 16000:
            import soxr

            speech = soxr.resample(speech, 16000, args.rate)
    with tempfile.TemporaryDirectory(prefix="quickturn-churn-") as tmp, ServerProcess(Path(tmp), env=env) as server:
        report = run_churn(server, cycles=args.cycles, concurrency=args.concurrency, warmup=args.warmup,
                           idle=args.idle, sample_rate_hz=args.rate, audio_ms=args.audio_ms, speech=speech,
                           every=args.every)
    if args.json:
        print(json.dumps(asdict(report)))
    else:
        print("\n".join(report.lines()))
    return 0
