"""Run every dialog story (dialog/stories/*.yml) and check the story runner itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import DomainError
from dialog.commands import test_stories_main as stories_main
from dialog.stories import STORIES_DIR, known_intents, load_stories, run_story

STORIES = load_stories([STORIES_DIR], known_intents())


def test_there_are_enough_stories_across_skills() -> None:
    assert len(STORIES) >= 40
    tags = {t for s in STORIES for t in s.tags}
    for needed in ("coffee", "weather", "timers", "alarms", "music", "restaurant", "books", "search", "screenings",
                   "clock", "smarthome", "correction", "carry-over", "interruption", "restart", "sessions"):  # fmt: skip
        assert needed in tags, f"no story tagged {needed!r}"


@pytest.mark.parametrize("story", STORIES, ids=[s.name for s in STORIES])
def test_story(story, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_story(story, workdir=tmp_path)
    assert result.ok, result.message + "\n" + "\n".join(result.transcript)


def test_runner_reports_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.yml"
    f.write_text(
        "stories:\n"
        "  - story: wrong expectation\n"
        "    steps:\n"
        "      - {intent: GetTime, expect: {action: ask_slot}}\n"
        "  - story: right expectation\n"
        "    steps:\n"
        "      - {intent: GetTime, expect: {action: done, text: 'eight a m'}}\n"
    )
    assert stories_main([str(f)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  wrong expectation" in out and "PASS  right expectation" in out
    assert out.strip().endswith("1 passed, 1 failed")


def test_runner_rejects_unknown_keys_and_intents(tmp_path: Path) -> None:
    f = tmp_path / "bad.yml"
    f.write_text("stories:\n  - story: x\n    steps:\n      - {intent: GetTime, expct: {}}\n")
    with pytest.raises(DomainError, match="expct"):
        load_stories([f], known_intents())
    f.write_text("stories:\n  - story: x\n    steps:\n      - {intent: FlyAway}\n")
    with pytest.raises(DomainError, match="FlyAway"):
        load_stories([f], known_intents())
