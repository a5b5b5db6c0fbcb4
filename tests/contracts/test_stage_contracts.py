"""One protocol per stage, the same tests for every backend that can run here.

Each stage protocol (:mod:`services.asr.base`, :mod:`services.disfluency.base`,
:mod:`services.nlu.base`, :mod:`services.tts.base`) is exercised through the
registry (:func:`services.registry.load_stage`) for each deployment:

* ``embedded``: everything in this process;
* ``triton``: a real tritonserver (the bundled CPU build) serving ``models/``;
* ``riva``: ``quickturn serve riva``'s gRPC facade, in process (ASR and TTS on
  Riva; the registry keeps the tagger and the NLU embedded, as a Riva
  deployment does).

A backend passes when it keeps the protocol's promises, required and optional
capabilities alike (``speculate``, ``atag``, ``aupdate``/``afinish``,
``aparse``), and gives the answers the embedded backend gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from core.audio import load_audio
from core.settings import Settings, load_settings
from core.types import Hypothesis, NluHints, NluResult, TaggedToken
from services.asr.base import AsrBackend, AsrStream
from services.disfluency.base import StreamingTagger, Tagger
from services.nlu.base import NluBackend
from services.registry import BackendUri, load_stage
from services.tts.base import TtsBackend

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

DEPLOYMENTS = ("embedded", "triton", "riva")


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="module")
def triton_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendUri]:
    pytest.importorskip("tritonclient.grpc.aio", reason="pip install 'quickturn[triton]'")
    from tests.servers import start_server

    server = start_server(tmp_path_factory.mktemp("contracts-triton"))
    yield BackendUri("triton", "127.0.0.1", server.ports.grpc)
    server.stop()


@pytest.fixture(scope="module")
def riva_uri(settings: Settings) -> Iterator[BackendUri]:
    pytest.importorskip("riva.client", reason="pip install 'quickturn[riva]'")
    from services.serving.riva_server import Stages, build_server

    stages = Stages.load(settings)
    server = build_server(stages, 0, "127.0.0.1", interim_ms=320)
    server.start()
    yield BackendUri("riva", "127.0.0.1", server.bound_port)
    server.stop(grace=1).wait()
    stages.sessions.close()


@pytest.fixture(scope="module", params=DEPLOYMENTS)
def uri(request: pytest.FixtureRequest) -> BackendUri:
    if request.param == "embedded":
        return BackendUri("embedded")
    return request.getfixturevalue(f"{request.param}_uri")


def stage(name: str, settings: Settings, uri: BackendUri) -> Any:
    return load_stage(name, settings, uri)


@pytest.fixture(scope="module")
def utterance() -> tuple[np.ndarray, str]:
    """A generated utterance ("set a timer for five minutes") and the words it must contain."""
    from assistant.commands.setup import utterance_manifest

    manifest = utterance_manifest()
    if not manifest.is_file():
        pytest.skip("no generated utterances: run `quickturn setup`")
    path = manifest.parent / "piper-joe" / "02.wav"
    return load_audio(path), "timer for five minutes"


# ------------------------------------------------------------------ ASR


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_asr_stream_keeps_the_protocol(settings: Settings, uri: BackendUri, utterance: tuple[np.ndarray, str]) -> None:
    asr = stage("asr", settings, uri)
    assert isinstance(asr, AsrBackend) and isinstance(asr.name, str)
    pcm, words = utterance

    async def turn() -> tuple[Hypothesis, Hypothesis, Hypothesis]:
        stream = asr.open_stream("contract", "contract-t1", None)
        assert isinstance(stream, AsrStream)
        for i in range(0, len(pcm), 512):
            await stream.accept(pcm[i : i + 512])
        partial = await stream.hypothesis()
        speculative = await stream.speculate()  # optional capability: every backend answers it
        final = await stream.final()
        await stream.aclose()
        return partial, speculative, final

    partial, speculative, final = _run(turn())
    for hyp in (partial, speculative, final):
        assert isinstance(hyp, Hypothesis)
    assert words in final.text, final
    assert final.text == final.text.lower() and not any(c in final.text for c in ".,?!")


# ------------------------------------------------------------------ disfluency

DISFLUENT = "i want a um a large latte".split()


def test_tagger_keeps_the_protocol(settings: Settings, uri: BackendUri) -> None:
    tagger = stage("disfluency", settings, uri)
    assert isinstance(tagger, Tagger)
    tokens = tagger.tag(DISFLUENT)
    assert [t.word for t in tokens] == DISFLUENT and all(isinstance(t, TaggedToken) for t in tokens)
    assert tokens[3].remove and tokens[3].kind == "filler"  # "um"
    assert not any(t.remove for t in tokens[4:])  # "a large latte" is the request
    assert _run(tagger.atag(DISFLUENT)) == tokens
    assert tagger.tag([]) == []
    reference = stage("disfluency", settings, BackendUri("embedded")).tag(DISFLUENT)
    assert [t.remove for t in tokens] == [t.remove for t in reference]


def test_streaming_tagger_commits_labels_that_never_change(settings: Settings, uri: BackendUri) -> None:
    tagger = stage("disfluency", settings, uri)
    session = tagger.stream()
    assert isinstance(session, StreamingTagger)
    committed: list[TaggedToken] = []
    for n in range(1, len(DISFLUENT) + 1):
        now = session.update(DISFLUENT[:n])
        settled = [t for t in committed if not t.pending]
        assert [t.word for t in now[: len(settled)]] == [t.word for t in settled]
        assert [t.remove for t in now[: len(settled)] if not t.pending] == [t.remove for t in settled]
        committed = now
    final = session.finish(DISFLUENT)
    assert [t.word for t in final] == DISFLUENT and not any(t.pending for t in final)

    async def async_session() -> list[TaggedToken]:
        s = tagger.stream()
        for n in range(1, len(DISFLUENT) + 1):
            await s.aupdate(DISFLUENT[:n])
        return await s.afinish(DISFLUENT)

    assert [t.remove for t in _run(async_session())] == [t.remove for t in final]


# ------------------------------------------------------------------ NLU


def test_nlu_keeps_the_protocol(settings: Settings, uri: BackendUri) -> None:
    nlu = stage("nlu", settings, uri)
    assert isinstance(nlu, NluBackend) and isinstance(nlu.name, str)
    text = "set a timer for five minutes"
    result = nlu.parse(text)
    assert isinstance(result, NluResult) and result.intent == "SetTimer" and 0.0 <= result.confidence <= 1.0
    duration = [s for s in result.slots if s.slot == "duration"]
    assert duration and duration[0].normalized == "PT5M"
    assert text.split()[duration[0].start : duration[0].end] == duration[0].value.split()
    assert _run(nlu.aparse(text)) == result
    answer = nlu.parse("large", NluHints("orderDrink", "size"))  # a one-word answer stays in the open frame
    assert answer.intent == "orderDrink" and answer.slot_dict().get("size") == "large"
    reference = stage("nlu", settings, BackendUri("embedded")).parse(text)
    assert (result.intent, result.slot_dict()) == (reference.intent, reference.slot_dict())


# ------------------------------------------------------------------ TTS


def test_tts_keeps_the_protocol(settings: Settings, uri: BackendUri) -> None:
    tts = stage("tts", settings, uri)
    assert isinstance(tts, TtsBackend) and isinstance(tts.name, str) and tts.sample_rate_hz >= 8000
    audio = tts.synthesize("Okay. Your timer is set.")
    assert audio.dtype == np.int16 and 0.5 < len(audio) / tts.sample_rate_hz < 5.0
    assert int(np.abs(audio.astype(np.int32)).max()) > 1000  # speech, not silence
