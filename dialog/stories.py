"""Dialog story tests: load, run and check multi-turn conversations written in YAML.

A story is a multi-turn conversation written in YAML under ``dialog/stories/``.
Each step gives the NLU result directly (intent + slots), so stories test the
dialog manager on its own, independent of any NLU model::

    version: 1
    stories:
      - story: coffee, one correction
        tags: [coffee, correction]
        now: "2026-11-26T08:00"          # optional fake clock start (default shown)
        timezone: America/New_York       # optional (default shown)
        steps:
          - user: "a latte please"       # optional text (transcript and cleaned text)
            intent: orderDrink
            slots: {coffeeDrink: latte}  # or {slot: {value: "eight thirty", normalized: "08:30"}}
            expect:
              action: ask_slot           # DialogResponse.action
              text: "what size"          # regex, searched case-insensitively in the reply
              expected_slot: size        # DialogResponse.expected.expected_slot (null: none)
              frame: {coffeeDrink: latte}  # subset of DialogResponse.frame
              hint_words: [large]        # subset of DialogResponse.hint_words
              end_session: false
          - user: "no, make it large"
            intent: Deny
            slots: {size: large}
            expect: {action: done, text: "large latte"}
            then:                        # side effects, checked after the turn
              records: {coffee_order: 1}
              record: {kind: coffee_order, data: {size: large}}
          - restart: true                # close the manager and reopen the same database
          - advance: 300                 # move the clock (seconds) and fire due timers/alarms
            notifications: ["timer"]     # regexes, one per expected notification, in order
          - interrupt: 400               # the user barged in after 400 ms of the last reply
          - session: other-user          # later steps talk in another session

Side-effect checks (``then:``): ``records: {kind: count}``, ``record: {kind, data}`` (the
newest active record of that kind contains *data*), ``alarms: N`` (pending in this session),
``alarm_times: ["07:00"]``, ``device: {id, on, level, color}``, ``playlist: {name, contains}``,
``list: {name, contains: [..], not_contains: [..], count, exists}`` (a household list, by its
normalized name), ``reminders: N`` (pending in this session), ``turns_logged: N``, ``stack: N``
(open tasks). ``expect: {volume: N}`` checks the speaker volume on the reply.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from core.errors import DomainError
from core.types import OUT_OF_SCOPE, NluResult, SlotValue
from dialog.manager import META_INTENTS, DialogManager, DialogResponse
from dialog.skills.base import SkillContext

STORIES_DIR = Path(__file__).with_name("stories")
DEFAULT_NOW = "2026-11-26T08:00"
DEFAULT_TZ = "America/New_York"
FIRST_PHRASE_MAX_WORDS = 6
"""Every reply's first phrase must be this short (the TTS speaks it first); a step may override."""

_STEP_KEYS = {"user", "intent", "slots", "confidence", "expect", "then", "restart", "advance", "notifications",
              "interrupt", "session", "comment"}  # fmt: skip
_EXPECT_KEYS = {"action", "text", "not_text", "expected_slot", "frame", "hint_words", "end_session", "intent",
                "first_phrase_max_words", "volume"}  # fmt: skip
_THEN_KEYS = {"records", "record", "alarms", "alarm_times", "device", "playlist", "list", "reminders", "turns_logged",
              "stack"}  # fmt: skip


@dataclass
class Story:
    """One parsed story."""

    name: str
    path: Path
    steps: list[dict[str, Any]]
    tags: list[str] = field(default_factory=list)
    now: str = DEFAULT_NOW
    timezone: str = DEFAULT_TZ


@dataclass
class StoryResult:
    story: Story
    ok: bool
    message: str = ""
    transcript: list[str] = field(default_factory=list)


def _iter_files(paths: list[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.suffix in {".yml", ".yaml"})
        elif p.is_file():
            yield p
        else:
            raise DomainError(f"{p}: no such story file or directory")


def load_stories(paths: list[Path], known_intents: set[str] | None = None) -> list[Story]:
    """Parse and check story files.

    Raises:
        DomainError: a malformed file, an unknown key or an unknown intent (the message names the
            file, the story and the step).
    """
    out: list[Story] = []
    for path in _iter_files(paths):
        try:
            raw = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
        except yaml.YAMLError as exc:
            raise DomainError(f"{path}: invalid YAML: {exc}") from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("stories"), list):
            raise DomainError(f"{path}: expected a top-level 'stories' list")
        for i, s in enumerate(raw["stories"]):
            where = f"{path}: story {i + 1}"
            if not isinstance(s, dict) or not s.get("story") or not isinstance(s.get("steps"), list):
                raise DomainError(f"{where}: each story needs 'story' (a name) and 'steps' (a list)")
            where = f"{path}: story {s['story']!r}"
            for j, step in enumerate(s["steps"]):
                if not isinstance(step, dict):
                    raise DomainError(f"{where}, step {j + 1}: a step is a mapping")
                bad = set(step) - _STEP_KEYS
                bad |= {f"expect.{k}" for k in set(step.get("expect") or {}) - _EXPECT_KEYS}
                bad |= {f"then.{k}" for k in set(step.get("then") or {}) - _THEN_KEYS}
                if bad:
                    raise DomainError(f"{where}, step {j + 1}: unknown keys {sorted(bad)}")
                intent = step.get("intent")
                if known_intents is not None and intent is not None and intent not in known_intents:
                    raise DomainError(
                        f"{where}, step {j + 1}: unknown intent {intent!r} (no skill handles it)"
                    )
            out.append(Story(str(s["story"]), path, s["steps"], list(s.get("tags", [])),
                             str(s.get("now", DEFAULT_NOW)), str(s.get("timezone", DEFAULT_TZ))))  # fmt: skip
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DomainError(f"duplicate story names: {dupes}")
    return out


