"""The ``rasa`` dialog backend: each turn goes to a running Rasa server's REST channel.

Select it with the ``dialog.backend`` setting (``QUICKTURN_DIALOG__BACKEND=rasa://HOST:PORT``
or ``dialog: {backend: "rasa://localhost:5005"}`` in a settings file). Per turn it sends::

    POST http://HOST:PORT/webhooks/rest/webhook
    {"sender": "<QuickTurn session id>", "message": "<cleaned transcript>"}

and speaks the texts of the bot messages Rasa answers with, joined. With
``dialog.rasa_nlu: quickturn`` the message is QuickTurn's own NLU result in Rasa's
``/intent{"entity": "value"}`` syntax instead, so Rasa skips its NLU; a turn with no text is
always sent that way.

It implements the same :class:`dialog.base.DialogBackend` interface as the embedded
:class:`~dialog.manager.DialogManager`: ``handle()`` is synchronous and returns a reply. The
pipeline calls it on its event loop, so a turn blocks that loop for the round trip, at most
``dialog.timeout_s``; :meth:`RasaDialog.ahandle` runs it in a thread for async callers.

When the server is down, slow or answers garbage, the turn is not lost and nothing raises:
the reply is a spoken apology (action ``error``, see :data:`UNREACHABLE`), the cause is
logged with the URL, and the next turn tries again. A refused connection is retried once
(the message cannot have been delivered); a timeout is not (Rasa may have processed it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from core.errors import InvalidInput
from core.text import split_phrases
from core.types import NluHints, NluResult
from dialog.base import DialogBackend

log = logging.getLogger(__name__)

UNREACHABLE = "Sorry, I can't reach my dialog server right now. Please try again in a moment."
NO_ANSWER = "Sorry, I have no answer to that."
WEBHOOK = "/webhooks/rest/webhook"


@dataclass
class RasaReply:
    """One turn's reply, in the shape of :class:`dialog.base.DialogReply`."""

    text: str
    phrases: list[str]
    action: str  # "rasa" (Rasa answered), "no_answer" (it answered nothing) or "error"
    intent: str | None = None
    end_session: bool = False
    hint_words: list[str] = field(default_factory=list)
    expected: NluHints | None = None
    volume: int | None = None  # Rasa keeps no speaker volume: the session's stays as it is
    frame: dict[str, str] | None = None  # Rasa's slots are its own: no task frame is reported
    error: str = ""  # why the server could not answer ("" when it did)
    latency_ms: float = 0.0


def parse_rasa_url(uri: str) -> str:
    """``rasa://host:port`` (or ``http(s)://host:port[/prefix]``) -> the server's base HTTP URL.

    Raises:
        InvalidInput: not a rasa/http/https URL with a host.
    """
    parts = urlsplit(uri.strip())
    if parts.scheme not in ("rasa", "http", "https") or not parts.hostname:
        raise InvalidInput(f"dialog backend {uri!r}: expected rasa://HOST:PORT or http(s)://HOST:PORT")
    scheme = "http" if parts.scheme == "rasa" else parts.scheme
    try:
        port = parts.port or (5005 if parts.scheme == "rasa" else None)
    except ValueError as exc:
        raise InvalidInput(f"dialog backend {uri!r}: bad port") from exc
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{port}" if port else host
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def intent_message(nlu: NluResult) -> str:
    """QuickTurn's NLU result as a Rasa message that bypasses Rasa's NLU: ``/orderDrink{"size": "large"}``."""
    entities = {s.slot: s.value for s in nlu.slots}
    return f"/{nlu.intent}" + (json.dumps(entities) if entities else "")


