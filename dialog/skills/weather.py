"""Weather (``GetWeather``): a provider interface, an offline file provider, and Open-Meteo.

The offline provider (the default) reads ``dialog/data/forecast.json``, whose days
are relative (``days[0]`` is today), so it never goes stale. The Open-Meteo
provider geocodes the place and fetches a daily forecast over HTTPS with a short
timeout; any failure raises :class:`~core.errors.BackendUnavailable`, which
the skill turns into a spoken apology.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from core.errors import BackendUnavailable
from core.numbers import spoken_number
from dialog.skills.base import Reply, Skill, SkillConfig, SkillContext, display_name, find_phrase, skill
from dialog.speech_format import find_time_range, parse_time_range
from dialog.state import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DayForecast:
    """One day's forecast for a place. Temperatures in degrees Celsius; *precip_chance* in percent."""

    place: str
    day: date
    condition: str
    high_c: int
    low_c: int
    precip_chance: int


class WeatherProvider(Protocol):
    """Where forecasts come from."""

    name: str

    def forecast(self, place: str | None, day: date, today: date) -> DayForecast | None:
        """The forecast for *place* (``None``: the home place) on *day*.

        Returns ``None`` when the place is unknown or the day is out of range.

        Raises:
            BackendUnavailable: the provider cannot be reached (timeout, network, bad reply).
        """
        ...


class OfflineForecast:
    """Forecasts from a JSON file (see ``dialog/data/forecast.json``)."""

    name = "offline"

    def __init__(self, path: Path) -> None:
        data = json.loads(path.read_text())
        self.places: dict[str, dict[str, Any]] = {k.lower(): v for k, v in data["places"].items()}
        self.default_place: str = data.get("default_place", next(iter(self.places)))
        self._aliases = {v["name"].lower(): k for k, v in self.places.items()}
        self._aliases.update(
            {v.get("country", "").lower(): k for k, v in reversed(list(self.places.items()))}
        )

    def resolve(self, place: str | None) -> str | None:
        if not place:
            return self.default_place
        p = place.lower().strip()
        p = p.removeprefix("the ")
        return p if p in self.places else self._aliases.get(p)

    def forecast(self, place: str | None, day: date, today: date) -> DayForecast | None:
        key = self.resolve(place)
        if key is None:
            return None
        entry = self.places[key]
        offset = (day - today).days
        if not 0 <= offset < len(entry["days"]):
            return None
        d = entry["days"][offset]
        return DayForecast(
            entry["name"], day, d["condition"], d["high_c"], d["low_c"], d.get("precip_chance", 0)
        )


# WMO weather interpretation codes (Open-Meteo's ``weather_code``).
_WMO = {
    0: "sunny", 1: "mostly sunny", 2: "partly cloudy", 3: "cloudy", 45: "fog", 48: "fog",
    51: "drizzle", 53: "drizzle", 55: "drizzle", 61: "light rain", 63: "rain", 65: "heavy rain",
    71: "light snow", 73: "snow", 75: "heavy snow", 80: "showers", 81: "showers", 82: "heavy showers",
    95: "thunderstorms", 96: "thunderstorms", 99: "thunderstorms",
}  # fmt: skip


