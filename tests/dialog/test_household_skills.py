"""The household skills' pure parts: list names and items, holidays, volume levels, loose clock times, help."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialog.help import skill_phrases
from dialog.responses import Responses
from dialog.skills.clock import easter, holiday_key, next_holiday
from dialog.skills.lists import list_key, split_items
from dialog.skills.media import volume_level
from dialog.skills.reminders import due_time, spoken_task
from dialog.state import Frame


@pytest.mark.parametrize(("said", "key"), [
    ("my shopping list", "shopping"), ("the Shopping List", "shopping"), ("shopping", "shopping"),
    ("todo", "to-do"), ("to do", "to-do"), ("my to-do list", "to-do"), ("to the to do list", "to-do"),
    ("christmas gifts", "christmas gifts"), ("grocery", "grocery"), ("groceries", "grocery"),
])  # fmt: skip
def test_list_names_are_normalized(said: str, key: str) -> None:
    assert list_key(said) == key


def test_items_are_split() -> None:
    assert split_items("eggs and bread") == ["eggs", "bread"]
    assert split_items("milk, eggs and butter") == ["milk", "eggs", "butter"]
    assert split_items("some apples, a loaf of bread & the cheese") == ["apples", "loaf of bread", "cheese"]
    assert split_items("") == []


@pytest.mark.parametrize(("said", "day"), [
    ("christmas", date(2026, 12, 25)), ("xmas", date(2026, 12, 25)), ("New Year's Eve", date(2026, 12, 31)),
    ("new year's day", date(2027, 1, 1)), ("the fourth of july", date(2027, 7, 4)),
    ("thanksgiving", date(2026, 11, 26)), ("valentine's day", date(2027, 2, 14)), ("halloween", date(2027, 10, 31)),
    ("easter", date(2027, 3, 28)), ("mother's day", date(2027, 5, 9)), ("memorial day", date(2027, 5, 31)),
])  # fmt: skip
def test_next_holiday(said: str, day: date) -> None:
    key = holiday_key(said)
    assert key is not None, said
    assert next_holiday(key, date(2026, 11, 26)) == day


def test_easter_known_years() -> None:
    assert [easter(y) for y in (2024, 2025, 2026)] == [date(2024, 3, 31), date(2025, 4, 20), date(2026, 4, 5)]
    assert holiday_key("my birthday") is None


@pytest.mark.parametrize(("said", "norm", "level"), [
    ("five", "5", 5), ("ten", "10", 10), ("fifty percent", "50", 5), ("volume 60", "60", 6), ("max", None, 10),
    ("zero", "0", 0), ("twelve", "12", None), ("loud", None, None),
])  # fmt: skip
def test_volume_levels(said: str, norm: str | None, level: int | None) -> None:
    assert volume_level(said, norm) == level


NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(("slots", "hour", "day"), [
    ({"time": ("five", "05:00")}, 17, 26),             # five a m has passed at eight: five p m
    ({"time": ("nine", "09:00")}, 9, 26),              # nine a m is still ahead
    ({"time": ("five am", "05:00")}, 5, 27),           # said a m: tomorrow morning
    ({"time": ("three", "03:00"), "date": ("friday", "2026-11-27")}, 15, 27),  # on a day, one to seven is p m
    ({"time": ("eight", "08:00"), "date": ("tomorrow", "2026-11-27")}, 8, 27),
    ({"date": ("tomorrow at nine", "2026-11-27T09:00")}, 9, 27),
])  # fmt: skip
def test_loose_clock_times(slots: dict[str, tuple[str, str]], hour: int, day: int) -> None:
    frame = Frame("SetReminder")
    for k, (v, n) in slots.items():
        frame.set(k, v, n)
    due = due_time(frame, datetime(2026, 11, 26, 8, 0, tzinfo=NY))
    assert due is not None and (due.day, due.hour) == (day, hour)


def test_tasks_are_said_back_to_the_user() -> None:
    assert spoken_task("to call my mom") == "call your mom"
    assert spoken_task("remind me to take my pills") == "take your pills"


def test_help_names_domains_the_skills_handle_and_skips_a_broken_one(tmp_path: Path) -> None:
    for name, description, intents in (("lists", "Shopping and to-do lists", "[AddToList]"),
                                       ("gadgets", "Things nobody handles", "[FlyAway]"),
                                       ("zoo", "Feeding the animals. More text here", "[FeedAnimals]")):  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / "domain.yml").write_text(f"name: {name}\ndescription: {description}\nintents: {intents}\n")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "domain.yml").write_text("name: broken\nintents: [AddToList\n")
    phrases = skill_phrases({"AddToList", "FeedAnimals"}, Responses(), tmp_path)
    assert phrases == ["shopping lists", "feeding the animals"]
