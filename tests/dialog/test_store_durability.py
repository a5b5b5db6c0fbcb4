"""Committed turns and timers are fsynced, stored numbers are bounded, and turn ids are unique per call.

Durability is observed, not assumed: a child process runs dialog turns through the runtime's own
constructor (``dialog.backends.load_dialog``) under ``strace``, and the test counts the syncs of the
WAL file before the child exits without closing (``os._exit``, so no checkpoint on close can hide a
missing per-commit sync). The same child on a ``durable=False`` store is the control: it shows the
count can be zero.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import InvalidInput
from core.settings import REPO_ROOT
from core.types import NluResult, SlotValue
from dialog.manager import DialogManager
from dialog.store import MAX_PLAYED_MS, Store

needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")

_CHILD = """
import os, sys
from pathlib import Path
from core.settings import load_settings
from core.types import NluResult, SlotValue
from dialog.backends import load_dialog
from dialog.manager import DialogManager

db = Path(sys.argv[1])
dm = load_dialog(load_settings(None, {}), db) if sys.argv[2] == "runtime" else DialogManager(db, durable=False)
timer = NluResult("SetTimer", 1.0, (SlotValue("duration", "five minutes", "five minutes", 4, 6),))
for i in range(5):
    dm.handle("S", f"S-t{i}", timer, "set a timer for five minutes", "set a timer for five minutes")
print(len(dm.store.alarms("S")), flush=True)
os._exit(0)  # no close(): nothing but the commits themselves may sync the WAL
"""


def wal_syncs(tmp_path: Path, mode: str) -> tuple[int, int]:
    """(fsync/fdatasync calls on the WAL file, pending timers) of the child in ``mode``."""
    db = tmp_path / mode / "dialog.sqlite"
    db.parent.mkdir()
    trace = tmp_path / f"{mode}.strace"
    out = subprocess.run(
        ["strace", "-f", "-y", "-e", "trace=fsync,fdatasync", "-o", str(trace), sys.executable, "-c", _CHILD, str(db), mode],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    syncs = [line for line in trace.read_text().splitlines() if "sync(" in line and "dialog.sqlite-wal" in line]
    return len(syncs), int(out.stdout.strip())


@needs_strace
def test_every_committed_turn_and_timer_is_fsynced_by_the_runtime_store(tmp_path: Path) -> None:
    syncs, timers = wal_syncs(tmp_path, "runtime")
    control, control_timers = wal_syncs(tmp_path, "normal")
    assert timers == control_timers == 5
    # NORMAL syncs the WAL once, when it is created (its header), and never at a commit.
    assert control <= 1, f"synchronous=NORMAL synced the WAL {control} times; the measurement proves nothing"
    # FULL adds at least one sync per turn (state, timer and logged turn are one commit).
    assert syncs >= control + 5, f"{syncs} WAL syncs with the runtime store, {control} without, for 5 turns"


def test_the_default_store_is_synchronous_full(tmp_path: Path) -> None:
    durable, scratch = Store(tmp_path / "a.db"), Store(tmp_path / "b.db", durable=False)
    try:
        assert durable._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert scratch._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert durable._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # A latencies-only update is committed without its own fsync; the store is FULL again after it.
        durable.insert_turn("S", "S-t1", transcript="", clean_text="", nlu=None, response={"text": "ok"})
        assert durable.update_turn("S", "S-t1", latencies={"asr": 1.0})
        assert durable._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        durable.close()
        scratch.close()


@pytest.mark.parametrize("bad", [float("inf"), 1e999, float("nan"), 10**30, 2**63, -1, MAX_PLAYED_MS + 1, 12.5, True, "100"])
def test_played_ms_out_of_range_is_refused_and_nothing_is_written(tmp_path: Path, bad: object) -> None:
    with DialogManager(tmp_path / "d.db", warm_up=False) as dm:
        dm.handle("S", "S-t1", NluResult("SetTimer", 1.0, (SlotValue("duration", "five minutes", "five minutes", 4, 6),)),
                  "set a timer for five minutes", "set a timer for five minutes")  # fmt: skip
        with pytest.raises(InvalidInput, match="played_ms"):
            dm.mark_interrupted("S", "S-t1", bad)  # type: ignore[arg-type]
        assert dm.store.turns("S")[-1].played_ms is None
        assert dm.session("S").last.played_ms is None  # the state was rolled back with the turn row
        dm.mark_interrupted("S", "S-t1", 1500.0)  # type: ignore[arg-type]  # an integral JSON number is fine
        assert dm.store.turns("S")[-1].played_ms == 1500
        assert dm.session("S").last.played_ms == 1500


def test_times_ids_and_latencies_are_bounded(tmp_path: Path) -> None:
    store = Store(tmp_path / "d.db")
    try:
        for due in (float("inf"), float("nan"), -5.0, 1e300, 10**400):
            with pytest.raises(InvalidInput, match="due_at"):
                store.add_alarm("S", "timer", due, "")  # type: ignore[arg-type]
        aid = store.add_alarm("S", "timer", 1_800_000_000.0, "")
        with pytest.raises(InvalidInput, match="due_at"):
            store.move_alarm(aid, float("inf"), "")
        with pytest.raises(InvalidInput, match="alarm_id"):
            store.set_alarm_status(10**30, "cancelled")
        with pytest.raises(InvalidInput, match="record_id"):
            store.record(10**30)
        assert [a.due_at for a in store.alarms("S")] == [1_800_000_000.0]
        store.insert_turn("S", "S-t1", transcript="", clean_text="", nlu=None, response={"text": "ok"})
        with pytest.raises(InvalidInput, match="latency 'asr'"):
            store.update_turn("S", "S-t1", latencies={"asr": float("inf")})
        assert store.update_turn("S", "S-t1", latencies={"asr": 12.34567})
        assert store.turns("S")[0].latencies == {"asr": 12.346}
    finally:
        store.close()


def test_a_reused_turn_id_is_logged_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(tmp_path / "d.db")
    try:
        with caplog.at_level(logging.WARNING, logger="dialog.store"):
            store.insert_turn("S", "S-t1", transcript="", clean_text="", nlu=None, response={"text": "a"})
            assert not caplog.records
            store.insert_turn("S", "S-t1", transcript="", clean_text="", nlu=None, response={"text": "b"})
        assert any("S-t1 is already logged" in r.getMessage() for r in caplog.records)
    finally:
        store.close()


def test_two_say_processes_on_one_session_log_distinct_turn_ids(tmp_path: Path) -> None:
    """Two real ``quickturn say --session S`` calls at once (the issue saw ``S-t1`` for every call)."""
    db = tmp_path / "dialog.sqlite"
    procs = [
        subprocess.Popen([sys.executable, "-m", "assistant.cli", "say", "--session", "S", "--db", str(db), "--json",
                          "--tts", "espeak", "--out", str(tmp_path / f"r{i}.wav"), text],
                         cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i, text in enumerate(["set a timer for five minutes", "what time is it"])
    ]  # fmt: skip
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-2000:]
        assert json.loads(out)["reply"]
    with DialogManager(db, warm_up=False) as dm:
        ids = [t.turn_id for t in dm.store.turns("S")]
    assert len(ids) == 2 and len(set(ids)) == 2, ids
    assert all(re.fullmatch(r"S-[0-9a-f]+t\d+", i) for i in ids), ids
