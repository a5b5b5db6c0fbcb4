"""Dialog commands: the story-test runner (``quickturn test stories [PATH...]``) and ``quickturn dialog``.

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
``alarm_times: ["07:00"]``, ``device: {id, on, level}``, ``playlist: {name, contains}``,
``turns_logged: N``, ``stack: N`` (open tasks).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from assistant.errors import DomainError
from dialog.manager import META_INTENTS, DialogManager, DialogResponse
from dialog.skills.base import SkillContext
from services.nlu.base import OUT_OF_SCOPE, NluResult, SlotValue

STORIES_DIR = Path(__file__).with_name("stories")
DEFAULT_NOW = "2026-11-26T08:00"
DEFAULT_TZ = "America/New_York"
FIRST_PHRASE_MAX_WORDS = 6
"""Every reply's first phrase must be this short (the TTS speaks it first); a step may override."""

_STEP_KEYS = {"user", "intent", "slots", "confidence", "expect", "then", "restart", "advance", "notifications",
              "interrupt", "session", "comment"}  # fmt: skip
_EXPECT_KEYS = {"action", "text", "not_text", "expected_slot", "frame", "hint_words", "end_session", "intent",
                "first_phrase_max_words"}  # fmt: skip
_THEN_KEYS = {"records", "record", "alarms", "alarm_times", "device", "playlist", "turns_logged", "stack"}


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


class _Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def _check_response(exp: dict[str, Any], resp: DialogResponse) -> str | None:
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
    if "turns_logged" in then:
        got = len(store.turns(session_id))
        if got != int(then["turns_logged"]):
            return f"expected {then['turns_logged']} logged turns, found {got}"
    if "stack" in then:
        got = len(dm.session(session_id).stack)
        if got != int(then["stack"]):
            return f"expected {then['stack']} open task(s), found {got}"
    return None


