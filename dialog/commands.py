"""Dialog commands: the story-test runner (``quickturn test stories [PATH...]``), ``quickturn dialog``,
``quickturn bench dialog`` and ``quickturn export rasa``. The story format is described in
:mod:`dialog.stories`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import DomainError
from dialog import rasa_export
from dialog.manager import DialogManager
from dialog.stories import (
    DEFAULT_NOW,
    DEFAULT_TZ,
    STORIES_DIR,
    StoryClock,
    known_intents,
    load_stories,
    nlu_from_step,
    run_story,
)


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
        from core.settings import load_settings

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
    return rasa_export.export_rasa_main(argv)


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
        clock = StoryClock(datetime.fromisoformat(DEFAULT_NOW))
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
