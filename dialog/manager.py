"""The dialog manager: NLU result in, what to say and do out.

:class:`DialogManager` keeps one :class:`~dialog.state.SessionState` per session
and decides each turn synchronously (well under a millisecond plus one SQLite
commit). The conversation logic lives here; the skills (:mod:`dialog.skills`)
only know their own task. A turn goes::

    meta intent?  Cancel / Repeat / Help / Greet / Goodbye work at any point
    a task in focus?
        confirming: Affirm -> execute; Deny -> drop (or, with slots, correct and re-confirm)
        filling:    same intent / Deny+slots / slots the task understands -> merge, continue;
                    an unrecognised answer -> look for the expected value in the text, else re-ask
                    (three tries, then give up); another intent -> suspend this task, start that one
    a new task:   a correction of the task just finished ("no, make it large") -> the skill amends it;
                  otherwise carry context over ("what about tomorrow?") and start filling slots
    progress:     skill.check -> ask for the first missing required slot -> confirm if needed -> execute,
                  then resume a suspended task if there is one

State, skill side effects and the logged turn are committed in one SQLite
transaction before :meth:`DialogManager.handle` returns, so ``kill -9`` after a
reply loses nothing the user heard about.

Timers and alarms are rows in the database; :meth:`DialogManager.run_scheduler`
fires them on the event loop and tells the session through a callback. Pending
alarms survive a restart; ones that fell due while the process was down are
announced (as missed) as soon as the scheduler runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.sound_alike import closest
from core.text import split_phrases
from core.types import OUT_OF_SCOPE, NluHints, NluResult, SlotValue
from dialog.base import DialogBackend
from dialog.help import skills_sentence
from dialog.responses import DEFAULT_FILE, Responses
from dialog.skills import load_builtin_skills
from dialog.skills.base import DATA_DIR, REGISTRY, Reply, Skill, SkillConfig, SkillContext
from dialog.skills.media import DEFAULT_VOLUME, speaker_volume
from dialog.speech_format import spoken_list
from dialog.state import Frame, LastReply, SessionState, Slot
from dialog.store import Store

log = logging.getLogger(__name__)

META_INTENTS = frozenset({"Cancel", "Repeat", "Help", "Greet", "Goodbye"})
AMEND_WINDOW_TURNS = 3
"""A correction ("no, make it large") amends a finished task only this many turns later at most."""
MAX_ASKS = 3
"""Times a slot is asked before the task is dropped."""

_CORRECTION_CUE = re.compile(
    r"^\s*(no\b|nope\b|nah\b|actually\b|sorry\b|wait\b|make (it|that)\b|change (it|that)\b|"
    r"instead\b|i meant\b|i mean\b|rather\b|not\b)",
    re.I,
)
_FOLLOW_UP = re.compile(
    r"^\s*(and|what about|how about|what if|actually|no|nope|nah|make it|make that|change it|instead|rather|"
    r"i meant|in|on|at|for|then|sorry)\b",
    re.I,
)
"""Openings of a follow-up that leans on the previous request ("and in Paris?", "no, make it large")."""
_ADD_ON = re.compile(r"^\s*(with|and|plus|also)\b", re.I)
"""Openings of an add-on to the request just finished ("... with brown sugar" after a pause)."""
_WARM_UP_TURNS: list[tuple[str, dict[str, str], str]] = [
    ("orderDrink", {"coffeeDrink": "latte"}, "i'd like a latte"),
    (OUT_OF_SCOPE, {}, "small"),
    ("Deny", {}, "no, make it large"),
    ("GetWeather", {"city": "paris"}, "weather in paris"),
    (OUT_OF_SCOPE, {}, "what about tomorrow at 7 pm"),
    ("SetAlarm", {"time": "07:00"}, "set an alarm for seven am"),
    (OUT_OF_SCOPE, {}, "actually eight thirty"),
    ("SetTimer", {"duration": "PT5M"}, "timer for five minutes"),
    ("BookRestaurant", {}, "book a table for four at sakura tomorrow at seven pm"),
    ("Deny", {}, "no, five people"),
    ("Affirm", {}, "yes"),
    ("DeviceOn", {"device": "lights"}, "turn on the kitchen lights"),
    ("SetDeviceLevel", {}, "set the bedroom lights to fifty percent"),
    ("PlayMusic", {}, "play some adele"),
    ("AddToPlaylist", {}, "add this song to my chill playlist"),
    ("RateBook", {"object_name": "dune"}, "rate dune four stars"),
    ("SearchScreeningEvent", {}, "what's on at the rex tonight"),
    ("SearchCreativeWork", {"object_name": "dune"}, "find dune"),
    ("GetTime", {"city": "tokyo"}, "what time is it in tokyo"),
    ("GetDate", {}, "what's the date"),
    ("AddToList", {"item": "eggs and bread", "listName": "shopping"}, "add eggs and bread to my shopping list"),
    ("ReadList", {}, "what's on my shopping list"),
    ("SetReminder", {"task": "water the plants", "time": "17:00"}, "remind me to water the plants at five"),
    ("QueryCalendar", {"date": "tomorrow"}, "what's on my calendar tomorrow"),
    ("SetVolume", {"volumeChange": "up"}, "turn it up"),
    ("MediaControl", {"mediaCommand": "next"}, "next song"),
    ("Repeat", {}, "repeat"),
    ("Help", {}, "help"),
]
"""Scripted turns run against a scratch database at start-up (see ``warm_up``)."""
_CHARS_PER_S = 14.0
"""Speaking rate used to guess how much of an interrupted reply was heard."""


@dataclass(slots=True)
class DialogResponse:
    """The dialog's answer to one turn.

    Attributes:
        text: the whole reply.
        phrases: *text* cut into phrases for the TTS; the first is short ("Sure.", "Okay,").
        action: what happened: ``ask_slot``, ``confirm``, ``done``, ``cancelled``, ``fallback``,
            ``repeat``, ``help``, ``greet``, ``goodbye``, ``ack``, ``error`` (``notify`` for fired alarms).
        intent: the intent the reply is about (the task's intent, or the meta intent).
        frame: slot -> spoken value of the task this turn was about (the active one, or the one
            just finished); empty when there is none.
        end_session: the user said goodbye.
        expected: what we expect next (biases NLU); ``None`` when nothing in particular.
        hint_words: words likely in the next answer (ASR prompt hints).
        session_id: the session.
        turn_id: the turn answered.
        volume: the session's speaker volume after this turn, 0 (muted) to 10 (``SetVolume``,
            default 5): what the orchestrator scales the reply and later audio by.
    """

    text: str
    phrases: list[str]
    action: str
    intent: str | None = None
    frame: dict[str, str] = field(default_factory=dict)
    end_session: bool = False
    expected: NluHints | None = None
    hint_words: list[str] = field(default_factory=list)
    session_id: str = ""
    turn_id: str = ""
    volume: int = DEFAULT_VOLUME

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "phrases": list(self.phrases),
            "action": self.action,
            "intent": self.intent,
            "frame": dict(self.frame),
            "end_session": self.end_session,
            "expected": (
                {"active_intent": self.expected.active_intent, "expected_slot": self.expected.expected_slot}
                if self.expected
                else None
            ),
            "hint_words": list(self.hint_words),
            "volume": self.volume,
        }


@dataclass(frozen=True, slots=True)
class Notification:
    """A timer or alarm that fired: who to tell and what to say."""

    session_id: str
    text: str
    phrases: list[str]
    alarm_id: int
    kind: str


@dataclass(slots=True)
class _Out:
    parts: list[str]
    action: str
    intent: str | None = None
    frame: Frame | None = None
    end_session: bool = False
    expected: NluHints | None = None
    hint_words: list[str] = field(default_factory=list)


class _Planned(Exception):  # noqa: N818 (control flow, not an error)
    """Carries a planned reply out of the transaction it must not commit."""

    def __init__(self, response: DialogResponse) -> None:
        super().__init__("planned turn")
        self.response = response


def _no_wake() -> None:
    """A planned turn schedules nothing."""


_GLUE = frozenset({
    "a", "an", "the", "to", "for", "of", "in", "on", "at", "my", "me", "i", "it", "and", "with", "some", "is",
    "please", "um", "uh", "that", "this", "you", "your",
})  # fmt: skip
"""Words that say nothing about which request a short utterance is."""


_VOCABULARY_LOCK = threading.Lock()


def _intent_vocabulary() -> dict[str, frozenset[str]]:
    """The words each intent's examples and templates use (the built-in domains' NLU data).

    Built once per process, ~0.5 s (the domains' YAML and their template expansions): a server
    builds it at start-up in the background (:meth:`DialogManager.warm`), so no live turn pays for
    it; a turn that needs it during that build waits for it rather than starting a second one. A
    one-shot ``quickturn say`` builds it only if a turn needs it."""
    with _VOCABULARY_LOCK:
        return _build_intent_vocabulary()


@functools.lru_cache(maxsize=1)
def _build_intent_vocabulary() -> dict[str, frozenset[str]]:
    from domains.loader import load_domains

    words: dict[str, set[str]] = {}
    for domain in load_domains():
        for example in [*domain.examples, *domain.expand(per_template=20)]:
            words.setdefault(example.intent, set()).update(example.words)
    return {intent: frozenset(w - _GLUE) for intent, w in words.items()}


def _off_question(intent: str, text: str) -> bool:
    """Whether a short utterance (one or two words) the NLU read as ``intent`` says none of that
    intent's own words: then it is no evidence of another request ("maricato" as PlayMusic, "oca o"
    as Goodbye, "on the" as MediaControl) and, with a question open, not worth leaving it for.
    Unknown intents and longer utterances are taken as parsed."""
    words = text.split()
    vocabulary = _intent_vocabulary().get(intent)
    if not words or len(words) > 2 or vocabulary is None:
        return False
    return not any(w in vocabulary for w in words if w not in _GLUE)


class DialogManager(DialogBackend):
    """Multi-session, persistent dialog manager.

    Args:
        db_path: SQLite file for sessions, turns, alarms and skill data; ``None`` keeps everything
            in memory (tests, ``quickturn say`` without a session).
        clock: returns the current time; a naive datetime is taken to be in *timezone*.
            Defaults to the wall clock.
        timezone: IANA name of the household's time zone (alarms, dates, "what time is it");
            ``None`` means the machine's zone (``$TZ`` or ``/etc/localtime``), else UTC.
        forecast_file: the offline weather provider's file (default ``dialog/data/forecast.json``).
        weather_provider: ``"offline"`` (default) or ``"open-meteo"`` (network, with timeout; a failure
            is spoken as an apology), or a provider object (see :mod:`dialog.skills.weather`).
        data_dir: directory of the skills' offline data.
        responses_file: the response templates.
        skills: names of the skills to enable (default: all registered).
        min_confidence: NLU results below this are treated as out of scope (their slots still count
            as an answer to a pending question).
        durable: fsync every commit (``synchronous=FULL``, the default, so a power loss does not drop
            confirmed turns and timers); ``False`` for scratch databases. See :class:`~dialog.store.Store`.
        warm_up: run a few scripted turns against a scratch in-memory database at construction, so
            the first real turn does not pay for compiling regular expressions and priming caches
            (~15 ms in a fresh process, e.g. each ``quickturn say``).
        sound_alike: a short reply to a question with options fills the option it clearly sounds
            like, when the NLU found no answer in it (:func:`core.sound_alike.closest`).
    """

    def __init__(
        self,
        db_path: Path | str | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        timezone: str | None = None,
        forecast_file: Path | None = None,
        weather_provider: object = "offline",
        data_dir: Path = DATA_DIR,
        responses_file: Path = DEFAULT_FILE,
        skills: Iterable[str] | None = None,
        min_confidence: float = 0.3,
        durable: bool = True,
        warm_up: bool = True,
        sound_alike: bool = True,
    ) -> None:
        self.tz = ZoneInfo(timezone or local_timezone())
        self._clock = clock
        self.store = Store(db_path, durable=durable)
        self.responses = Responses(responses_file)
        self.min_confidence = min_confidence
        self.sound_alike = sound_alike
        load_builtin_skills()
        config = SkillConfig(
            data_dir=data_dir,
            tz=self.tz,
            options={"weather": {"forecast_file": forecast_file, "provider": weather_provider}},
        )
        wanted = set(skills) if skills is not None else None
        unknown = (wanted or set()) - set(REGISTRY)
        if unknown:
            raise ValueError(f"unknown skills {sorted(unknown)}; registered: {sorted(REGISTRY)}")
        self.skills: dict[str, Skill] = {
            name: cls(config) for name, cls in REGISTRY.items() if wanted is None or name in wanted
        }
        self._by_intent: dict[str, Skill] = {i: s for s in self.skills.values() for i in s.intents}
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        if warm_up:
            self._warm_up()

    def warm(self) -> None:
        _intent_vocabulary()

    def _warm_up(self) -> None:
        scratch = Store(None)
        state = SessionState("__warm_up__")
        try:
            for i, (intent, slots, text) in enumerate(_WARM_UP_TURNS):
                nlu = NluResult(intent, 1.0, tuple(SlotValue(k, v, v, 0, 0) for k, v in slots.items()))
                ctx = SkillContext("__warm_up__", f"w{i}", self.now(), scratch, state, text)
                with scratch.transaction():
                    state.turns += 1
                    self._respond(ctx, self._decide(ctx, nlu))
            self.store.load_session("__warm_up__")
        except Exception:  # warming up is an optimisation; a failure here must not stop the assistant
            log.debug("dialog warm-up failed", exc_info=True)
        finally:
            scratch.close()

    # ------------------------------------------------------------------ public API

    @property
    def intents(self) -> list[str]:
        """Every intent some enabled skill handles."""
        return sorted(self._by_intent)

    def now(self) -> datetime:
        """The current time in the household's time zone."""
        t = self._clock() if self._clock else datetime.now(self.tz)
        return t.replace(tzinfo=self.tz) if t.tzinfo is None else t.astimezone(self.tz)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> DialogManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def session(self, session_id: str) -> SessionState:
        """The committed state of *session_id* (read from the database; new if unknown)."""
        with self._lock:
            return self._load(session_id)

    def _load(self, session_id: str) -> SessionState:
        # Read inside the turn's write transaction, so several processes sharing one database
        # (``quickturn say --session`` calls, a server) serialize their read-modify-write.
        raw = self.store.load_session(session_id)
        return SessionState.from_json(raw) if raw else SessionState(session_id)

    def handle(
        self, session_id: str, turn_id: str, nlu: NluResult, transcript: str = "", clean_text: str = ""
    ) -> DialogResponse:
        """Decide the reply to one turn and commit it (state, side effects, log) before returning.

        Args:
            session_id: the conversation; unknown ids start a new session, known ones resume.
            turn_id: the turn (logged; a repeated id is logged again, not deduplicated).
            nlu: the NLU result for the turn.
            transcript: the ASR text (logged).
            clean_text: the disfluency-cleaned text; used to recognise corrections ("no, ...")
                and to find an answer the NLU missed.

        Returns:
            The reply. A skill that raises gives a spoken apology (action ``error``), never an exception.
        """
        with self._lock:
            now = self.now()
            try:
                with self.store.transaction():
                    return self._turn(session_id, turn_id, now, nlu, transcript, clean_text)
            except Exception:
                log.exception("dialog turn %s/%s failed; state rolled back", session_id, turn_id)
                # The transaction rolled back; the database holds the last committed state.
                with self.store.transaction():
                    return self._turn(session_id, turn_id, now, nlu, transcript, clean_text, failed=True)

    async def ahandle(
        self, session_id: str, turn_id: str, nlu: NluResult, transcript: str = "", clean_text: str = ""
    ) -> DialogResponse:
        """:meth:`handle` in a worker thread: the turn's commit waits for the disk (``synchronous=FULL``,
        0.4-4 ms, more on a busy disk), and on the event loop that wait would hold every other session."""
        return await asyncio.to_thread(self.handle, session_id, turn_id, nlu, transcript, clean_text)

    def plan(
        self, session_id: str, turn_id: str, nlu: NluResult, transcript: str = "", clean_text: str = ""
    ) -> DialogResponse:
        """The reply :meth:`handle` would give now, leaving no trace: the turn runs inside a
        transaction that is rolled back, and the timer scheduler is not woken.

        Replies are deterministic (templates are chosen by session, turn number and key), so
        :meth:`handle` with the same arguments gives the same words, unless another turn of the
        session was committed in between or the clock crossed a boundary a skill reads.
        """
        with self._lock:
            now = self.now()
            try:
                return self._rolled_back(lambda: self._turn(session_id, turn_id, now, nlu, transcript, clean_text,
                                                            wake=False))
            except Exception:
                log.exception("planning dialog turn %s/%s failed", session_id, turn_id)
                return self._rolled_back(lambda: self._turn(session_id, turn_id, now, nlu, transcript, clean_text,
                                                            failed=True, wake=False))

    def _rolled_back(self, run: Callable[[], DialogResponse]) -> DialogResponse:
        """``run()`` inside a transaction that is always rolled back; its reply."""
        try:
            with self.store.transaction():
                raise _Planned(run())
        except _Planned as planned:
            return planned.response

    def _turn(
        self, session_id: str, turn_id: str, now: datetime, nlu: NluResult, transcript: str, clean_text: str,
        failed: bool = False, wake: bool = True,
    ) -> DialogResponse:  # fmt: skip
        state = self._load(session_id)
        ctx = SkillContext(
            session_id=session_id,
            turn_id=turn_id,
            now=now,
            store=self.store,
            state=state,
            text=clean_text or transcript,
            wake_scheduler=self._wake_scheduler if wake else _no_wake,
        )
        state.turns += 1
        out = _Out([self._say(ctx, "error")], "error", nlu.intent) if failed else self._decide(ctx, nlu)
        resp = self._respond(ctx, out)
        self._commit_turn(state, turn_id, transcript, clean_text, nlu, resp)
        return resp

    def expectation(self, session_id: str) -> tuple[NluHints | None, list[str]]:
        """The open question of the session's committed state, as the reply that asked it gave it
        (see :meth:`_ask` and :meth:`_repeat`): the slot asked for and its hint words, or a yes/no."""
        with self._lock:
            state = self._load(session_id)
            top = state.top
            if top is None or state.ended:
                return None, []
            if top.status == "confirming":
                return NluHints(top.intent, None), ["yes", "no"]
            if top.expected_slot is None:
                return NluHints(top.intent, None), []
            ctx = SkillContext(session_id=session_id, turn_id="", now=self.now(), store=self.store, state=state, text="")
            hints = self._skill(top.intent).hints(ctx, top.intent, top.expected_slot)
            return NluHints(top.intent, top.expected_slot), list(hints)[:20]

    def log_latencies(self, session_id: str, turn_id: str, latencies_ms: dict[str, float]) -> None:
        """Attach per-stage latencies (milliseconds) to the stored turn; merged with earlier ones."""
        self.store.update_turn(session_id, turn_id, latencies=latencies_ms)

    def mark_interrupted(self, session_id: str, turn_id: str, played_ms: int) -> None:
        """Record that the user barged in after *played_ms* of the reply to *turn_id*.

        When the cut came before the end of the reply, a question in it may not have been heard:
        a bare "yes" right after will not confirm a booking without asking again.
        """
        with self._lock:
            with self.store.transaction():
                self.store.update_turn(session_id, turn_id, played_ms=played_ms)
                state = self._load(session_id)
                if state.last.turn_id == turn_id:
                    state.last.played_ms = int(played_ms)
                    state.last.heard_all = played_ms >= _speech_ms(state.last.phrases)
                    self.store.save_session(session_id, state.to_json())

    def history(self, session_id: str) -> list[dict[str, Any]]:
        """The logged turns of a session (transcript, NLU, response, latencies, played_ms)."""
        return [
            {
                "turn_id": t.turn_id,
                "transcript": t.transcript,
                "clean_text": t.clean_text,
                "nlu": t.nlu,
                "response": t.response,
                "latencies": t.latencies,
                "played_ms": t.played_ms,
            }
            for t in self.store.turns(session_id)
        ]

    # ------------------------------------------------------------------ timers and alarms

    def fire_due(self, now: datetime | None = None) -> list[Notification]:
        """Mark every timer/alarm due at *now* (default: the clock) as fired and log it in its session.

        Sans-I/O half of the scheduler: :meth:`run_scheduler` calls it; tests call it with a fake clock.
        """
        ts = (now or self.now()).timestamp()
        out: list[Notification] = []
        with self._lock, self.store.transaction():
            for alarm in self.store.due_alarms(ts):
                state = self._load(alarm.session_id)
                state.turns += 1
                missed = ts - alarm.due_at > 120
                key = f"notify.{alarm.kind}{'.missed' if missed else ''}"
                text = self.responses.render(
                    key, {"label": alarm.label}, seed=f"{alarm.session_id}|{state.turns}"
                )
                phrases = split_phrases(text)
                self.store.set_alarm_status(alarm.alarm_id, "fired", ts)
                state.last = LastReply(text=text, phrases=phrases, action="notify", intent=None,
                                       turn_id=f"{alarm.kind}-{alarm.alarm_id}")  # fmt: skip
                self.store.save_session(alarm.session_id, state.to_json())
                self.store.insert_turn(
                    alarm.session_id,
                    f"{alarm.kind}-{alarm.alarm_id}",
                    transcript="",
                    clean_text="",
                    nlu=None,
                    response={"text": text, "phrases": phrases, "action": "notify", "intent": None},
                )
                out.append(Notification(alarm.session_id, text, phrases, alarm.alarm_id, alarm.kind))
        return out

    async def run_scheduler(
        self, notify: Callable[[str, str], Awaitable[None]], *, max_sleep_s: float = 30.0
    ) -> None:
        """Fire timers and alarms on time, for ever; ``notify(session_id, text)`` tells the session.

        Sleeps until the next due alarm (at most *max_sleep_s* seconds, so clock jumps are noticed)
        and wakes early when a turn adds or moves one. Alarms that fell due while the process was
        down fire on the first pass, worded as missed. The orchestrator decides whether to speak
        at once or queue the text while the user is talking.

        A ``notify`` that raises is logged; the alarm stays fired (it is in the session log).
        Cancelling this coroutine stops the scheduler; nothing is lost, pending alarms stay in the
        database for the next run.
        """
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            while True:
                self._wake.clear()
                for n in self.fire_due():
                    try:
                        await notify(n.session_id, n.text)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("notify failed for %s alarm %d", n.session_id, n.alarm_id)
                nxt = self.store.next_due()
                delay = max_sleep_s
                if nxt is not None:
                    delay = min(max_sleep_s, max(0.0, nxt - self.now().timestamp()))
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
                except TimeoutError:
                    pass
        finally:
            self._wake = None
            self._loop = None

    def _wake_scheduler(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    # ------------------------------------------------------------------ turn decision

    def _decide(self, ctx: SkillContext, nlu: NluResult) -> _Out:
        st = ctx.state
        st.ended = False
        intent = nlu.intent
        slots = {s.slot: Slot(s.value, s.normalized or s.value, s.slot in nlu.guessed) for s in nlu.slots}
        if nlu.confidence < self.min_confidence and intent not in META_INTENTS:
            intent = OUT_OF_SCOPE
        top = st.top
        if (top is not None and top.status == "filling" and top.expected_slot and intent not in (top.intent, OUT_OF_SCOPE)
                and _off_question(intent, ctx.text)):
            # A misheard one-word answer ("oca o" for mocha) read as another request, with none of
            # that request's words: the question is still open (the NLU is sure of nonsense words).
            log.info("turn %s: %r read as %s while %s was asked: taken as not understood", ctx.turn_id, ctx.text,
                     intent, top.expected_slot)
            intent, slots = OUT_OF_SCOPE, {}
        if intent == "Cancel":
            return self._cancel(ctx)
        if intent == "Repeat":
            return self._repeat(ctx)
        if intent == "Help":
            return self._help(ctx)
        if intent == "Goodbye":
            st.stack.clear()
            st.ended = True
            return _Out([self._say(ctx, "goodbye")], "goodbye", intent, end_session=True)
        if intent == "Greet":
            if st.top is not None:
                return self._reask(ctx, st.top, prefix_key="greet.again", count=False)
            return _Out([self._say(ctx, "greet")], "greet", intent)
        top = st.top
        if top is not None:
            out = self._continue(ctx, top, intent, slots)
            if out is not None:
                return out
        return self._start(ctx, intent, slots)

    def _skill(self, intent: str) -> Skill:
        return self._by_intent[intent]

    def _relevant(self, intent: str, slots: dict[str, Slot]) -> dict[str, Slot]:
        known = self._skill(intent).slots.get(intent, ())
        return {k: v for k, v in slots.items() if k in known}

    def _continue(self, ctx: SkillContext, top: Frame, intent: str, slots: dict[str, Slot]) -> _Out | None:
        """Handle the turn as part of the task in focus; ``None`` when it starts another task."""
        st = ctx.state
        relevant = self._relevant(top.intent, slots)
        if top.status == "filling" and top.expected_slot and top.expected_slot not in relevant:
            alike = self._sound_alike(ctx, top, top.expected_slot)
            if alike is not None:
                top.slots[top.expected_slot] = alike
                return self._progress(ctx, top)
        if top.status == "confirming":
            if intent == "Affirm":
                if not st.last.heard_all:
                    # The user barged in before the question ended: do not act on a "yes" to it.
                    return self._progress(ctx, top, prefix_key="confirm.unheard")
                return self._execute(ctx, top)
            if intent == "Deny" and not relevant:
                relevant = self._from_text(ctx, top)  # "no, five people" with the number untagged
            guessed = [k for k, v in top.slots.items() if v.guessed]
            if intent == "Deny" and not relevant and guessed:
                # "No" to "did you say iced mocha?": the guess was wrong; ask for that slot.
                top.drop(*guessed)
                top.status, top.expected_slot = "filling", guessed[0]
                top.asked[guessed[0]] = top.asked.get(guessed[0], 0) + 1
                text = self._say(ctx, f"ask.{top.intent}.{guessed[0]}", self._skill(top.intent).ask_vars(ctx, top, guessed[0]))
                return self._ask_out(ctx, top, guessed[0], [self._say(ctx, "ack.Deny"), text])
            if intent == "Deny" and not relevant:
                st.stack.pop()
                return self._resume(ctx, _Out([self._say(ctx, f"declined.{top.intent}", self._vars(top))],
                                              "cancelled", top.intent, top))  # fmt: skip
            if intent in ("Deny", top.intent) or (intent == OUT_OF_SCOPE and relevant):
                top.slots.update(relevant if intent != top.intent else slots)
                top.status = "filling"
                return self._progress(ctx, top, prefix_key="ack.correction")
            if intent == OUT_OF_SCOPE:
                return self._progress(ctx, top, prefix_key="confirm.again")
            return None
        if intent == top.intent:
            top.slots.update(slots)
            return self._progress(ctx, top, prefix_key="ack.correction" if self._cue(ctx) else None)
        if intent == "Deny" and not relevant:
            relevant = self._from_text(ctx, top)
        if intent == "Deny" and relevant:
            top.slots.update(relevant)
            return self._progress(ctx, top, prefix_key="ack.correction")
        if intent == "Deny":
            st.stack.pop()
            return self._resume(ctx, _Out([self._say(ctx, "cancelled.task", self._vars(top))], "cancelled",
                                          top.intent, top))  # fmt: skip
        if intent in ("Affirm", OUT_OF_SCOPE):
            if relevant:
                top.slots.update(relevant)
                return self._progress(ctx, top)
            found = self._from_text(ctx, top)
            if top.expected_slot in found or (found and intent == OUT_OF_SCOPE):
                top.slots.update(found)
                return self._progress(ctx, top)
            if not st.last.heard_all:
                return self._reask(ctx, top, prefix_key="reask.unheard", count=False)
            return self._reask(ctx, top, prefix_key="reask")
        return None

    def _from_text(self, ctx: SkillContext, frame: Frame, *, only_missing: bool = False) -> dict[str, Slot]:
        """Slots of *frame*'s intent the skill can find in this turn's text (the NLU tagged none).

        With ``only_missing`` the words of the slots the NLU did tag are not looked at again: the
        "little" of "a little bit of sweetener" is not a size, nor the "medium" of "medium roast".
        """
        if not ctx.text:
            return {}
        skill = self._skill(frame.intent)
        text = ctx.text
        if only_missing and frame.slots:
            taken = {w for s in frame.slots.values() for v in (s.value, s.normalized) for w in str(v or "").lower().split()}
            text = " ".join(w for w in ctx.text.split() if w.lower().strip(",.?!") not in taken)
        found: dict[str, Slot] = {}
        for slot in skill.slots.get(frame.intent, ()):
            if only_missing and slot in frame.slots:
                continue
            got = skill.extract(ctx, frame, slot, text)
            if got is not None:
                found[slot] = Slot(*got)
        return found

    def _sound_alike(self, ctx: SkillContext, frame: Frame, slot: str) -> Slot | None:
        """The option of the question just asked that a short, not understood reply sounds like
        ("maricano" after "What would you like to drink?"); None when no option is clearly it."""
        if not self.sound_alike or not ctx.text:
            return None
        skill = self._skill(frame.intent)
        options = skill.hints(ctx, frame.intent, slot)
        match = closest(ctx.text, options) if options else None
        if match is None:
            return None
        log.info("turn %s: %r taken as %s=%r (sounds alike: %.2f, next %.2f)", ctx.turn_id, ctx.text, slot,
                 match.value, match.score, match.runner_up)
        got = skill.extract(ctx, frame, slot, match.value)
        return Slot(*got) if got is not None else Slot(match.value, match.value)

    def _cue(self, ctx: SkillContext) -> bool:
        return bool(ctx.text and _CORRECTION_CUE.search(ctx.text))

    def _start(self, ctx: SkillContext, intent: str, slots: dict[str, Slot]) -> _Out:
        st = ctx.state
        last = st.last_done
        if (
            last is not None
            and not slots
            and intent in ("Deny", OUT_OF_SCOPE)
            and _FOLLOW_UP.search(ctx.text)
        ):
            # "no, make it large", "and in London?", "actually eight thirty" with nothing tagged.
            slots = self._from_text(ctx, last)
        if (
            last is not None
            and intent != last.intent
            and intent not in ("Affirm", "Deny")
            and self._cue(ctx)
            and self._amendable(ctx, last)
        ):
            # "actually make it medium" after a coffee order parses as a device level: a correction
            # cue naming values of the task just finished corrects that task, whatever the parse.
            found = self._from_text(ctx, last)
            heard = {s.value for s in found.values()}
            if found and all(s.value in heard for s in slots.values()):
                return self._amend_or_start(ctx, last, Frame(last.intent, found), force=True)
        if intent in ("Affirm", "Deny"):
            if intent == "Deny" and slots and last is not None:
                relevant = self._relevant(last.intent, slots)
                if relevant and self._amendable(ctx, last):
                    return self._amend_or_start(ctx, last, Frame(last.intent, relevant), force=True)
                if relevant:
                    return self._start(ctx, last.intent, relevant)
            return _Out([self._say(ctx, f"ack.{intent}")], "ack", intent)
        if intent == OUT_OF_SCOPE or intent not in self._by_intent:
            # "and in Paris?" often arrives as out of scope with a city: continue the last task.
            if (
                slots
                and last is not None
                and set(slots) <= set(self._skill(last.intent).slots.get(last.intent, ()))
            ):
                intent = last.intent
            else:
                return self._not_understood(ctx)
        if not self._skill(intent).understood(ctx, intent, slots):
            return self._not_understood(ctx)
        st.misses = 0
        frame = Frame(intent, dict(slots))
        if last is not None and last.intent == intent and self._amendable(ctx, last):
            return self._amend_or_start(ctx, last, frame, force=False)
        return self._open(ctx, frame)

    def _not_understood(self, ctx: SkillContext) -> _Out:
        st = ctx.state
        st.misses += 1
        key = "fallback.again" if st.misses >= 2 else "fallback"
        return _Out([self._say(ctx, key)], "fallback", OUT_OF_SCOPE)

    def _amendable(self, ctx: SkillContext, last: Frame) -> bool:
        """A finished task can still be corrected: it stored something, a few turns ago at most."""
        return bool(last.record) and ctx.state.turns - last.finished_turn <= AMEND_WINDOW_TURNS

    def _amend_or_start(self, ctx: SkillContext, last: Frame, frame: Frame, *, force: bool) -> _Out:
        """Apply *frame* as a correction of *last* when it reads like one; else start it as a new task."""
        skill = self._skill(last.intent)
        looks_like = force or self._cue(ctx) or self._adds_on(ctx, last, frame)
        if not looks_like and not ctx.text:
            # No text to look for "no"/"actually": a request missing a slot the finished task had
            # filled, and only naming slots it had, reads as a correction ("make it large").
            required = {k for k in last.slots if k in skill.required(ctx, last)}
            looks_like = (
                bool(frame.slots) and set(frame.slots) <= set(last.slots) and not required <= set(frame.slots)
            )
        if looks_like:
            reply = skill.amend(ctx, last, frame)
            if reply is not None:
                if reply.action == "done":
                    last.finished_turn = ctx.state.turns
                    last.slots.update(frame.slots)
                    if reply.record:
                        last.record = reply.record
                    ctx.state.memory[last.intent] = dict(last.slots)
                return _Out([self._render(ctx, reply, last)], reply.action, last.intent, last,
                            hint_words=reply.hint_words or [])  # fmt: skip
        return self._open(ctx, frame)

    def _adds_on(self, ctx: SkillContext, last: Frame, frame: Frame) -> bool:
        """An add-on to the task finished by the turn before: "may I have a large latte ... with
        brown sugar", cut in two by a pause, or an afterthought. It opens with a joining word and
        names none of the slots that make a new task (the required ones): on its own it could not
        be one, so it joins the last ("Okay, make that a large latte with brown sugar")."""
        if not ctx.text or not _ADD_ON.search(ctx.text) or not frame.slots:
            return False
        if ctx.state.turns - last.finished_turn > 1:
            return False
        required = set(self._skill(last.intent).required(ctx, last))
        return not required & set(frame.slots)

    def _open(self, ctx: SkillContext, frame: Frame) -> _Out:
        """Start a task: carry context over from the previous request of the same intent, then progress."""
        skill = self._skill(frame.intent)
        frame.slots.update(self._from_text(ctx, frame, only_missing=True))
        memory = ctx.state.memory.get(frame.intent, {})
        for group in skill.carry_over.get(frame.intent, ()):
            if not any(s in frame.slots for s in group):
                for s in group:
                    if s in memory:
                        frame.slots[s] = memory[s]
        ctx.state.push(frame)
        return self._progress(ctx, frame)

    def _progress(self, ctx: SkillContext, frame: Frame, prefix_key: str | None = None) -> _Out:
        """Check, ask for what is missing, confirm, or execute."""
        skill = self._skill(frame.intent)
        prefix = [self._say(ctx, prefix_key, self._vars(frame))] if prefix_key else []
        reply = skill.check(ctx, frame)
        if reply is not None and reply.action == "ask_slot" and reply.ask:
            frame.status, frame.expected_slot = "filling", reply.ask
            frame.asked[reply.ask] = frame.asked.get(reply.ask, 0) + 1
            return self._ask_out(ctx, frame, reply.ask, [*prefix, self._render(ctx, reply, frame)])
        if reply is not None:
            # The task cannot go on (unknown device, nothing found): say why and drop it.
            self._remove(ctx.state, frame)
            return self._resume(ctx, _Out([*prefix, self._render(ctx, reply, frame)], reply.action,
                                          frame.intent, frame))  # fmt: skip
        missing = [s for s in skill.required(ctx, frame) if s not in frame.slots]
        if missing:
            slot = missing[0]
            frame.status, frame.expected_slot = "filling", slot
            frame.asked[slot] = frame.asked.get(slot, 0) + 1
            text = self._say(ctx, f"ask.{frame.intent}.{slot}", skill.ask_vars(ctx, frame, slot))
            opener = prefix or [self._say(ctx, "ack.ask")]
            return self._ask_out(ctx, frame, slot, [*opener, text])
        frame.expected_slot = None
        question = skill.confirm(ctx, frame) or self._confirm_guesses(frame)
        if question is not None:
            frame.status = "confirming"
            return _Out([*prefix, self._render(ctx, question, frame)], "confirm", frame.intent, frame,
                        expected=NluHints(frame.intent, None), hint_words=["yes", "no"])  # fmt: skip
        out = self._execute(ctx, frame)
        out.parts[:0] = prefix
        return out

    def _confirm_guesses(self, frame: Frame) -> Reply | None:
        """"Did you say iced mocha?" before acting on values the NLU guessed from misheard words
        (issue 25: confirm an uncertain value instead of acting on a guess). A "yes" acts; a "no"
        asks for the first guessed slot again; a new value corrects it."""
        guessed = [s.value for s in frame.slots.values() if s.guessed]
        return Reply("confirm.guessed", {"guessed": spoken_list(guessed)}) if guessed else None

    def _ask_out(self, ctx: SkillContext, frame: Frame, slot: str, parts: list[str]) -> _Out:
        hints = self._skill(frame.intent).hints(ctx, frame.intent, slot)
        return _Out(parts, "ask_slot", frame.intent, frame, expected=NluHints(frame.intent, slot),
                    hint_words=hints[:20])  # fmt: skip

    def _reask(self, ctx: SkillContext, frame: Frame, prefix_key: str, count: bool = True) -> _Out:
        """Ask again for what *frame* is waiting for; give up after :data:`MAX_ASKS` tries."""
        slot = frame.expected_slot
        if count and slot and frame.asked.get(slot, 0) >= MAX_ASKS:
            self._remove(ctx.state, frame)
            return self._resume(ctx, _Out([self._say(ctx, "giveup", self._vars(frame))], "cancelled",
                                          frame.intent, frame))  # fmt: skip
        return self._progress(ctx, frame, prefix_key=prefix_key)

    def _execute(self, ctx: SkillContext, frame: Frame) -> _Out:
        skill = self._skill(frame.intent)
        reply = skill.execute(ctx, frame)
        self._remove(ctx.state, frame)
        frame.status, frame.expected_slot = "done", None
        frame.record = reply.record or {}
        frame.finished_turn = ctx.state.turns
        if reply.action == "done":
            ctx.state.last_done = frame
            ctx.state.memory[frame.intent] = dict(frame.slots)
        if reply.action == "ask_slot" and reply.ask:
            # The skill needs one more answer after all (e.g. which of two alarms): keep the task.
            frame.status, frame.expected_slot = "filling", reply.ask
            ctx.state.push(frame)
            return self._ask_out(ctx, frame, reply.ask, [self._render(ctx, reply, frame)])
        out = _Out([self._render(ctx, reply, frame)], reply.action, frame.intent, frame,
                   end_session=reply.end_session, hint_words=reply.hint_words or [])  # fmt: skip
        return self._resume(ctx, out)

    def _resume(self, ctx: SkillContext, out: _Out) -> _Out:
        """After a task ends, go back to a suspended one (re-asking its question)."""
        top = ctx.state.top
        if top is None or out.end_session:
            return out
        back = self._progress(ctx, top, prefix_key="resume")
        out.parts.extend(back.parts)
        out.expected, out.hint_words = back.expected, back.hint_words
        return out

    @staticmethod
    def _remove(state: SessionState, frame: Frame) -> None:
        state.stack = [f for f in state.stack if f is not frame]

    # ------------------------------------------------------------------ meta intents

    def _cancel(self, ctx: SkillContext) -> _Out:
        st = ctx.state
        if not st.stack:
            return _Out([self._say(ctx, "cancelled.nothing")], "ack", "Cancel")
        top = st.top
        assert top is not None
        st.stack.clear()
        return _Out([self._say(ctx, "cancelled.task", self._vars(top))], "cancelled", "Cancel", top)

    def _repeat(self, ctx: SkillContext) -> _Out:
        last = ctx.state.last
        if not last.text:
            return _Out([self._say(ctx, "repeat.nothing")], "repeat", "Repeat")
        top = ctx.state.top
        expected = NluHints(top.intent, top.expected_slot) if top else None
        hints = (
            self._skill(top.intent).hints(ctx, top.intent, top.expected_slot)
            if top and top.expected_slot
            else []
        )
        return _Out([last.text], "repeat", "Repeat", top, expected=expected, hint_words=hints)

    def _help(self, ctx: SkillContext) -> _Out:
        top = ctx.state.top
        if top is None:
            skills = skills_sentence(self._by_intent, self.responses)
            return _Out([self._say(ctx, "help.skills", {"skills": skills}) if skills else self._say(ctx, "help")],
                        "help", "Help")  # fmt: skip
        key = f"help.{top.intent}" if self.responses.has(f"help.{top.intent}") else "help.task"
        out = self._progress(ctx, top, prefix_key=key)
        out.action = "help"
        return out

    # ------------------------------------------------------------------ rendering

    def _vars(self, frame: Frame) -> dict[str, Any]:
        return {**frame.values(), "task": self._task(frame.intent)}

    def _task(self, intent: str) -> str:
        key = f"task.{intent}"
        return self.responses.templates[key][0] if self.responses.has(key) else "request"

    def _say(self, ctx: SkillContext, key: str, variables: dict[str, Any] | None = None) -> str:
        return self.responses.render(key, variables, seed=f"{ctx.session_id}|{ctx.state.turns}")

    def _render(self, ctx: SkillContext, reply: Reply, frame: Frame) -> str:
        return self._say(ctx, reply.key, {**self._vars(frame), **reply.vars})

    def _respond(self, ctx: SkillContext, out: _Out) -> DialogResponse:
        text = " ".join(p.strip() for p in out.parts if p.strip())
        resp = DialogResponse(
            text=text,
            phrases=split_phrases(text),
            action=out.action,
            intent=out.intent,
            frame=out.frame.values() if out.frame is not None else {},
            end_session=out.end_session,
            expected=out.expected,
            hint_words=out.hint_words,
            session_id=ctx.session_id,
            turn_id=ctx.turn_id,
            volume=speaker_volume(ctx.state),
        )
        if out.action != "repeat":
            ctx.state.last = LastReply(text=resp.text, phrases=resp.phrases, action=resp.action,
                                       intent=resp.intent, turn_id=ctx.turn_id)  # fmt: skip
        else:
            ctx.state.last.turn_id = ctx.turn_id
            ctx.state.last.heard_all = True
        return resp

    def _commit_turn(
        self, state: SessionState, turn_id: str, transcript: str, clean_text: str, nlu: NluResult,
        resp: DialogResponse,
    ) -> None:  # fmt: skip
        self.store.save_session(state.session_id, state.to_json())
        self.store.insert_turn(state.session_id, turn_id, transcript=transcript, clean_text=clean_text,
                               nlu=nlu.to_json(), response=resp.to_json())  # fmt: skip


def local_timezone() -> str:
    """The machine's IANA time zone name: ``$TZ``, else the ``/etc/localtime`` link, else ``"UTC"``."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        link = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in link:
            candidates.append(link.split("zoneinfo/", 1)[1])
    for name in candidates:
        if name:
            try:
                ZoneInfo(name)
                return name
            except (ValueError, OSError, ZoneInfoNotFoundError):
                continue
    return "UTC"


def _speech_ms(phrases: list[str]) -> float:
    """Rough time to speak all but the tail of the last phrase (what counts as "heard it all")."""
    if not phrases:
        return 0.0
    chars = sum(len(p) for p in phrases[:-1]) + 0.6 * len(phrases[-1])
    return 1000.0 * chars / _CHARS_PER_S