def run_story(story: Story, workdir: Path | None = None) -> StoryResult:
    """Run one story against a fresh manager on a fresh database file."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        db = Path(tmp) / "dialog.db"
        clock = _Clock(datetime.fromisoformat(story.now))

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
                    err = _check_response(step.get("expect") or {}, resp)
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


def test_stories_main(argv: list[str]) -> int:
    """``quickturn test stories [PATH...] [-k TEXT] [-v]``: run story files; 0 when all pass."""
    ap = argparse.ArgumentParser(prog="quickturn test stories", description="Run dialog story tests.")
    ap.add_argument("paths", nargs="*", type=Path, help=f"story files or directories (default {STORIES_DIR})")
    ap.add_argument("-k", dest="keyword", help="only stories whose name or tags contain this text")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every story's conversation")
    args = ap.parse_args(argv)
    stories = load_stories(args.paths or [STORIES_DIR], known_intents())
    if args.keyword:
        k = args.keyword.lower()
        stories = [s for s in stories if k in s.name.lower() or any(k in t.lower() for t in s.tags)]
    passed = failed = 0
    for story in stories:
        res = run_story(story)
        if res.ok:
            passed += 1
            print(f"PASS  {story.name}")
        else:
            failed += 1
            print(f"FAIL  {story.name}  ({story.path.name}): {res.message}")
        if args.verbose or not res.ok:
            print("\n".join(res.transcript))
    print(f"{passed} passed, {failed} failed")
    sys.stdout.flush()
    return 0 if failed == 0 and passed > 0 else 1


def _default_db() -> Path:
    try:
        from assistant.settings import load_settings

        return load_settings().data_dir / "dialog.db"
    except Exception:  # settings unavailable in a stripped-down install
        return Path(__file__).resolve().parents[1] / "var" / "dialog.db"


def dialog_main(argv: list[str]) -> int:
    """``quickturn dialog INTENT [SLOT=VALUE[=NORMALIZED]...]``: one turn straight into the dialog manager.

    Skips ASR and NLU, so a conversation can be driven by hand, one process per turn, in a
    persistent session (``--session``), e.g. the three-turn coffee order in ``docs/dialog.md``.
    """
    ap = argparse.ArgumentParser(
        prog="quickturn dialog", description="Send one NLU result to the dialog manager."
    )
    ap.add_argument("intent", help="intent name, e.g. orderDrink, Affirm, out_of_scope")
    ap.add_argument("slots", nargs="*", help="SLOT=VALUE or SLOT=VALUE=NORMALIZED")
    ap.add_argument("--session", default="cli", help="session id (default: cli)")
    ap.add_argument("--db", type=Path, default=None, help="SQLite file (default: <data_dir>/dialog.db)")
    ap.add_argument("--text", default="", help="the user's words (logged; used to spot corrections)")
    ap.add_argument("--timezone", default=None, help="IANA time zone (default: the machine's)")
    ap.add_argument("--json", action="store_true", help="print the whole response as JSON")
    args = ap.parse_args(argv)
    slots: dict[str, Any] = {}
    for item in args.slots:
        name, sep, rest = item.partition("=")
        if not sep or not name:
            raise DomainError(f"slot {item!r}: write SLOT=VALUE or SLOT=VALUE=NORMALIZED")
        value, _, norm = rest.partition("=")
        slots[name] = {"value": value, "normalized": norm or value}
    nlu = nlu_from_step({"intent": args.intent, "slots": slots, "user": args.text})
    with DialogManager(args.db or _default_db(), timezone=args.timezone) as dm:
        resp = dm.handle(args.session, f"cli-{time.time_ns()}", nlu, args.text, args.text)
    if args.json:
        print(json.dumps(resp.to_json(), indent=2))
    else:
        print(resp.text)
    return 0


def export_rasa_main(argv: list[str]) -> int:
    """``quickturn export rasa DIR``: a Rasa 3 project from the domains and stories (see :mod:`dialog.rasa_export`)."""
    from dialog.rasa_export import export_rasa_main as main

    return main(argv)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def bench_main(argv: list[str]) -> int:
    """``quickturn bench dialog [--rounds N] [--json]``: time ``handle()`` over every story turn.

    Replays the NLU results of all stories (one session per story and round) against one manager
    on a database file, and reports wall-clock and CPU milliseconds per turn (p50/p95/p99/max).
    CPU time is what the stage costs; wall time also shows waits for a shared CPU.
    """
    ap = argparse.ArgumentParser(prog="quickturn bench dialog", description="Time the dialog manager per turn.")
    ap.add_argument("--rounds", type=int, default=3, help="passes over all stories (default 3)")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = ap.parse_args(argv)
    stories = load_stories([STORIES_DIR])
    wall: list[float] = []
    cpu: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        clock = _Clock(datetime.fromisoformat(DEFAULT_NOW))
        with DialogManager(Path(tmp) / "bench.db", clock=clock, timezone=DEFAULT_TZ) as dm:
            for r in range(max(1, args.rounds)):
                for k, story in enumerate(stories):
                    for i, step in enumerate(story.steps):
                        if "intent" not in step:
                            continue
                        nlu = nlu_from_step(step)
                        text = str(step.get("user") or "")
                        t0, c0 = time.perf_counter(), time.process_time()
                        dm.handle(f"bench-{r}-{k}", f"t{i}", nlu, text, text)
                        wall.append((time.perf_counter() - t0) * 1000)
                        cpu.append((time.process_time() - c0) * 1000)
    stats = {
        name: {q: round(_percentile(vals, p), 3) for q, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))}
        for name, vals in (("wall_ms", wall), ("cpu_ms", cpu))
    }
    if args.json:
        print(json.dumps({"turns": len(wall), **stats}))
    else:
        print(f"dialog: {len(wall)} turns")
        for name, s in stats.items():
            print(f"  {name:8} p50 {s['p50']:.3f}  p95 {s['p95']:.3f}  p99 {s['p99']:.3f}  max {s['max']:.3f}")
    return 0
