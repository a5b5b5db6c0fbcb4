"""Rasa interop against real Rasa 3.6: `rasa data validate`, `rasa train`, `rasa run` + the `rasa` backend.

Slow (marked ``slow``), and part of the default suite. The Rasa environment comes from
``deploy/rasa-env.sh`` (a cached Python 3.10 virtualenv under ``$QUICKTURN_CACHE``, default
``~/.cache/quickturn``; about 6 minutes and 2.7 GB the first time, a stamp check after). If
Python 3.10 is missing the tests fail with the script's message, they do not skip. The trained
model is cached there too, keyed by the export's hash, so a warm run only validates, starts
the server and talks to it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import REPO_ROOT
from core.types import NluResult, SlotValue
from dialog.rasa_backend import UNREACHABLE, RasaDialog
from tests.servers import free_ports

CACHE = Path(os.environ.get("QUICKTURN_CACHE") or Path.home() / ".cache" / "quickturn")
SUBSET = ["coffee", "conversation"]  # what the live server is trained on (the full export trains much slower)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="2", SQLALCHEMY_SILENCE_UBER_WARNING="1",
               PYTHONWARNINGS="ignore::DeprecationWarning")  # fmt: skip
    return env


@pytest.fixture(scope="session")
def rasa_bin() -> Path:
    """The rasa executable of the cached venv (deploy/rasa-env.sh builds it when missing)."""
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(REPO_ROOT / "deploy" / "rasa-env.sh")], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=3000)  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"deploy/rasa-env.sh failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}", pytrace=False)
    venv = Path(proc.stdout.strip().splitlines()[-1])
    print(f"rasa env ready in {time.monotonic() - t0:.1f} s: {venv}")
    return venv / "bin" / "rasa"


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=timeout)  # fmt: skip


def _rasa_problems(output: str) -> list[str]:
    """Rasa's own WARNING/ERROR log lines (Python DeprecationWarnings from its dependencies excluded)."""
    return [line for line in output.splitlines() if re.search(r"\s(WARNING|ERROR)\s+rasa", line)]


def _validate(rasa: Path, project: Path) -> subprocess.CompletedProcess[str]:
    return _run([str(rasa), "data", "validate", "--domain", "domain.yml", "--data", "data", "--config", "config.yml",
                 "--max-history", "5", "--fail-on-warnings"], project, 600)  # fmt: skip


def test_full_export_passes_rasa_data_validate(rasa_bin: Path, tmp_path: Path) -> None:
    from dialog.rasa_export import export_project

    project = tmp_path / "all"
    report = export_project(project)
    proc = _validate(rasa_bin, project)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert _rasa_problems(out) == []
    assert "No story structure conflicts found" in out
    assert len(report.stories) >= 50


