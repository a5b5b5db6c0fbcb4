"""GET /metrics on the real web server, read with Prometheus's own text parser, after a real spoken turn."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from assistant.web.client import WebClient
from assistant.web.server import ServerThread
from assistant.web.settings import WebSettings
from core.audio import load_audio
from tests.conftest import utterance

pytestmark = pytest.mark.timeout(180)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_sessions_turns_and_latency_as_the_client_saw_them(components, utterances) -> None:  # type: ignore[no-untyped-def]
    pcm = load_audio(utterance(utterances, "turn on the kitchen lights")["path"])
    with ServerThread(components, WebSettings(port=0)) as web:
        before = scrape(web.server.port)
        assert before[("quickturn_active_sessions", ())] == 0

        async def go():  # type: ignore[no-untyped-def]
            async with WebClient(web.server.ws_url(token=web.server.token)) as c:
                await c.start()
                during = scrape(web.server.port)
                turn = await c.run_turn(pcm, realtime=True)
            return during, turn

        during, turn = asyncio.run(go())
        deadline = time.monotonic() + 10
        while (after := scrape(web.server.port))[("quickturn_active_sessions", ())] and time.monotonic() < deadline:
            time.sleep(0.05)  # the server closes the session just after the client has gone
    assert during[("quickturn_active_sessions", ())] == 1
    assert after[("quickturn_active_sessions", ())] == 0
    assert after[("quickturn_sessions_started_total", ())] == 1
    decisions = {labels: v for (name, labels), v in after.items() if name == "quickturn_turn_decisions_total"}
    assert sum(v for labels, v in decisions.items() if ("decision", "incomplete") not in labels) == 1, decisions
    # One observation per stage of the one turn, and the total is the one the client was told.
    total = turn.latency_ms["total"]
    assert after[("quickturn_stage_latency_ms_count", (("stage", "total"),))] == 1
    assert after[("quickturn_stage_latency_ms_sum", (("stage", "total"),))] == pytest.approx(total)
    le = [(float(dict(labels)["le"]), v) for (name, labels), v in after.items()
          if name == "quickturn_stage_latency_ms_bucket" and ("stage", "total") in labels]
    assert all(v == (1 if bound >= total else 0) for bound, v in le), le
    assert after[("quickturn_audio_seconds_total", (("fate", "accepted"),))] >= len(pcm) / 16000
