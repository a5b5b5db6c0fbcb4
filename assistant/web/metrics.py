"""Prometheus metrics of the web server, scraped at ``GET /metrics``.

The same signals an operator autoscales on with Triton (its queue and
latency metrics on :8002) exist for the embedded deployment too: per-stage
latency histograms (from each turn's ``stage-metrics`` event, so they are
the figures the client sees traced, endpointing included in ``total``),
active sessions, turns by end-of-turn decision, barge-ins and errors by code,
and audio accepted and dropped by the real-time budget. One registry per
server (not the process-wide default), so two servers in one process, as in
the tests, do not mix their counts.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from core.events import ErrorEvent, Event, StageMetrics, TurnCancelled, TurnDecision

LATENCY_BUCKETS_MS = (10, 25, 50, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000)
"""Milliseconds; dense around the 250-400 ms budget the autoscaler watches."""
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServerMetrics:
    """The web server's metrics; :meth:`observe` is fed every event a session sends."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sessions = Gauge("quickturn_active_sessions", "Websocket sessions with a started pipeline.", registry=r)
        self.sessions_started = Counter("quickturn_sessions_started", "Sessions started.", registry=r)
        self.stage_latency = Histogram(
            "quickturn_stage_latency_ms", "Per-turn latency of each stage (milliseconds); stage=total is the end "
            "of speech to the first reply audio, endpointing included.", ["stage"], buckets=LATENCY_BUCKETS_MS,
            registry=r,
        )
        self.decisions = Counter("quickturn_turn_decisions", "End-of-turn decisions (incomplete = a hold).",
                                 ["decision"], registry=r)
        self.cancelled = Counter("quickturn_turns_cancelled", "Replies cut short (barge-in, client).", ["reason"],
                                 registry=r)
        self.errors = Counter("quickturn_errors", "Error events sent to clients, by code.", ["code"], registry=r)
        self.audio_s = Counter("quickturn_audio_seconds", "Client audio, by fate (accepted or dropped by the "
                               "real-time budget).", ["fate"], registry=r)

    def observe(self, ev: Event) -> None:
        """Count one event a session emitted."""
        if isinstance(ev, StageMetrics):
            for stage, ms in ev.latency_ms.items():
                self.stage_latency.labels(stage=stage).observe(float(ms))
        elif isinstance(ev, TurnDecision):
            self.decisions.labels(decision=ev.decision).inc()
        elif isinstance(ev, TurnCancelled):
            self.cancelled.labels(reason=getattr(ev, "reason", "") or "unknown").inc()
        elif isinstance(ev, ErrorEvent):
            self.errors.labels(code=ev.code).inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
