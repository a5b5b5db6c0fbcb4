"""A session continued by another process hears the next turn as an answer to the open question."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.settings import REPO_ROOT
from core.types import NluHints, NluResult, SlotValue
from dialog.manager import DialogManager


def test_the_open_question_survives_a_new_manager_on_the_same_store(tmp_path: Path) -> None:
    db = tmp_path / "dialog.db"
    with DialogManager(db) as dm:
        asked = dm.handle("s", "s-1", NluResult("orderDrink", 1.0, (SlotValue("coffeeDrink", "latte", "latte", 3, 4),)),
                          "i'd like a latte please", "i'd like a latte please")
        assert asked.action == "ask_slot" and asked.expected == NluHints("orderDrink", "size")
    with DialogManager(db) as dm:  # another process: nothing in memory
        expected, hints = dm.expectation("s")
        assert expected == asked.expected and hints == asked.hint_words and "large" in hints
        assert dm.expectation("someone-else") == (None, [])


def test_say_session_across_three_processes_orders_then_corrects(tmp_path: Path) -> None:
    """The issue's three calls: the size is asked, a large latte confirmed, then changed to medium."""
    db = tmp_path / "dialog.db"

    def say(text: str) -> str:
        out = subprocess.run([sys.executable, "-m", "assistant.cli", "say", "--session", "S", "--db", str(db), "--json", text],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        import json

        return str(json.loads(out.stdout)["reply"]).lower()

    assert "what size" in say("i'd like a latte please")
    assert "large latte" in say("large")
    changed = say("actually make it medium")
    assert "medium latte" in changed and "device" not in changed
