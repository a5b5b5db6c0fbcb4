"""Reminders and a calendar (``SetReminder``, ``AddEvent``, ``QueryCalendar``, ``CancelEvent``, ``MoveEvent``).

A reminder is a row of the ``alarms`` table of kind ``reminder`` (label: the task), so the
dialog manager's scheduler fires it exactly like a timer or an alarm: on time, queued by the
orchestrator while the user talks, and after a restart (worded as missed if it fell due while
the process was down). Reminders belong to the session that set them, as timers do.

Calendar events are ``calendar_event`` records (``{"event", "date", "time"}``, time ``None``
for an all-day event). The calendar is the household's: events are read across sessions,
like lists. "What's on my calendar friday" reads that day's events and the session's
reminders due that day.

Times are said loosely ("at five"): a clock time with no a.m./p.m. is the next one of the two
(five in the morning has passed at eight, so five in the afternoon), and on a given day a bare
one to seven is taken as p.m. (nobody books the dentist at three a.m.).

``MoveEvent``'s ``date`` and ``time`` are the *new* day and time; the event is found by its name.
When several events share the name, the next one coming up is moved and the reply says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from core.numbers import spoken_number
from dialog.skills.base import Reply, Skill, SkillContext, skill
from dialog.speech_format import (
    WEEKDAYS,
    find_time_range,
    parse_duration,
    parse_time,
    spoken_date,
    spoken_duration,
    spoken_list,
    spoken_time,
    spoken_when,
)
from dialog.state import Frame
from domains.normalize import normalize_date

EVENT_KIND = "calendar_event"
REMINDER_KIND = "reminder"

_MARKED = re.compile(r"\b(?:[ap]\.?\s?m\b|morning|afternoon|evening|tonight|night|noon|midnight)|\d{1,2}:\d{2}|\b(?:1[3-9]|2[0-3])\b")
_NUM = r"(?:\d{1,2}(?::\d{2})?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
_AT_TIME = re.compile(
    rf"\b(?:at|by|around)\s+({_NUM}(?:\s+(?:oh\s+\w+|fifteen|thirty|forty\s+five|\d{{2}}))?(?:\s*[ap]\.?\s?m\b\.?)?"
    r"(?:\s+(?:in the )?(?:morning|afternoon|evening|tonight))?|noon|midnight)\b",
    re.I,
)
_IN_DURATION = re.compile(r"\bin\s+((?:an?|\w+)(?:\s+\w+){0,3}?\s+(?:seconds?|minutes?|hours?|days?)(?:\s+and\s+a\s+half)?)\b", re.I)
_DURATION_WORDS = re.compile(r"\b(?:seconds?|minutes?|hours?)\b", re.I)
_PRONOUNS = {"my": "your", "me": "you", "i": "you", "myself": "yourself", "i'm": "you're", "mine": "yours", "i've": "you've"}
_LEAD = re.compile(r"^(?:(?:remind me|reminder|a reminder|to|that|about|of|add|put|schedule)\s+)+")
_NAME_STOP = {"my", "the", "a", "an", "to", "reminder", "reminders", "event", "calendar", "on", "for", "with", "your"}
_NOT_ANSWERS = {"yes", "no", "yeah", "yep", "nope", "okay", "ok", "sure", "please", "what", "huh", "hmm"}


# --------------------------------------------------------------------------- when


def spoken_task(text: str | None) -> str:
    """The task as the assistant says it back: ``"to call my mom" -> "call your mom"``."""
    t = " ".join(re.sub(r"[^a-z0-9' -]", " ", (text or "").lower()).split())
    t = _LEAD.sub("", t)
    return " ".join(_PRONOUNS.get(w, w) for w in t.split())


def frame_day(frame: Frame, today: date) -> date | None:
    """The day in the ``date`` slot: the words read against the dialog's own today, else the NLU's ISO date."""
    for c in (frame.get("date"), frame.norm("date")):
        if not c:
            continue
        iso = re.match(r"(\d{4})-(\d{2})-(\d{2})", c) or re.match(r"(\d{4})-(\d{2})-(\d{2})", normalize_date(c, today) or "")
        if iso:
            try:
                return date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
            except ValueError:
                continue
    return None


def frame_clock(frame: Frame) -> tuple[int, int] | None:
    """``(hour, minute)`` from the ``time`` slot, else from a ``date`` slot that carries one ("tomorrow at 9")."""
    hm = parse_time(frame.norm("time"), frame.get("time")) if frame.get("time") else None
    if hm is None:
        m = re.search(r"\d{4}-\d{2}-\d{2}T(\d{2}):(\d{2})", frame.norm("date") or "")
        hm = (int(m.group(1)), int(m.group(2))) if m else None
    return hm


def _ambiguous(frame: Frame, hm: tuple[int, int]) -> bool:
    """A clock time said with no a.m./p.m. or part of day ("at five")."""
    said = " ".join(v for v in (frame.get("time"), frame.get("date")) if v).lower()
    return 1 <= hm[0] <= 12 and not _MARKED.search(said)


def due_time(frame: Frame, now: datetime) -> datetime | None:
    """When the reminder/event is: now + duration, or the day and the clock time (see the module docstring)."""
    secs = parse_duration(frame.norm("duration"), frame.get("duration")) if frame.get("duration") else None
    if secs is not None:
        return now + timedelta(seconds=secs)
    hm = frame_clock(frame)
    if hm is None:
        return None
    day = frame_day(frame, now.date())
    hours = [hm[0]]
    if _ambiguous(frame, hm) and hm[0] != 12:
        hours = [hm[0] + 12] if day is not None and hm[0] <= 7 else [hm[0], hm[0] + 12]
    candidates = []
    for h in hours:
        base = datetime.combine(day or now.date(), time(0, 0), tzinfo=now.tzinfo) + timedelta(hours=h, minutes=hm[1])
        if day is None and base <= now:
            base += timedelta(days=1)
        candidates.append(base)
    future = [c for c in candidates if c > now]
    return min(future) if future else candidates[0]


def clock_on(frame: Frame, day: date, now: datetime) -> tuple[int, int] | None:
    """The frame's clock time on *day*, with the a.m./p.m. guess of :func:`due_time`."""
    hm = frame_clock(frame)
    if hm is None:
        return None
    probe = Frame(frame.intent)
    probe.set("time", frame.get("time") or frame.get("date") or "", f"{hm[0]:02d}:{hm[1]:02d}")
    probe.set("date", day.isoformat())
    due = due_time(probe, now)
    return (due.hour, due.minute) if due is not None else None


