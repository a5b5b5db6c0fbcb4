"""``quickturn serve web``: the websocket server and the page, on one port.

One websocket connection is one session: its own :class:`~assistant.pipeline.Conversation`
(so sessions never see each other's audio or dialog state), sharing the loaded
:class:`~assistant.components.Components`. Plain HTTP GETs on the same port serve
the static page (``process_request``); ``/ws`` upgrades to the websocket.

Security and limits (all on by default, see :class:`~assistant.web.settings.WebSettings`):
access token, origin allow-list, frame and message size caps, per-connection
token-bucket rate limits, a real-time audio budget per session, a maximum number of
(authenticated) sessions, a per-address cap and a short lifetime for connections that
have not shown the token yet, and handshake/start/idle timeouts.
Every violation is answered with an ``error`` event (``fatal: true``) and a close
of *that* connection only, with a code saying why (1007 bad data, 1008 policy,
1009 too big, 1013 try later); the message is short and fixed, never an internal
exception's text, and client input never ends as 1011.

Barge-in travels by turn id: the pipeline cancels the reply and emits
``turn-cancelled``; the sender drops every queued audio chunk of a cancelled turn
(even ones that were queued before the cancel), and the page drops anything of
that turn it still has buffered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import hmac
import logging
import secrets
import signal
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import soxr
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from assistant.components import Components, warm_in_background
from assistant.logs import setup_logging
from assistant.pipeline import Conversation
from assistant.web import protocol as proto
from assistant.web.forwarded import client_address, parse_networks
from assistant.web.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from assistant.web.metrics import ServerMetrics
from assistant.web.settings import WebSettings, web_settings
from core import messages as msgs
from core.errors import InvalidInput, MessageTooLarge
from core.events import (
    AudioChunk,
    ErrorEvent,
    Event,
    SpeechEnded,
    SpeechStarted,
    StageMetrics,
    TranscriptFinal,
    TurnCancelled,
)
from core.settings import load_settings, merge_settings, read_config_file

log = logging.getLogger(__name__)


def _load_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _load_malloc_trim()

STATIC_DIR = Path(__file__).resolve().parent / "static"
PIPELINE_RATE_HZ = 16000
PLAYBACK_MARGIN_S = 0.3  # client-side buffering allowance when estimating what is still playing
FEED_SLICE_S = 0.1
"""Audio resampled and fed per event-loop step: a 64 KiB frame (4 s at 8 kHz) is worked through in slices
with a yield between them, so one session's large frames never hold the loop for long."""
LEAD_SLACK_S = 1.0
"""A session whose audio arrived more than this far ahead of real time is *ahead* (a file sent unpaced,
a flood): its audio waits while a session at real-time pace has a turn in progress."""
DEFER_POLL_S = 0.05
MAX_PENDING_CONTROLS = 64
"""Control messages that may wait for the worker (audio waiting is bounded in seconds): a client that
keeps sending while its pipeline is busy cannot grow the session's memory without bound."""
DROP_EVENT_INTERVAL_S = 1.0
"""At most one non-fatal ``rate-limited`` event per this many seconds while audio is being dropped."""
LOG_INTERVAL_S = 10.0
"""Error logs of one kind: a few, then at most one per this many seconds (with a count of the rest)."""
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; media-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class Violation(Exception):
    """A client broke a rule; the connection is closed with ``close_code`` after an error event."""

    def __init__(self, code: str, message: str, close_code: int = proto.CLOSE_POLICY) -> None:
        super().__init__(message)
        self.code = code
        self.close_code = close_code


class TokenBucket:
    """Classic token bucket: ``rate`` units per second, at most ``burst`` saved up.

    Sans-I/O: ``take`` gets the current monotonic time passed in (seconds) by the caller.
    """

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.level = burst
        self.t = time.monotonic()

    def _refill(self, now: float | None) -> None:
        now = time.monotonic() if now is None else now
        self.level = min(self.burst, self.level + (now - self.t) * self.rate)
        self.t = now

    def take(self, amount: float, now: float | None = None) -> bool:
        """Take ``amount`` if it is all there (True), else nothing (False)."""
        self._refill(now)
        if amount > self.level:
            return False
        self.level -= amount
        return True

    def take_up_to(self, amount: float, now: float | None = None) -> float:
        """Take as much of ``amount`` as there is; returns what was taken."""
        self._refill(now)
        granted = max(0.0, min(amount, self.level))
        self.level -= granted
        return granted


