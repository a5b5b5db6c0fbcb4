"""A Triton server that dies or freezes mid-turn: the user still gets an answer, and is told why it is weaker.

A real tritonserver (the bundled CPU build) serves every stage; the conversation
streams a spoken request in real time and the server is killed (SIGKILL) or
frozen (SIGSTOP) while the user is speaking. What the user must get
(issue 29): a clear error naming the stage within 2 s of the end of speech,
a spoken reply from the local fallback (tiny.en in process, the rule tagger,
the keyword NLU, espeak-ng), no task exception left unretrieved, and a next
turn that works while the server is still gone.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc.aio", reason="pip install 'quickturn[triton]'")

from assistant.components import Components  # noqa: E402
from assistant.pipeline import Conversation  # noqa: E402
from core.audio import load_audio  # noqa: E402
from core.events import AudioChunk, DialogAction, ErrorEvent, Event, TranscriptFinal  # noqa: E402
from core.settings import load_settings  # noqa: E402
from services.serving.triton_server import TritonPorts  # noqa: E402
from tests.conftest import utterance  # noqa: E402
from tests.servers import free_ports, start_server  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]
FRAME = 512
RATE = 16000


async def feed_realtime(conv: Conversation, pcm: np.ndarray) -> None:
    t0 = time.monotonic()
    for k, i in enumerate(range(0, len(pcm), FRAME)):
        await conv.feed(pcm[i : i + FRAME])
        delay = t0 + (k + 1) * FRAME / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


def drain(conv: Conversation) -> list[Event]:
    out = []
    while not conv.events.empty():
        out.append(conv.events.get_nowait())
    return out


def speech_end(pcm: np.ndarray) -> int:
    """Sample index just after the last loud sample (the clips end with a little silence)."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 500)
    return int(loud[-1]) + 1


async def turn(conv: Conversation, pcm: np.ndarray, fault=None) -> tuple[list[Event], int]:  # type: ignore[no-untyped-def]
    """Stream one request in real time (``fault()`` halfway through the speech) and 2.5 s of silence;
    returns the events and the monotonic time the speech ended."""
    end = speech_end(pcm)
    half = end // 2
    await feed_realtime(conv, pcm[:half])
    if fault is not None:
        fault()
    await feed_realtime(conv, pcm[half:end])
    t_end_ns = time.monotonic_ns()
    await feed_realtime(conv, np.concatenate([pcm[end:], np.zeros(int(2.5 * RATE), np.int16)]))
    await conv.flush(realtime=True)
    return drain(conv), t_end_ns


@pytest.fixture()
def triton(tmp_path):  # type: ignore[no-untyped-def]
    server = start_server(tmp_path / "triton", ports=TritonPorts(*free_ports()))
    yield server
    if server.proc is not None and server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()


def remote_components(triton, tmp_path: Path, deadline_s: float = 1.5) -> Components:  # type: ignore[no-untyped-def]
    settings = load_settings(overrides={"backend": {"uri": f"triton://127.0.0.1:{triton.ports.grpc}",
                                                    "deadline_s": deadline_s}})
    c = Components.load(settings, db_path=tmp_path / "dialog.sqlite")
    assert c.baseline is not None
    # The fallbacks load in a thread at start; wait for them here so the test times the fault, not the load.
    for stage in ("asr", "disfluency", "nlu", "tts"):
        getattr(c.baseline, stage if stage != "disfluency" else "tagger")
    return c


def check_answered(events: list[Event], t_end_ns: int, code: str) -> None:
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    audio = [e for e in events if isinstance(e, AudioChunk)]
    assert errors and errors[0].code == code and errors[0].recovered, errors
    assert errors[0].stage in ("asr", "disfluency", "nlu", "tts") and "triton://" in errors[0].message
    first = min(errors[0].t_ns, audio[0].t_ns if audio else errors[0].t_ns)
    print(f"{code}: error {(errors[0].t_ns - t_end_ns) / 1e6:.0f} ms after the end of speech; "
          f"first reply audio {(audio[0].t_ns - t_end_ns) / 1e6:.0f} ms after it" if audio else "no audio")
    assert (first - t_end_ns) / 1e9 < 2.0
    assert audio, "no spoken reply"
    actions = [e for e in events if isinstance(e, DialogAction)]
    assert len(actions) == 1 and actions[0].text


def test_a_server_killed_mid_turn_is_reported_and_the_fallback_answers_this_turn_and_the_next(  # type: ignore[no-untyped-def]
    triton, utterances, tmp_path, caplog
) -> None:
    c = remote_components(triton, tmp_path)
    first = load_audio(utterance(utterances, "set a timer for five minutes")["path"])
    # espeak-ng writes the same audio on every machine; piper does not, and one CI machine's piper clip
    # was heard as "pern on the kitchen lights", which the keyword fallback rightly did not understand.
    second = load_audio(utterance(utterances, "turn on the kitchen lights", voice="espeak-us")["path"])

    async def scenario() -> tuple[tuple[list[Event], int], tuple[list[Event], int]]:
        conv = Conversation(c, "killed", barge_in=False)
        one = await turn(conv, first, fault=triton.kill)
        two = await turn(conv, second)
        return one, two

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        (events, t_end), (events2, _) = asyncio.run(scenario())
        gc.collect()
    check_answered(events, t_end, "backend-unavailable")
    # Heard by tiny.en in process. The clips are synthesized on each machine and tiny.en's first word
    # varies with them ("pern on the kitchen lights" on one CI machine), so the words that carry the
    # request are checked, and the answer below shows it was understood.
    finals = [e.text for e in events if isinstance(e, TranscriptFinal)]
    assert len(finals) == 1 and {"timer", "minutes"} <= set(finals[0].split()), finals
    # The next turn, with the server still dead, is answered by the fallback at once.
    finals2 = [e.text for e in events2 if isinstance(e, TranscriptFinal)]
    assert len(finals2) == 1 and finals2[0].endswith("kitchen lights"), finals2
    assert [e for e in events2 if isinstance(e, AudioChunk)]
    assert "kitchen" in [e for e in events2 if isinstance(e, DialogAction)][0].text.lower()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()], caplog.text


def test_a_frozen_server_is_given_up_within_the_deadline_and_the_fallback_answers(  # type: ignore[no-untyped-def]
    triton, utterances, tmp_path, caplog
) -> None:
    # A frozen server is found by the deadline alone; 1 s here (the default is 1.5 s) leaves room under
    # the 2 s bound for a CI machine running the rest of the suite beside it.
    c = remote_components(triton, tmp_path, deadline_s=1.0)
    pcm = load_audio(utterance(utterances, "set a timer for five minutes")["path"])
    assert triton.proc is not None

    async def scenario() -> tuple[list[Event], int]:
        conv = Conversation(c, "frozen", barge_in=False)
        return await turn(conv, pcm, fault=lambda: os.kill(triton.proc.pid, signal.SIGSTOP))

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        events, t_end = asyncio.run(scenario())
        gc.collect()
    check_answered(events, t_end, "backend-timeout")
    assert "did not answer within 1 s" in [e for e in events if isinstance(e, ErrorEvent)][0].message
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()], caplog.text