def spoken_at(when: datetime, now: datetime, *, timed: bool = True, on: bool = True) -> str:
    """``"today at five p m"``, ``"tomorrow at nine a m"``, ``"on Friday"`` (untimed; ``on=False``: ``"Friday"``)."""
    day = spoken_when(when.date(), now.date()) if on else spoken_date(when.date(), now.date())
    return f"{day} at {spoken_time(when.hour, when.minute)}" if timed else day


# --------------------------------------------------------------------------- the calendar


@dataclass(frozen=True, slots=True)
class Entry:
    """An event or a pending reminder, as the calendar lists them."""

    kind: str  # "event" | "reminder"
    ref: int  # record_id or alarm_id
    name: str
    day: date
    at: tuple[int, int] | None

    def sort_key(self) -> tuple[date, int, int]:
        return (self.day, *(self.at or (-1, 0)))

    def spoken(self, now: datetime, *, with_day: bool = True) -> str:
        what = self.name if self.kind == "event" else f"a reminder to {self.name}"
        when = spoken_when(self.day, now.date()) if with_day else ""
        at = f"at {spoken_time(*self.at)}" if self.at else ""
        return " ".join(p for p in (what, when, at) if p)


def _words(name: str) -> set[str]:
    return {re.sub(r"(?<=\w{3})s$", "", w) for w in re.sub(r"[^a-z0-9' ]", " ", name.lower()).split()} - _NAME_STOP


def _named(entry: Entry, query: str) -> bool:
    want = _words(query)
    return bool(want) and want <= _words(entry.name)


def calendar(ctx: SkillContext) -> list[Entry]:
    """The household's events and this session's pending reminders, soonest first."""
    out = []
    for r in ctx.store.records(EVENT_KIND):
        try:
            day = date.fromisoformat(r.data["date"])
        except (KeyError, ValueError):
            continue
        at = tuple(int(x) for x in r.data["time"].split(":")) if r.data.get("time") else None
        out.append(Entry("event", r.record_id, str(r.data.get("event", "")), day, at))  # type: ignore[arg-type]
    for a in ctx.store.alarms(ctx.session_id, kind=REMINDER_KIND):
        due = datetime.fromtimestamp(a.due_at, tz=ctx.now.tzinfo)
        out.append(Entry("reminder", a.alarm_id, a.label, due.date(), (due.hour, due.minute)))
    return sorted(out, key=Entry.sort_key)