class AudioBudget:
    """How much audio one session may feed: ``factor`` × real time, ``burst_s`` saved up (seconds of audio).

    The byte and message limits alone let a client declaring 8 kHz send 12× real time; the
    pipeline's work grows with audio time, so the budget is in audio seconds at the declared rate.
    Audio over it is dropped (the head of a frame that only partly fits is kept). Drops less than
    a second apart form one episode; an episode of ``abuse_close_s`` is sustained abuse.
    """

    def __init__(self, factor: float, burst_s: float, abuse_close_s: float) -> None:
        self.bucket = TokenBucket(factor, burst_s)
        self.abuse_close_s = abuse_close_s
        self.episode_start: float | None = None
        self.last_drop = -1e9
        self.dropped_s = 0.0

    def admit(self, seconds: float, now: float | None = None) -> float:
        """Seconds of audio (from the start of a frame of ``seconds``) the session may feed now."""
        return self.bucket.take_up_to(seconds, now)

    def note_drop(self, seconds: float, now: float | None = None) -> None:
        """``seconds`` of audio were dropped; drops less than a second apart form one episode."""
        now = time.monotonic() if now is None else now
        if self.episode_start is None or now - self.last_drop > 1.0:
            self.episode_start = now
        self.last_drop = now
        self.dropped_s += seconds

    def abusive(self, now: float | None = None) -> bool:
        """True once audio has been dropped continuously (gaps under 1 s) for ``abuse_close_s``."""
        now = time.monotonic() if now is None else now
        return (self.episode_start is not None and now - self.last_drop <= 1.0
                and now - self.episode_start >= self.abuse_close_s)