def test_rasa_data_validate_catches_what_the_exporter_leaves_out(
    rasa_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: with the exporter's conflict check disabled, Rasa rejects the project."""
    import dialog.rasa_export as rx

    real = rx._state_windows
    monkeypatch.setattr(rx, "_state_windows", lambda turns: [((id(turns), i), a) for i, (_, a) in enumerate(real(turns))])
    project = tmp_path / "conflicting"
    rx.export_project(project, SUBSET)
    proc = _validate(rasa_bin, project)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Story structure conflict after intent 'orderDrink'" in out
    assert "coffee refuses an unknown drink and asks again" in out


@pytest.fixture(scope="module")
def trained(rasa_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(project folder, model file): the coffee + conversation export, trained once and cached by its hash."""
    from dialog.rasa_export import export_project

    project = tmp_path_factory.mktemp("rasa") / "project"
    report = export_project(project, SUBSET)
    version = (rasa_bin.parent.parent / ".rasa-version").read_text().strip()
    models = CACHE / "rasa-models"
    models.mkdir(parents=True, exist_ok=True)
    model = models / f"quickturn-{'-'.join(SUBSET)}-{report.digest[:16]}-rasa{version}.tar.gz"
    if not model.is_file():
        work = Path(tmp_path_factory.mktemp("train"))
        t0 = time.monotonic()
        proc = _run([str(rasa_bin), "train", "--domain", "domain.yml", "--data", "data", "--config", "config.yml",
                     "--out", str(work), "--fixed-model-name", "model"], project, 2400)  # fmt: skip
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        shutil.copy(work / "model.tar.gz", model.with_suffix(".part"))
        os.replace(model.with_suffix(".part"), model)
        print(f"rasa train: {time.monotonic() - t0:.0f} s -> {model}")
    return project, model


def _free_port() -> int:
    return free_ports(1)[0]


class _RasaServer:
    def __init__(self, rasa: Path, project: Path, model: Path, log: Path) -> None:
        self.rasa, self.project, self.model, self.log = rasa, project, model, log
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rasa://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 300) -> float:
        t0 = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(self.rasa), "run", "--enable-api", "--model", str(self.model), "--credentials", "credentials.yml",
                 "--interface", "127.0.0.1", "--port", str(self.port)],
                cwd=self.project, env=_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        status = f"http://127.0.0.1:{self.port}/status"
        while time.monotonic() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise AssertionError(f"rasa run exited with {self.proc.returncode}:\n{self.log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(status, timeout=2) as r:
                    if json.loads(r.read()).get("model_file"):
                        return time.monotonic() - t0
            except OSError:
                pass
            time.sleep(1)
        raise AssertionError(f"rasa run not ready after {timeout_s} s:\n{self.log.read_text()[-4000:]}")

    def ensure_running(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.start()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture(scope="module")
def server(rasa_bin: Path, trained: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[_RasaServer]:
    project, model = trained
    srv = _RasaServer(rasa_bin, project, model, tmp_path_factory.mktemp("log") / "rasa-run.log")
    ready = srv.start()
    print(f"rasa run ready in {ready:.0f} s on port {srv.port}")
    yield srv
    srv.stop()


@pytest.fixture
def live(server: _RasaServer) -> _RasaServer:
    """The module's server, restarted if a test (run out of order) stopped it."""
    server.ensure_running()
    return server


def _turn(rasa: RasaDialog, session: str, text: str, n: int) -> str:
    reply = rasa.handle(session, f"{session}-{n}", NluResult("out_of_scope", 0.0), text, text)
    assert reply.action == "rasa", (text, reply)
    return reply.text


def test_conversation_through_the_rasa_backend(live: _RasaServer) -> None:
    """Two interleaved sessions: Rasa's NLU, stories, rules and slots, reached through RasaDialog."""
    rasa = RasaDialog(live.url, timeout_s=30)
    a, b = "qt-session-a", "qt-session-b"
    assert _turn(rasa, a, "hello", 1) == "Hello! What can I do for you?"
    assert _turn(rasa, a, "i'd like a latte", 2) == "What size would you like?"
    assert _turn(rasa, b, "a large cappuccino please", 1) == "One large cappuccino coming up."
    assert _turn(rasa, a, "small", 3) == "One small latte coming up."  # session a kept its own drink
    assert _turn(rasa, a, "no make it large", 4) == "One large latte coming up."
    assert _turn(rasa, a, "goodbye", 5) == "Goodbye!"


def test_quickturn_nlu_mode_sends_intent_and_entities(live: _RasaServer) -> None:
    rasa = RasaDialog(live.url, timeout_s=30, nlu="quickturn")
    nlu = NluResult("orderDrink", 0.97, (SlotValue("coffeeDrink", "mocha", "mocha", 0, 1),
                                          SlotValue("size", "medium", "medium", 1, 2)))  # fmt: skip
    reply = rasa.handle("qt-session-c", "c-1", nlu, "words rasa never sees", "words rasa never sees")
    assert reply.text == "One medium mocha coming up."


def test_pipeline_speaks_rasa_replies(live: _RasaServer, components) -> None:  # type: ignore[no-untyped-def]
    """The orchestrator with the Rasa backend in place of the embedded dialog manager."""
    import asyncio

    from assistant.pipeline import Conversation
    from assistant.turn_result import run_text

    comp = dataclasses.replace(components, dialog=RasaDialog(live.url, timeout_s=30))
    conv = Conversation(comp, "qt-pipeline-rasa", barge_in=False)

    async def talk() -> list:  # type: ignore[type-arg]
        return [await run_text(conv, t) for t in ("i'd like a latte", "small")]

    first, second = asyncio.run(talk())
    assert first.intent == "orderDrink"  # QuickTurn's NLU still runs; Rasa decides the reply
    assert first.reply == "What size would you like?"
    assert second.reply == "One small latte coming up."
    assert second.reply_audio is not None and len(second.reply_audio) > 0


def test_say_cli_with_dialog_flag_talks_to_rasa(live: _RasaServer, cli_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``quickturn say --dialog rasa://…``: the flag selects the backend; one session over two calls."""
    from tests.conftest import QUICKTURN

    def say(text: str) -> dict:  # type: ignore[type-arg]
        proc = subprocess.run(
            [str(QUICKTURN), "say", "--json", "--session", "qt-cli-rasa", "--db", str(tmp_path / "d.sqlite"),
             "--dialog", f"rasa://127.0.0.1:{live.port}", text],
            capture_output=True, text=True, timeout=180, env=cli_env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    assert say("i'd like a latte")["reply"] == "What size would you like?"
    assert say("large")["reply"] == "One large latte coming up."


def test_server_down_gives_a_spoken_error(live: _RasaServer) -> None:
    """Last in this file: stops the server. A turn then gets the apology, not an exception or silence."""
    rasa = RasaDialog(live.url, timeout_s=10)
    assert _turn(rasa, "qt-session-d", "hello", 1) == "Hello! What can I do for you?"
    live.stop()
    t0 = time.monotonic()
    reply = rasa.handle("qt-session-d", "d-2", NluResult("Greet", 1.0), "hello", "hello")
    assert time.monotonic() - t0 < 2
    assert reply.action == "error" and reply.text == UNREACHABLE and reply.error == "connection refused"
    assert reply.phrases == ["Sorry,", "I can't reach my dialog server right now.", "Please try again in a moment."]
    assert rasa.failures == 1
