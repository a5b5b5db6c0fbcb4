"""``quickturn serve triton``: run Triton Inference Server on the ``models/`` repository.

Which binary:

1. ``--tritonserver PATH`` or ``$QUICKTURN_TRITONSERVER``;
2. a system ``tritonserver`` on ``PATH`` or in ``/opt/tritonserver/bin`` (the NGC container);
3. the CPU build bundled in the ``nvidia-pytriton`` wheel (``pip install 'quickturn[triton]'``).

The bundled build needs what PyTriton itself sets up before it starts it
(``pytriton/triton.py`` and ``pytriton/server/triton_server.py``): the Python
backend stub of the running interpreter's version copied into a backends
directory, the wheel's ``nvidia_pytriton.libs`` and the interpreter's own
``libpython`` on ``LD_LIBRARY_PATH``, and this environment's ``bin`` first on
``PATH`` so the stub runs the same Python (with numpy < 2) as QuickTurn.
The Python backend's shared-memory regions get a per-process prefix so
several servers can run side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import BackendUnavailable, InvalidInput

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REPOSITORY = REPO_ROOT / "models"


@dataclass(frozen=True)
class TritonBinary:
    """A runnable tritonserver and the environment it needs."""

    path: Path
    bundled: bool
    backend_dir: Path | None = None  # the bundled build needs a prepared one
    cache_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


def _pytriton_dist() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None
    dist = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    return dist if (dist / "bin" / "tritonserver").is_file() else None


def find_tritonserver(explicit: str | None = None, runtime_dir: Path | None = None) -> TritonBinary:
    """Locate a tritonserver binary and prepare its environment.

    Args:
        explicit: a path given by the user (wins over everything).
        runtime_dir: where to lay out the bundled build's backends (a temp dir when None).

    Raises:
        BackendUnavailable: no binary found.
    """
    explicit = explicit or os.environ.get("QUICKTURN_TRITONSERVER")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise BackendUnavailable(f"tritonserver not found at {path}")
        return TritonBinary(path, bundled=False, env=_python_env())
    system = shutil.which("tritonserver") or (
        "/opt/tritonserver/bin/tritonserver" if Path("/opt/tritonserver/bin/tritonserver").is_file() else None
    )
    if system:
        return TritonBinary(Path(system), bundled=False, env=_python_env())
    dist = _pytriton_dist()
    if dist is None:
        raise BackendUnavailable(
            "no tritonserver binary: install the bundled CPU build with `pip install 'quickturn[triton]'` "
            "(nvidia-pytriton), put tritonserver on PATH, or use the NGC container (deploy/compose)"
        )
    runtime = runtime_dir or Path(tempfile.mkdtemp(prefix="quickturn-triton-"))
    backend_dir, cache_dir = _prepare_bundled(dist, runtime)
    libs = dist.parent.parent / "nvidia_pytriton.libs"
    ld = [str(Path(sysconfig.get_config_var("LIBDIR") or "")), str(libs)]
    if os.environ.get("LD_LIBRARY_PATH"):
        ld.append(os.environ["LD_LIBRARY_PATH"])
    env = _python_env()
    env["LD_LIBRARY_PATH"] = ":".join(ld)
    return TritonBinary(dist / "bin" / "tritonserver", bundled=True, backend_dir=backend_dir, cache_dir=cache_dir, env=env)


def _prepare_bundled(dist: Path, runtime: Path) -> tuple[Path, Path]:
    """Copy the Python backend with this interpreter's stub, as PyTriton does."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise BackendUnavailable(f"the bundled tritonserver has no Python backend stub for Python {version}")
    backend_dir = runtime / "backends"
    python_dir = backend_dir / "python"
    if not (python_dir / "triton_python_backend_stub").is_file():
        python_dir.mkdir(parents=True, exist_ok=True)
        for item in (dist / "backends" / "python").iterdir():
            if item.is_file():
                shutil.copy2(item, python_dir / item.name)
        shutil.copy2(stub, python_dir / "triton_python_backend_stub")
    cache_dir = runtime / "caches"
    if not cache_dir.exists():
        shutil.copytree(dist / "caches", cache_dir)
    return backend_dir, cache_dir


def _python_env() -> dict[str, str]:
    """This interpreter's environment for the Python backend stub."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '')}"
    env["PYTHONPATH"] = ":".join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    # Thread variables (OMP_NUM_THREADS, ...) are passed through unchanged:
    # they change ctranslate2's numerics, not only its speed (OMP_NUM_THREADS=1
    # turns "pern on the kitchen lights" into "turn on ..." on one utterance),
    # so the server must decode under the same environment as the embedded
    # backend to give the same transcripts. Per-model thread counts are set
    # in config.pbtxt.
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def free_ports(n: int) -> list[int]:
    """``n`` TCP ports free on the loopback now (bound together, so they differ): for a server
    started beside others (a benchmark's, a test's) that must not meet a port in use."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class TritonPorts:
    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002


