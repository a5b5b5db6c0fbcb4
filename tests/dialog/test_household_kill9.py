"""kill -9 keeps household lists and reminders: a real child process, a real SQLite file, SIGKILL.

The child talks to the DialogManager on its fake clock (Thursday 2026-11-26, 08:00, New York):
it sets a reminder for five p m, fills a shopping list, then keeps adding to a to-do list as fast
as it can, printing each committed turn, until the test kills it with SIGKILL. A new process
(this one) opens the same file: every item the child saw committed is on its list, the reminder
is pending, does not fire before five, and the scheduler fires it at five (not as "missed").
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path

from core.settings import REPO_ROOT
from core.types import NluResult, SlotValue
from dialog.manager import DialogManager

TZ = "America/New_York"
START = datetime(2026, 11, 26, 8, 0)

CHILD = textwrap.dedent(
    f"""
    import sys
    from datetime import datetime
    from pathlib import Path
    from core.types import NluResult, SlotValue
    from dialog.manager import DialogManager

    def nlu(intent, **slots):
        return NluResult(intent, 1.0, tuple(SlotValue(k, v[0], v[1], 0, 0) for k, v in slots.items()))

    dm = DialogManager(Path(sys.argv[1]), clock=lambda: datetime({START.year}, {START.month}, {START.day}, 8, 0),
                       timezone="{TZ}")
    r = dm.handle("home", "r1", nlu("SetReminder", task=("to water the plants", "to water the plants"),
                                    time=("five", "05:00")), "remind me to water the plants at five")
    print("reminder", r.action, r.text, flush=True)
    r = dm.handle("home", "l1", nlu("AddToList", item=("eggs and bread", "eggs and bread"),
                                    listName=("my shopping list", "my shopping list")), "add eggs and bread")
    print("list", r.action, flush=True)
    r = dm.handle("home", "l2", nlu("AddToList", item=("milk", "milk"), listName=("shopping", "shopping")), "add milk")
    print("list", r.action, flush=True)
    i = 0
    while True:
        r = dm.handle("home", f"t{{i}}", nlu("AddToList", item=(f"task {{i}}", f"task {{i}}"), listName=("to-do", "to-do")))
        print("todo", i, r.action, flush=True)
        i += 1
    """
)


def _nlu(intent: str, **slots: str) -> NluResult:
    return NluResult(intent, 1.0, tuple(SlotValue(k, v, v, 0, 0) for k, v in slots.items()))


def test_kill_9_keeps_lists_and_the_reminder_fires(tmp_path: Path) -> None:
    db = tmp_path / "dialog.db"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=REPO_ROOT)  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while sum(line.startswith("todo") for line in lines) < 30 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of the to-do turns
    proc.wait()
    lines += [x.strip() for x in proc.stdout.read().splitlines()]
    assert proc.returncode == -signal.SIGKILL
    assert lines and lines[0].startswith("reminder done"), (lines[:3], proc.stderr.read() if proc.stderr else "")
    assert "five p m" in lines[0]
    todo = [int(x.split()[1]) for x in lines if x.startswith("todo") and x.endswith("done")]
    assert len(todo) >= 30, "the child did not get far enough"

    now = START
    with DialogManager(db, clock=lambda: now, timezone=TZ, warm_up=False) as dm:
        # The lists: the shopping list whole, every to-do item the child saw committed (at most one more).
        shopping = dm.store.kv_get("list", "shopping")
        assert shopping["items"] == ["eggs", "bread", "milk"]
        stored = dm.store.kv_get("list", "to-do")["items"]
        assert stored[: len(todo)] == [f"task {i}" for i in todo]
        assert len(stored) - len(todo) in (0, 1)
        r = dm.handle("home", "after-1", _nlu("ReadList", listName="shopping"), "what's on my shopping list")
        assert "eggs, bread and milk" in r.text
        # The reminder: pending, in the session that set it, not due before five.
        [reminder] = dm.store.alarms("home", kind="reminder")
        assert reminder.label == "water the plants"
        due = datetime.fromtimestamp(reminder.due_at, tz=dm.tz)
        assert (due.date(), due.hour, due.minute) == (START.date(), 17, 0)
        assert dm.fire_due(START.replace(tzinfo=dm.tz) + timedelta(hours=8, minutes=59)) == []
        # At five the real scheduler fires it, worded as a reminder, not as missed.
        now = START + timedelta(hours=9, seconds=30)
        heard: list[tuple[str, str]] = []

        async def run() -> None:
            async def notify(session_id: str, text: str) -> None:
                heard.append((session_id, text))

            task = asyncio.create_task(dm.run_scheduler(notify, max_sleep_s=0.05))
            for _ in range(100):
                if heard:
                    break
                await asyncio.sleep(0.02)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

        asyncio.run(run())
        assert len(heard) == 1
        session, text = heard[0]
        assert session == "home" and "water the plants" in text and "offline" not in text
        assert dm.store.alarms("home", kind="reminder") == []
        # The notification is in the session's log and is what "repeat" says.
        r = dm.handle("home", "after-2", _nlu("Repeat"), "what did you say")
        assert "water the plants" in r.text