def nlu_from_step(step: dict[str, Any]) -> NluResult:
    """The :class:`NluResult` a story step specifies."""
    text = str(step.get("user") or "")
    words = text.lower().split()
    slots: list[SlotValue] = []
    for name, v in (step.get("slots") or {}).items():
        if isinstance(v, dict):
            value, norm = str(v.get("value", "")), str(v.get("normalized", v.get("value", "")))
        else:
            value = norm = str(v)
        # Spans point at the value's words in the text when it is there (cosmetic; the DM ignores them).
        vw = value.lower().split()
        start = next((k for k in range(len(words)) if words[k : k + len(vw)] == vw), 0)
        slots.append(SlotValue(str(name), value, norm, start, start + len(vw)))
    return NluResult(str(step.get("intent", OUT_OF_SCOPE)), float(step.get("confidence", 1.0)), tuple(slots))


class StoryClock:
    """A fake clock the story moves by hand (``advance:``)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def check_response(exp: dict[str, Any], resp: DialogResponse) -> str | None:
    if "action" in exp and resp.action != exp["action"]:
        return f"expected action {exp['action']!r}, got {resp.action!r}"
    if "intent" in exp and resp.intent != exp["intent"]:
        return f"expected intent {exp['intent']!r}, got {resp.intent!r}"
    if "text" in exp and not re.search(str(exp["text"]), resp.text, re.I):
        return f"reply does not match /{exp['text']}/"
    if "not_text" in exp and re.search(str(exp["not_text"]), resp.text, re.I):
        return f"reply matches /{exp['not_text']}/ but should not"
    if "expected_slot" in exp:
        got = resp.expected.expected_slot if resp.expected else None
        if got != exp["expected_slot"]:
            return f"expected to be waiting for slot {exp['expected_slot']!r}, waiting for {got!r}"
    for k, v in (exp.get("frame") or {}).items():
        if str(resp.frame.get(k, "")).lower() != str(v).lower():
            return f"frame[{k!r}] is {resp.frame.get(k)!r}, expected {v!r}"
    missing = [w for w in exp.get("hint_words") or [] if w not in resp.hint_words]
    if missing:
        return f"hint words {missing} missing from {resp.hint_words}"
    if "end_session" in exp and resp.end_session != bool(exp["end_session"]):
        return f"expected end_session {exp['end_session']}, got {resp.end_session}"
    if "volume" in exp and resp.volume != int(exp["volume"]):
        return f"expected volume {exp['volume']}, got {resp.volume}"
    limit = int(exp.get("first_phrase_max_words", FIRST_PHRASE_MAX_WORDS) or 0)
    if limit and resp.phrases and len(resp.phrases[0].split()) > limit:
        return f"first phrase {resp.phrases[0]!r} has more than {limit} words"
    return None


def _check_effects(then: dict[str, Any], dm: DialogManager, session_id: str) -> str | None:
    store = dm.store
    for kind, n in (then.get("records") or {}).items():
        got = len(store.records(kind, session_id))
        if got != int(n):
            return f"expected {n} active {kind} record(s), found {got}"
    if "record" in then:
        spec = then["record"]
        recs = store.records(spec["kind"], session_id)
        if not recs:
            return f"no active {spec['kind']} record"
        data = recs[-1].data
        for k, v in (spec.get("data") or {}).items():
            if str(data.get(k)).lower() != str(v).lower():
                return f"{spec['kind']} record has {k}={data.get(k)!r}, expected {v!r}"
    if "alarms" in then:
        got = len(store.alarms(session_id))
        if got != int(then["alarms"]):
            return f"expected {then['alarms']} pending alarm(s)/timer(s), found {got}"
    if "alarm_times" in then:
        times = [
            datetime.fromtimestamp(a.due_at, tz=dm.tz).strftime("%H:%M")
            for a in store.alarms(session_id, kind="alarm")
        ]
        if times != [str(t) for t in then["alarm_times"]]:
            return f"alarm times are {times}, expected {then['alarm_times']}"
    if "device" in then:
        spec = dict(then["device"])
        device_id = spec.pop("id")
        home = dm.skills["smarthome"]
        ctx = SkillContext(session_id, "", dm.now(), store, dm.session(session_id))
        state = home.device_state(ctx, device_id)  # type: ignore[attr-defined]
        for k, v in spec.items():
            if state.get(k) != v:
                return f"device {device_id} has {k}={state.get(k)!r}, expected {v!r}"
    if "playlist" in then:
        spec = then["playlist"]
        items = store.kv_get("playlist", spec["name"]) or []
        titles = [i["title"] for i in items]
        if spec.get("contains") and spec["contains"] not in titles:
            return f"playlist {spec['name']!r} is {titles}, expected it to contain {spec['contains']!r}"
        if "not_contains" in spec and spec["not_contains"] in titles:
            return f"playlist {spec['name']!r} should not contain {spec['not_contains']!r}"
    if "list" in then:
        err = _check_list(then["list"], store)
        if err:
            return err
    if "reminders" in then:
        got = len(store.alarms(session_id, kind="reminder"))
        if got != int(then["reminders"]):
            return f"expected {then['reminders']} pending reminder(s), found {got}"
    if "turns_logged" in then:
        got = len(store.turns(session_id))
        if got != int(then["turns_logged"]):
            return f"expected {then['turns_logged']} logged turns, found {got}"
    if "stack" in then:
        got = len(dm.session(session_id).stack)
        if got != int(then["stack"]):
            return f"expected {then['stack']} open task(s), found {got}"
    return None


def _check_list(spec: dict[str, Any], store: Any) -> str | None:
    """``list: {name, contains, not_contains, count, exists}`` against the stored household list."""
    stored = store.kv_get("list", spec["name"])
    if "exists" in spec and bool(stored) != bool(spec["exists"]):
        return f"list {spec['name']!r} {'does not exist' if spec['exists'] else 'exists'}"
    items = list((stored or {}).get("items", []))
    want = spec.get("contains") or []
    for item in [want] if isinstance(want, str) else want:
        if item not in items:
            return f"list {spec['name']!r} is {items}, expected it to contain {item!r}"
    gone = spec.get("not_contains") or []
    for item in [gone] if isinstance(gone, str) else gone:
        if item in items:
            return f"list {spec['name']!r} is {items}, should not contain {item!r}"
    if "count" in spec and len(items) != int(spec["count"]):
        return f"list {spec['name']!r} has {len(items)} item(s) {items}, expected {spec['count']}"
    return None


def run_story(story: Story, workdir: Path | None = None) -> StoryResult:
    """Run one story against a fresh manager on a fresh database file."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        db = Path(tmp) / "dialog.db"
        clock = StoryClock(datetime.fromisoformat(story.now))

        def open_dm() -> DialogManager:
            return DialogManager(db, clock=clock, timezone=story.timezone, warm_up=False)

        dm = open_dm()
        session = "story"
        log: list[str] = []
        last_turn: str | None = None
        try:
            for i, step in enumerate(story.steps, 1):
                where = f"step {i}"
                if "session" in step:
                    session = str(step["session"])
                if step.get("restart"):
                    dm.close()
                    dm = open_dm()
                    log.append("  -- restart --")
                if "advance" in step:
                    clock.now += timedelta(seconds=float(step["advance"]))
                    fired = dm.fire_due()
                    log.extend(f"  (notify {n.session_id}) {n.text}" for n in fired)
                    want = [str(w) for w in step.get("notifications") or []]
                    if len(fired) != len(want) or any(
                        not re.search(w, n.text, re.I) for w, n in zip(want, fired, strict=False)
                    ):
                        got = [n.text for n in fired]
                        return StoryResult(
                            story, False, f"{where}: notifications {got} do not match {want}", log
                        )
                if "interrupt" in step:
                    if last_turn is None:
                        return StoryResult(story, False, f"{where}: 'interrupt' before any turn", log)
                    dm.mark_interrupted(session, last_turn, int(step["interrupt"]))
                    log.append(f"  -- barge-in after {step['interrupt']} ms --")
                if "intent" in step:
                    nlu = nlu_from_step(step)
                    last_turn = f"turn-{i}"
                    text = str(step.get("user") or "")
                    resp = dm.handle(session, last_turn, nlu, transcript=text, clean_text=text)
                    slots = ", ".join(f"{s.slot}={s.value}" for s in nlu.slots)
                    log.append(f"  user: {text or '-'}  [{nlu.intent}({slots})]")
                    log.append(f"  bot:  {resp.text}  [{resp.action}]")
                    err = check_response(step.get("expect") or {}, resp)
                    if err:
                        return StoryResult(story, False, f"{where}: {err}; reply was {resp.text!r}", log)
                if "then" in step:
                    err = _check_effects(step["then"] or {}, dm, session)
                    if err:
                        return StoryResult(story, False, f"{where}: {err}", log)
            return StoryResult(story, True, "", log)
        except Exception as exc:  # a crash is a failed story, reported, not a crashed runner
            return StoryResult(story, False, f"crashed: {type(exc).__name__}: {exc}", log)
        finally:
            dm.close()


def known_intents() -> set[str]:
    dm = DialogManager(None)
    try:
        return set(dm.intents) | set(META_INTENTS) | {"Affirm", "Deny", OUT_OF_SCOPE}
    finally:
        dm.close()