class TritonProcess:
    """One tritonserver child process.

    Args:
        repository: the model repository (``models/``).
        ports: HTTP, gRPC and metrics ports.
        binary: from :func:`find_tritonserver` (found on start when None).
        log_path: server log file (inherits stdout/stderr when None).
        models: load only these models (all when None).
    """

    def __init__(
        self,
        repository: Path = DEFAULT_REPOSITORY,
        ports: TritonPorts | None = None,
        binary: TritonBinary | None = None,
        log_path: Path | None = None,
        models: list[str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.repository = Path(repository).resolve()
        self.ports = ports or TritonPorts()
        self.binary = binary
        self.log_path = log_path
        self.models = models
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: object | None = None

    def command(self) -> list[str]:
        assert self.binary is not None
        cmd = [
            str(self.binary.path),
            f"--model-repository={self.repository}",
            f"--http-port={self.ports.http}",
            f"--grpc-port={self.ports.grpc}",
            f"--metrics-port={self.ports.metrics}",
            "--exit-timeout-secs=10",
            f"--backend-config=python,shm-region-prefix-name=quickturn{os.getpid()}p{self.ports.grpc}",
            "--log-verbose=0",
        ]
        if self.binary.backend_dir is not None:
            cmd.append(f"--backend-directory={self.binary.backend_dir}")
        if self.binary.cache_dir is not None:
            cmd.append(f"--cache-directory={self.binary.cache_dir}")
        if self.models:
            cmd.append("--model-control-mode=explicit")
            cmd += [f"--load-model={m}" for m in self.models]
        return cmd + self.extra_args

    def start(self) -> None:
        if not self.repository.is_dir():
            raise InvalidInput(f"model repository not found: {self.repository}")
        if self.binary is None:
            self.binary = find_tritonserver()
        stdout: object = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = self.log_path.open("ab")
            stdout = self._log_file
        log.info("starting %s", " ".join(self.command()))
        self.proc = subprocess.Popen(  # noqa: S603 - our own command line
            self.command(), env=self.binary.env, stdout=stdout, stderr=subprocess.STDOUT if stdout else None
        )

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    def ready(self) -> bool:
        """Every model loaded (``/v2/health/ready``) and the metrics endpoint serving: tritonserver starts
        its metrics service after HTTP, and a server called ready must be scrapable (the autoscaler)."""
        try:
            with urllib.request.urlopen(f"{self.http_url}/v2/health/ready", timeout=1) as resp:
                if resp.status != 200:
                    return False
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports.metrics}/metrics", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        """Block until every model is loaded and the metrics endpoint serves (:meth:`ready`).

        Raises:
            BackendUnavailable: the server exited or did not become ready in time.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BackendUnavailable(
                    f"tritonserver exited with code {self.proc.returncode} while loading{self._log_hint()}"
                )
            if self.ready():
                return
            time.sleep(0.25)
        raise BackendUnavailable(f"tritonserver not ready after {timeout_s:.0f} s{self._log_hint()}")

    def _log_hint(self) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.startswith("E")]
        return f" (see {self.log_path}" + (f"; last error: {lines[-1][:300]}" if lines else "") + ")"

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM, wait up to ``timeout_s`` for Triton's graceful exit, then SIGKILL; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log_file is not None:
            with contextlib.suppress(Exception):
                self._log_file.close()  # type: ignore[attr-defined]
        return int(self.proc.returncode or 0)

    def kill(self) -> None:
        """SIGKILL (tests: the server dies mid-stream)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def serve_triton_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="quickturn serve triton", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", type=Path, default=DEFAULT_REPOSITORY, help="model repository (default: models/)")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--models", help="comma-separated models to load (default: all in the repository)")
    parser.add_argument("--tritonserver", help="path of the tritonserver binary (default: system, then bundled)")
    parser.add_argument("--log", type=Path, help="write the server log here instead of the terminal")
    parser.add_argument("--ready-timeout", type=float, default=300.0, help="seconds to wait for the models to load")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    runtime = Path(tempfile.mkdtemp(prefix="quickturn-triton-"))
    try:
        binary = find_tritonserver(args.tritonserver, runtime)
        server = TritonProcess(
            args.repository,
            TritonPorts(args.http_port, args.grpc_port, args.metrics_port),
            binary,
            log_path=args.log,
            models=args.models.split(",") if args.models else None,
        )
        stopping = False

        def forward(signum: int, _frame: object) -> None:
            nonlocal stopping
            stopping = True
            if server.proc is not None and server.proc.poll() is None:
                server.proc.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        server.start()
        try:
            server.wait_ready(args.ready_timeout)
        except BackendUnavailable:
            server.stop()
            raise
        print(
            f"quickturn: Triton ready ({'bundled' if binary.bundled else binary.path}): "
            f"HTTP {server.http_url}  gRPC 127.0.0.1:{args.grpc_port}  metrics http://127.0.0.1:{args.metrics_port}/metrics",
            file=sys.stderr,
            flush=True,
        )
        assert server.proc is not None
        code = server.proc.wait()
        if stopping:
            print("quickturn: Triton stopped", file=sys.stderr)
            return 0
        print(f"quickturn: tritonserver exited with code {code}", file=sys.stderr)
        return 1 if code == 0 else code
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