class OpenMeteo:
    """Forecasts from the Open-Meteo API (no key needed).

    Args:
        home: the place used when the user names none.
        timeout_s: per HTTP request, in seconds (two requests per forecast: geocoding, forecast).
    """

    name = "open-meteo"
    GEOCODE_URL = "https://geocoding-api.open-meteo.com/v1/search"
    FORECAST_URL = "https://api.open-meteo.com/v1/forecast"

    def __init__(self, home: str = "Boston", timeout_s: float = 1.5) -> None:
        self.home = home
        self.timeout_s = timeout_s

    def _get(self, url: str, params: dict[str, Any]) -> dict[str, Any]:
        full = f"{url}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(full, timeout=self.timeout_s) as resp:  # noqa: S310 (fixed https URLs)
                result: dict[str, Any] = json.loads(resp.read(1_000_000))
                return result
        except (OSError, ValueError) as exc:
            raise BackendUnavailable(f"open-meteo: {exc}") from exc

    def forecast(self, place: str | None, day: date, today: date) -> DayForecast | None:
        geo = self._get(self.GEOCODE_URL, {"name": place or self.home, "count": 1})
        if not geo.get("results"):
            return None
        g = geo["results"][0]
        data = self._get(
            self.FORECAST_URL,
            {
                "latitude": g["latitude"],
                "longitude": g["longitude"],
                "daily": "weather_code,temperature_2m_max,temperature_2m_min,precipitation_probability_max",
                "timezone": "auto",
                "start_date": day.isoformat(),
                "end_date": day.isoformat(),
            },
        )
        try:
            daily = data["daily"]
            return DayForecast(
                g["name"],
                day,
                _WMO.get(int(daily["weather_code"][0]), "mixed weather"),
                round(daily["temperature_2m_max"][0]),
                round(daily["temperature_2m_min"][0]),
                int(daily.get("precipitation_probability_max", [0])[0] or 0),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise BackendUnavailable(f"open-meteo: unexpected reply: {exc}") from exc


def make_provider(config: SkillConfig) -> WeatherProvider:
    opts = config.options.get("weather", {})
    chosen = opts.get("provider") or "offline"
    if not isinstance(chosen, str):
        return chosen  # type: ignore[no-any-return]  # a provider object
    if chosen == "offline":
        return OfflineForecast(opts.get("forecast_file") or config.data_dir / "forecast.json")
    if chosen == "open-meteo":
        return OpenMeteo(timeout_s=float(opts.get("timeout_s", 1.5)))
    raise ValueError(f"unknown weather provider {chosen!r}; use 'offline' or 'open-meteo'")


_CONDITION_WORDS = {
    "rain": ("rain", "drizzle", "showers", "thunderstorms"),
    "snow": ("snow",),
    "sun": ("sunny", "mostly sunny"),
    "cloud": ("cloudy", "partly cloudy", "fog"),
    "wind": ("windy",),
}


@skill("weather", intents=("GetWeather",))
class WeatherSkill(Skill):
    slots = {
        "GetWeather": ("city", "country", "state", "geographic_poi", "current_location", "timeRange",
                       "condition_description", "condition_temperature", "spatial_relation"),
    }  # fmt: skip
    carry_over = {
        "GetWeather": (
            ("city", "country", "state", "geographic_poi", "current_location"),
            ("timeRange",),
            ("condition_description", "condition_temperature"),
        ),
    }

    def __init__(self, config: SkillConfig) -> None:
        super().__init__(config)
        self.provider = make_provider(config)

    def extract(self, ctx: SkillContext, frame: Frame, slot: str, text: str) -> tuple[str, str] | None:
        if slot == "city" and isinstance(self.provider, OfflineForecast):
            names = [*self.provider.places, *(p["name"].lower() for p in self.provider.places.values())]
            return find_phrase(text, names)
        if slot == "timeRange" and (said := find_time_range(text, ctx.today)):
            return said, said
        if slot == "condition_description":
            return find_phrase(text, ["rain", "snow", "sunny", "sun", "cloudy", "windy", "storm"])
        return None

    def execute(self, ctx: SkillContext, frame: Frame) -> Reply:
        place = None
        if not frame.get("current_location"):
            place = (
                frame.get("city") or frame.get("state") or frame.get("geographic_poi") or frame.get("country")
            )
        tr = (
            parse_time_range(frame.norm("timeRange"), frame.get("timeRange"), ctx.today)
            if frame.get("timeRange")
            else None
        )
        day = tr.day if tr else ctx.today
        when = tr.spoken(ctx.today) if tr else "today"
        try:
            fc = self.provider.forecast(place, day, ctx.today)
        except BackendUnavailable as exc:
            log.warning("weather provider failed: %s", exc)
            return Reply("GetWeather.unavailable", {"place": place or "here"}, action="error")
        if fc is None:
            if place and (day - ctx.today).days in range(0, 7):
                return Reply("GetWeather.unknown_place", {"place": display_name(place)})
            return Reply("GetWeather.out_of_range", {"place": place or "here", "when": when})
        v = {
            "place": fc.place,
            "when": when,
            "condition": fc.condition,
            "high": spoken_number(fc.high_c),
            "low": spoken_number(fc.low_c),
            "precip": spoken_number(fc.precip_chance),
        }
        asked = (frame.get("condition_description") or frame.get("condition_temperature") or "").lower()
        for word, conditions in _CONDITION_WORDS.items():
            if word in asked:
                yes = fc.condition in conditions or (word in {"rain", "snow"} and fc.precip_chance >= 50)
                return Reply(
                    "GetWeather.condition_yes" if yes else "GetWeather.condition_no", {**v, "asked": word}
                )
        if asked in {"hot", "warm", "cold", "chilly", "freezing"}:
            return Reply("GetWeather.temperature", v)
        return Reply("GetWeather.forecast", v)
