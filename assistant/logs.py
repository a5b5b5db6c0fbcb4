"""Logging set-up shared by every command and server entry point."""

from __future__ import annotations

import logging


def setup_logging(verbose: bool) -> None:
    """INFO with ``--verbose``, else WARNING; one line per record, named by its logger."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
