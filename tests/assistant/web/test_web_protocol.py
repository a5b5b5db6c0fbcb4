"""The websocket protocol against the real server (real models, real sockets, no mocks).

The server runs in a background thread on a free port and shares the session's
loaded :class:`~assistant.components.Components`; each test talks to it with the
Python client of :mod:`assistant.web.client`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from assistant.web import protocol as proto
from assistant.web.client import Received, WebClient
from assistant.web.server import ServerThread
from assistant.web.settings import WebSettings
from core.audio import load_audio, resample, to_pcm16
from tests.conftest import utterance

pytestmark = pytest.mark.timeout(180)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def at_rate(pcm: np.ndarray, rate: int) -> np.ndarray:
    """16 kHz int16 → ``rate`` Hz int16 (what a browser microphone at that rate would send)."""
    return to_pcm16(resample(pcm.astype(np.float32) / 32768.0, 16000, rate)) if rate != 16000 else pcm


async def speak_then_listen(client: WebClient, pcm: np.ndarray, *, realtime: bool) -> None:
    """Say ``pcm``, then keep the microphone open (silence) until the caller cancels this task."""
    await client.stream(pcm, realtime=realtime)
    await client.stream_silence()


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a speak_then_listen task; an error it raised (not the cancel) fails the test."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def refused(client: WebClient, timeout: float = 10.0) -> tuple[dict[str, object], int | None]:
    """The error event a violation produces, and the close code that follows it."""
    r = await client.next(timeout)
    assert r.type == "error", r.message
    await asyncio.wait_for(client.closed.wait(), timeout)
    return r.message, client.close_code


# --------------------------------------------------------------------- HTTP
def test_page_and_static_files_are_served(web: ServerThread) -> None:
    base = f"http://127.0.0.1:{web.server.port}"
    with urllib.request.urlopen(base + "/?token=x", timeout=10) as resp:
        body = resp.read().decode()
        assert resp.status == 200
        assert "QuickTurn" in body and 'id="talk"' in body
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    for name, ctype in (("app.js", "text/javascript"), ("worklets.js", "text/javascript"), ("style.css", "text/css")):
        with urllib.request.urlopen(f"{base}/{name}", timeout=10) as resp:
            assert resp.headers["Content-Type"].startswith(ctype)
    for bad in ("/nope.js", "/..%2Fserver.py", "/.hidden", "/server.py"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + bad, timeout=10)
        assert err.value.code == 404


# --------------------------------------------------------------- violations
def test_bad_token_is_refused(web: ServerThread) -> None:
    async def go() -> None:
        async with WebClient(web.server.ws_url(token="wrong-token")) as c:
            err, code = await refused(c)
            assert err["code"] == "unauthorized" and err["fatal"] is True
            assert code == proto.CLOSE_POLICY
        # No token in the URL and none in session-start either.
        async with WebClient(web.server.ws_url()) as c:
            await c.send_json({"type": "session-start", "sample_rate_hz": 16000})
            err, code = await refused(c)
            assert err["code"] == "unauthorized" and code == proto.CLOSE_POLICY
        # The token may also travel in session-start.
        async with WebClient(web.server.ws_url()) as c:
            started = await c.start(token=web.server.token)
            assert started["session_id"].startswith("web-")

    run(go())


def test_wrong_origin_is_refused_and_own_origin_accepted(web: ServerThread) -> None:
    async def go() -> None:
        url = web.server.ws_url(token=web.server.token)
        async with WebClient(url, origin="http://evil.example") as c:
            err, code = await refused(c)
            assert err["code"] == "origin-not-allowed" and "evil.example" in str(err["message"])
            assert code == proto.CLOSE_POLICY
        async with WebClient(url, origin=f"http://127.0.0.1:{web.server.port}") as c:
            assert (await c.start())["type"] == "session-started"

    run(go())


def test_oversized_frame_and_control_message(web: ServerThread) -> None:
    async def go() -> None:
        url = web.server.ws_url(token=web.server.token)
        async with WebClient(url) as c:
            await c.start()
            await c.send_audio(np.zeros(60000, np.int16))  # 120 kB > 64 KiB frame limit
            err, code = await refused(c)
            assert err["code"] == "message-too-large" and code == proto.CLOSE_TOO_BIG
        async with WebClient(url) as c:
            await c.start()
            await c.send_json({"type": "config", "padding": "x" * 20000})
            err, code = await refused(c)
            assert err["code"] == "message-too-large" and code == proto.CLOSE_TOO_BIG

    run(go())


def test_garbage_json_and_unknown_type(web: ServerThread) -> None:
    async def go() -> None:
        url = web.server.ws_url(token=web.server.token)
        async with WebClient(url) as c:
            await c.start()
            await c.send_raw("{this is not json")
            err, code = await refused(c)
            assert err["code"] == "bad-json" and code == proto.CLOSE_BAD_DATA
        async with WebClient(url) as c:
            await c.send_raw("[1, 2]")
            err, code = await refused(c)
            assert err["code"] == "bad-json" and code == proto.CLOSE_BAD_DATA
        async with WebClient(url) as c:
            await c.start()
            await c.send_json({"type": "launch-rockets"})
            err, code = await refused(c)
            assert err["code"] == "protocol" and "launch-rockets" in str(err["message"])

    run(go())


def test_binary_before_start_and_bad_audio_frame(web: ServerThread) -> None:
    async def go() -> None:
        url = web.server.ws_url(token=web.server.token)
        async with WebClient(url) as c:
            await c.send_audio(np.zeros(320, np.int16))
            err, code = await refused(c)
            assert err["code"] == "protocol" and "before session-start" in str(err["message"])
            assert code == proto.CLOSE_POLICY
        async with WebClient(url) as c:
            await c.start()
            await c.send_raw(b"\x00\x00\x00\x05{bad}" + b"\x00\x01")
            err, code = await refused(c)
            assert err["code"] == "protocol" and code == proto.CLOSE_BAD_DATA
        async with WebClient(url) as c:
            await c.send_json({"type": "session-start", "sample_rate_hz": 3})
            err, _ = await refused(c)
            assert err["code"] == "invalid-audio"

    run(go())


def test_violation_closes_only_that_connection(web: ServerThread) -> None:
    async def go() -> None:
        url = web.server.ws_url(token=web.server.token)
        async with WebClient(url) as good, WebClient(url) as bad:
            await good.start()
            await bad.start()
            await bad.send_raw("garbage")
            await refused(bad)
            await good.send_json({"type": "describe"})
            info = await good.next()
            assert info.type == "info" and info.message["session_id"] == good.session["session_id"]
            assert not good.closed.is_set()

    run(go())


def test_rate_limit_and_max_sessions(components) -> None:  # type: ignore[no-untyped-def]
    limits = WebSettings(port=0, max_sessions=1, rate_messages_per_s=5, rate_burst_messages=10)
    with ServerThread(components, limits) as thread:
        url = thread.server.ws_url(token=thread.server.token)

        async def go() -> None:
            async with WebClient(url) as first:
                await first.start()
                async with WebClient(url) as second:
                    err, code = await refused(second)
                    assert err["code"] == "too-many-sessions" and code == proto.CLOSE_TRY_LATER
                for _ in range(30):
                    if first.closed.is_set():
                        break
                    await first.send_audio(np.zeros(160, np.int16))
                err, code = await refused(first)
                assert err["code"] == "rate-limited" and code == proto.CLOSE_POLICY
            # The slot is free again once the offender is gone.
            for _ in range(50):
                if not thread.server.sessions:
                    break
                await asyncio.sleep(0.05)
            async with WebClient(url) as third:
                assert (await third.start())["type"] == "session-started"

        run(go())


# -------------------------------------------------------------------- turns
def test_paced_turn_at_48k_is_resampled_and_every_chunk_attributable(web: ServerThread, utterances) -> None:  # type: ignore[no-untyped-def]
    pcm = load_audio(utterance(utterances, "set a timer for five minutes")["path"])

    async def go() -> None:
        async with WebClient(web.server.ws_url(token=web.server.token)) as c:
            started = await c.start(sample_rate_hz=48000)
            assert started["input_sample_rate_hz"] == 48000 and started["pipeline_sample_rate_hz"] == 16000
            turn = await c.run_turn(at_rate(pcm, 48000), realtime=True)
        types = [m.type for m in turn.messages]
        assert types[0] == "speech-started" and "speech-ended" in types and types[-1] == "stage-metrics"
        assert "timer" in turn.transcript and "five" in turn.transcript, turn.transcript
        assert turn.intent and turn.reply
        tagged = turn.of("tokens-tagged")[-1].message
        assert "clean_text" in tagged and "removed" in tagged
        audio = turn.audio
        assert audio, "no reply audio on the wire"
        assert {a.turn_id for a in audio} == {turn.turn_id}
        assert [a.message["chunk_index"] for a in audio] == list(range(len(audio)))
        assert audio[-1].message["final"] is True
        rate = audio[0].message["sample_rate_hz"]
        assert all(a.pcm is not None and a.pcm.size == a.message["samples"] for a in audio)
        assert sum(a.pcm.size for a in audio) / rate > 0.5  # type: ignore[union-attr]
        latency = turn.latency_ms
        assert {"asr", "nlu", "dialog", "tts_first_audio", "total"} <= set(latency)
        wire = turn.wire_first_audio_ms()
        assert wire is not None and wire >= latency["total"] - 1

    run(go())


SHORT = [
    "set a timer for five minutes",
    "turn on the kitchen lights",
    "play some jazz music",
    "what time is it",
    "hello there",
    "what can you do",
    "cancel that",
    "thank you goodbye",
]


def test_eight_concurrent_sessions_get_their_own_answers(web: ServerThread, utterances) -> None:  # type: ignore[no-untyped-def]
    rates = [16000, 48000, 44100, 22050, 16000, 48000, 8000, 32000]
    clips = [at_rate(load_audio(utterance(utterances, text)["path"]), rate) for text, rate in zip(SHORT, rates, strict=True)]
    hold_ms = web.server.components.settings.turn.max_hold_ms + 400

    async def one(k: int) -> tuple[str, object]:
        async with WebClient(web.server.ws_url(token=web.server.token)) as c:
            started = await c.start(sample_rate_hz=rates[k], barge_in=False)
            # Not paced (8 real-time streams would take as long as the longest one
            # anyway); chunked like a microphone and still interleaved on the loop.
            # Silence as a microphone would go on sending it: enough for the longest hold of the
            # end-of-turn policy (turn.max_hold_ms), so a held turn still ends.
            turn = await c.run_turn(clips[k], realtime=False, trailing_silence_ms=hold_ms, timeout=150)
            return str(started["session_id"]), turn

    async def go() -> list[tuple[str, object]]:
        return await asyncio.gather(*(one(k) for k in range(8)))

    t0 = time.monotonic()
    results = run(go())
    sessions = [sid for sid, _ in results]
    assert len(set(sessions)) == 8
    for k, (sid, turn) in enumerate(results):
        expected = set(SHORT[k].split())
        got = set(turn.transcript.split())  # type: ignore[attr-defined]
        assert len(expected & got) >= max(1, len(expected) // 2), (  # type: ignore[attr-defined]
            SHORT[k], turn.transcript, [m.message for m in turn.messages if m.type != "audio-chunk"])  # type: ignore[attr-defined]
        assert turn.reply, SHORT[k]  # type: ignore[attr-defined]
        for m in turn.messages:  # type: ignore[attr-defined]
            if m.turn_id:
                assert m.turn_id.startswith(sid + "-"), (sid, m.message)
            if "session_id" in m.message and m.message["session_id"]:
                assert m.message["session_id"] == sid
        assert turn.audio, SHORT[k]  # type: ignore[attr-defined]
    print(f"8 concurrent sessions in {time.monotonic() - t0:.1f} s")


def test_barge_in_cancels_the_reply_and_no_old_audio_follows(web: ServerThread, components, utterances) -> None:  # type: ignore[no-untyped-def]
    long_reply = load_audio(utterance(utterances, "what can you do")["path"])
    interruption = load_audio(utterance(utterances, "set a timer for five minutes")["path"])

    async def go() -> None:
        async with WebClient(web.server.ws_url(token=web.server.token)) as c:
            started = await c.start(barge_in=True)
            sid = started["session_id"]
            sender = asyncio.create_task(speak_then_listen(c, long_reply, realtime=True))
            first_turn = ""
            while True:  # until the first reply audio frame arrives
                r = await c.next(90)
                if r.type == "speech-started" and not first_turn:
                    first_turn = r.turn_id
                if r.pcm is not None and r.turn_id == first_turn:
                    break
            await stop(sender)
            # The user talks over the reply.
            talk = asyncio.create_task(speak_then_listen(c, interruption, realtime=True))
            after_cancel: list[str] = []
            cancelled = None
            second_turn = ""
            while True:
                r = await c.next(90)
                if r.type == "turn-cancelled" and r.turn_id == first_turn:
                    cancelled = r
                    await c.send_json({"type": "playback-stopped", "turn_id": first_turn, "played_ms": 420})
                elif cancelled is not None:
                    after_cancel.append(r.turn_id)
                if r.type == "speech-started" and r.turn_id != first_turn:
                    second_turn = r.turn_id
                if r.type == "stage-metrics" and r.turn_id == second_turn:
                    break
            await stop(talk)
            assert cancelled is not None and cancelled.message["reason"] == "barge-in"
            assert first_turn not in after_cancel, "audio or events of the cancelled turn arrived after turn-cancelled"
            assert second_turn and second_turn in after_cancel
            await c.send_json({"type": "describe"})  # round trip: playback-stopped has been handled
            while (await c.next(10)).type != "info":
                pass
        history = {t["turn_id"]: t for t in components.dialog.history(sid)}
        assert history[first_turn]["played_ms"] == 420
        assert "timer" in history[second_turn]["transcript"]

    run(go())


def test_interrupt_stops_the_reply_and_config_switches_barge_in(web: ServerThread, utterances) -> None:  # type: ignore[no-untyped-def]
    pcm = load_audio(utterance(utterances, "what can you do")["path"])

    async def go() -> None:
        async with WebClient(web.server.ws_url(token=web.server.token)) as c:
            await c.start(barge_in=True)
            await c.send_json({"type": "config", "barge_in": False})
            applied = await c.next()
            assert applied.type == "config-applied" and applied.message["barge_in"] is False
            sender = asyncio.create_task(speak_then_listen(c, pcm, realtime=False))
            turn_id = ""
            while True:
                r = await c.next(90)
                turn_id = turn_id or (r.turn_id if r.type == "speech-started" else "")
                if r.pcm is not None and r.turn_id == turn_id:
                    break
            await stop(sender)
            await c.send_json({"type": "interrupt", "turn_id": turn_id, "played_ms": 100})
            cancelled = None
            while cancelled is None:
                r = await c.next(30)
                if r.type == "turn-cancelled":
                    cancelled = r
            after: list[Received] = []
            with contextlib.suppress(TimeoutError):
                while True:
                    after.append(await c.next(1.5))
            assert cancelled.message["reason"] == "interrupt" and cancelled.turn_id == turn_id
            assert not [r for r in after if r.pcm is not None], "reply audio after turn-cancelled"

    run(go())


def test_push_to_talk_end_of_turn_closes_the_turn_at_once(web: ServerThread, utterances) -> None:  # type: ignore[no-untyped-def]
    pcm = load_audio(utterance(utterances, "turn on the kitchen lights")["path"])
    speech = pcm[: len(pcm) - 1600]  # cut the generated file's trailing silence: the button is released mid-air

    async def go() -> None:
        async with WebClient(web.server.ws_url(token=web.server.token)) as c:
            await c.start()
            await c.stream(speech, realtime=False)
            await c.send_json({"type": "end-of-turn"})
            turn = await c.collect_turn(90)
        assert "kitchen" in turn.transcript and turn.reply, turn.transcript

    run(go())
