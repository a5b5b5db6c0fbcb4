"""The page in a real headless Chromium, talking through Chromium's fake microphone.

Debian's ``/usr/bin/chromium`` is driven by Playwright (``executable_path``; no
downloaded browser). ``--use-file-for-fake-audio-capture`` plays a generated
utterance as the microphone; the file restarts each time the page opens the
microphone, which is how the barge-in test speaks a second time while the reply
is playing. Screenshots go to ``artifacts/``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from assistant.web.server import ServerThread
from assistant.web.settings import WebSettings
from core.audio import load_audio, resample, to_pcm16
from core.settings import REPO_ROOT
from tests.conftest import utterance

ARTIFACTS = REPO_ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
PHONE = {"width": 390, "height": 844}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]
try:
    from playwright import sync_api
except ImportError:  # a missing browser stack must fail the suite, not skip it
    sync_api = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def web(components) -> Iterator[ServerThread]:  # type: ignore[no-untyped-def]
    if sync_api is None:
        pytest.fail("playwright (Python) is not installed: pip install playwright (never `playwright install`)")
    if not Path(CHROMIUM).is_file() and shutil.which("chromium") is None:
        pytest.fail("Debian chromium is not installed (apt-get install chromium)")
    with ServerThread(components, WebSettings(port=0)) as thread:
        yield thread


def fake_mic_file(path: Path, pcm16k: np.ndarray, *, lead_s: float = 2.0, tail_s: float = 3.0) -> Path:
    """The WAV Chromium plays as the microphone: 48 kHz PCM16 mono.

    The lead-in silence covers the time the page takes to start capturing after
    the microphone opens (about a second here), so no speech is lost.
    """
    rate = 48000
    speech = to_pcm16(resample(pcm16k.astype(np.float32) / 32768.0, 16000, rate))
    audio = np.concatenate([np.zeros(int(lead_s * rate), np.int16), speech, np.zeros(int(tail_s * rate), np.int16)])
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, rate, subtype="PCM_16")
    return path


def launch(p, wav: Path):  # type: ignore[no-untyped-def]
    # %noloop: after the file, the fake microphone delivers silence instead of repeating it.
    return p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}%noloop"])


def state(page) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return page.evaluate(
        """() => ({status: qt.status, events: qt.events, rendered: qt.renderedSoundMs, errors: qt.errors,
             bargeIns: qt.bargeIns, sessionId: qt.sessionId,
             turns: Object.entries(qt.turns).map(([id, t]) => ({id, transcript: t.transcript, clean: t.clean,
               intent: t.intent, slots: t.slots, reply: t.reply, latency: t.latency, playedMs: t.playedMs ?? null,
               cancelled: t.el.classList.contains('cancelled')}))})"""
    )


def wait_until(page, predicate, timeout_s: float, what: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        s = state(page)
        if predicate(s):
            return s
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; page state: {s}")
        time.sleep(0.1)


def test_browser_turn_transcript_intent_reply_and_audio(web: ServerThread, utterances, tmp_path) -> None:  # type: ignore[no-untyped-def]
    wav = fake_mic_file(tmp_path / "mic.wav", load_audio(utterance(utterances, "set a timer for five minutes")["path"]))
    with sync_api.sync_playwright() as p:
        browser = launch(p, wav)
        try:
            page = browser.new_page(viewport=PHONE)
            page.goto(web.server.url())
            page.click("#talk")
            s = wait_until(page, lambda s: any(t["reply"] and t["latency"] for t in s["turns"]) and s["rendered"] > 300,
                           90, "a complete turn with reply audio playing")
            turn = next(t for t in s["turns"] if t["reply"])
            assert "timer" in turn["transcript"] and "five" in turn["transcript"], turn
            assert turn["intent"], turn
            assert turn["latency"]["total"] > 0
            # Let the reply finish so the screenshot and played time cover the whole answer.
            s = wait_until(page, lambda s: any(t["playedMs"] for t in s["turns"]), 30, "the reply to finish playing")
            assert s["rendered"] > 800, "the page rendered (almost) no reply audio"
            assert not s["errors"], s["errors"]
            page.click("#talk")  # stop the microphone
            dom = page.evaluate(
                """() => ({transcript: document.querySelector('.turn .transcript').textContent,
                     intent: document.querySelector('.turn .chip.intent').textContent,
                     slots: [...document.querySelectorAll('.turn .chip.slot')].map(e => e.textContent),
                     reply: document.querySelector('.turn .reply').textContent,
                     bars: document.querySelectorAll('.turn .bar span').length,
                     width: document.documentElement.scrollWidth})"""
            )
            assert "timer" in dom["transcript"] and dom["intent"] and dom["reply"] == turn["reply"]
            assert dom["bars"] >= 4 and dom["width"] <= PHONE["width"], dom
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "browser-turn.png"), full_page=True)
        finally:
            browser.close()


def test_browser_shows_words_the_nlu_kept(web: ServerThread, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A removal the NLU overruled is shown as kept (dotted), the removed filler stays struck."""
    wav = fake_mic_file(tmp_path / "silent.wav", np.zeros(1600, np.int16))
    words = ["um", "brew", "a", "double", "shot", "latte"]
    removed = [True, True, True, True, True, False]
    with sync_api.sync_playwright() as p:
        browser = launch(p, wav)
        try:
            page = browser.new_page(viewport=PHONE)
            page.goto(web.server.url())
            dom = page.evaluate(
                """([words, removed]) => {
                     const tokens = words.map((w, i) => ({word: w, remove: removed[i]}));
                     qt.onEvent({type: 'tokens-tagged', turn_id: 'g1', final: true, tokens,
                                 clean_text: 'latte', removed: words.filter((w, i) => removed[i])});
                     qt.onEvent({type: 'nlu-result', turn_id: 'g1', restored: true,
                                 text: 'brew a double shot latte',
                                 result: {intent: 'orderDrink', confidence: 1,
                                          slots: [{slot: 'numberOfShots', value: 'double shot'}]}});
                     const box = document.querySelector('.turn .cleaned');
                     return {struck: [...box.querySelectorAll('s')].map((e) => e.textContent),
                             kept: [...box.querySelectorAll('.restored')].map((e) => e.textContent)};
                   }""",
                [words, removed],
            )
            assert dom == {"struck": ["um"], "kept": ["brew", "a", "double", "shot"]}, dom
        finally:
            browser.close()


