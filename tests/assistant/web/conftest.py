"""The real web server the websocket tests talk to: one per test module, on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assistant.web.server import ServerThread
from assistant.web.settings import WebSettings


@pytest.fixture(scope="module")
def web(components) -> Iterator[ServerThread]:  # type: ignore[no-untyped-def]
    """A server in a background thread sharing the session's loaded components (12 sessions at most)."""
    with ServerThread(components, WebSettings(port=0, max_sessions=12)) as thread:
        yield thread