class RasaDialog(DialogBackend):
    """Forwards turns to a Rasa server's REST channel.

    Args:
        uri: ``rasa://HOST:PORT`` or ``http(s)://HOST:PORT``.
        timeout_s: the most one turn may take (connect + answer), in seconds.
        nlu: ``"rasa"``: send the cleaned transcript (Rasa's NLU decides the intent);
            ``"quickturn"``: send QuickTurn's intent and slots as ``/intent{...}``.
    """

    name = "rasa"

    def __init__(self, uri: str, timeout_s: float = 5.0, nlu: str = "rasa") -> None:
        if nlu not in ("rasa", "quickturn"):
            raise InvalidInput(f"dialog.rasa_nlu must be 'rasa' or 'quickturn', not {nlu!r}")
        if timeout_s <= 0:
            raise InvalidInput("dialog.timeout_s must be > 0")
        self.base_url = parse_rasa_url(uri)
        self.url = self.base_url + WEBHOOK
        self.timeout_s = float(timeout_s)
        self.nlu_mode = nlu
        self.failures = 0
        """Turns answered with the apology since the last successful one."""

    def __repr__(self) -> str:
        return f"RasaDialog({self.base_url!r}, timeout_s={self.timeout_s}, nlu={self.nlu_mode!r})"

    def message_for(self, nlu: NluResult, transcript: str = "", clean_text: str = "") -> str:
        text = " ".join((clean_text or transcript).split())
        if self.nlu_mode == "quickturn" or not text:
            return intent_message(nlu)
        return text

    def _post(self, payload: bytes, deadline: float) -> list[dict[str, object]]:
        req = urllib.request.Request(
            self.url, data=payload, method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )  # fmt: skip
        timeout = max(0.05, deadline - time.monotonic())
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (http(s) only, checked above)
            body = r.read()
        data = json.loads(body or b"[]")
        if not isinstance(data, list):
            raise ValueError(f"expected a JSON list of bot messages, got {type(data).__name__}")
        return [m for m in data if isinstance(m, dict)]

    def handle(
        self, session_id: str, turn_id: str, nlu: NluResult, transcript: str = "", clean_text: str = ""
    ) -> RasaReply:
        """Send one turn; Rasa's answer, or the apology if the server cannot answer in time."""
        message = self.message_for(nlu, transcript, clean_text)
        payload = json.dumps({"sender": session_id, "message": message}).encode()
        t0 = time.monotonic()
        deadline = t0 + self.timeout_s
        error = ""
        messages: list[dict[str, object]] | None = None
        for attempt in (1, 2):
            try:
                messages = self._post(payload, deadline)
                break
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code} {exc.reason}"
                break
            except urllib.error.URLError as exc:
                reason = exc.reason
                refused = isinstance(reason, ConnectionRefusedError)
                error = "connection refused" if refused else f"{type(reason).__name__}: {reason}"
                if isinstance(reason, TimeoutError):
                    error = f"no answer within {self.timeout_s:g} s"
                if refused and attempt == 1 and time.monotonic() + 0.2 < deadline:
                    time.sleep(0.2)  # not delivered: one retry is safe
                    continue
                break
            except TimeoutError:
                error = f"no answer within {self.timeout_s:g} s"
                break
            except (OSError, ValueError) as exc:  # reset connections, bad JSON
                error = f"{type(exc).__name__}: {exc}"
                break
        latency = (time.monotonic() - t0) * 1000
        if messages is None:
            self.failures += 1
            log.error("rasa dialog: %s for session %s turn %s (%s); answering with an apology",
                      error, session_id, turn_id, self.url)  # fmt: skip
            return RasaReply(UNREACHABLE, split_phrases(UNREACHABLE), "error", nlu.intent, error=error,
                             latency_ms=latency)  # fmt: skip
        if self.failures:
            log.info("rasa dialog: %s answers again after %d failed turn(s)", self.base_url, self.failures)
            self.failures = 0
        texts = [str(m["text"]).strip() for m in messages if m.get("text")]
        texts = [t for t in texts if t]
        end = nlu.intent == "Goodbye"
        if not texts:
            log.warning("rasa dialog: no text in the answer to session %s turn %s (%d messages)",
                        session_id, turn_id, len(messages))  # fmt: skip
            return RasaReply(NO_ANSWER, split_phrases(NO_ANSWER), "no_answer", nlu.intent, end, latency_ms=latency)
        text = " ".join(texts)
        return RasaReply(text, split_phrases(text), "rasa", nlu.intent, end, latency_ms=latency)

    async def ahandle(
        self, session_id: str, turn_id: str, nlu: NluResult, transcript: str = "", clean_text: str = ""
    ) -> RasaReply:
        """:meth:`handle` in a worker thread, for callers that must not block their event loop."""
        return await asyncio.to_thread(self.handle, session_id, turn_id, nlu, transcript, clean_text)

    def status(self) -> str:
        """``GET /`` on the server: its greeting (``Hello from Rasa: 3.6.21``), or why it failed."""
        try:
            with urllib.request.urlopen(self.base_url + "/", timeout=self.timeout_s) as r:  # noqa: S310
                return r.read().decode(errors="replace").strip()
        except (OSError, ValueError) as exc:
            return f"unreachable: {exc}"

    def close(self) -> None:
        """Nothing to release (one HTTP request per turn); here for symmetry with DialogManager."""
