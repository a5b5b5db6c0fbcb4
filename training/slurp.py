"""Real household requests (SLURP devel) and real out-of-scope requests (CLINC150): splits and scoring map.

Why one module: the NLU training, the disfluency training and the evaluations must agree on
which requests are for tuning and which are kept for the report, and on what "understood" means
for a SLURP intent. Everything here reads ``../shared/data`` at run time; nothing is copied into
the repository.

* **Split.** A request belongs to the ``tune`` or the ``report`` part by a hash of its id
  (SLURP's ``slurp_id``; CLINC's position in ``oos_train`` + ``oos_val``), half and half, so the
  split never moves with the file's order or a seed. Train and tune only on ``tune``.
* **Household scenarios** (the issue's list) and, for each SLURP intent in them, the QuickTurn
  intents that *fit* it (``FITTING``): "remind me to call mom" is SLURP ``calendar_set``, which
  ``SetReminder`` and ``AddEvent`` both answer. SLURP intents outside ``FITTING`` are either out
  of scope (``OUT_OF_SCOPE_SCENARIOS``: nothing offline can answer news, email, trivia, taxis…)
  or left out of both counts (``NEITHER``: requests QuickTurn half-covers, like podcasts, where
  neither "understood" nor "declined" is the right yardstick).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InvalidInput

TUNE, REPORT = "tune", "report"
PARTS = (TUNE, REPORT)

# SLURP intent -> the QuickTurn intents that answer it. Grouped by the household scenarios.
FITTING: dict[str, tuple[str, ...]] = {
    # alarms
    "alarm_set": ("SetAlarm",),
    "alarm_query": ("QueryAlarms",),
    "alarm_remove": ("CancelAlarm",),
    # audio volume
    "audio_volume_up": ("SetVolume",),
    "audio_volume_down": ("SetVolume",),
    "audio_volume_mute": ("SetVolume", "MediaControl"),
    # calendar and reminders
    "calendar_set": ("SetReminder", "AddEvent"),
    "calendar_query": ("QueryCalendar",),
    "calendar_remove": ("CancelEvent",),
    # date and time
    "datetime_query": ("GetTime", "GetDate"),
    "datetime_convert": ("GetTime",),
    # lights
    "iot_hue_lighton": ("DeviceOn",),
    "iot_hue_lightoff": ("DeviceOff",),
    "hue_lightoff": ("DeviceOff",),
    "iot_hue_lightdim": ("SetDeviceLevel",),
    "iot_hue_lightup": ("SetDeviceLevel",),
    "hue_lightup": ("SetDeviceLevel",),
    "iot_hue_lightchange": ("SetDeviceColor", "SetDeviceLevel"),
    # plugs
    "iot_wemo_on": ("DeviceOn",),
    "iot_wemo_off": ("DeviceOff",),
    # lists
    "lists_createoradd": ("CreateList", "AddToList"),
    "lists_query": ("ReadList",),
    "lists_remove": ("RemoveFromList", "ClearList", "DeleteList"),
    # music playback
    "play_music": ("PlayMusic",),
    "play_radio": ("PlayMusic",),
    "music_settings": ("MediaControl",),
    # weather
    "weather_query": ("GetWeather",),
}

# The scenario names, for the report's table.
HOUSEHOLD_SCENARIO: dict[str, str] = {
    **{k: "alarm" for k in ("alarm_set", "alarm_query", "alarm_remove")},
    **{k: "audio volume" for k in ("audio_volume_up", "audio_volume_down", "audio_volume_mute")},
    **{k: "calendar/reminders" for k in ("calendar_set", "calendar_query", "calendar_remove")},
    **{k: "date/time" for k in ("datetime_query", "datetime_convert")},
    **{k: "lights" for k in FITTING if "hue" in k},
    **{k: "plugs" for k in ("iot_wemo_on", "iot_wemo_off")},
    **{k: "lists" for k in ("lists_createoradd", "lists_query", "lists_remove")},
    **{k: "music playback" for k in ("play_music", "play_radio", "music_settings")},
    "weather_query": "weather",
}

# Whole SLURP scenarios no offline skill answers: a request there must be declined.
OUT_OF_SCOPE_SCENARIOS = ("email", "news", "qa", "social", "transport", "takeaway", "cooking", "recommendation")

# Neither counted as understood nor as declined: chit-chat (general_*), podcasts/audiobooks/games
# (PlayMusic half-fits), music likes/queries, robot vacuums and coffee machines (smart_home has
# devices of that name, so switching them is a fitting reading), and SLURP's few malformed labels.
NEITHER = ("general", "play_podcasts", "play_audiobook", "play_game", "music_query", "music_likeness",
           "music_dislikeness", "iot_cleaning", "iot_coffee")


@dataclass(frozen=True, slots=True)
class Request:
    """One real request: its words (lower case, as transcribed), where it comes from, and what it expects."""

    text: str
    source: str            # "slurp" or "clinc"
    key: str               # slurp_id, or the CLINC position
    intent: str            # SLURP intent, or "oos"
    scenario: str          # SLURP scenario, or "oos"
    fitting: tuple[str, ...] = field(default=())  # QuickTurn intents that answer it (empty: out of scope)

    @property
    def part(self) -> str:
        return part_of(f"{self.source}:{self.key}")

    @property
    def household(self) -> bool:
        return bool(self.fitting)

    @property
    def out_of_scope(self) -> bool:
        return self.source == "clinc" or self.scenario in OUT_OF_SCOPE_SCENARIOS

    @property
    def household_scenario(self) -> str:
        return HOUSEHOLD_SCENARIO.get(self.intent, "")


def part_of(key: str) -> str:
    """``tune`` or ``report`` by the first byte of sha256(key): stable across files, orders and seeds."""
    return TUNE if hashlib.sha256(key.encode("utf-8")).digest()[0] < 128 else REPORT


def _clean(text: str) -> str:
    return " ".join(text.lower().replace("?", " ").replace(".", " ").replace(",", " ").replace("!", " ").split())


def slurp_path(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "slurp-devel" / "devel.jsonl"
    if not path.is_file():
        raise InvalidInput(f"SLURP devel not found at {path} (../shared/data/slurp-devel/devel.jsonl)")
    return path


def clinc_path(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "clinc150-oos" / "oos_train_val.json"
    if not path.is_file():
        raise InvalidInput(f"CLINC150 out-of-scope requests not found at {path}")
    return path


def load_slurp(path: Path) -> list[Request]:
    """Every SLURP request of the file, with the fitting intents of the household ones."""
    out: list[Request] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text, intent, scenario, key = row["sentence"], row["intent"], row["scenario"], str(row["slurp_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{path}:{n}: not a SLURP record ({exc})") from None
        out.append(Request(_clean(text), "slurp", key, intent, scenario, FITTING.get(intent, ())))
    return out


def load_clinc(path: Path) -> list[Request]:
    """CLINC150's out-of-scope requests (``oos_train`` then ``oos_val``), all to be declined."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = [*data["oos_train"], *data.get("oos_val", [])]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{path}: not the CLINC150 out-of-scope file ({exc})") from None
    return [Request(_clean(text), "clinc", str(i), "oos", "oos") for i, (text, _label) in enumerate(rows)]


def requests(shared_dir: Path, part: str | None = None) -> list[Request]:
    """SLURP devel + CLINC out-of-scope requests, optionally only one part (``tune`` or ``report``)."""
    if part is not None and part not in PARTS:
        raise InvalidInput(f"part must be one of {PARTS}, got {part!r}")
    rows = load_slurp(slurp_path(shared_dir)) + load_clinc(clinc_path(shared_dir))
    return [r for r in rows if r.text and (part is None or r.part == part)]


def scored(rows: list[Request]) -> list[Request]:
    """The requests the report counts: household ones and out-of-scope ones (NEITHER left out)."""
    return [r for r in rows if r.household or r.out_of_scope]
