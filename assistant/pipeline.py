"""The streaming orchestrator: audio frames in, typed events out.

One :class:`Conversation` per session. Audio is fed in any chunk size; it is
re-framed for the VAD, routed to a per-turn ASR stream, and each finished
turn runs disfluency → NLU → dialog → TTS in its own task, so the next turn's
audio is already being heard while the reply is synthesized. Events go to
``conversation.events`` (an :class:`asyncio.Queue`) in the order they happen.

Turn-taking (``turn.policy``, docs/turn-taking.md). With ``semantic`` (the
default), a short silence starts a *speculation*: the final-quality decode of
the audio so far, its disfluency labels and parse, the dialog's *plan* (the
reply it would give, with no side effect) and the Smart Turn probability, and
the first phrase of the planned reply is synthesized. After
``turn.eval_silence_ms`` the end-of-turn policy (:mod:`services.turn.policy`)
decides from those signals whether the user is done: if so the turn ends at
once, the dialog commits the same reply (timers, orders and devices change
only now) and the already-synthesized phrase goes out; if not, the assistant
keeps listening and decides again as the silence grows, up to
``turn.max_hold_ms``. Speech that resumes throws the speculation away; it
left nothing in the dialog store and no audio. ``fixed`` is the old rule:
``vad.silence_ms`` of silence ends the turn.

Latency policy (the 300 ms budget runs from the true end of speech to the
first reply audio):

* partial hypotheses every ``asr.partial_interval_ms`` of new speech, never
  more than one decode in flight;
* the final transcript and reply are prepared during the first silence, so
  they are ready when the turn is judged complete;
* the reply is split into phrases (first one short) and spoken phrase by
  phrase, in 40 ms chunks, while later phrases are still being synthesized.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import secrets
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from assistant import output_volume
from assistant.components import Components
from assistant.output_volume import SessionVolume
from assistant.stage_guard import StageFault
from core.audio import resample, to_pcm16
from core.errors import BackendUnavailable
from core.events import (
    AudioChunk,
    DialogAction,
    ErrorEvent,
    Event,
    NluResultEvent,
    SpeechEnded,
    SpeechStarted,
    StageMetrics,
    TokensTagged,
    TranscriptFinal,
    TranscriptPartial,
    TurnCancelled,
    TurnDecision,
)
from core.text import normalize_transcript, split_phrases
from core.types import Hypothesis, NluHints, TaggedToken
from dialog.base import DialogReply
from services.asr.base import AsrStream
from services.asr.hints import domain_hint_words, vocabulary_hint_words
from services.asr.stabilizer import PrefixStabilizer
from services.disfluency.base import StreamingTagger
from services.nlu.guard import GuardedParse, aparse_tagged
from services.turn.policy import TurnSignals, TurnVerdict, acoustic_needed, decide
from services.vad.endpointing import Endpointer
from services.vad.silero import FRAME_SAMPLES

log = logging.getLogger(__name__)
T = TypeVar("T")
FRAME_MS = 1000.0 * FRAME_SAMPLES / 16000
FRAMES_PER_TICK = 8
"""Frames (256 ms of audio) handled before :meth:`Conversation.feed` yields to the event loop, so one
session's large chunk of audio never holds every other session's turn back."""
APOLOGY = ("Sorry, I can't understand anything right now.", "Please try again in a moment.")
"""Spoken when a turn cannot be answered at all (a stage and its local fallback both failed)."""
_turn_counter = itertools.count(1)
_PROCESS_TAG = secrets.token_hex(4)
"""Turn ids are ``<session>-<process tag>t<n>``: a session continued by another process (``say
--session S`` called again, a restarted server) never reuses an id the dialog store already holds (8 hex
digits: two of 1,000 calls share a tag with probability ~1e-4; 4 digits made it ~7 % over 100 calls)."""


def _turn_id(session_id: str, kind: str = "t") -> str:
    return f"{session_id}-{_PROCESS_TAG}{kind}{next(_turn_counter)}"


def _ms(t0_ns: int, t1_ns: int) -> float:
    return max((t1_ns - t0_ns) / 1e6, 0.001)


@dataclass
class _Prepared:
    """What a speculation found for the audio up to a pause (see the module doc)."""

    hyp: Hypothesis
    tokens: tuple[TaggedToken, ...]
    parsed: GuardedParse
    plan: DialogReply | None
    held_words: int
    smart_turn: float | None
    first_audio: asyncio.Future[np.ndarray] | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)  # wall time of each step (the turn's trace)


@dataclass
class _Turn:
    """State of the user turn being heard."""

    turn_id: str
    asr: AsrStream
    start_ms: float = 0.0
    stabilizer: PrefixStabilizer = field(default_factory=PrefixStabilizer)
    tagger: StreamingTagger | None = None
    new_audio_ms: float = 0.0
    held: list[np.ndarray] = field(default_factory=list)
    paused: bool = False
    partial_task: asyncio.Task[None] | None = None
    # Held only so the running speculative decode is not garbage-collected; final() reuses its result.
    speculative: asyncio.Task[object] | None = None
    audio: list[np.ndarray] = field(default_factory=list)  # every frame of the turn (the audio end-of-turn model)
    speculation: asyncio.Task[_Prepared] | None = None
    next_eval_ms: float = 0.0
    last_reason: str = ""
    accept_failed: bool = False


class Conversation:
    """One session's pipeline.

    Args:
        components: the loaded stages (shared between sessions).
        session_id: names the session in every event and in the dialog store.
        barge_in: when speech starts during a reply, cancel the reply.
        pace_output: the reply audio is played in real time as it is emitted (a websocket client, a
            speaker): synthesis then stays at most ``tts.max_lead_s`` ahead of playback.
    """

    def __init__(self, components: Components, session_id: str | None = None, *, barge_in: bool = True,
                 pace_output: bool = False) -> None:
        self.c = components
        self.pace_output = pace_output
        self.volume = SessionVolume()  # the dialog's per-session speaker volume (SetVolume)
        self.settings = components.settings
        self.session_id = session_id or uuid.uuid4().hex[:12]
        self.barge_in = barge_in
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self._vad = components.vad_factory()
        v, t = self.settings.vad, self.settings.turn
        self._semantic = t.policy == "semantic"
        # The endpointer's own end is the hard one: the fixed timeout, or the semantic policy's max hold.
        self._endpointer = Endpointer(
            frame_ms=FRAME_MS, threshold=v.threshold, silence_ms=t.max_hold_ms if self._semantic else v.silence_ms,
            min_speech_ms=v.min_speech_ms, speculate_ms=t.speculate_ms if self._semantic else 160,
        )
        self._residual = np.zeros(0, np.int16)
        # The start decision comes min_speech_ms after speech began, and those frames are
        # still in the pre-roll: keep pre_roll_ms *before* them too, or the first word is clipped
        # ("set a timer" heard as "to timer").
        self._preroll: deque[np.ndarray] = deque(maxlen=max(1, math.ceil((v.pre_roll_ms + v.min_speech_ms) / FRAME_MS) + 1))
        self._turn: _Turn | None = None
        self._replies: dict[str, asyncio.Task[None]] = {}
        # A session continued from the store (another process, a reconnect) resumes the open question.
        self._expected: NluHints | None
        self._expected, self._hint_words = components.dialog.expectation(self.session_id)
        self._queued_notifications: list[str] = []
        self.closed = False

    # ----------------------------------------------------------------- input
    async def feed(self, pcm: np.ndarray) -> None:
        """Feed int16 16 kHz mono audio of any length.

        Cancelling it is safe: at most the current frame is lost.
        """
        if pcm.dtype != np.int16:
            raise TypeError("feed() takes int16 PCM")
        data = np.concatenate([self._residual, pcm]) if self._residual.size else pcm
        n = len(data) // FRAME_SAMPLES
        self._residual = data[n * FRAME_SAMPLES :].copy()
        for i in range(n):
            await self._frame(data[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
            if i % FRAMES_PER_TICK == FRAMES_PER_TICK - 1:
                await asyncio.sleep(0)

    async def _frame(self, frame: np.ndarray) -> None:
        probability = self._vad(frame)
        decisions = self._endpointer.push(probability)
        turn = self._turn
        if turn is not None:
            turn.audio.append(frame)
        if turn is not None and not turn.paused:
            await self._accept(turn, frame)
            turn.new_audio_ms += FRAME_MS
        elif turn is not None:
            turn.held.append(frame)
        else:
            self._preroll.append(frame)
        for d in decisions:
            if d.kind == "start":
                await self._start_turn(d.audio_ms)
            elif d.kind == "pause" and self._turn is not None:
                t = self._turn
                t.paused = True
                if self._semantic:
                    t.speculation = asyncio.create_task(self._prepare(t))
                    t.next_eval_ms = self.settings.turn.eval_silence_ms
                elif self.settings.asr.speculative:
                    t.speculative = asyncio.create_task(t.asr.speculate())
            elif d.kind == "resume" and self._turn is not None:
                t = self._turn
                t.paused = False
                self._discard(t)
                for held in t.held:
                    await self._accept(t, held)
                t.new_audio_ms += FRAME_MS * len(t.held)
                t.held.clear()
            elif d.kind == "end" and self._turn is not None:
                await self._hard_end(self._turn, d.audio_ms)
        turn = self._turn
        if turn is not None and self._endpointer.pos_ms - turn.start_ms >= self.settings.turn.max_turn_s * 1000:
            self._endpointer.end_now()
            length = (self._endpointer.pos_ms - turn.start_ms) / 1000
            self._end_turn(self._endpointer.pos_ms, TurnVerdict("max-length", f"{length:.1f} s long (turn.max_turn_s)"))
            turn = None
        if self._semantic and turn is not None and turn.paused:
            await self._evaluate(turn)
            turn = self._turn
        if (
            turn is not None
            and not turn.paused
            and turn.new_audio_ms >= self.settings.asr.partial_interval_ms
            and (turn.partial_task is None or turn.partial_task.done())
            # Not on a frame where the speech may be ending: the decoder runs one decode at a time,
            # and a partial started now would make the speculation of the coming pause wait for it.
            and (not self._semantic or probability >= self._endpointer.on)
        ):
            turn.new_audio_ms = 0.0
            turn.partial_task = asyncio.create_task(self._partial(turn))

    async def _start_turn(self, audio_ms: float) -> None:
        if self.barge_in:
            for turn_id in list(self._replies):
                await self.cancel_turn(turn_id, reason="barge-in")
        turn_id = _turn_id(self.session_id)
        assert self.c.asr is not None, "audio input needs an ASR backend"
        asr = self.c.asr.open_stream(self.session_id, turn_id, self._asr_hints() or None)
        self._turn = _Turn(turn_id=turn_id, asr=asr, start_ms=audio_ms, tagger=self.c.tagger.stream(),
                           audio=list(self._preroll))
        for frame in self._preroll:
            await self._accept(self._turn, frame)
        self._preroll.clear()
        await self._emit(SpeechStarted(session_id=self.session_id, turn_id=turn_id, stage="vad", audio_ms=audio_ms))

    def _end_turn(self, speech_end_ms: float, verdict: TurnVerdict, prepared: _Prepared | None = None) -> None:
        """The turn is over: say why (``turn-decision``), then ``speech-ended``, then answer it."""
        turn, self._turn = self._turn, None
        assert turn is not None
        self._discard(turn, keep=prepared)
        delay = self._endpointer.pos_ms - speech_end_ms
        self.events.put_nowait(TurnDecision(
            session_id=self.session_id, turn_id=turn.turn_id, stage="turn", decision=verdict.decision,
            reason=verdict.reason, silence_ms=round(delay, 1), audio_ms=speech_end_ms, signals=verdict.signals,
        ))  # fmt: skip
        ended = SpeechEnded(
            session_id=self.session_id, turn_id=turn.turn_id, stage="vad", audio_ms=speech_end_ms, endpoint_delay_ms=delay
        )
        self.events.put_nowait(ended)
        self._replies[turn.turn_id] = asyncio.create_task(self._finish_turn(turn, ended, prepared))

    async def _hard_end(self, turn: _Turn, speech_end_ms: float) -> None:
        """The endpointer's own end: the fixed timeout, or (semantic policy) the longest hold."""
        silence = self._endpointer.pos_ms - speech_end_ms
        if not self._semantic:
            self._end_turn(speech_end_ms, TurnVerdict("fixed", f"{silence:.0f} ms of silence (vad.silence_ms)"))
            return
        prepared = await self._speculation_result(turn)
        if self._turn is not turn:
            return
        signals = self._signals(turn, prepared)
        verdict = decide(signals, silence, self.settings.turn) if signals is not None else None
        if verdict is None or verdict.decision != "max-hold":
            verdict = TurnVerdict("max-hold", f"{silence:.0f} ms of silence", verdict.signals if verdict else {})
        self._end_turn(speech_end_ms, verdict, prepared)

    def _silence_ms(self) -> float:
        return self._endpointer.pos_ms - self._endpointer.last_speech_ms

    async def _evaluate(self, turn: _Turn) -> None:
        """The end-of-turn decision, once ``eval_silence_ms`` of silence is heard and again every
        ``reeval_ms``; waits for the speculation, so decisions depend on audio time, not on how fast
        the audio arrives (a file fed at once decides as a microphone does)."""
        silence = self._silence_ms()
        if silence < turn.next_eval_ms or turn.speculation is None:
            return
        prepared = await self._speculation_result(turn)
        if self._turn is not turn or not turn.paused:
            return
        signals = self._signals(turn, prepared)
        if signals is None:  # the speculation failed: the hard end decides
            turn.next_eval_ms = float("inf")
            return
        verdict = decide(signals, silence, self.settings.turn)
        turn.next_eval_ms = silence + self.settings.turn.reeval_ms
        if verdict.decision == "incomplete":
            if verdict.reason != turn.last_reason:
                turn.last_reason = verdict.reason
                await self._emit(TurnDecision(
                    session_id=self.session_id, turn_id=turn.turn_id, stage="turn", decision="incomplete",
                    reason=verdict.reason, silence_ms=round(silence, 1), audio_ms=self._endpointer.last_speech_ms,
                    signals=verdict.signals,
                ))  # fmt: skip
            return
        self._endpointer.end_now()
        self._end_turn(self._endpointer.last_speech_ms, verdict, prepared)

    async def _speculation_result(self, turn: _Turn) -> _Prepared | None:
        task = turn.speculation
        if task is None:
            return None
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():  # the speculation was discarded, not this coroutine
                return None
            raise
        except Exception as exc:  # a failed speculation costs the early decision, not the turn
            log.warning("speculation for %s failed: %s", turn.turn_id, exc)
            return None

    def _signals(self, turn: _Turn, prepared: _Prepared | None) -> TurnSignals | None:
        if prepared is None:
            return None
        speech_ms = max(0.0, self._endpointer.last_speech_ms - turn.start_ms)
        return TurnSignals(
            words=tuple(prepared.hyp.text.split()), tokens=prepared.tokens, nlu=prepared.parsed.result,
            plan_action=prepared.plan.action if prepared.plan is not None else None, expected=self._expected,
            smart_turn=prepared.smart_turn, speech_ms=speech_ms, held_words=prepared.held_words,
            speculation_ms=prepared.timings_ms,
        )  # fmt: skip

    def _discard(self, turn: _Turn, keep: _Prepared | None = None) -> None:
        """Throw the turn's speculation away (speech resumed, or the turn ended without it)."""
        task, turn.speculation = turn.speculation, None
        turn.last_reason = ""
        if task is None:
            return
        if not task.done():
            task.cancel()
        elif keep is None and not task.cancelled() and task.exception() is None:
            audio = task.result().first_audio
            if audio is not None:
                audio.cancel()  # a synthesis not yet started is not started; a running one is dropped

    async def _prepare(self, turn: _Turn) -> _Prepared:
        """Decode, clean, parse, plan and start speaking the reply to the audio heard so far."""
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        hyp = await self._asr_call(turn, turn.asr.speculate)
        t_asr = time.perf_counter()
        words = hyp.text.split()
        tokens = await self._tag(turn.turn_id, words)
        held = 0
        if turn.tagger is not None and turn.tagger.holds_for_context and words and not self.c.guard.is_open("disfluency"):
            # The newest word always waits for its right context (that is the wait head's design);
            # an earlier word still held is one the tagger doubts: a repair may be under way.
            tagger = turn.tagger

            async def unknown() -> list[TaggedToken] | None:
                return None  # the streaming tagger failed: no word counts as held

            committed = await self.c.guard.call("disfluency", lambda: tagger.aupdate(words), unknown,
                                                lambda fault: self._report(turn.turn_id, fault))
            if committed is not None:
                settled = sum(1 for t in committed[: len(words) - 1] if not t.pending)
                held = max(0, len(words) - 1 - settled)
        parsed = await self._parse(turn.turn_id, tokens, hyp.alternatives)
        plan = await self.c.dialog.aplan(self.session_id, turn.turn_id, parsed.result, hyp.text, parsed.text)
        t_plan = time.perf_counter()
        smart_turn = None
        if self.c.smart_turn is not None and turn.audio:
            # Only when the words do not settle it (services.turn.policy.acoustic_needed): the audio
            # model then runs after the decode, not beside it, so the fast path does not share the CPU.
            probe = TurnSignals(tuple(words), tokens, parsed.result, plan.action if plan is not None else None,
                                self._expected, None, self._endpointer.last_speech_ms - turn.start_ms, held)
            if acoustic_needed(probe, self.settings.turn):
                smart_turn = await asyncio.to_thread(self.c.smart_turn.probability, np.concatenate(turn.audio))
        first_audio = None
        if self.settings.turn.speculative_reply and plan is not None:
            phrases = list(plan.phrases) or [plan.text]
            if phrases and phrases[0]:
                first_audio = loop.run_in_executor(None, self.c.tts.synthesize, phrases[0])
                first_audio.add_done_callback(_retrieve)  # a synthesis that fails unheard is not an error
        t_end = time.perf_counter()
        timings = {"asr": (t_asr - t0) * 1000, "tag_parse_plan": (t_plan - t_asr) * 1000, "smart_turn": (t_end - t_plan) * 1000}
        return _Prepared(hyp, tokens, parsed, plan, held, smart_turn, first_audio,
                         {k: round(v, 1) for k, v in timings.items()})

    async def end_of_turn(self) -> None:
        """The user says they are done (push to talk released): end the open turn now."""
        turn = self._turn
        if turn is None:
            return
        self._endpointer.end_now()
        self._end_turn(self._endpointer.last_speech_ms, TurnVerdict("complete", "the client sent end-of-turn"))

    async def _partial(self, turn: _Turn) -> None:
        if self.c.guard.is_open("asr"):  # the server is down: the final falls back, partials are skipped
            return
        try:
            remote = self.c.guard.is_remote("asr")
            hyp = await (asyncio.wait_for(turn.asr.hypothesis(), self.c.guard.deadline_s) if remote else turn.asr.hypothesis())
        except Exception as exc:  # a failed partial is not fatal: the final decides
            log.warning("partial decode failed: %s", exc)
            return
        if self._turn is not turn or not hyp.text:
            return
        words = hyp.text.split()
        stable = turn.stabilizer.update(words)
        await self._emit(
            TranscriptPartial(session_id=self.session_id, turn_id=turn.turn_id, stage="asr", text=hyp.text, stable_words=stable)
        )
        if turn.tagger is not None and stable:
            committed = await turn.tagger.aupdate(words[:stable])
            if committed:
                await self._emit(
                    TokensTagged(session_id=self.session_id, turn_id=turn.turn_id, stage="disfluency", tokens=tuple(committed), final=False)
                )

    # ----------------------------------------------------------------- turns
    async def _finish_turn(self, turn: _Turn, ended: SpeechEnded, prepared: _Prepared | None = None) -> None:
        try:
            if turn.partial_task is not None and not turn.partial_task.done():
                turn.partial_task.cancel()
            hyp = await self._asr_call(turn, turn.asr.final)
            await self._close_asr(turn)  # now, not after the reply: its queued partials need no decode
            final = TranscriptFinal(
                session_id=self.session_id, turn_id=turn.turn_id, stage="asr", text=hyp.text, raw_text=hyp.raw_text
            )
            await self._emit(final)
            if not hyp.text and self._expected is None:
                return  # a noise the VAD took for speech: nothing was asked, nothing to answer
            # Heard but not recognized while a question is open (a short "large" the decoder lost): the
            # dialog asks again, instead of the user waiting in silence for an answer that never comes.
            if prepared is not None and prepared.hyp.text != hyp.text:  # the final heard more: prepare anew
                prepared = None
            await self._respond(turn.turn_id, hyp.text, t_end_ns=ended.t_ns, t_asr_ns=final.t_ns,
                                endpoint_ms=ended.endpoint_delay_ms, prepared=prepared, alternatives=hyp.alternatives)
        except asyncio.CancelledError:
            raise
        except BackendUnavailable as exc:  # a stage and its fallback failed: say so, in words and in speech
            log.warning("turn %s: %s", turn.turn_id, exc)
            await self._emit(ErrorEvent(session_id=self.session_id, turn_id=turn.turn_id, stage="pipeline",
                                        code=exc.code, message=str(exc)))
            await self._apologize(turn.turn_id)
        except Exception as exc:
            log.exception("turn %s failed", turn.turn_id)
            await self._emit(ErrorEvent(session_id=self.session_id, turn_id=turn.turn_id, stage="pipeline",
                                        code=getattr(exc, "code", "internal"), message=str(exc) or type(exc).__name__))
            await self._apologize(turn.turn_id)
        finally:
            with contextlib.suppress(Exception):
                await self._close_asr(turn)
            self._replies.pop(turn.turn_id, None)
            if self._queued_notifications and self._turn is None:
                asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._flush_notifications()))

    async def say(self, text: str) -> str:
        """Run a text turn (skips VAD and ASR); returns its turn id once the reply is fully emitted."""
        turn_id = _turn_id(self.session_id)
        started = SpeechEnded(session_id=self.session_id, turn_id=turn_id, stage="text", audio_ms=0.0, endpoint_delay_ms=0.0)
        await self._emit(started)
        words = " ".join(text.lower().split())
        words = normalize_transcript(words)
        final = TranscriptFinal(session_id=self.session_id, turn_id=turn_id, stage="text", text=words, raw_text=text)
        await self._emit(final)
        task = asyncio.create_task(self._respond(turn_id, words, t_end_ns=started.t_ns, t_asr_ns=final.t_ns, endpoint_ms=0.0))
        self._replies[turn_id] = task
        try:
            await task
        finally:
            self._replies.pop(turn_id, None)
        return turn_id

    async def _respond(self, turn_id: str, transcript: str, *, t_end_ns: int, t_asr_ns: int, endpoint_ms: float,
                       prepared: _Prepared | None = None, alternatives: tuple[str, ...] = ()) -> None:
        """Disfluency → NLU → dialog → TTS for one final transcript. Cancelling stops the reply audio.

        With a speculation of the same transcript (``prepared``), its labels and parse are reused, the
        dialog commits the turn, and when the committed reply is the planned one, its first phrase's
        audio (synthesized during the silence) goes out at once.
        """
        sid = self.session_id
        words = transcript.split()
        tokens = prepared.tokens if prepared is not None else await self._tag(turn_id, words)
        tagged = TokensTagged(session_id=sid, turn_id=turn_id, stage="disfluency", tokens=tokens, final=True)
        await self._emit(tagged)
        if prepared is not None:
            parsed = prepared.parsed
        else:
            parsed = await self._parse(turn_id, tokens, alternatives)
        clean, nlu = parsed.text, parsed.result
        nlu_event = NluResultEvent(session_id=sid, turn_id=turn_id, stage="nlu", result=nlu, text=clean,
                                   restored=parsed.restored,
                                   snapped=tuple((c.heard, c.value) for c in parsed.corrections),
                                   hypothesis=parsed.hypothesis)
        await self._emit(nlu_event)
        reply = await self.c.dialog.ahandle(sid, turn_id, nlu, transcript, clean)
        self._hint_words = list(reply.hint_words or [])
        self._expected = reply.expected
        action = DialogAction(
            session_id=sid, turn_id=turn_id, stage="dialog", text=reply.text, phrases=tuple(reply.phrases),
            action=reply.action, end_session=reply.end_session, intent=getattr(reply, "intent", None),
            frame=None if getattr(reply, "frame", None) is None else dict(reply.frame),
        )
        await self._emit(action)
        latency = {
            "endpoint": round(endpoint_ms, 3),
            "asr": _ms(t_end_ns, t_asr_ns),
            "disfluency": _ms(t_asr_ns, tagged.t_ns),
            "nlu": _ms(tagged.t_ns, nlu_event.t_ns),
            "dialog": _ms(nlu_event.t_ns, action.t_ns),
        }
        first: asyncio.Future[np.ndarray] | None = None
        if prepared is not None and prepared.plan is not None and prepared.first_audio is not None:
            if (prepared.plan.text, list(prepared.plan.phrases)) == (reply.text, list(reply.phrases)):
                first = prepared.first_audio
            else:  # the committed reply differs from the plan (another turn came between): speak the real one
                prepared.first_audio.cancel()
        level = self.volume.for_reply(getattr(reply, "volume", None))
        first_audio_ns = await self._speak(turn_id, list(reply.phrases) or [reply.text], first=first, level=level)
        if first_audio_ns is not None:
            latency["tts_first_audio"] = _ms(action.t_ns, first_audio_ns)
            latency["total"] = _ms(t_end_ns, first_audio_ns)
        latency = {k: round(v, 3) for k, v in latency.items()}
        await self._emit(StageMetrics(session_id=sid, turn_id=turn_id, stage="pipeline", latency_ms=latency))
        with contextlib.suppress(Exception):
            self.c.dialog.log_latencies(sid, turn_id, latency)

    async def _speak(self, turn_id: str, phrases: list[str], first: asyncio.Future[np.ndarray] | None = None,
                     level: int | None = None) -> int | None:
        """Synthesize phrase by phrase; emit 40 ms chunks; returns the first chunk's time.

        ``first``: the first phrase's audio, already being synthesized (a speculative reply).
        ``level``: the speaker volume to play it at (assistant/output_volume.py); None: the session's.
        """
        level = self.volume.level if level is None else level
        rate = self.c.tts.sample_rate_hz
        chunk = max(1, int(rate * self.settings.tts.chunk_ms / 1000))
        first_ns: int | None = None
        index = 0
        emitted_s, t_first = 0.0, 0.0
        lead_s = self.settings.tts.max_lead_s
        # Synthesis of phrase i+1 starts as soon as phrase i is queued, so it overlaps with phrase i
        # being played by the consumer; for a real-time listener (pace_output), only once less than
        # tts.max_lead_s of audio is left to play.
        next_audio = self._synthesize(turn_id, phrases[0], first) if phrases else None
        try:
            for i in range(len(phrases)):
                assert next_audio is not None
                audio = output_volume.apply(await next_audio, level)
                if self.pace_output and i + 1 < len(phrases) and first_ns is not None:
                    ahead = emitted_s - (time.monotonic() - t_first)
                    if ahead > lead_s:
                        await asyncio.sleep(ahead - lead_s)
                next_audio = self._synthesize(turn_id, phrases[i + 1]) if i + 1 < len(phrases) else None
                if first_ns is None:
                    t_first = time.monotonic()
                emitted_s += len(audio) / rate
                n = max(1, -(-len(audio) // chunk))
                for j in range(n):
                    last = i == len(phrases) - 1 and j == n - 1
                    ev = AudioChunk(session_id=self.session_id, turn_id=turn_id, stage="tts", pcm=audio[j * chunk : (j + 1) * chunk],
                                    sample_rate_hz=rate, chunk_index=index, final=last)
                    index += 1
                    if first_ns is None:
                        first_ns = ev.t_ns
                    await self._emit(ev)
        finally:
            if next_audio is not None and not next_audio.done():  # cancelled (barge-in): stop the next phrase
                next_audio.cancel()
        return first_ns

    # ----------------------------------------------------------------- stage calls under the guard
    async def _report(self, turn_id: str, fault: StageFault) -> None:
        """Tell the session a stage failed; the turn goes on with the fallback (assistant.stage_guard)."""
        fallback = self.c.baseline is not None
        await self._emit(ErrorEvent(session_id=self.session_id, turn_id=turn_id, stage=fault.stage, code=fault.code,
                                    message=fault.message + ("; the local fallback answers" if fallback else ""),
                                    recovered=fallback))

    async def _guarded(self, turn_id: str, stage: str, primary: Callable[[], Awaitable[T]],
                       fallback: Callable[[], Awaitable[T]] | None) -> T:
        return await self.c.guard.call(stage, primary, fallback if self.c.baseline is not None else None,
                                       lambda fault: self._report(turn_id, fault))

    async def _asr_call(self, turn: _Turn, call: Callable[[], Awaitable[Hypothesis]]) -> Hypothesis:
        """A final-quality decode of the turn (speculate or final); falls back to tiny.en in process
        on the turn's own audio (kept from its first frame), only for a remote ASR."""
        baseline = self.c.baseline

        async def local() -> Hypothesis:
            assert baseline is not None
            asr = await asyncio.to_thread(lambda: baseline.asr)
            stream = asr.open_stream(self.session_id, turn.turn_id, self._asr_hints() or None)
            try:
                await stream.accept(np.concatenate(turn.audio) if turn.audio else np.zeros(0, np.int16))
                return await stream.final()
            finally:
                await stream.aclose()

        if not self.c.guard.is_remote("asr"):
            return await call()
        return await self._guarded(turn.turn_id, "asr", call, local)

    async def _accept(self, turn: _Turn, frame: np.ndarray) -> None:
        """Stream a frame to the turn's ASR; a failing stream loses its partials, not the turn (the
        turn's audio is kept, and the final falls back to it)."""
        try:
            await turn.asr.accept(frame)
        except Exception as exc:
            if not turn.accept_failed:
                log.warning("ASR stream of %s failed: %s", turn.turn_id, exc)
                turn.accept_failed = True

    async def _close_asr(self, turn: _Turn) -> None:
        try:
            await asyncio.wait_for(turn.asr.aclose(), self.c.guard.deadline_s)
        except Exception as exc:  # the server is gone: nothing to free there
            log.debug("closing the ASR stream of %s: %s", turn.turn_id, exc)

    async def _tag(self, turn_id: str, words: list[str]) -> tuple[TaggedToken, ...]:
        baseline = self.c.baseline

        async def local() -> list[TaggedToken]:
            assert baseline is not None
            return await baseline.tagger.atag(words)

        return tuple(await self._guarded(turn_id, "disfluency", lambda: self.c.tagger.atag(words), local))

    async def _parse(self, turn_id: str, tokens: tuple[TaggedToken, ...],
                     alternatives: tuple[str, ...] = ()) -> GuardedParse:
        baseline, expected, guard, lexicon = self.c.baseline, self._expected, self.settings.nlu_guard, self.c.lexicon

        async def local() -> GuardedParse:
            assert baseline is not None
            return await aparse_tagged(baseline.nlu, tokens, expected, guard=guard, lexicon=lexicon,
                                       alternatives=alternatives)

        return await self._guarded(turn_id, "nlu", lambda: aparse_tagged(self.c.nlu, tokens, expected, guard=guard,
                                                                         lexicon=lexicon, alternatives=alternatives),
                                   local)

    def _synthesize(self, turn_id: str, text: str, started: asyncio.Future[np.ndarray] | None = None) -> asyncio.Future[np.ndarray]:
        """One phrase's audio at the TTS's rate (``started``: its synthesis, already under way)."""
        loop = asyncio.get_running_loop()
        tts, baseline = self.c.tts, self.c.baseline

        async def primary() -> np.ndarray:
            return await (started or loop.run_in_executor(None, tts.synthesize, text))

        async def local() -> np.ndarray:
            assert baseline is not None
            fallback = await asyncio.to_thread(lambda: baseline.tts)
            audio = await asyncio.to_thread(fallback.synthesize, text)
            if fallback.sample_rate_hz == tts.sample_rate_hz:
                return audio
            return to_pcm16(resample(audio.astype(np.float32) / 32768.0, fallback.sample_rate_hz, tts.sample_rate_hz))

        if self.c.guard.is_remote("tts"):
            return asyncio.ensure_future(self._guarded(turn_id, "tts", primary, local))
        return asyncio.ensure_future(primary())  # the embedded TTS has its own espeak-ng fallback

    async def _apologize(self, turn_id: str) -> None:
        """The turn could not be answered: say so in speech, with whatever TTS still works."""
        try:
            await self._speak(turn_id, list(APOLOGY))
        except Exception as exc:
            log.warning("could not speak the apology for %s: %s", turn_id, exc)

    async def notify(self, text: str) -> None:
        """Speak a message the user did not ask for now (a timer or alarm firing).

        If the user is speaking, the message waits until their turn has been
        answered, so it never talks over them or steals their turn.
        """
        if self._turn is not None or self._replies:
            self._queued_notifications.append(text)
            return
        await self._speak_notification(text)

    async def _speak_notification(self, text: str) -> None:
        turn_id = _turn_id(self.session_id, "n")
        phrases = split_phrases(text)
        await self._emit(DialogAction(session_id=self.session_id, turn_id=turn_id, stage="dialog", text=text,
                                      phrases=tuple(phrases), action="notify"))
        task = asyncio.create_task(self._speak(turn_id, phrases, level=self.volume.for_notification()))
        self._replies[turn_id] = task  # type: ignore[assignment]
        try:
            await task
        finally:
            self._replies.pop(turn_id, None)

    async def _flush_notifications(self) -> None:
        while self._queued_notifications and self._turn is None:
            await self._speak_notification(self._queued_notifications.pop(0))

    async def cancel_turn(self, turn_id: str, reason: str = "barge-in", played_ms: int | None = None) -> None:
        """Cancel a reply: no more audio of ``turn_id`` is emitted after this returns."""
        task = self._replies.pop(turn_id, None)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._emit(TurnCancelled(session_id=self.session_id, turn_id=turn_id, stage="pipeline", reason=reason))
        with contextlib.suppress(Exception):
            self.c.dialog.mark_interrupted(self.session_id, turn_id, played_ms or 0)

    async def flush(self, trailing_silence_ms: int | None = None, realtime: bool = False) -> None:
        """End of input: feed silence so an open turn ends, then wait for every reply."""
        ms = trailing_silence_ms if trailing_silence_ms is not None else self._endpointer.silence_ms + 200
        frames = int(ms / FRAME_MS) + 1
        silence = np.zeros(FRAME_SAMPLES, np.int16)
        t0 = time.monotonic()
        for i in range(frames):
            if self._turn is None and not self._endpointer.in_speech and i > 0:
                break
            await self.feed(silence)
            if realtime:
                await _sleep_until(t0 + (i + 1) * FRAME_MS / 1000)
        await self.drain()

    async def drain(self) -> None:
        """Wait until every running reply has finished."""
        while self._replies:
            await asyncio.gather(*list(self._replies.values()), return_exceptions=True)

    async def close(self) -> None:
        """End the session: cancel replies and release the open turn's ASR stream."""
        for turn_id in list(self._replies):
            task = self._replies.pop(turn_id)
            task.cancel()
        turn, self._turn = self._turn, None
        if turn is not None:
            self._discard(turn)
            if turn.partial_task is not None:
                turn.partial_task.cancel()
            with contextlib.suppress(Exception):
                await turn.asr.aclose()
        self.closed = True

    def _asr_hints(self) -> list[str]:
        """Prompt words for the next turn: domain vocabulary (optional), then the dialog's expected answers."""
        a = self.settings.asr
        words: list[str] = []
        if a.domain_hints:
            words += domain_hint_words()
        if a.hint_domains:
            words += vocabulary_hint_words(tuple(a.hint_domains))
        if a.use_prompt_hints:
            words += self._hint_words
        return words

    def set_echo_guard(self, speaker_active: bool, boosted_threshold: float = 0.85) -> None:
        """Raise the VAD threshold while our own reply plays (full-duplex barge-in).

        Leaked reply audio scores lower than a user speaking into the
        microphone, so a higher threshold during playback lets the user
        interrupt without the reply interrupting itself.
        """
        base = self.settings.vad.threshold
        on = max(base, boosted_threshold) if speaker_active else base
        self._endpointer.on = on
        self._endpointer.off = max(0.05, on - 0.15)

    async def _emit(self, event: Event) -> None:
        self.events.put_nowait(event)

    @property
    def busy(self) -> bool:
        return bool(self._replies)


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def feed_paced(conv: Conversation, pcm: np.ndarray, *, realtime: bool = True, chunk_ms: int = 32) -> None:
    """Feed a recording as a microphone would: ``chunk_ms`` chunks at real-time pace (or as fast as possible)."""
    step = int(16000 * chunk_ms / 1000)
    t0 = time.monotonic()
    for k, i in enumerate(range(0, len(pcm), step)):
        await conv.feed(pcm[i : i + step])
        if realtime:
            await _sleep_until(t0 + (k + 1) * chunk_ms / 1000)
        else:
            await asyncio.sleep(0)
    await conv.flush(realtime=realtime)




def _retrieve(future: asyncio.Future[object]) -> None:
    """Done callback: read a future's exception, so an unheard failure is not logged as never retrieved."""
    if not future.cancelled():
        future.exception()