def test_browser_barge_in_stops_playback_within_100ms(web: ServerThread, components, utterances, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # "what can you do" has a long spoken answer (~12 s): plenty of time to interrupt it.
    wav = fake_mic_file(tmp_path / "mic.wav", load_audio(utterance(utterances, "what can you do")["path"]))
    with sync_api.sync_playwright() as p:
        browser = launch(p, wav)
        try:
            page = browser.new_page(viewport=PHONE)
            page.goto(web.server.url())
            page.click("#talk")
            # Past the short first phrase: the long second phrase is playing.
            wait_until(page, lambda s: s["status"] == "speaking" and s["rendered"] > 1500, 90, "the reply to be playing")
            page.click("#talk")  # microphone off…
            page.click("#talk")  # …and on again: the fake microphone says the utterance again, over the reply
            s = wait_until(page, lambda s: s["bargeIns"] and "stopMs" in s["bargeIns"][0], 40, "the barge-in")
            b = s["bargeIns"][0]
            print(f"barge-in: playback silent {b['stopMs']:.1f} ms after the page learnt of the speech "
                  f"(render {b['renderStopMs']:.1f} ms + output latency {b['outputLatencyMs']:.1f} ms), "
                  f"stop() called after {b['stopCallMs']:.1f} ms; heard {b['playedMs']} ms of the reply")
            assert b["stopMs"] <= 100, b
            old = next(t for t in s["turns"] if t["id"] == b["turn_id"])
            assert old["cancelled"] and b["playedMs"] > 1000
            # The new turn completes; nothing of the old one plays again.
            s = wait_until(page, lambda s: any(t["id"] != b["turn_id"] and t["reply"] for t in s["turns"]), 60,
                           "the reply to the interruption")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "browser-barge-in.png"), full_page=True)
            page.click("#talk")
            sid = str(s["sessionId"])
        finally:
            browser.close()
    # The dialog recorded how much of the reply the user heard (sent by the page).
    history = {t["turn_id"]: t for t in components.dialog.history(sid)}
    assert history[b["turn_id"]]["played_ms"] == b["playedMs"]


def test_browser_shows_that_the_assistant_still_listens_while_it_holds(web: ServerThread, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A ``turn-decision`` ``incomplete`` event puts the page in "still listening…"; the end of the turn
    takes it out. (The hold itself is tested on real audio in tests/assistant/test_turn_taking.py.)"""
    wav = fake_mic_file(tmp_path / "silent.wav", np.zeros(1600, np.int16))
    with sync_api.sync_playwright() as p:
        browser = launch(p, wav)
        try:
            page = browser.new_page(viewport=PHONE)
            page.goto(web.server.url())
            seen = page.evaluate(
                """() => {
                     const status = () => [qt.status, document.getElementById('status').textContent];
                     qt.onEvent({type: 'speech-started', turn_id: 'h1'});
                     qt.onEvent({type: 'turn-decision', turn_id: 'h1', decision: 'incomplete',
                                 reason: 'trailing function word "the"', silence_ms: 128});
                     const holding = status();
                     qt.onEvent({type: 'turn-decision', turn_id: 'h1', decision: 'complete', reason: 'DeviceOff'});
                     qt.onEvent({type: 'speech-ended', turn_id: 'h1'});
                     return {holding, after: status(), holds: qt.holds};
                   }"""
            )
            assert seen["holding"] == ["holding", "still listening…"], seen
            assert seen["after"][0] != "holding" and seen["holds"] == ['trailing function word "the"'], seen
        finally:
            browser.close()
