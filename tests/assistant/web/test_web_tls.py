"""TLS on the web server: https page and wss turns with a real certificate, and clear errors.

A browser only grants the microphone to a secure context, so a phone on the
network needs ``--certfile/--keyfile``. The certificate is self-signed with
the system ``openssl`` for 127.0.0.1; the client trusts exactly that file.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.web.client import WebClient
from assistant.web.server import ServerThread, tls_context
from assistant.web.settings import WebSettings
from core.audio import load_audio
from core.errors import InvalidInput
from tests.conftest import QUICKTURN, utterance

pytestmark = pytest.mark.timeout(180)


def make_cert(directory: Path, name: str = "server") -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_web(components, cert) -> Iterator[ServerThread]:  # type: ignore[no-untyped-def]
    with ServerThread(components, WebSettings(port=0, certfile=cert[0], keyfile=cert[1])) as thread:
        yield thread


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def test_https_page_and_wss_turn(tls_web: ServerThread, cert, utterances) -> None:  # type: ignore[no-untyped-def]
    server = tls_web.server
    assert server.url().startswith("https://") and server.ws_url().startswith("wss://")
    with urllib.request.urlopen(f"https://127.0.0.1:{server.port}/?token=x", timeout=10,
                                context=trusting(cert[0])) as resp:
        assert resp.status == 200 and "QuickTurn" in resp.read().decode()
    speech = load_audio(utterance(utterances, "turn on the kitchen lights")["path"])

    async def go() -> None:
        async with WebClient(server.ws_url(token=server.token), ssl=trusting(cert[0])) as c:
            await c.start()
            # Silence after the speech as a microphone would send it, covering the longest hold;
            # unpaced, so in 100 ms frames to stay within the message-rate limit.
            turn = await c.run_turn(speech, realtime=False, chunk_ms=100, timeout=90)
        assert "kitchen" in turn.transcript and turn.reply, [m.message for m in turn.messages if m.type != "audio-chunk"]

    asyncio.run(go())


def test_untrusted_certificate_and_plain_ws_are_refused(tls_web: ServerThread, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = tls_web.server
    other_cert, _ = make_cert(tmp_path, "other")

    async def untrusted() -> None:
        async with WebClient(server.ws_url(token=server.token), ssl=trusting(other_cert)):
            pass

    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(untrusted())

    async def plain() -> None:
        url = server.ws_url(token=server.token).replace("wss://", "ws://")
        async with WebClient(url):
            pass

    with pytest.raises(Exception):  # noqa: B017 - the handshake fails; the exact class depends on timing
        asyncio.run(plain())


def test_bad_tls_files_are_one_line_errors(cert, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="file not found"):
        tls_context(WebSettings(certfile=tmp_path / "missing.pem", keyfile=cert[1]))
    _, other_key = make_cert(tmp_path, "other")
    with pytest.raises(InvalidInput, match="cannot use certificate"):
        tls_context(WebSettings(certfile=cert[0], keyfile=other_key))
    with pytest.raises(InvalidInput, match="without --certfile"):
        tls_context(WebSettings(keyfile=cert[1]))


def test_serve_web_with_a_missing_certificate_fails_fast(tmp_path, cli_env) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(
        [str(QUICKTURN), "serve", "web", "--port", "0", "--certfile", str(tmp_path / "nope.pem")],
        capture_output=True, text=True, timeout=60, env=cli_env, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode != 0
    assert "file not found" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "loading models" not in proc.stdout
