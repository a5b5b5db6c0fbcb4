"""Real servers for tests: a tritonserver on the ``models/`` repository, on free ports.

Shared by the Triton tests and the stage contract suite, so both start the
server the same way and skip the same way where it cannot run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import BackendUnavailable
from core.settings import REPO_ROOT
from services.serving.triton_server import TritonPorts, TritonProcess, find_tritonserver
from services.serving.triton_server import free_ports as triton_free_ports


def free_ports(n: int = 3) -> list[int]:
    """Three ports by default: Triton's HTTP, gRPC and metrics."""
    return triton_free_ports(n)


def start_server(tmp: Path, models: list[str] | None = None, ports: TritonPorts | None = None) -> TritonProcess:
    try:
        binary = find_tritonserver(runtime_dir=tmp / "runtime")
    except BackendUnavailable as exc:
        pytest.skip(f"no runnable tritonserver: {exc}")
    server = TritonProcess(REPO_ROOT / "models", ports or TritonPorts(*free_ports()), binary, log_path=tmp / "triton.log",
                           models=models)
    server.start()
    try:
        server.wait_ready(240)
    except BackendUnavailable as exc:
        server.stop()
        log = (tmp / "triton.log").read_text(errors="replace") if (tmp / "triton.log").is_file() else ""
        if "error while loading shared libraries" in log or "GLIBC" in log:
            pytest.skip(f"the bundled tritonserver cannot run on this machine: {exc}")
        raise
    return server


