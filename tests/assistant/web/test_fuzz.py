"""Property-based fuzzing of what a client can send (issue 29): no message is an internal error.

Generated with ``hypothesis``: structured messages with arbitrary field values (any JSON, lone
surrogates, huge and non-finite numbers, deep nesting), arbitrary text, arbitrary bytes, binary
frames with arbitrary headers and length fields. 10 000 of them go through the codec the server
uses (:func:`assistant.web.protocol.decode_client`); a few hundred through a real running server,
before and after authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import struct
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from assistant.web import protocol as proto
from assistant.web.client import WebClient
from assistant.web.server import ServerThread
from assistant.web.settings import WebSettings
from core import messages as msgs
from core.errors import MessageTooLarge

pytestmark = pytest.mark.timeout(300)

LIMITS = WebSettings(port=0)
CODES = {"protocol", "bad-json", "invalid-audio"}
_SURROGATE = re.compile(r"[\ud800-\udfff]")
FIELDS = ["type", "sample_rate_hz", "barge_in", "token", "turn_id", "played_ms", "client", "seq"]

surrogates = st.sampled_from(["\ud800", "\udfff", "\ud83d", "\udc00"])
text = st.text(st.characters(exclude_categories=()), max_size=12) | st.lists(
    st.text(max_size=4) | surrogates, max_size=4
).map("".join)
numbers = (
    st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()
    | st.sampled_from([0, -1, 8000, 16000, 96000, 2**53, 2**63, 2**64, 1e308, -0.0])
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
field_values = json_values | st.sampled_from([True, False, "false", "true", "t-1", "", 420, 16000])
messages = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(msgs.CLIENT_TYPES)) | json_values},
    optional={name: field_values for name in FIELDS[1:]},
)


def render(value: Any, ascii_only: bool) -> str:
    """JSON text as a careless client would write it (NaN allowed; raw surrogates when not ASCII-escaped)."""
    return json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)


def nested(depth: int, opener: str) -> str:
    """Arrays or objects nested ``depth`` deep (``json.loads`` recurses once per level)."""
    if opener == "[":
        return "[" * depth + "1" + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def escaped_surrogates(frame: str | bytes) -> str | bytes:
    """A text frame must be valid UTF-8 on the wire: raw lone surrogates become the JSON escapes a client would send."""
    if isinstance(frame, bytes):
        return frame
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", frame)


rendered = st.builds(render, messages | json_values, st.booleans())
text_frames = st.one_of(
    rendered,
    st.text(st.characters(exclude_categories=()), max_size=200),
    st.builds(nested, st.integers(0, 3000), st.sampled_from(["[", "{"])),
    st.builds(lambda s, i, junk: s[:i] + junk + s[i:], rendered, st.integers(0, 60), text),  # mutated
    st.builds(lambda n: "x" * n, st.sampled_from([LIMITS.max_control_bytes - 1, LIMITS.max_control_bytes + 1])),
)
header_bytes = st.one_of(
    st.builds(lambda s: s.encode("utf-8", "surrogatepass"), rendered),
    st.binary(max_size=64),
    st.builds(lambda n: b"[" * n, st.integers(0, 1024)),
)
binary_frames = st.one_of(
    st.binary(max_size=600),
    st.builds(lambda h, pcm: struct.pack(">I", len(h)) + h + pcm, header_bytes, st.binary(max_size=200)),
    st.builds(lambda n, rest: struct.pack(">I", n) + rest, st.integers(0, 2**32 - 1), st.binary(max_size=300)),
)
frames = text_frames | binary_frames


def outcome(frame: str | bytes) -> str:
    """What the server's codec makes of one client message; fails on anything but a documented outcome."""
    try:
        decoded = proto.decode_client(frame, max_control_bytes=LIMITS.max_control_bytes,
                                      max_frame_bytes=LIMITS.max_frame_bytes)
    except MessageTooLarge:
        return "message-too-large"
    except msgs.ProtocolError as exc:
        assert exc.code in CODES, exc.code
        message = str(exc)
        assert len(message) <= 200 and message.encode("utf-8")  # short, and sendable
        return exc.code
    if isinstance(decoded, proto.AudioFrame):
        assert decoded.header["type"] == "audio-chunk" and decoded.pcm.dtype.name == "int16"
        return "audio"
    json.dumps(decoded.to_json(), ensure_ascii=False).encode("utf-8")  # every accepted value is valid UTF-8
    return f"ok:{decoded.type}"


