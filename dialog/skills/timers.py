"""Timers and alarms (``SetTimer``, ``CancelTimer``, ``SetAlarm``, ``CancelAlarm``, ``QueryAlarms``).

Both are rows in the ``alarms`` table (due time in epoch seconds); the dialog
manager's scheduler fires them. Deleting an alarm asks for confirmation first;
cancelling a timer does not (it is short-lived and the request is explicit),
unless it would cancel several. ``QueryAlarms`` reads the pending alarms back ("do I have
an alarm at seven?" answers yes or no, then lists the others).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from core.numbers import spoken_number
from dialog.skills.base import Reply, Skill, SkillContext, skill
from dialog.speech_format import parse_duration, parse_time, spoken_duration, spoken_list, spoken_time
from dialog.state import Frame
from dialog.store import Alarm


def _next_at(now: datetime, hour: int, minute: int, date_hint: str | None) -> datetime:
    """The next time it will be hour:minute (or that time on the ISO date in *date_hint*)."""
    iso = re.search(r"\d{4}-\d{2}-\d{2}", date_hint or "")
    if iso:
        try:
            day = datetime.fromisoformat(iso.group()).date()
            due = datetime.combine(day, datetime.min.time(), tzinfo=now.tzinfo).replace(
                hour=hour, minute=minute
            )
            if due > now:
                return due
        except ValueError:
            pass
    due = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if due <= now:
        due += timedelta(days=1)
    if date_hint and "tomorrow" in date_hint.lower() and due.date() == now.date():
        due += timedelta(days=1)
    return due


def _alarm_words(a: Alarm, now: datetime) -> str:
    due = datetime.fromtimestamp(a.due_at, tz=now.tzinfo)
    return spoken_time(due.hour, due.minute)


@skill("timers", intents=("SetTimer", "CancelTimer", "SetAlarm", "CancelAlarm", "QueryAlarms"))
class TimerSkill(Skill):
    slots = {
        "SetTimer": ("duration", "timer_name"),
        "CancelTimer": ("duration", "timer_name"),
        "SetAlarm": ("time", "timeRange", "alarm_name"),
        "CancelAlarm": ("time", "timeRange"),
        "QueryAlarms": ("time", "timeRange"),
    }

    def required(self, ctx: SkillContext, frame: Frame) -> list[str]:
        if frame.intent == "SetTimer":
            return ["duration"]
        if frame.intent == "SetAlarm":
            return ["time"]
        if frame.intent == "CancelAlarm" and len(ctx.store.alarms(ctx.session_id, kind="alarm")) > 1:
            return ["time"]
        return []

    def hints(self, ctx: SkillContext, intent: str, slot: str) -> list[str]:
        if intent == "CancelAlarm" and slot == "time":
            return [_alarm_words(a, ctx.now) for a in ctx.store.alarms(ctx.session_id, kind="alarm")]
        if slot == "duration":
            return ["minutes", "seconds", "hours", "five", "ten", "twenty"]
        if slot == "time":
            return ["a m", "p m", "seven", "eight", "thirty"]
        return []

    def _time(self, frame: Frame) -> tuple[int, int] | None:
        return parse_time(frame.norm("time"), frame.get("time")) or (
            parse_time(frame.norm("timeRange"), frame.get("timeRange")) if frame.get("timeRange") else None
        )

    def extract(self, ctx: SkillContext, frame: Frame, slot: str, text: str) -> tuple[str, str] | None:
        if slot == "time" and (hm := parse_time(text)) is not None:
            return text, f"{hm[0]:02d}:{hm[1]:02d}"
        if slot == "duration" and (secs := parse_duration(text)) is not None:
            return text, str(int(secs))
        return super().extract(ctx, frame, slot, text)

    def check(self, ctx: SkillContext, frame: Frame) -> Reply | None:
        if frame.intent == "SetAlarm" and frame.get("timeRange") and not frame.get("time"):
            if self._time(frame) is not None:
                frame.set("time", frame.get("timeRange") or "", frame.norm("timeRange"))
        if (
            frame.intent == "SetTimer"
            and frame.get("duration")
            and parse_duration(frame.norm("duration"), frame.get("duration")) is None
        ):
            bad = frame.get("duration")
            frame.drop("duration")
            return Reply("SetTimer.bad_duration", {"said": bad}, action="ask_slot", ask="duration")
        if frame.intent == "SetAlarm" and frame.get("time") and self._time(frame) is None:
            bad = frame.get("time")
            frame.drop("time")
            return Reply("SetAlarm.bad_time", {"said": bad}, action="ask_slot", ask="time")
        if frame.intent == "CancelAlarm":
            alarms = ctx.store.alarms(ctx.session_id, kind="alarm")
            if not alarms:
                return Reply("CancelAlarm.none")
            hm = self._time(frame) if frame.get("time") or frame.get("timeRange") else None
            if hm is not None:
                hits = [a for a in alarms if _hm(a, ctx.now) == hm]
                if not hits:
                    listed = spoken_list([_alarm_words(a, ctx.now) for a in alarms])
                    return Reply("CancelAlarm.not_found", {"time": spoken_time(*hm), "alarms": listed})
                alarms = hits
            if len(alarms) == 1:
                frame.record = {"target": alarms[0].alarm_id, "time": _alarm_words(alarms[0], ctx.now)}
        return None

    def ask_vars(self, ctx: SkillContext, frame: Frame, slot: str) -> dict[str, object]:
        v = dict(super().ask_vars(ctx, frame, slot))
        if frame.intent == "CancelAlarm":
            v["options"] = spoken_list(self.hints(ctx, frame.intent, slot), "or")
        return v

    def confirm(self, ctx: SkillContext, frame: Frame) -> Reply | None:
        if frame.intent == "CancelAlarm" and "target" in frame.record:
            return Reply("confirm.CancelAlarm", {"time": frame.record["time"]}, action="confirm")
        if frame.intent == "CancelTimer":
            timers = ctx.store.alarms(ctx.session_id, kind="timer")
            if len(timers) > 1 and not frame.get("duration"):
                return Reply("confirm.CancelTimer.all", {"count": len(timers)}, action="confirm")
        return None

    def execute(self, ctx: SkillContext, frame: Frame) -> Reply:
        store = ctx.store
        if frame.intent == "QueryAlarms":
            return self._query(ctx, frame)
        if frame.intent == "SetTimer":
            secs = parse_duration(frame.norm("duration"), frame.get("duration")) or 60.0
            label = spoken_duration(secs)
            alarm_id = store.add_alarm(ctx.session_id, "timer", ctx.now.timestamp() + secs, label)
            ctx.wake_scheduler()
            return Reply("SetTimer.done", {"duration": label}, record={"alarm_id": alarm_id})
        if frame.intent == "SetAlarm":
            hm = self._time(frame) or (7, 0)
            due = _next_at(ctx.now, *hm, _day_hint(frame))
            label = spoken_time(*hm)
            existing = [
                a for a in store.alarms(ctx.session_id, kind="alarm") if abs(a.due_at - due.timestamp()) < 30
            ]
            if existing:
                return Reply("SetAlarm.exists", {"time": label}, record={"alarm_id": existing[0].alarm_id})
            alarm_id = store.add_alarm(ctx.session_id, "alarm", due.timestamp(), label)
            ctx.wake_scheduler()
            return Reply(
                "SetAlarm.done",
                {"time": label, "when": _day_word(due, ctx.now)},
                record={"alarm_id": alarm_id},
            )
        if frame.intent == "CancelTimer":
            timers = store.alarms(ctx.session_id, kind="timer")
            if not timers:
                return Reply("CancelTimer.none")
            secs = (
                parse_duration(frame.norm("duration"), frame.get("duration"))
                if frame.get("duration")
                else None
            )
            if secs is not None:
                label = spoken_duration(secs)
                timers = [t for t in timers if t.label == label] or timers[:1]
            for t in timers:
                store.set_alarm_status(t.alarm_id, "cancelled")
            ctx.wake_scheduler()
            if len(timers) == 1:
                return Reply("CancelTimer.done", {"duration": timers[0].label})
            return Reply("CancelTimer.done_all", {"count": len(timers)})
        # CancelAlarm, confirmed
        target = frame.record.get("target")
        if target is None:
            return Reply("CancelAlarm.none")
        store.set_alarm_status(int(target), "cancelled")
        ctx.wake_scheduler()
        return Reply("CancelAlarm.done", {"time": frame.record.get("time", "")})

    def _query(self, ctx: SkillContext, frame: Frame) -> Reply:
        alarms = ctx.store.alarms(ctx.session_id, kind="alarm")
        said = [f"{_alarm_words(a, ctx.now)} {_day_word(_due(a, ctx.now), ctx.now)}" for a in alarms]
        hm = self._time(frame) if frame.get("time") or frame.get("timeRange") else None
        if hm is not None:
            # "At seven" finds the seven p m alarm too: the question rarely says which seven.
            hits = [s for a, s in zip(alarms, said, strict=True)
                    if _hm(a, ctx.now)[1] == hm[1] and _hm(a, ctx.now)[0] % 12 == hm[0] % 12]  # fmt: skip
            if hits:
                return Reply("QueryAlarms.yes", {"alarms": spoken_list(hits)})
            key = "QueryAlarms.no_others" if said else "QueryAlarms.none"
            return Reply(key, {"time": spoken_time(*hm), "alarms": spoken_list(said)})
        if not alarms:
            return Reply("QueryAlarms.none")
        if len(alarms) == 1:
            return Reply("QueryAlarms.one", {"alarms": said[0]})
        return Reply("QueryAlarms.some", {"alarms": spoken_list(said), "count": spoken_number(len(alarms))})

    def amend(self, ctx: SkillContext, done: Frame, correction: Frame) -> Reply | None:
        alarm_id = done.record.get("alarm_id")
        if alarm_id is None:
            return None
        if done.intent == "SetTimer" and correction.get("duration"):
            secs = parse_duration(correction.norm("duration"), correction.get("duration"))
            if secs is None:
                return None
            label = spoken_duration(secs)
            ctx.store.move_alarm(int(alarm_id), ctx.now.timestamp() + secs, label)
            ctx.wake_scheduler()
            return Reply("SetTimer.changed", {"duration": label}, record=done.record)
        if done.intent == "SetAlarm" and (correction.get("time") or correction.get("timeRange")):
            hm = self._time(correction)
            if hm is None:
                return None
            hint = _day_hint(correction)
            due = _next_at(ctx.now, *hm, hint)
            old = [a for a in ctx.store.alarms(ctx.session_id, kind="alarm") if a.alarm_id == alarm_id]
            if old and not (hint and re.search(r"\d{4}-\d{2}-\d{2}|today|tomorrow|day", hint)):
                # "actually eight thirty" keeps the alarm's day when that is still ahead.
                same_day = datetime.fromtimestamp(old[0].due_at, tz=ctx.now.tzinfo).replace(
                    hour=hm[0], minute=hm[1]
                )
                if same_day > ctx.now:
                    due = same_day
            label = spoken_time(*hm)
            ctx.store.move_alarm(int(alarm_id), due.timestamp(), label)
            ctx.wake_scheduler()
            return Reply(
                "SetAlarm.changed", {"time": label, "when": _day_word(due, ctx.now)}, record=done.record
            )
        return None


def _day_hint(frame: Frame) -> str:
    """Everything that may name the alarm's day: "tomorrow", an ISO date..."""
    return " ".join(
        v
        for v in (frame.norm("time"), frame.get("time"), frame.norm("timeRange"), frame.get("timeRange"))
        if v
    )


def _hm(a: Alarm, now: datetime) -> tuple[int, int]:
    due = _due(a, now)
    return due.hour, due.minute


def _due(a: Alarm, now: datetime) -> datetime:
    return datetime.fromtimestamp(a.due_at, tz=now.tzinfo)


def _day_word(due: datetime, now: datetime) -> str:
    delta = (due.date() - now.date()).days
    return "today" if delta == 0 else "tomorrow" if delta == 1 else due.strftime("on %A")
