"""The stage guard's rules, on plain coroutines: a deadline, a circuit, a fallback, a clear fault."""

from __future__ import annotations

import asyncio
import time

import pytest

from assistant.stage_guard import StageFault, StageGuard
from core.errors import BackendUnavailable

REMOTE = frozenset({"asr", "disfluency", "nlu", "tts"})


async def answer(value: str, delay_s: float = 0.0) -> str:
    await asyncio.sleep(delay_s)
    return value


async def refused() -> str:
    raise ConnectionRefusedError("connection refused")


def run(guard: StageGuard, primary, fallback=None):  # type: ignore[no-untyped-def]
    faults: list[StageFault] = []

    async def heard(fault: StageFault) -> None:
        faults.append(fault)

    async def go() -> str:
        return await guard.call("asr", primary, fallback, heard)

    return asyncio.run(go()), faults


def test_a_healthy_stage_answers_and_nothing_is_reported() -> None:
    assert run(StageGuard(2.0, remote_stages=REMOTE), lambda: answer("remote"), lambda: answer("local")) == ("remote", [])


def test_a_frozen_stage_is_given_up_at_the_deadline_and_the_fallback_answers() -> None:
    guard = StageGuard(0.2, retry_after_s=60, backend="triton://h:1", remote_stages=REMOTE)
    t0 = time.monotonic()
    value, faults = run(guard, lambda: answer("remote", 30), lambda: answer("local"))
    assert value == "local" and time.monotonic() - t0 < 1.0
    assert [(f.stage, f.code) for f in faults] == [("asr", "backend-timeout")]
    assert faults[0].message == "the asr backend (triton://h:1) did not answer within 0.2 s"


def test_a_refused_stage_is_reported_as_unavailable_with_its_reason() -> None:
    value, faults = run(StageGuard(2.0, backend="triton://h:1", remote_stages=REMOTE), refused, lambda: answer("local"))
    assert value == "local"
    assert faults[0].code == "backend-unavailable" and "connection refused" in faults[0].message


def test_after_a_failure_the_stage_is_bypassed_until_retry_after_then_tried_again() -> None:
    guard = StageGuard(0.2, retry_after_s=0.5, remote_stages=frozenset({"asr", "tts"}))
    calls: list[str] = []

    async def primary() -> str:
        calls.append("primary")
        raise ConnectionRefusedError("down")

    run(guard, primary, lambda: answer("local"))
    # one server: a fault found by the ASR opens the TTS's circuit too, not the embedded NLU's
    assert guard.is_open("asr") and guard.is_open("tts") and not guard.is_open("nlu")
    value, faults = run(guard, primary, lambda: answer("local"))
    assert value == "local" and faults == [] and calls == ["primary"]  # not waited on, not reported again
    time.sleep(0.6)
    assert not guard.is_open("asr")
    assert run(guard, lambda: answer("remote"), lambda: answer("local")) == ("remote", [])


def test_without_a_fallback_the_failure_is_a_backend_error_naming_the_stage() -> None:
    with pytest.raises(BackendUnavailable, match="the asr backend .* failed: down"):
        run(StageGuard(1.0, remote_stages=REMOTE), lambda: refused_with("down"))


def test_a_failing_fallback_is_a_backend_error_too() -> None:
    with pytest.raises(BackendUnavailable, match="the local asr fallback failed too"):
        run(StageGuard(1.0, remote_stages=REMOTE), refused, lambda: refused_with("no model"))


def test_embedded_stages_have_no_deadline() -> None:
    guard = StageGuard(0.1, remote_stages=frozenset({"tts"}))
    assert run(guard, lambda: answer("slow but fine", 0.3), lambda: answer("local")) == ("slow but fine", [])


async def refused_with(message: str) -> str:
    raise RuntimeError(message)
