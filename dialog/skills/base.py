"""The skill interface, its registry and the context a skill runs in.

A skill handles one or more intents. The dialog manager owns the conversation
(slot filling, confirmation, corrections, carry-over, cancel/repeat/help); a
skill only answers questions about its own task:

- :meth:`Skill.required` — which slots must be filled, in the order to ask;
- :meth:`Skill.check` — validate/resolve what we have (may ask again or refuse);
- :meth:`Skill.confirm` — a yes/no question before a destructive or costly action;
- :meth:`Skill.execute` — do it (side effects go through ``ctx.store``);
- :meth:`Skill.amend` — apply a correction to the task it just finished.

Skills register by name with :func:`skill`, which also declares their intents::

    @skill("coffee", intents=("orderDrink",))
    class CoffeeSkill(Skill):
        ...

All methods are synchronous and must be quick (a few hundred microseconds):
they run inside the turn's SQLite transaction. Anything slow (a network
weather provider) must have a timeout and turn failure into a spoken apology.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from dialog.speech_format import spoken_list
from dialog.state import Frame, SessionState, Slot
from dialog.store import Store

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


@dataclass(slots=True)
class Reply:
    """What a skill wants said: a template key, its variables and the dialog action.

    Attributes:
        key: a template key in ``responses.yml``.
        vars: template variables.
        action: ``done``, ``ask_slot``, ``confirm``, ``error``...
        ask: with ``action="ask_slot"``, the slot being asked for.
        hint_words: words likely in the next answer (defaults to the skill's hints for ``ask``).
        record: stored on the finished frame so a later correction can find what was created.
        end_session: the conversation is over.
    """

    key: str
    vars: dict[str, Any] = field(default_factory=dict)
    action: str = "done"
    ask: str | None = None
    hint_words: list[str] | None = None
    record: dict[str, Any] | None = None
    end_session: bool = False


@dataclass(slots=True)
class SkillConfig:
    """What skills are built with.

    Attributes:
        data_dir: directory of the offline data files (forecast, library, restaurants...).
        tz: the household's time zone (alarms, "what time is it").
        options: per-skill options by skill name (e.g. ``{"weather": {"provider": "open-meteo"}}``).
    """

    data_dir: Path = DATA_DIR
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def load_json(self, name: str) -> Any:
        return json.loads((self.data_dir / name).read_text())


@dataclass(slots=True)
class SkillContext:
    """One turn as a skill sees it.

    Attributes:
        session_id: the session.
        turn_id: the turn being handled.
        now: the current time, aware, in the household's time zone.
        store: the database (inside the turn's transaction).
        state: the session's dialog state (skills may use ``state.vars``).
        text: the cleaned transcript (may be empty).
        wake_scheduler: call after adding or moving an alarm so the scheduler re-plans.
    """

    session_id: str
    turn_id: str
    now: datetime
    store: Store
    state: SessionState
    text: str = ""
    wake_scheduler: Callable[[], None] = lambda: None

    @property
    def today(self) -> date:
        return self.now.date()


class Skill:
    """Base class: override what your intents need. See the module docstring."""

    name: ClassVar[str] = ""
    intents: ClassVar[tuple[str, ...]] = ()
    slots: ClassVar[dict[str, tuple[str, ...]]] = {}
    """intent -> every slot it understands (used to catch slots the NLU tagged under another intent)."""
    carry_over: ClassVar[dict[str, tuple[tuple[str, ...], ...]]] = {}
    """intent -> groups of slots that carry over from the previous request of the same intent.
    A group is replaced as a whole: saying a new city drops the old country too."""

    def __init__(self, config: SkillConfig) -> None:
        self.config = config

    def required(self, ctx: SkillContext, frame: Frame) -> list[str]:
        """Every slot this frame needs before it can run, in the order to ask (the manager asks the missing)."""
        return []

    def hints(self, ctx: SkillContext, intent: str, slot: str) -> list[str]:
        """Likely values of *slot* (spoken as options and sent to ASR as prompt words)."""
        return []

    def ask_vars(self, ctx: SkillContext, frame: Frame, slot: str) -> dict[str, Any]:
        """Variables for the ``ask.<intent>.<slot>`` template."""
        options = self.hints(ctx, frame.intent, slot)
        return {**frame.values(), "options": spoken_list(options[:4], "or")}

    def extract(self, ctx: SkillContext, frame: Frame, slot: str, text: str) -> tuple[str, str] | None:
        """Find ``(value, normalized)`` for *slot* in the raw text of a turn the NLU under-tagged.

        Called for corrections and follow-ups ("no, make it large", "and in London?") and for
        answers the NLU missed. It must be conservative: a wrong value is worse than none.
        Default: one of :meth:`hints` appearing as whole words.
        """
        return find_phrase(text, self.hints(ctx, frame.intent, slot))

    def understood(self, ctx: SkillContext, intent: str, slots: dict[str, Slot]) -> bool:
        """Whether a new request for *intent* with the NLU's *slots* is one this skill can take at all.

        The NLU always picks the nearest intent, so a command no domain covers can land in
        one with a slot that only looks right ("go forward ten meters" as a device level).
        Returning False answers it as not understood instead of asking for the rest of a
        task the user never asked for. Default: yes.
        """
        return True

    def check(self, ctx: SkillContext, frame: Frame) -> Reply | None:
        """Validate and resolve the filled slots; return a reply to stop here (ask again, refuse)."""
        return None

    def confirm(self, ctx: SkillContext, frame: Frame) -> Reply | None:
        """A ``confirm.*`` reply when this frame needs a yes before :meth:`execute`."""
        return None

    def execute(self, ctx: SkillContext, frame: Frame) -> Reply:
        raise NotImplementedError

    def amend(self, ctx: SkillContext, done: Frame, correction: Frame) -> Reply | None:
        """Correct the finished task *done* with the slots in *correction*; ``None`` if not amendable."""
        return None


def find_phrase(text: str, phrases: Iterable[str]) -> tuple[str, str] | None:
    """The longest of *phrases* found in *text* as whole words (case-insensitive), as ``(phrase, phrase)``."""
    words = " " + re.sub(r"[^a-z0-9' ]", " ", text.lower()) + " "
    words = re.sub(r"\s+", " ", words)
    for p in sorted(phrases, key=len, reverse=True):
        if p and f" {p.lower()} " in words:
            return p, p
    return None


REGISTRY: dict[str, type[Skill]] = {}


def skill(name: str, *, intents: tuple[str, ...]) -> Callable[[type[Skill]], type[Skill]]:
    """Class decorator: register a skill under *name* for *intents*."""

    def register(cls: type[Skill]) -> type[Skill]:
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ValueError(f"skill {name!r} registered twice ({REGISTRY[name].__name__}, {cls.__name__})")
        cls.name = name
        cls.intents = tuple(intents)
        REGISTRY[name] = cls
        return cls

    return register


def display_name(value: str | None) -> str:
    """A name as it goes into a reply: ``"tokyo" -> "Tokyo"``; mixed case is kept (``"McDonald's"``)."""
    v = " ".join((value or "").split())
    if v.islower():
        small = {"of", "the", "and", "in", "on", "a", "an", "to", "for", "de", "la", "le"}
        words = v.split(" ")
        v = " ".join(w if (i and w in small) else w[:1].upper() + w[1:] for i, w in enumerate(words))
    return v