# --------------------------------------------------------------------------- the skill


@skill("reminders", intents=("SetReminder", "AddEvent", "QueryCalendar", "CancelEvent", "MoveEvent"))
class ReminderSkill(Skill):
    slots = {
        "SetReminder": ("task", "date", "time", "duration"),
        "AddEvent": ("event", "date", "time"),
        "QueryCalendar": ("date", "time", "event"),
        "CancelEvent": ("event", "date", "time"),
        "MoveEvent": ("event", "date", "time"),
    }

    # ------------------------------------------------------------------ slots

    def required(self, ctx: SkillContext, frame: Frame) -> list[str]:
        if frame.intent == "SetReminder":
            when = frame.get("duration") or frame_clock(frame) is not None
            return ["task"] + ([] if when else ["time"])
        if frame.intent == "AddEvent":
            return ["event", "date"]
        if frame.intent == "MoveEvent":
            return ["event"] + ([] if frame.get("date") or frame.get("time") else ["time"])
        if frame.intent == "CancelEvent" and not (frame.get("event") or frame.get("date") or frame.get("time")):
            return ["event"]
        return []

    def hints(self, ctx: SkillContext, intent: str, slot: str) -> list[str]:
        # No hints for a time: they double as the options a short answer is matched against
        # (dialog.manager._sound_alike), and "in ten minutes" is not "minutes".
        if slot == "date":
            return ["today", "tomorrow", *(d.lower() for d in WEEKDAYS)]
        if slot == "event" and intent in ("CancelEvent", "MoveEvent", "QueryCalendar"):
            return sorted({e.name for e in calendar(ctx)})
        return []

    def ask_vars(self, ctx: SkillContext, frame: Frame, slot: str) -> dict[str, Any]:
        return {**frame.values(), "task": spoken_task(frame.get("task")), "options": ""}

    def extract(self, ctx: SkillContext, frame: Frame, slot: str, text: str) -> tuple[str, str] | None:
        low = " ".join(text.lower().strip(" .?!").split())
        asked = frame.expected_slot
        if slot == "duration":
            m = _IN_DURATION.search(low)
            secs = parse_duration(m.group(1)) if m else None
            return (m.group(0), str(int(secs))) if m and secs else None
        if slot == "time":
            m = _AT_TIME.search(low)
            said = m.group(1) if m else (low if asked == "time" and not _DURATION_WORDS.search(low) else "")
            hm = parse_time(said) if said else None
            return (said, f"{hm[0]:02d}:{hm[1]:02d}") if hm else None
        if slot == "date":
            said = find_time_range(low, ctx.today) or (low if asked == "date" else "")
            iso = normalize_date(said, ctx.today) if said else None
            return (said, iso) if iso else None
        if slot in ("task", "event") and asked == slot and low and low not in _NOT_ANSWERS:
            return low, spoken_task(low) if slot == "task" else low
        return None

    def check(self, ctx: SkillContext, frame: Frame) -> Reply | None:
        if frame.get("time") and frame_clock(frame) is None and not frame.get("duration"):
            bad = frame.get("time")
            frame.drop("time")
            return Reply("reminders.bad_time", {"said": bad}, action="ask_slot", ask="time")
        if frame.intent == "SetReminder" and frame.get("task"):
            due = due_time(frame, ctx.now)
            if due is not None and due <= ctx.now:
                frame.drop("time", "date", "duration")
                return Reply("reminders.past", action="ask_slot", ask="time")
        if frame.intent == "AddEvent":
            day = frame_day(frame, ctx.today)
            if frame.get("date") and day is None:
                bad = frame.get("date")
                frame.drop("date")
                return Reply("reminders.bad_date", {"said": bad}, action="ask_slot", ask="date")
            if day is None and frame_clock(frame) is not None:
                due = due_time(frame, ctx.now)
                if due is not None:
                    frame.set("date", due.date().isoformat())
            elif day is not None and day < ctx.today:
                frame.drop("date")
                return Reply("reminders.past_day", action="ask_slot", ask="date")
        if frame.intent in ("CancelEvent", "MoveEvent") and (frame.get("event") or frame.intent == "CancelEvent"):
            return self._find(ctx, frame)
        return None

    def _find(self, ctx: SkillContext, frame: Frame) -> Reply | None:
        """Pick the event a cancel or move is about (stored in ``frame.record``), or ask which one."""
        entries = [e for e in calendar(ctx) if e.day >= ctx.today]
        query = frame.get("event")
        if query:
            entries = [e for e in entries if _named(e, query)]
        if frame.intent == "CancelEvent":
            day, hm = frame_day(frame, ctx.today), frame_clock(frame)
            if day is not None:
                entries = [e for e in entries if e.day == day]
            if hm is not None:
                entries = [e for e in entries if e.at is not None and e.at[0] % 12 == hm[0] % 12 and e.at[1] == hm[1]]
        if not entries:
            what = query or "anything"
            when = f" {spoken_when(frame_day(frame, ctx.today) or ctx.today, ctx.today)}" if frame.get("date") else ""
            return Reply("CancelEvent.not_found", {"what": what, "when": when})
        if frame.intent == "CancelEvent" and len(entries) > 1:
            days = sorted({e.day for e in entries})
            if len(days) > 1 and not frame.get("date"):
                said = [spoken_when(d, ctx.today) for d in days]
                return Reply("CancelEvent.which_day", {"options": spoken_list(said[:4], "or")}, action="ask_slot",
                             ask="date", hint_words=said)  # fmt: skip
            times = sorted({e.at for e in entries if e.at})
            if len(times) > 1 and not frame.get("time"):
                said = [spoken_time(*t) for t in times]
                return Reply("CancelEvent.which_time", {"options": spoken_list(said[:4], "or")}, action="ask_slot",
                             ask="time", hint_words=said)  # fmt: skip
            names = sorted({e.name for e in entries})
            if len(names) > 1 and not query:
                return Reply("CancelEvent.which_event", {"options": spoken_list(names[:4], "or")}, action="ask_slot",
                             ask="event", hint_words=names)  # fmt: skip
        e = entries[0]
        frame.record = {"kind": e.kind, "ref": e.ref, "what": e.spoken(ctx.now)}
        return None

    def confirm(self, ctx: SkillContext, frame: Frame) -> Reply | None:
        if frame.intent == "CancelEvent" and frame.record.get("ref") is not None:
            return Reply("confirm.CancelEvent", {"what": frame.record["what"]}, action="confirm")
        return None

    # ------------------------------------------------------------------ intents

    def execute(self, ctx: SkillContext, frame: Frame) -> Reply:
        if frame.intent == "SetReminder":
            return self._remind(ctx, frame)
        if frame.intent == "AddEvent":
            return self._add_event(ctx, frame)
        if frame.intent == "QueryCalendar":
            return self._query(ctx, frame)
        if frame.intent == "CancelEvent":
            kind, ref = frame.record.get("kind"), frame.record.get("ref")
            if ref is None:
                return Reply("CancelEvent.not_found", {"what": frame.get("event") or "anything", "when": ""})
            if kind == "reminder":
                ctx.store.set_alarm_status(int(ref), "cancelled")
                ctx.wake_scheduler()
            else:
                ctx.store.update_record(int(ref), status="cancelled")
            return Reply("CancelEvent.done", {"what": frame.record.get("what", "")})
        return self._move(ctx, frame)

    def _remind(self, ctx: SkillContext, frame: Frame) -> Reply:
        task = spoken_task(frame.norm("task"))
        due = due_time(frame, ctx.now) or ctx.now + timedelta(hours=1)
        alarm_id = ctx.store.add_alarm(ctx.session_id, REMINDER_KIND, due.timestamp(), task)
        ctx.wake_scheduler()
        return Reply("SetReminder.done", {"task": task, "when": self._when_said(frame, due, ctx.now)},
                     record={"alarm_id": alarm_id})  # fmt: skip

    @staticmethod
    def _when_said(frame: Frame, due: datetime, now: datetime) -> str:
        secs = parse_duration(frame.norm("duration"), frame.get("duration")) if frame.get("duration") else None
        return f"in {spoken_duration(secs)}" if secs is not None else spoken_at(due, now)

    def _add_event(self, ctx: SkillContext, frame: Frame) -> Reply:
        name = spoken_task(frame.norm("event"))
        day = frame_day(frame, ctx.today) or ctx.today
        hm = clock_on(frame, day, ctx.now)
        data = {"event": name, "date": day.isoformat(), "time": f"{hm[0]:02d}:{hm[1]:02d}" if hm else None}
        record_id = ctx.store.add_record(ctx.session_id, EVENT_KIND, data)
        at = datetime.combine(day, time(*(hm or (0, 0))), tzinfo=ctx.now.tzinfo)
        return Reply("AddEvent.done", {"event": name, "when": spoken_at(at, ctx.now, timed=hm is not None)},
                     record={"record_id": record_id})  # fmt: skip

    def _query(self, ctx: SkillContext, frame: Frame) -> Reply:
        entries = calendar(ctx)
        if frame.get("event") and not frame.get("date"):
            hits = [e for e in entries if e.day >= ctx.today and _named(e, frame.get("event") or "")]
            if not hits:
                return Reply("QueryCalendar.no_event", {"event": spoken_task(frame.get("event"))})
            return Reply("QueryCalendar.event", {"items": spoken_list([e.spoken(ctx.now) for e in hits[:3]])})
        day = frame_day(frame, ctx.today) or ctx.today
        hm = parse_time(frame.norm("time"), frame.get("time")) if frame.get("time") else None
        hits = [e for e in entries if e.day == day]
        if hm is not None:
            hits = [e for e in hits if e.at is not None and e.at[0] % 12 == hm[0] % 12]
        when = spoken_when(day, ctx.today)
        if not hits:
            return Reply("QueryCalendar.empty", {"when": when})
        return Reply("QueryCalendar.day", {"when": when, "items": spoken_list([e.spoken(ctx.now, with_day=False)
                                                                              for e in hits[:6]]),
                                           "count": spoken_number(len(hits))})  # fmt: skip

    def _move(self, ctx: SkillContext, frame: Frame) -> Reply:
        kind, ref = frame.record.get("kind"), frame.record.get("ref")
        target = next((e for e in calendar(ctx) if e.kind == kind and e.ref == ref), None)
        if target is None:
            return Reply("CancelEvent.not_found", {"what": frame.get("event") or "anything", "when": ""})
        day = frame_day(frame, ctx.today) or target.day
        hm = clock_on(frame, day, ctx.now) or target.at
        when_dt = datetime.combine(day, time(*(hm or (0, 0))), tzinfo=ctx.now.tzinfo)
        if kind == "reminder":
            ctx.store.move_alarm(int(target.ref), when_dt.timestamp(), target.name)
            ctx.wake_scheduler()
        else:
            rec = ctx.store.record(int(target.ref))
            data = dict(rec.data) if rec else {"event": target.name}
            data.update(date=day.isoformat(), time=f"{hm[0]:02d}:{hm[1]:02d}" if hm else None)
            ctx.store.update_record(int(target.ref), data)
        what = target.name if kind == "event" else f"your reminder to {target.name}"
        return Reply("MoveEvent.done", {"what": what, "when": spoken_at(when_dt, ctx.now, timed=hm is not None, on=False)},
                     record={"kind": kind, "ref": target.ref})  # fmt: skip

    def amend(self, ctx: SkillContext, done: Frame, correction: Frame) -> Reply | None:
        """"Actually make it six": move the reminder just set (an event: re-date it)."""
        if done.intent != "SetReminder" or "alarm_id" not in done.record:
            return None
        if not (correction.get("time") or correction.get("duration") or correction.get("date")):
            return None
        merged = Frame(done.intent, {**done.slots, **correction.slots})
        if correction.get("duration"):
            merged.drop("time", "date")
        elif correction.get("time") or correction.get("date"):
            merged.drop("duration")
        due = due_time(merged, ctx.now)
        if due is None or due <= ctx.now:
            return None
        task = spoken_task(merged.norm("task"))
        ctx.store.move_alarm(int(done.record["alarm_id"]), due.timestamp(), task)
        ctx.wake_scheduler()
        return Reply("SetReminder.changed", {"task": task, "when": self._when_said(merged, due, ctx.now)},
                     record=done.record)  # fmt: skip