BATCH = 20
"""Messages per generated example: hypothesis's cost is mostly per example, so 500 examples of 20
messages take a third of the time of 10 000 examples of one."""


def test_ten_thousand_generated_messages_give_no_internal_error() -> None:
    seen: Counter[str] = Counter()

    @settings(max_examples=10_000 // BATCH, phases=[Phase.generate], deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(batch=st.lists(frames, min_size=BATCH, max_size=BATCH))
    def check(batch: list[str | bytes]) -> None:
        for frame in batch:
            seen[outcome(frame)] += 1

    check()
    print(f"{sum(seen.values())} generated messages: " + ", ".join(f"{k} {v}" for k, v in seen.most_common()))
    assert sum(seen.values()) >= 10_000
    assert seen["bad-json"] and seen["protocol"] and seen["audio"] and any(k.startswith("ok:") for k in seen)


# ------------------------------------------------------------------------- real server
class Prober:
    """Sends generated messages to the real server on one client event loop, keeping a started session when it survives."""

    def __init__(self, thread: ServerThread) -> None:
        self.server = thread.server
        self.loop = asyncio.new_event_loop()
        self.client: WebClient | None = None
        self.outcomes: Counter[str] = Counter()

    def probe(self, frame: str | bytes, before_auth: bool) -> None:
        self.loop.run_until_complete(self._probe(frame, before_auth))

    async def _probe(self, frame: str | bytes, before_auth: bool) -> None:
        if before_auth:
            async with WebClient(self.server.ws_url()) as c:
                await c.send_raw(frame)
                await self._fate(c, "before-auth")
            return
        if self.client is None or self.client.closed.is_set():
            if self.client is not None:
                await self.client.close()
            self.client = WebClient(self.server.ws_url(token=self.server.token))
            await self.client.__aenter__()
            await self.client.start()
        # The server may close the connection on the frame before the client's reader has seen the close:
        # the send of the frame or of the probe after it then fails, and the fate (error event, close code)
        # is read from what the server sent.
        with contextlib.suppress(ConnectionClosed):
            await self.client.send_raw(frame)
            if not self.client.closed.is_set():
                await self.client.send_json({"type": "describe"})
        await self._fate(self.client, "after-auth")

    async def _fate(self, c: WebClient, when: str) -> None:
        """Wait for ``info`` (the session lives) or a fatal error and its close; never an internal error."""
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            if c.closed.is_set() and c.inbox.empty():  # closed without an error event: only session-end may do that
                assert c.close_code == proto.CLOSE_NORMAL, c.close_code
                self.outcomes[f"{when}:closed-normally"] += 1
                return
            try:
                r = await c.next(0.1)
            except TimeoutError:
                assert asyncio.get_running_loop().time() < deadline, "no answer and no close"
                continue
            if r.type == "info":
                self.outcomes[f"{when}:alive"] += 1
                return
            if r.type == "error" and r.message["fatal"]:
                await asyncio.wait_for(c.closed.wait(), 10)
                assert r.message["code"] != "internal" and c.close_code != proto.CLOSE_INTERNAL, (r.message, c.close_code)
                assert c.close_code in {1007, 1008, 1009}, (r.message, c.close_code)
                assert len((c.close_reason or "").encode()) <= proto.MAX_CLOSE_REASON_BYTES
                self.outcomes[f"{when}:{r.message['code']}"] += 1
                return

    def close(self) -> None:
        if self.client is not None:
            self.loop.run_until_complete(self.client.close())
        self.loop.close()


def test_generated_messages_through_the_real_server(web: ServerThread, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    prober = Prober(web)

    @settings(max_examples=300, phases=[Phase.generate], deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(frame=frames.map(escaped_surrogates), before_auth=st.booleans())
    def check(frame: str | bytes, before_auth: bool) -> None:
        prober.probe(frame, before_auth)

    try:
        check()
    finally:
        prober.close()
    total = sum(prober.outcomes.values())
    print(f"{total} generated messages through the server: "
          + ", ".join(f"{k} {v}" for k, v in sorted(prober.outcomes.items())))
    assert total >= 300
    crashes = [r.getMessage() for r in caplog.records if r.name.startswith("assistant.web") and r.levelno >= logging.ERROR]
    assert not crashes, crashes[:3]
