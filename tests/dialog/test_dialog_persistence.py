"""kill -9 in the middle of a conversation loses no committed turn, no alarm and no session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from core.settings import REPO_ROOT
from core.types import NluResult, SlotValue
from dialog.manager import DialogManager

ROOT = REPO_ROOT

# The child talks in three sessions as fast as it can and prints a line after each committed turn.
CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from dialog.manager import DialogManager
    from core.types import NluResult, SlotValue

    def nlu(intent, **slots):
        return NluResult(intent, 1.0, tuple(SlotValue(k, v, v, 0, 0) for k, v in slots.items()))

    dm = DialogManager(Path(sys.argv[1]))
    i = 0
    while True:
        session = f"s{i % 3}"
        step = (i // 3) % 3
        if step == 0:
            n = nlu("orderDrink", coffeeDrink="latte")
        elif step == 1:
            n = nlu("orderDrink", size="small")
        else:
            n = nlu("SetTimer", duration=str(3600 + i))
        r = dm.handle(session, f"t{i}", n, f"text {i}", f"text {i}")
        print(f"{session} t{i} {r.action} {step}", flush=True)
        i += 1
    """
)


def test_kill_9_loses_no_committed_turn_or_alarm(tmp_path: Path) -> None:
    db = tmp_path / "dialog.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    committed: list[tuple[str, str, str, int]] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while len(committed) < 150 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        session, turn_id, action, step = line.split()
        committed.append((session, turn_id, action, int(step)))
    os.kill(proc.pid, signal.SIGKILL)  # mid-conversation: the child is writing as fast as it can
    proc.wait()
    # Lines the child printed before it died are still in the pipe: those turns were committed too.
    for line in proc.stdout.read().splitlines():
        if len(line.split()) == 4:
            session, turn_id, action, step = line.split()
            committed.append((session, turn_id, action, int(step)))
    assert len(committed) >= 150, "the child did not get far enough"

    with DialogManager(db) as dm:
        for session in ("s0", "s1", "s2"):
            mine = [c for c in committed if c[0] == session]
            logged = [t["turn_id"] for t in dm.history(session)]
            # Every turn the child saw committed is there, in order; at most one more (committed, not yet printed).
            assert logged[: len(mine)] == [c[1] for c in mine]
            assert len(logged) - len(mine) in (0, 1)
            # The session state and the log were committed together.
            state = dm.session(session)
            assert state.turns == len(logged)
            timers_set = sum(1 for t in dm.history(session) if t["nlu"]["intent"] == "SetTimer")
            assert len(dm.store.alarms(session, kind="timer")) == timers_set >= sum(1 for c in mine if c[3] == 2)
            orders = sum(1 for t in dm.history(session) if t["response"]["action"] == "done" and t["nlu"]["intent"] == "orderDrink")
            assert len(dm.store.records("coffee_order", session)) == orders
            # The session resumes where it was: if a size was being asked, answering it completes the order.
            top = state.top
            if top is not None and top.expected_slot == "size":
                r = dm.handle(session, "after", NluResult("orderDrink", 1.0, (SlotValue("size", "large", "large", 0, 1),)))
                assert "large latte" in r.text