class LogLimiter:
    """Rate limit for log records of one kind: ``burst`` at once, then one per ``interval_s``.

    A client can make the server log (bad HTTP, crashing input); without a limit it can fill the disk.
    """

    def __init__(self, interval_s: float = LOG_INTERVAL_S, burst: int = 3) -> None:
        self.interval_s = interval_s
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}
        self.suppressed: Counter[str] = Counter()

    def allow(self, key: str) -> tuple[bool, int]:
        """(log it?, how many records of this kind were suppressed since the last one logged)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 256:  # keys are a few fixed strings; never let them grow without bound
                self._buckets.clear()
            bucket = self._buckets[key] = TokenBucket(1.0 / self.interval_s, self.burst)
        if not bucket.take(1):
            self.suppressed[key] += 1
            return False, 0
        return True, self.suppressed.pop(key, 0)


class _WireNoise(logging.Filter):
    """The websockets library's records about single connections: one line each, not floods.

    Connection open/close, HTTP responses and unparseable requests (port scanners, a TLS
    ClientHello on the plain port, connect-and-close) are DEBUG and one line, traceback
    summarised; warnings and errors keep their level but are rate limited per message.
    """

    _NOISE_PREFIXES = ("connection ", "HTTP ", "! ", "> ", "< ", "= ", "x ")
    # Logged at ERROR with a traceback by websockets < 16 for every request that is not valid HTTP
    # (a port scanner, a connect-and-close): the client's doing, not the server's.
    _NOISE_ERRORS = frozenset({"opening handshake failed"})

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self.logger = logger
        self.limiter = LogLimiter()

    def filter(self, record: logging.LogRecord) -> bool:
        noise = str(record.msg).startswith(self._NOISE_PREFIXES) or record.msg in self._NOISE_ERRORS
        if record.levelno >= logging.WARNING and not noise:
            allowed, suppressed = self.limiter.allow(str(record.msg))
            if allowed and suppressed:
                record.msg = f"{record.msg} ({suppressed} similar records suppressed)"
            return allowed
        if not noise:
            return True  # server listening / closing
        if not self.logger.isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            cause = exc.__cause__ or exc
            record.msg = f"{record.getMessage()}: {type(cause).__name__}: {str(cause)[:120]}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


WIRE_LOG = logging.getLogger("assistant.web.wire")
"""Logger given to the websockets library (its per-connection records go through :class:`_WireNoise`)."""
WIRE_LOG.addFilter(_WireNoise(WIRE_LOG))
_crash_logs = LogLimiter()
_violation_logs = LogLimiter(interval_s=1.0, burst=10)


class WebServer:
    """The websocket server; use as ``async with WebServer(components, settings) as server``.

    Args:
        components: loaded stages shared by every session.
        settings: network, security and limits; ``settings.token`` None → a random token.
        static_dir: the page's files.
    """

    def __init__(self, components: Components, settings: WebSettings | None = None, *, static_dir: Path = STATIC_DIR) -> None:
        self.components = components
        self.settings = settings or WebSettings()
        self.token = self.settings.token or secrets.token_urlsafe(16)
        self.static_dir = static_dir
        self.sessions: dict[str, _Session] = {}
        self._pending = 0  # authenticated connections not yet registered (count toward max_sessions)
        self.unauthenticated: Counter[str] = Counter()  # client address → connections without the token yet
        self.trusted_proxies = parse_networks(self.settings.trusted_proxies)
        # Sessions at real-time pace with a turn in progress (speech started, reply not yet audible):
        # the latency-critical work that sessions sending ahead of real time wait for.
        self.open_turns: set[str] = set()
        self.metrics = ServerMetrics()
        self._trimming: asyncio.Future[int] | None = None
        self._server: Server | None = None
        self.port = self.settings.port

    # ------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Listen (``port`` 0 picks a free port, readable as ``self.port`` afterwards)."""
        s = self.settings
        ssl_context = tls_context(s)
        self._server = await serve(
            self._handler,
            s.host,
            s.port,
            process_request=self._process_request,
            max_size=s.max_message_bytes,
            compression=None,  # audio does not compress and deflate adds latency
            ping_interval=20,
            ping_timeout=20,
            ssl=ssl_context,
            server_header="QuickTurn",
            # A client that sends no request (or a TLS ClientHello to the plain port) goes after this.
            open_timeout=s.handshake_timeout_s,
            logger=WIRE_LOG,
            **({"ssl_handshake_timeout": s.handshake_timeout_s} if ssl_context is not None else {}),
        )
        sock = next(iter(self._server.sockets))
        self.port = int(sock.getsockname()[1])

    async def close(self) -> None:
        """Stop listening and close every session (idempotent)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def scheme(self) -> str:
        return "https" if self.settings.certfile else "http"

    def url(self, host: str | None = None) -> str:
        """The page URL, token included."""
        h = host or ("127.0.0.1" if self.settings.host in {"0.0.0.0", "::", ""} else self.settings.host)
        return f"{self.scheme}://{h}:{self.port}/?token={self.token}"

    def ws_url(self, host: str = "127.0.0.1", *, token: str | None = None) -> str:
        ws = "wss" if self.settings.certfile else "ws"
        base = f"{ws}://{host}:{self.port}/ws"
        return base if token is None else f"{base}?token={token}"

    def allowed_origins(self) -> set[str]:
        hosts = {"localhost", "127.0.0.1", "[::1]", self.settings.host}
        own = {f"{scheme}://{h}:{self.port}" for h in hosts for scheme in ("http", "https")}
        return own | {o.rstrip("/") for o in self.settings.allowed_origins}

    def trim_heap(self) -> None:
        """Give the C heap's free pages back to the OS after a session ends, in a thread, at most one at a time.

        A session that ran turns leaves freed native memory (decoder and synthesis buffers) that glibc
        keeps in its arenas: 705 → 786 MB over 160 spoken turns without this, flat at 723-733 MB with
        ``malloc_trim(0)`` after each session (``quickturn bench churn --speech``,
        docs/experiments/memory-churn.md). It costs a few milliseconds, off the event loop.
        """
        if _MALLOC_TRIM is None or (self._trimming is not None and not self._trimming.done()):
            return
        self._trimming = asyncio.get_running_loop().run_in_executor(None, _MALLOC_TRIM, 0)

    # ------------------------------------------------------------------ HTTP
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        try:
            path = urlsplit(request.path).path
        except ValueError:  # e.g. "//[" (an unterminated IPv6 host): not a path we serve
            return _http(HTTPStatus.BAD_REQUEST, b"bad request\n", "text/plain; charset=utf-8")
        if path == "/ws":
            return None  # websocket handshake continues
        if path == "/healthz":
            return _http(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
        if path == "/metrics":  # counts and latencies only, no user data: open like /healthz, for the scraper
            return _http(HTTPStatus.OK, self.metrics.exposition(), METRICS_CONTENT_TYPE)
        name = "index.html" if path in {"/", "/index.html"} else path.lstrip("/")
        if "/" in name or "\\" in name or "\x00" in name or name.startswith(".") or not name:
            return _http(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
        file = self.static_dir / name
        ctype = _CONTENT_TYPES.get(file.suffix)
        if ctype is None or not file.is_file():
            return _http(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
        return _http(HTTPStatus.OK, file.read_bytes(), ctype)

    # ------------------------------------------------------------- websocket
    async def _handler(self, ws: ServerConnection) -> None:
        session = _Session(self, ws)
        try:
            await session.run()
        except Violation as v:
            _log_violation(ws, v)
            await _refuse(ws, v.code, str(v), v.close_code, session_id=session.session_id)
        except ConnectionClosed:
            pass
        except Exception as exc:  # a crashing session never takes the server down
            _log_crash(session.session_id, exc)
            # A fixed message: an exception's text is for the log, never for the client.
            await _refuse(ws, "internal", "internal error", proto.CLOSE_INTERNAL, session_id=session.session_id)
        finally:
            await session.aclose()


def _log_violation(ws: ServerConnection, v: Violation) -> None:
    """One INFO line per refused client, rate limited per code (a client reconnecting to misbehave cannot flood the log)."""
    allowed, suppressed = _violation_logs.allow(v.code)
    if allowed:
        more = f" ({suppressed} more {v.code} not logged)" if suppressed else ""
        log.info("closing %s: %s (%s)%s", ws.remote_address, v.code, v, more)


def _log_crash(session_id: str, exc: Exception) -> None:
    """A session's unexpected exception: its traceback, rate limited (one line for the suppressed ones)."""
    allowed, suppressed = _crash_logs.allow(type(exc).__name__)
    if allowed:
        log.error("session %s crashed (%d similar crashes not logged)", session_id or "(not started)", suppressed,
                  exc_info=exc)


async def _refuse(ws: ServerConnection, code: str, message: str, close_code: int, *, session_id: str = "") -> None:
    """Send a fatal error event, then close with ``close_code``.

    Whatever the client keeps sending meanwhile is read and discarded: unread
    frames would fill the receive queue, pause reading, and the client's close
    frame would never be seen (the close would hang until its timeout).
    """

    async def discard() -> None:
        with contextlib.suppress(Exception):
            async for _ in ws:
                pass

    drain = asyncio.create_task(discard())
    try:
        with contextlib.suppress(ConnectionClosed, OSError):
            await asyncio.wait_for(ws.send(proto.error_message(code, message, session_id=session_id)), 2.0)
        with contextlib.suppress(ConnectionClosed, OSError, TimeoutError):
            await asyncio.wait_for(ws.close(close_code, proto.close_reason(f"{code}: {message}")), 3.0)
    finally:
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain


def _http(status: HTTPStatus, body: bytes, ctype: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", ctype),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", _CSP),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


class _Session:
    """One websocket connection: checks, then a conversation until either side closes."""

    def __init__(self, server: WebServer, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        self.s = server.settings
        self.session_id = ""
        self.conv: Conversation | None = None
        self.pump: asyncio.Task[None] | None = None
        self.resampler: Any = None
        self.input_rate_hz = PIPELINE_RATE_HZ
        self.cancelled: deque[str] = deque(maxlen=256)
        self.replying: set[str] = set()
        self.known_turns: deque[str] = deque(maxlen=256)
        # turn id → monotonic time (s) until which the client is still playing what was sent
        self.playback_until: dict[str, float] = {}
        self.messages = TokenBucket(self.s.rate_messages_per_s, self.s.rate_burst_messages)
        self.bytes = TokenBucket(self.s.rate_bytes_per_s, self.s.rate_burst_bytes)
        self.registered = False
        self.unauth_address: str | None = None  # set while this connection counts as unauthenticated
        self.budget = AudioBudget(self.s.audio_realtime_factor, self.s.audio_burst_s, self.s.audio_abuse_close_s)
        self.last_drop_event = -1e9
        # Accepted client messages wait here for the worker: reading (and the audio budget) never
        # waits for the pipeline, and the order of audio and control messages is kept.
        self.inbox: asyncio.Queue[msgs.ClientMessage | np.ndarray] = asyncio.Queue()
        self.backlog_s = 0.0  # audio in the inbox, seconds
        self.pending_controls = 0  # control messages in the inbox
        self.lead_s = 0.0  # how far the accepted audio is ahead of real time (decays at 1 s/s)
        self.lead_t = time.monotonic()
        self.worker: asyncio.Task[None] | None = None
        self.open_turn = ""  # this session's turn in progress, while it counts in server.open_turns
        self.audio_frames = 0

    # ----------------------------------------------------------------- checks
    def _check_origin(self) -> None:
        origin = self.ws.request.headers.get("Origin") if self.ws.request else None
        if origin is None:
            if not self.s.allow_missing_origin:
                raise Violation("origin-not-allowed", "an Origin header is required")
            return
        if origin.rstrip("/") not in self.server.allowed_origins():
            raise Violation("origin-not-allowed", f"origin {origin[:80]!r} is not in the allow-list")

    def _token_ok(self, token: object) -> bool:
        """Constant-time token check; any str is comparable (a lone surrogate must not crash the encode)."""
        if not isinstance(token, str):
            return False
        return hmac.compare_digest(token.encode("utf-8", "surrogatepass"), self.server.token.encode())

    def _address(self) -> str:
        """The client's address: the peer's, or behind a trusted proxy its X-Forwarded-For (web.trusted_proxies)."""
        addr = self.ws.remote_address
        peer = str(addr[0]) if isinstance(addr, tuple) and addr else str(addr)
        headers = self.ws.request.headers if self.ws.request else None
        forwarded = headers.get_all("X-Forwarded-For") if headers is not None else []
        return client_address(peer, forwarded, self.server.trusted_proxies)

    def _hold_unauthenticated(self) -> None:
        """Count this token-less connection against its address (it does not count toward max_sessions)."""
        address = self._address()
        if self.server.unauthenticated[address] >= self.s.max_unauthenticated_per_address:
            raise Violation("too-many-connections", "too many connections without a token from this address; "
                            "try later", proto.CLOSE_TRY_LATER)
        self.server.unauthenticated[address] += 1
        self.unauth_address = address

    def _release_unauthenticated(self) -> None:
        address, self.unauth_address = self.unauth_address, None
        if address is not None:
            self.server.unauthenticated[address] -= 1
            if self.server.unauthenticated[address] <= 0:
                del self.server.unauthenticated[address]

    def _admit(self) -> None:
        """An authenticated connection takes a place among ``max_sessions`` (or is refused with 1013)."""
        if len(self.server.sessions) + self.server._pending >= self.s.max_sessions:
            raise Violation("too-many-sessions", f"the server already has {self.s.max_sessions} sessions; try later",
                            proto.CLOSE_TRY_LATER)
        # Counted before the next await so that concurrent handshakes cannot all pass the check together.
        self.server._pending += 1
        self.registered = True

    def _rate(self, size: int) -> None:
        if not self.messages.take(1):
            raise Violation("rate-limited", f"more than {self.s.rate_messages_per_s:g} messages/s (burst {self.s.rate_burst_messages})")
        if not self.bytes.take(size):
            raise Violation("rate-limited", f"more than {self.s.rate_bytes_per_s:g} bytes/s (burst {self.s.rate_burst_bytes})")

    async def _recv(self, timeout: float) -> str | bytes:
        try:
            message = await asyncio.wait_for(self.ws.recv(), timeout)
        except TimeoutError:
            raise Violation("timeout", f"no message for {timeout:g} s", proto.CLOSE_POLICY) from None
        self._rate(len(message))
        return message

    def _decode(self, message: str | bytes) -> msgs.ClientMessage | proto.AudioFrame:
        """Any client message through the one validating codec; every failure becomes a documented :class:`Violation`."""
        try:
            return proto.decode_client(message, max_control_bytes=self.s.max_control_bytes,
                                       max_frame_bytes=self.s.max_frame_bytes)
        except MessageTooLarge as exc:
            raise Violation("message-too-large", str(exc), proto.CLOSE_TOO_BIG) from None
        except proto.BadJson as exc:
            raise Violation(exc.code, str(exc), proto.CLOSE_BAD_DATA) from None
        except proto.ProtocolError as exc:
            # A malformed binary frame is bad data (1007); a control message that breaks the schema, policy (1008).
            close = proto.CLOSE_BAD_DATA if isinstance(message, bytes) else proto.CLOSE_POLICY
            raise Violation(exc.code, str(exc), close) from None

    def _control(self, message: str) -> msgs.ClientMessage:
        decoded = self._decode(message)
        assert not isinstance(decoded, proto.AudioFrame)
        return decoded

    # ------------------------------------------------------------------- run
    async def run(self) -> None:
        path = urlsplit(self.ws.request.path if self.ws.request else "/ws")
        query_token = parse_qs(path.query).get("token", [None])[0]
        self._check_origin()
        # Authenticate before counting: only a connection that showed the token takes one of the
        # max_sessions places; token-less ones are capped per address and must authenticate fast.
        if query_token is not None:
            if not self._token_ok(query_token):
                raise Violation("unauthorized", "wrong access token")
            self._admit()
        else:
            self._hold_unauthenticated()
        timeout = self.s.start_timeout_s if query_token is not None else min(self.s.start_timeout_s, self.s.auth_timeout_s)
        first = await self._recv(timeout)
        if isinstance(first, bytes):
            raise Violation("protocol", "binary audio before session-start: send a session-start message first")
        start = self._control(first)
        if not isinstance(start, msgs.SessionStart):
            raise Violation("protocol", f"the first message must be session-start, not {start.type!r}")
        if query_token is None:
            if not self._token_ok(start.token):
                raise Violation("unauthorized", "missing or wrong access token (?token= in the URL or 'token' in session-start)")
            self._release_unauthenticated()
            self._admit()
        self._start(start)
        await self.ws.send(proto.dumps(self._started_message().to_json()))
        self.pump = asyncio.create_task(self._pump(), name=f"pump-{self.session_id}")
        self.worker = asyncio.create_task(self._work(), name=f"work-{self.session_id}")
        await self._read()

    async def _read(self) -> None:
        """Read, validate and admit client messages until the session ends.

        Runs beside the worker (pipeline input) and the pump (output): whichever ends first ends
        the session, and its exception (a :class:`Violation`, a crash) is raised here.
        """
        assert self.worker is not None and self.pump is not None
        while True:
            receive = asyncio.ensure_future(self._recv(self.s.idle_timeout_s))
            done, _ = await asyncio.wait({receive, self.worker, self.pump}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                receive.cancel()  # websockets' recv() is safe to cancel: nothing is lost
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await receive
                for task in (self.worker, self.pump):
                    if task.done():
                        task.result()  # raises what ended it
                return  # the worker finished: session-end
            decoded = self._decode(receive.result())
            if isinstance(decoded, proto.AudioFrame):
                pcm = await self._within_budget(decoded.pcm)
                if pcm.size:
                    self.backlog_s += len(pcm) / self.input_rate_hz
                    self.inbox.put_nowait(pcm)
            elif isinstance(decoded, msgs.SessionStart):
                raise Violation("protocol", "session-start was already received on this connection")
            else:
                if self.pending_controls >= MAX_PENDING_CONTROLS:
                    raise Violation("rate-limited", f"more than {MAX_PENDING_CONTROLS} control messages waiting")
                self.pending_controls += 1
                self.inbox.put_nowait(decoded)

    async def _work(self) -> None:
        """Feed admitted audio to the conversation and act on control messages, in arrival order."""
        while True:
            item = await self.inbox.get()
            if isinstance(item, np.ndarray):
                self.backlog_s = max(0.0, self.backlog_s - len(item) / self.input_rate_hz)
                await self._audio(item)
                continue
            self.pending_controls -= 1
            if await self._handle(item):
                return

    def _start(self, start: msgs.SessionStart) -> None:
        rate = start.sample_rate_hz
        if not self.s.min_sample_rate_hz <= rate <= self.s.max_sample_rate_hz:
            raise Violation("invalid-audio", f"sample_rate_hz must be an integer in "
                            f"[{self.s.min_sample_rate_hz}, {self.s.max_sample_rate_hz}], got {rate!r}")
        self.input_rate_hz = rate
        if rate != PIPELINE_RATE_HZ:
            self.resampler = soxr.ResampleStream(rate, PIPELINE_RATE_HZ, 1, dtype="int16")
        # Session ids are minted here, never taken from the client: a client
        # cannot name (and so reach) another session's dialog state.
        self.session_id = f"web-{secrets.token_hex(6)}"
        self.conv = Conversation(self.server.components, self.session_id, barge_in=start.barge_in, pace_output=True)
        self.server._pending -= 1
        self.server.sessions[self.session_id] = self
        self.server.metrics.sessions.inc()
        self.server.metrics.sessions_started.inc()
        log.info("session %s started (%s Hz) from %s", self.session_id, rate, self.ws.remote_address)

    def _started_message(self) -> msgs.SessionStarted:
        assert self.conv is not None
        return msgs.SessionStarted(
            session_id=self.session_id,
            input_sample_rate_hz=self.input_rate_hz,
            pipeline_sample_rate_hz=PIPELINE_RATE_HZ,
            reply_sample_rate_hz=int(self.server.components.tts.sample_rate_hz),
            barge_in=self.conv.barge_in,
            limits=self._limits(),
        )

    def _limits(self) -> msgs.Limits:
        s = self.s
        return msgs.Limits(
            max_frame_bytes=s.max_frame_bytes,
            max_control_bytes=s.max_control_bytes,
            rate_messages_per_s=s.rate_messages_per_s,
            rate_bytes_per_s=s.rate_bytes_per_s,
            idle_timeout_s=s.idle_timeout_s,
        )

    # ---------------------------------------------------------------- input
    async def _audio(self, pcm: np.ndarray) -> None:
        """Feed admitted audio (at the client's rate) to the conversation, a bounded slice per event-loop step."""
        assert self.conv is not None
        self.audio_frames += 1
        step = max(1, int(self.input_rate_hz * FEED_SLICE_S))
        for i in range(0, len(pcm), step):
            if i:
                await asyncio.sleep(0)  # let other sessions run between slices
            await self._defer_to_realtime_turns()
            part = pcm[i : i + step]
            if self.resampler is not None:
                part = self.resampler.resample_chunk(part)
            if part.size:
                await self.conv.feed(np.ascontiguousarray(part, dtype=np.int16))

    def _ahead(self, now: float | None = None) -> bool:
        """True while this session's accepted audio is more than :data:`LEAD_SLACK_S` ahead of real time."""
        now = time.monotonic() if now is None else now
        return self.lead_s - (now - self.lead_t) > LEAD_SLACK_S

    async def _defer_to_realtime_turns(self) -> None:
        """Fair scheduling: a session sending ahead of real time waits while a real-time session has a turn open.

        Pipeline work (decodes, synthesis) grows with the audio fed; audio that arrives faster than
        anyone speaks gets the CPU only when no real-time speaker is waiting for an answer. Bounded:
        the backlog this builds is capped by the budget (over it, audio is dropped).
        """
        while self._ahead() and self.server.open_turns - {self.session_id}:
            await asyncio.sleep(DEFER_POLL_S)

    async def _within_budget(self, pcm: np.ndarray) -> np.ndarray:
        """The part of ``pcm`` the audio budget admits; over it, a rate-limited event (or a close when sustained).

        Two bounds: ``audio_realtime_factor`` × real time (token bucket, ``audio_burst_s`` saved up), and
        at most ``audio_burst_s`` of audio waiting for the pipeline (the backlog of a deferred session).

        Raises:
            Violation: ``rate-limited`` once the session has been over budget for ``audio_abuse_close_s``.
        """
        now = time.monotonic()
        seconds = len(pcm) / self.input_rate_hz
        room = max(0.0, self.s.audio_burst_s - self.backlog_s)
        granted = self.budget.admit(min(seconds, room), now)
        self.server.metrics.audio_s.labels(fate="accepted").inc(granted)
        if granted < seconds:
            self.budget.note_drop(seconds - granted, now)
            self.server.metrics.audio_s.labels(fate="dropped").inc(seconds - granted)
        self.lead_s = max(0.0, self.lead_s - (now - self.lead_t)) + granted
        self.lead_t = now
        if granted >= seconds:
            return pcm
        if self.budget.abusive(now):
            raise Violation("rate-limited", f"audio over {self.s.audio_realtime_factor:g}x real time for "
                            f"{self.s.audio_abuse_close_s:g} s")
        if now - self.last_drop_event >= DROP_EVENT_INTERVAL_S:
            self.last_drop_event = now
            note = (f"audio over {self.s.audio_realtime_factor:g}x real time: "
                    f"{self.budget.dropped_s * 1000:.0f} ms dropped so far")
            await self.ws.send(proto.error_message("rate-limited", note, session_id=self.session_id, fatal=False))
        return pcm[: int(granted * self.input_rate_hz)]

    async def _handle(self, msg: msgs.ClientMessage) -> bool:
        """Act on one control message; True ends the session."""
        conv = self.conv
        assert conv is not None
        if isinstance(msg, msgs.SessionStart):
            raise Violation("protocol", "session-start was already received on this connection")
        if isinstance(msg, msgs.Config):
            if msg.barge_in is not None:
                conv.barge_in = msg.barge_in
            applied = msgs.ConfigApplied(session_id=self.session_id, barge_in=conv.barge_in)
            await self.ws.send(proto.dumps(applied.to_json()))
        elif isinstance(msg, msgs.EndOfTurn):
            await conv.end_of_turn()  # the user released the talk button: the turn is over now
        elif isinstance(msg, msgs.Interrupt):
            targets = [msg.turn_id] if msg.turn_id else sorted(self.replying)
            for t in targets:
                if t in self.known_turns:
                    self.cancelled.append(t)
                    await conv.cancel_turn(t, reason="interrupt", played_ms=msg.played_ms)
        elif isinstance(msg, msgs.PlaybackStopped):
            await self._playback_stopped(msg)
        elif isinstance(msg, msgs.Describe):
            await self.ws.send(proto.dumps(self._info().to_json()))
        elif isinstance(msg, msgs.SessionEnd):
            with contextlib.suppress(ConnectionClosed):
                await self.ws.close(proto.CLOSE_NORMAL, "session ended")
            return True
        return False

    async def _playback_stopped(self, msg: msgs.PlaybackStopped) -> None:
        """Record how much of a reply the user actually heard (barge-in or stop)."""
        if msg.turn_id not in self.known_turns:
            raise Violation("protocol", "playback-stopped needs a turn_id of this session and an integer played_ms")
        self.playback_until.pop(msg.turn_id, None)
        await asyncio.to_thread(self.server.components.dialog.mark_interrupted, self.session_id, msg.turn_id,
                                msg.played_ms)

    def _info(self) -> msgs.Info:
        c = self.server.components
        return msgs.Info(
            session_id=self.session_id,
            backend=c.settings.backend.uri,
            tts=c.tts.name,
            reply_sample_rate_hz=int(c.tts.sample_rate_hz),
            pipeline_sample_rate_hz=PIPELINE_RATE_HZ,
            client_types=sorted(msgs.CLIENT_TYPES),
            limits=self._limits(),
        )

    # --------------------------------------------------------------- output
    async def _pump(self) -> None:
        """Forward pipeline events to the client. Cancelling it stops forwarding (nothing is lost but unsent events)."""
        assert self.conv is not None
        events = self.conv.events
        while True:
            batch: list[Event] = [await events.get()]
            while not events.empty():
                batch.append(events.get_nowait())
            # Look ahead for cancellations first: audio of a cancelled turn that
            # was queued *before* the cancel must not go out either.
            for ev in batch:
                if isinstance(ev, TurnCancelled):
                    self.cancelled.append(ev.turn_id)
            for ev in batch:
                self._track(ev)
                self.server.metrics.observe(ev)
                if isinstance(ev, AudioChunk):
                    if ev.turn_id in self.cancelled:
                        continue
                    now = time.monotonic()
                    start = max(now, self.playback_until.get(ev.turn_id, now))
                    self.playback_until[ev.turn_id] = start + ev.duration_ms / 1000
                    await self.ws.send(proto.audio_message(ev))
                    continue
                if isinstance(ev, SpeechStarted):
                    await self._barge_in_played(ev.turn_id)
                await self.ws.send(proto.dumps(proto.event_message(ev)))

    async def _barge_in_played(self, new_turn_id: str) -> None:
        """Speech started while the client is still *playing* a reply the pipeline already finished.

        The pipeline only cancels replies it is still producing; a short reply is often
        fully sent (and buffered by the client) before the user interrupts it. Cancel it
        here too, so the client gets ``turn-cancelled`` and the dialog records the cut.
        """
        assert self.conv is not None
        if not self.conv.barge_in:
            return
        now = time.monotonic()
        for turn_id, until in list(self.playback_until.items()):
            if until + PLAYBACK_MARGIN_S < now:
                del self.playback_until[turn_id]
            elif turn_id != new_turn_id and turn_id not in self.cancelled:
                self.cancelled.append(turn_id)
                del self.playback_until[turn_id]
                await self.conv.cancel_turn(turn_id, reason="barge-in")

    def _track(self, ev: Event) -> None:
        self._track_open_turn(ev)
        if isinstance(ev, SpeechEnded):
            self.replying.add(ev.turn_id)
            if ev.turn_id not in self.known_turns:
                self.known_turns.append(ev.turn_id)
        elif ev.turn_id and ev.turn_id not in self.known_turns:
            self.known_turns.append(ev.turn_id)
        if isinstance(ev, (StageMetrics, TurnCancelled, ErrorEvent)) or (isinstance(ev, TranscriptFinal) and not ev.text):
            self.replying.discard(ev.turn_id)

    def _track_open_turn(self, ev: Event) -> None:
        """Keep ``server.open_turns``: a real-time session's turn counts from speech start to its first reply audio."""
        if isinstance(ev, SpeechStarted):
            if not self._ahead():
                self.open_turn = ev.turn_id
                self.server.open_turns.add(self.session_id)
        elif ev.turn_id == self.open_turn and (
            isinstance(ev, (AudioChunk, StageMetrics, TurnCancelled, ErrorEvent))
            or (isinstance(ev, TranscriptFinal) and not ev.text)
        ):
            self.open_turn = ""
            self.server.open_turns.discard(self.session_id)

    async def aclose(self) -> None:
        self.server.open_turns.discard(self.session_id)
        if self.worker is not None:
            self.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.worker
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.pump
        if self.conv is not None:
            await self.conv.close()
        if self.session_id in self.server.sessions:
            del self.server.sessions[self.session_id]
            self.server.metrics.sessions.dec()
            self.server.trim_heap()
        elif self.registered:
            self.server._pending -= 1
        self.registered = False
        self._release_unauthenticated()


# ---------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quickturn serve web", description="Serve the websocket voice client and its page.")
    p.add_argument("--host", help="interface (default 127.0.0.1; 0.0.0.0 for the network, needs TLS for phone microphones)")
    p.add_argument("--port", type=int, help="port (default 8765; 0 = any free port)")
    p.add_argument("--token", help="access token (default: generated and printed)")
    p.add_argument("--allow-origin", action="append", default=None, metavar="ORIGIN",
                   help="extra allowed Origin, e.g. https://myhost:8765 (repeatable)")
    p.add_argument("--max-sessions", type=int)
    p.add_argument("--certfile", type=Path, help="TLS certificate (PEM) → https/wss")
    p.add_argument("--keyfile", type=Path, help="TLS private key (PEM)")
    p.add_argument("--config", help="settings file (YAML/TOML/JSON); its web: section sets WebSettings")
    p.add_argument("--backend", help="embedded | triton://HOST:PORT | riva://HOST:PORT")
    p.add_argument("--tts", choices=["piper", "espeak"])
    p.add_argument("--db", type=Path, help="dialog database (default: DATA_DIR/dialog.sqlite)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def serve_web_main(argv: list[str]) -> int:
    """Entry point of ``quickturn serve web``; runs until Ctrl-C / SIGTERM."""
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    overrides: dict[str, Any] = {}
    if args.backend:
        overrides["backend"] = {"uri": args.backend}
    if args.tts:
        overrides["tts"] = {"engine": args.tts}
    web = web_settings(args.config, {
        "host": args.host, "port": args.port, "token": args.token, "max_sessions": args.max_sessions,
        "certfile": args.certfile, "keyfile": args.keyfile,
    })
    if args.allow_origin:
        web = web.model_copy(update={"allowed_origins": [*web.allowed_origins, *args.allow_origin]})
    tls_context(web)  # fail on a bad certificate before spending seconds on the models
    config_file, file_values = _pipeline_config(args.config)
    settings = load_settings(config_file, merge_settings(file_values, overrides) or None)
    print("loading models…", flush=True)
    db_path: Path = args.db or settings.data_dir / "dialog.sqlite"
    db_path.parent.mkdir(parents=True, exist_ok=True)
    components = Components.load(settings, db_path=db_path)
    # The reply openers' audio is made in the background: the server answers at once, and a
    # reply's first phrase is a cache lookup from a few seconds after start.
    stop_warming = warm_in_background(components)
    try:
        asyncio.run(_serve_forever(components, web))
    finally:
        stop_warming()
    return 0


def _pipeline_config(path: str | None) -> tuple[str | None, dict[str, Any]]:
    """Split a config file that has a ``web:`` section (``Settings`` forbids unknown keys).

    Returns the file to give ``load_settings`` (unchanged when it has no ``web`` key) or
    ``None`` plus the file's other sections as overrides.
    """
    if not path or not Path(path).is_file():
        return path, {}
    values = read_config_file(Path(path))
    if "web" not in values:
        return path, {}
    return None, {k: v for k, v in values.items() if k != "web"}


async def _serve_forever(components: Components, web: WebSettings) -> None:
    server = WebServer(components, web)
    await server.start()
    print(f"QuickTurn web client: {server.url()}", flush=True)
    print(f"access token: {server.token}", flush=True)
    print(f"allowed origins: {', '.join(sorted(server.allowed_origins()))}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("shutting down", flush=True)
        await server.close()


def tls_context(settings: WebSettings) -> ssl.SSLContext | None:
    """The server's TLS context, or None for plain http/ws.

    Built before the models load, so a wrong path or a key that does not
    match the certificate fails in a second with one line naming the files.

    Raises:
        InvalidInput: the certificate or key is missing, unreadable or mismatched.
    """
    if not settings.certfile:
        if settings.keyfile:
            raise InvalidInput("--keyfile given without --certfile")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.certfile, settings.keyfile)
    except FileNotFoundError as exc:
        raise InvalidInput(f"TLS: file not found: {exc.filename or settings.certfile}") from None
    except (ssl.SSLError, OSError) as exc:
        raise InvalidInput(
            f"TLS: cannot use certificate {settings.certfile} with key {settings.keyfile or '(in the certificate file)'}: {exc}"
        ) from None
    return context


class ServerThread:
    """A :class:`WebServer` on its own event loop in a daemon thread (tests, embedding in sync code).

    ``start()`` returns once the server listens; ``stop()`` closes it and joins the thread.
    """

    def __init__(self, components: Components, settings: WebSettings | None = None) -> None:
        import threading

        self.server = WebServer(components, settings or WebSettings(port=0))
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="quickturn-web", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.start())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self.call(self.server.close(), timeout=15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(15)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
