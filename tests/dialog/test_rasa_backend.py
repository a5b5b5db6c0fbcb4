"""The `rasa` dialog backend's HTTP client, against local stand-in servers (no Rasa needed).

A real Rasa server is exercised in tests/dialog/test_rasa_integration.py.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.errors import InvalidInput, QuickTurnError
from core.types import NluResult, SlotValue
from dialog.rasa_backend import NO_ANSWER, UNREACHABLE, RasaDialog, intent_message, parse_rasa_url
from tests.servers import free_ports


def _free_port() -> int:
    return free_ports(1)[0]


class _Server:
    """A REST-channel stand-in: records requests, answers with ``self.reply`` (or a status code)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []
        self.reply: object = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"path": self.path, **json.loads(body)})
                data = json.dumps(outer.reply).encode() if outer.status == 200 else b"boom"
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                data = b"Hello from Rasa: stand-in"
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


LATTE = NluResult("orderDrink", 0.9, (SlotValue("coffeeDrink", "latte", "latte", 3, 4),))


def test_parse_url() -> None:
    assert parse_rasa_url("rasa://localhost:5005") == "http://localhost:5005"
    assert parse_rasa_url("rasa://example") == "http://example:5005"
    assert parse_rasa_url("http://127.0.0.1:8080/bot/") == "http://127.0.0.1:8080/bot"
    assert parse_rasa_url("rasa://[::1]:5005") == "http://[::1]:5005"
    for bad in ("localhost:5005", "ftp://x:1", "rasa://", "rasa://h:notaport"):
        with pytest.raises(InvalidInput):
            parse_rasa_url(bad)


def test_forwards_text_and_joins_bot_messages(server: _Server) -> None:
    server.reply = [{"recipient_id": "s1", "text": "Sure."}, {"recipient_id": "s1", "image": "x.png"},
                    {"recipient_id": "s1", "text": "What size would you like?"}]  # fmt: skip
    rasa = RasaDialog(f"rasa://127.0.0.1:{server.port}", timeout_s=2)
    reply = rasa.handle("s1", "t1", LATTE, "uh i'd like a latte", "i'd like a latte")
    assert server.requests == [{"path": "/webhooks/rest/webhook", "sender": "s1", "message": "i'd like a latte"}]
    assert reply.text == "Sure. What size would you like?"
    assert reply.phrases == ["Sure.", "What size would you like?"]
    assert reply.action == "rasa" and reply.intent == "orderDrink" and not reply.end_session
    assert rasa.status() == "Hello from Rasa: stand-in"


def test_quickturn_nlu_mode_and_empty_text(server: _Server) -> None:
    server.reply = [{"text": "ok"}]
    assert intent_message(LATTE) == '/orderDrink{"coffeeDrink": "latte"}'
    assert intent_message(NluResult("Greet", 1.0)) == "/Greet"
    RasaDialog(f"rasa://127.0.0.1:{server.port}", nlu="quickturn").handle("s", "t", LATTE, "a latte", "a latte")
    RasaDialog(f"rasa://127.0.0.1:{server.port}").handle("s", "t2", NluResult("Greet", 1.0), "", "")
    assert [r["message"] for r in server.requests] == ['/orderDrink{"coffeeDrink": "latte"}', "/Greet"]
    with pytest.raises(InvalidInput):
        RasaDialog("rasa://h:1", nlu="spacy")


def test_no_text_in_the_answer(server: _Server) -> None:
    server.reply = []
    reply = RasaDialog(f"rasa://127.0.0.1:{server.port}").handle("s", "t", LATTE, "x", "x")
    assert reply.action == "no_answer" and reply.text == NO_ANSWER


def test_down_server_gives_a_spoken_error_not_an_exception(caplog: pytest.LogCaptureFixture) -> None:
    port = _free_port()  # nothing listens there: connection refused
    rasa = RasaDialog(f"rasa://127.0.0.1:{port}", timeout_s=2)
    with caplog.at_level(logging.ERROR, logger="dialog.rasa_backend"):
        t0 = time.monotonic()
        reply = rasa.handle("s", "t1", LATTE, "a latte", "a latte")
        elapsed = time.monotonic() - t0
    assert reply.action == "error" and reply.text == UNREACHABLE and reply.phrases[0] == "Sorry,"
    assert reply.error == "connection refused"
    assert elapsed < 1.5  # one quick retry, not the whole timeout
    assert f"127.0.0.1:{port}" in caplog.text and "connection refused" in caplog.text
    assert rasa.failures == 1
    assert rasa.status().startswith("unreachable")


def test_server_that_never_answers_times_out() -> None:
    with socket.socket() as lsock:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(4)  # accepts connections (kernel backlog) but never reads or answers
        rasa = RasaDialog(f"rasa://127.0.0.1:{lsock.getsockname()[1]}", timeout_s=0.5)
        t0 = time.monotonic()
        reply = rasa.handle("s", "t1", LATTE, "a latte", "a latte")
        elapsed = time.monotonic() - t0
    assert reply.action == "error" and "within 0.5 s" in reply.error
    assert 0.4 < elapsed < 1.5


def test_http_error_then_recovery(server: _Server) -> None:
    rasa = RasaDialog(f"rasa://127.0.0.1:{server.port}")
    server.status = 500
    bad = rasa.handle("s", "t1", LATTE, "a latte", "a latte")
    assert bad.action == "error" and bad.error.startswith("HTTP 500")
    server.status, server.reply = 200, [{"text": "What size would you like?"}]
    good = rasa.handle("s", "t2", LATTE, "a latte", "a latte")
    assert good.action == "rasa" and rasa.failures == 0
    assert len(server.requests) == 2  # the failed turn was sent once, not retried


def test_garbage_answer_is_an_error(server: _Server) -> None:
    server.reply = {"not": "a list"}
    reply = RasaDialog(f"rasa://127.0.0.1:{server.port}").handle("s", "t", LATTE, "x", "x")
    assert reply.action == "error" and "list" in reply.error


def test_selected_by_settings(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import load_settings
    from dialog.backends import load_dialog

    monkeypatch.setenv("QUICKTURN_DIALOG__BACKEND", f"rasa://127.0.0.1:{server.port}")
    monkeypatch.setenv("QUICKTURN_DIALOG__TIMEOUT_S", "1.5")
    dialog = load_dialog(load_settings(), None)
    assert isinstance(dialog, RasaDialog) and dialog.timeout_s == 1.5 and dialog.nlu_mode == "rasa"
    monkeypatch.setenv("QUICKTURN_DIALOG__BACKEND", "dialogflow://x")
    with pytest.raises(QuickTurnError, match="rasa://HOST:PORT"):
        load_dialog(load_settings(), None)
