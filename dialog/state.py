"""Dialog state: frames (one per task) and the per-session state that holds them.

Everything here is plain data that round-trips through JSON, because the whole
:class:`SessionState` is stored in SQLite after every turn (see
:mod:`dialog.store`) and reloaded when a session resumes after a restart.

A *frame* is one task in progress: an intent plus the slots filled so far.
Frames live on a small stack: a new task pushed on top suspends the one below,
which resumes when the new one is done. The last finished frame is kept so a
following correction ("no, make it large") can amend it and so context can
carry over ("what about tomorrow?").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FrameStatus = Literal["filling", "confirming", "done"]

MAX_STACK = 3
"""Frames kept on the stack; older suspended tasks are dropped beyond this."""


@dataclass(slots=True)
class Slot:
    """A filled slot: the words as spoken and the NLU's normalized value.

    ``guessed``: the value is the NLU's guess at misheard words (``NluResult.guessed``); the task
    is confirmed before it acts on it.
    """

    value: str
    normalized: str
    guessed: bool = False


@dataclass(slots=True)
class Frame:
    """One task: intent, slots, progress.

    Attributes:
        intent: the NLU intent that started the task (e.g. ``orderDrink``).
        slots: slot name -> :class:`Slot`.
        status: ``filling`` (slots missing), ``confirming`` (waiting for yes/no), ``done``.
        expected_slot: the slot we just asked for, or ``None``.
        asked: how many times each slot was asked (we give up after a few tries).
        record: what the skill stored when it finished (an order or alarm id, ...), so a
            correction can amend it.
        finished_turn: the session turn on which the task finished (corrections expire).
    """

    intent: str
    slots: dict[str, Slot] = field(default_factory=dict)
    status: FrameStatus = "filling"
    expected_slot: str | None = None
    asked: dict[str, int] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    finished_turn: int = 0

    def get(self, slot: str) -> str | None:
        """The spoken value of *slot*, or ``None``."""
        s = self.slots.get(slot)
        return s.value if s else None

    def norm(self, slot: str) -> str | None:
        """The normalized value of *slot* (falling back to the spoken value), or ``None``."""
        s = self.slots.get(slot)
        if s is None:
            return None
        return s.normalized or s.value

    def set(self, slot: str, value: str, normalized: str | None = None) -> None:
        self.slots[slot] = Slot(value, normalized if normalized is not None else value)

    def drop(self, *slots: str) -> None:
        for s in slots:
            self.slots.pop(s, None)

    def values(self) -> dict[str, str]:
        """slot -> spoken value (what :attr:`DialogResponse.frame` shows); ``_private`` slots are hidden."""
        return {k: v.value for k, v in self.slots.items() if not k.startswith("_")}

    def to_json(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "slots": {k: {"value": v.value, "normalized": v.normalized, **({"guessed": True} if v.guessed else {})}
                      for k, v in self.slots.items()},
            "status": self.status,
            "expected_slot": self.expected_slot,
            "asked": dict(self.asked),
            "record": dict(self.record),
            "finished_turn": self.finished_turn,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Frame:
        return cls(
            intent=d["intent"],
            slots={k: Slot(**v) for k, v in d.get("slots", {}).items()},
            status=d.get("status", "filling"),
            expected_slot=d.get("expected_slot"),
            asked=dict(d.get("asked", {})),
            record=dict(d.get("record", {})),
            finished_turn=int(d.get("finished_turn", 0)),
        )


@dataclass(slots=True)
class LastReply:
    """What we said last, for "repeat" and for interruption handling."""

    text: str = ""
    phrases: list[str] = field(default_factory=list)
    action: str = ""
    intent: str | None = None
    turn_id: str | None = None
    played_ms: int | None = None
    """Set when the user barged in: milliseconds of the reply actually played."""
    heard_all: bool = True
    """False when the interruption cut the reply before its last phrase (a question may be unheard)."""


@dataclass(slots=True)
class SessionState:
    """Everything the dialog remembers about one session.

    Attributes:
        session_id: the caller's session id.
        stack: active frames, the last one is the task in focus.
        last_done: the last finished frame (corrections amend it).
        memory: intent -> slot values of the last frame of that intent (context carry-over).
        last: the last reply.
        turns: turns handled in this session (also seeds the response variation).
        misses: consecutive turns we did not understand.
        vars: small skill scratch values (e.g. the track now playing).
        ended: the user said goodbye.
    """

    session_id: str
    stack: list[Frame] = field(default_factory=list)
    last_done: Frame | None = None
    memory: dict[str, dict[str, Slot]] = field(default_factory=dict)
    last: LastReply = field(default_factory=LastReply)
    turns: int = 0
    misses: int = 0
    vars: dict[str, Any] = field(default_factory=dict)
    ended: bool = False

    @property
    def top(self) -> Frame | None:
        return self.stack[-1] if self.stack else None

    def push(self, frame: Frame) -> None:
        self.stack.append(frame)
        del self.stack[:-MAX_STACK]

    def to_json(self) -> dict[str, Any]:
        # Hand-written: dataclasses.asdict deep-copies and costs ~1 ms per turn.
        return {
            "session_id": self.session_id,
            "stack": [f.to_json() for f in self.stack],
            "last_done": self.last_done.to_json() if self.last_done else None,
            "memory": {
                i: {k: {"value": v.value, "normalized": v.normalized} for k, v in s.items()}
                for i, s in self.memory.items()
            },
            "last": {
                "text": self.last.text,
                "phrases": list(self.last.phrases),
                "action": self.last.action,
                "intent": self.last.intent,
                "turn_id": self.last.turn_id,
                "played_ms": self.last.played_ms,
                "heard_all": self.last.heard_all,
            },  # fmt: skip
            "turns": self.turns,
            "misses": self.misses,
            "vars": self.vars,
            "ended": self.ended,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SessionState:
        return cls(
            session_id=d["session_id"],
            stack=[Frame.from_json(f) for f in d.get("stack", [])],
            last_done=Frame.from_json(d["last_done"]) if d.get("last_done") else None,
            memory={i: {k: Slot(**v) for k, v in s.items()} for i, s in d.get("memory", {}).items()},
            last=LastReply(**d.get("last", {})),
            turns=int(d.get("turns", 0)),
            misses=int(d.get("misses", 0)),
            vars=dict(d.get("vars", {})),
            ended=bool(d.get("ended", False)),
        )
