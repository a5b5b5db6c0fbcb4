"""A small Python client of the QuickTurn websocket protocol (bench, tests, scripting).

Example::

    async with WebClient(server.ws_url(token=server.token)) as client:
        await client.start(sample_rate_hz=16000)
        turn = await client.run_turn(pcm)   # paced like a microphone
        print(turn.transcript, turn.intent, turn.reply)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from ssl import SSLContext
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from assistant.web import protocol as proto
from core.events import Event, from_json


@dataclass
class Received:
    """One message from the server, stamped on arrival (monotonic ns)."""

    t_recv_ns: int
    message: dict[str, Any]
    pcm: np.ndarray | None = None

    @property
    def type(self) -> str:
        return str(self.message.get("type", ""))

    @property
    def turn_id(self) -> str:
        return str(self.message.get("turn_id", ""))

    @property
    def event(self) -> Event:
        """The pipeline event this message carries, typed (:func:`core.events.from_json`).

        Raises:
            InvalidInput: a session message (``session-started``...) rather than an event.
        """
        return from_json(self.message, self.pcm)


@dataclass
class WebTurn:
    """What one user turn produced on the wire."""

    turn_id: str = ""
    messages: list[Received] = field(default_factory=list)

    def of(self, kind: str) -> list[Received]:
        return [m for m in self.messages if m.type == kind]

    @property
    def transcript(self) -> str:
        finals = self.of("transcript-final")
        return str(finals[-1].message["text"]) if finals else ""

    @property
    def intent(self) -> str | None:
        nlu = self.of("nlu-result")
        return nlu[-1].message["result"]["intent"] if nlu else None

    @property
    def reply(self) -> str:
        acts = self.of("dialog-action")
        return str(acts[-1].message["text"]) if acts else ""

    @property
    def audio(self) -> list[Received]:
        return [m for m in self.messages if m.pcm is not None]

    @property
    def latency_ms(self) -> dict[str, float]:
        metrics = self.of("stage-metrics")
        return dict(metrics[-1].message["latency_ms"]) if metrics else {}

    def wire_first_audio_ms(self) -> float | None:
        """Server speech-ended event (its ``t_ns``) → first reply audio frame received here.

        Valid when client and server share the monotonic clock (same machine).
        """
        ended = self.of("speech-ended")
        audio = self.audio
        if not ended or not audio:
            return None
        return (audio[0].t_recv_ns - int(ended[0].message["t_ns"])) / 1e6


class WebClient:
    """A connection to ``/ws``; ``async with`` opens and closes it.

    Args:
        url: ``ws://host:port/ws`` (with ``?token=`` or give ``token`` to :meth:`start`).
        origin: the Origin header to send (None: none, like a non-browser client).
        ssl: TLS context for a ``wss://`` URL (None: the system's default trust store).
        headers: more HTTP headers for the opening handshake (what a reverse proxy adds, e.g.
            ``X-Forwarded-For``).
    """

    def __init__(self, url: str, *, origin: str | None = None, ssl: SSLContext | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.origin = origin
        self.ssl = ssl
        self.headers = dict(headers or {})
        self.ws: ClientConnection | None = None
        self.session: dict[str, Any] = {}
        self.inbox: asyncio.Queue[Received] = asyncio.Queue()
        self.closed: asyncio.Event = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._seq = 0
        self.sample_rate_hz = 16000

    async def __aenter__(self) -> WebClient:
        extra: dict[str, Any] = {"ssl": self.ssl} if self.ssl is not None else {}
        self.ws = await connect(self.url, origin=self.origin, compression=None, max_size=None,  # type: ignore[arg-type]
                                open_timeout=10, close_timeout=3, additional_headers=self.headers or None, **extra)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code if self.ws is not None else None

    @property
    def close_reason(self) -> str | None:
        """The reason text of the server's close frame (None while open)."""
        return self.ws.close_reason if self.ws is not None else None

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                t = time.monotonic_ns()
                if isinstance(raw, bytes):
                    frame = proto.decode_audio(raw)
                    await self.inbox.put(Received(t, frame.header, frame.pcm))
                else:
                    await self.inbox.put(Received(t, json.loads(raw)))
        except Exception:  # the connection closed with an error code: close_code tells which
            pass
        finally:
            self.closed.set()

    async def send_json(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(message))

    async def send_raw(self, data: str | bytes) -> None:
        assert self.ws is not None
        await self.ws.send(data)

    async def send_audio(self, pcm: np.ndarray) -> None:
        self._seq += 1
        await self.send_raw(proto.encode_audio({"type": "audio-chunk", "seq": self._seq}, pcm))

    async def start(self, *, sample_rate_hz: int = 16000, barge_in: bool = True, token: str | None = None,
                    timeout: float = 10.0) -> dict[str, Any]:
        """Send session-start and wait for session-started.

        Raises:
            RuntimeError: the server answered with an error (its code and message in the text).
        """
        msg: dict[str, Any] = {"type": "session-start", "sample_rate_hz": sample_rate_hz, "barge_in": barge_in}
        if token is not None:
            msg["token"] = token
        self.sample_rate_hz = sample_rate_hz
        await self.send_json(msg)
        reply = await self.next(timeout)
        if reply.type != "session-started":
            raise RuntimeError(f"session refused: {reply.message}")
        self.session = reply.message
        return reply.message

    async def next(self, timeout: float = 10.0) -> Received:
        return await asyncio.wait_for(self.inbox.get(), timeout)

    def _frame_samples(self, chunk_ms: int) -> int:
        return max(1, int(self.sample_rate_hz * chunk_ms / 1000))

    async def _send_frames(self, frames: Iterable[np.ndarray], chunk_ms: int, realtime: bool) -> None:
        """Send each frame, paced one per ``chunk_ms`` from the first (like a microphone) when ``realtime``."""
        t0 = time.monotonic()
        for k, frame in enumerate(frames, start=1):
            await self.send_audio(frame)
            if realtime:
                delay = t0 + k * chunk_ms / 1000 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)

    async def stream(self, pcm: np.ndarray, *, chunk_ms: int = 20, realtime: bool = True) -> None:
        """Send audio in ``chunk_ms`` frames at the session rate, paced like a microphone unless ``realtime`` is False."""
        step = self._frame_samples(chunk_ms)
        await self._send_frames((pcm[i : i + step] for i in range(0, len(pcm), step)), chunk_ms, realtime)

    async def stream_silence(self, *, chunk_ms: int = 20) -> None:
        """Send silence paced like an open microphone until cancelled.

        A user who stops talking does not close the microphone: the endpointer decides on audio
        time, so a client that stops sending after a fixed tail can leave a doubtful turn open
        for ever. Callers run this as a task after the speech and cancel it when the reply comes.
        """
        await self._send_frames(itertools.repeat(np.zeros(self._frame_samples(chunk_ms), np.int16)), chunk_ms, True)

    async def collect_turn(self, timeout: float = 60.0, *, turn_id: str | None = None) -> WebTurn:
        """Receive until the turn ends: stage-metrics, turn-cancelled, an error or an empty final transcript."""
        turn = WebTurn(turn_id=turn_id or "")
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"turn not finished after {timeout} s; got {[m.type for m in turn.messages]}")
            r = await self.next(left)
            if r.type == "error" and not r.message.get("fatal") and not r.turn_id:
                continue  # a transport notice (audio over budget, dropped), not the end of a turn
            if r.type == "error" and r.message.get("recovered"):
                turn.messages.append(r)  # a stage failed and its fallback answered: the turn goes on
                continue
            if not turn.turn_id and r.type in {"speech-started", "speech-ended"}:
                turn.turn_id = r.turn_id
            if turn.turn_id and r.turn_id and r.turn_id != turn.turn_id:
                continue
            turn.messages.append(r)
            if r.type in {"stage-metrics", "turn-cancelled", "error"} or (
                r.type == "transcript-final" and not r.message.get("text")
            ):
                return turn

    async def run_turn(self, pcm: np.ndarray, *, realtime: bool = True, trailing_silence_ms: int = 2500,
                       timeout: float = 60.0, chunk_ms: int = 20) -> WebTurn:
        """Speak ``pcm`` (at the session rate) then silence, and collect the turn it produced.

        The silence should cover the server's longest hold (``turn.max_hold_ms``, 2 s by default): the
        end-of-turn policy may wait that long for a speaker who hesitates, and a turn only ends on the
        audio the client sends (a microphone keeps sending).
        """
        silence = np.zeros(int(self.sample_rate_hz * trailing_silence_ms / 1000), np.int16)
        sender = asyncio.create_task(self.stream(np.concatenate([pcm, silence]), realtime=realtime, chunk_ms=chunk_ms))
        try:
            return await self.collect_turn(timeout)
        finally:
            await sender
