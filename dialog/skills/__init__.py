"""Skills: one module per area, registered by name with :func:`dialog.skills.base.skill`."""

from __future__ import annotations

import importlib

BUILTIN = ("weather", "timers", "music", "restaurant", "books", "search", "clock", "smarthome", "coffee", "lists",
           "reminders", "media")
"""Modules of the built-in skills (imported on demand, so importing the package stays cheap)."""


def load_builtin_skills() -> None:
    """Import every built-in skill module so its ``@skill`` decorator registers it."""
    for name in BUILTIN:
        importlib.import_module(f"dialog.skills.{name}")
