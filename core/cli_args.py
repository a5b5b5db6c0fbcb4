"""Command-line argument parsing that fails the QuickTurn way: one readable line, not a usage dump."""

from __future__ import annotations

import argparse

from core.errors import InvalidInput


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises :class:`~core.errors.InvalidInput` instead of exiting on a bad argument.

    The CLI prints it as ``quickturn: error: PROG: MESSAGE`` with exit code 1, like every other
    user error, so scripts see one shape of failure.
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InvalidInput(f"{self.prog}: {message}")
