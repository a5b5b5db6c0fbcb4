"""``quickturn bench capacity`` against real servers: the embedded web server and, behind the same
web server, a real tritonserver started from ``models/`` (the ``triton`` mode)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from assistant.commands.bench_capacity import Server, load_clips, run_capacity
from core.errors import BackendUnavailable, InvalidInput
from core.settings import load_settings
from services.serving.triton_server import find_tritonserver, free_ports


def test_free_ports_are_distinct() -> None:
    ports = free_ports(3)
    assert len(set(ports)) == 3 and all(p > 0 for p in ports)


def test_unknown_mode_is_a_clear_error() -> None:
    from assistant.commands.bench_capacity import bench_capacity_main

    with pytest.raises(InvalidInput, match="triton"):
        bench_capacity_main(["--modes", "gpu"])


def test_triton_mode_answers_a_turn_through_a_real_tritonserver(tmp_path: Path) -> None:
    """One session, one real turn, through tritonserver: a reply, its latency measured from the client,
    and the CPU and RSS of both server processes counted."""
    try:
        find_tritonserver(runtime_dir=tmp_path / "probe")
    except BackendUnavailable as exc:
        pytest.skip(f"no runnable tritonserver: {exc}")
    clips = load_clips("generated", load_settings().shared_dir, 1)
    result = asyncio.run(run_capacity(clips, [1], ["triton"], 1, workdir=tmp_path, trailing_silence_ms=2500,
                                      turn_timeout_s=30.0, progress=False))
    (level,) = result["levels"]["triton"]  # type: ignore[index]
    print(level | {"rows": None})
    assert level["turns"] == 1 and level["lost_turns"] == 0, level["rows"]
    assert level["p50_ms"] is not None and 0 < level["p50_ms"] < 10_000
    assert level["server_rss_peak_mb"] > 300  # the web server and tritonserver with its model stubs
    assert (tmp_path / "triton.log").is_file()


def test_an_embedded_server_is_one_process_and_stops(tmp_path: Path) -> None:
    """The embedded modes count the web server's process tree only, and stop() ends it."""
    server = Server("batched", tmp_path, {})
    try:
        assert server.proc is not None and server.pids == [server.proc.pid]
    finally:
        server.stop()
    assert server.proc.poll() is not None
