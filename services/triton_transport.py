"""The Triton gRPC transport every Triton stage client shares (``triton://HOST:PORT``).

Every stage runs on Triton's gRPC port: ASR through a bidirectional
``ModelStreamInfer`` stream per turn with sequence ids
(:mod:`services.asr.triton_client`), disfluency, NLU and TTS through
:mod:`services.disfluency.triton_client`, :mod:`services.nlu.triton_client`
and :mod:`services.tts.triton_client`. Which client serves which stage is
decided in :mod:`services.registry`.

All Triton gRPC traffic of a process runs on one background asyncio loop
(:class:`ClientLoop`) with one ``tritonclient.grpc.aio`` client. Coroutines
awaited on the pipeline's loop (the ASR stream, :meth:`TritonConnection.ainfer`
behind the tagger's and the NLU's ``atag``/``aparse``) hop to it, so a slow
server never stalls the loop that serves every other session; the synchronous
protocol methods (``tag``, ``parse``, TTS ``synthesize`` in a worker thread)
block their own thread on it. A lost server surfaces as
:class:`~core.errors.BackendUnavailable` on the turn that was using it;
the channel reconnects by itself, so the next turn works once the server is
back (each ASR turn opens a new stream).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from core.errors import BackendUnavailable, InvalidInput, QuickTurnError

log = logging.getLogger(__name__)
T = TypeVar("T")

def new_sequence_id() -> int:
    """A correlation id unique across clients: 62 random bits (Triton's CORRID is UINT64)."""
    return secrets.randbits(62) | 1


class ClientLoop:
    """An asyncio loop in a daemon thread that owns the gRPC channel."""

    def __init__(self, name: str = "quickturn-grpc") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run ``coro`` on the client loop and wait (from any other thread)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("ClientLoop.run called from its own thread")
        return self.submit(coro).result(timeout_s)

    def call_soon(self, fn: Callable[..., object], *args: object) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)


def _describe(exc: BaseException) -> str:
    """One readable line for a gRPC or client error."""
    code, details = getattr(exc, "code", None), getattr(exc, "details", None)
    if callable(code) and callable(details):  # grpc.RpcError / AioRpcError
        name = getattr(code(), "name", code())
        return f"{name}: {details() or ''}".strip()
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unavailable(where: str, exc: BaseException) -> BackendUnavailable:
    return BackendUnavailable(f"{where}: {_describe(exc)}")


class TritonConnection:
    """One gRPC channel to a Triton server, shared by every stage client.

    Args:
        address: ``HOST:PORT`` of Triton's gRPC endpoint.
        timeout_s: per-call deadline for unary calls and for each awaited answer (seconds).
        keepalive_s: gRPC keepalive ping interval on the channel (seconds).
    """

    def __init__(self, address: str, timeout_s: float = 10.0, keepalive_s: float = 20.0) -> None:
        try:
            import tritonclient.grpc.aio as grpcclient
        except ImportError as exc:
            raise BackendUnavailable(
                "the Triton client is not installed: pip install 'quickturn[triton]'", code="backend-unavailable"
            ) from exc
        self.address = address
        self.timeout_s = timeout_s
        self.io = ClientLoop()

        async def make() -> Any:
            keepalive = grpcclient.KeepAliveOptions(
                keepalive_time_ms=int(keepalive_s * 1000), keepalive_timeout_ms=10000,
                keepalive_permit_without_calls=True, http2_max_pings_without_data=0,
            )
            return grpcclient.InferenceServerClient(address, keepalive_options=keepalive)

        self.client = self.io.run(make())

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        return self.io.run(coro, timeout_s if timeout_s is not None else self.timeout_s + 1)

    def check_models(self, models: list[str]) -> None:
        """Raise :class:`BackendUnavailable` unless the server and every model are ready."""

        async def check() -> list[str]:
            if not await self.client.is_server_live(client_timeout=self.timeout_s):
                raise BackendUnavailable(f"Triton at {self.address} is not live")
            return [m for m in models if not await self.client.is_model_ready(m, client_timeout=self.timeout_s)]

        try:
            missing = self.run(check())
        except QuickTurnError:
            raise
        except Exception as exc:
            raise _unavailable(f"Triton at {self.address} is unreachable (start it with `quickturn serve triton`)",
                               exc) from exc
        if missing:
            raise BackendUnavailable(f"Triton at {self.address}: model(s) not ready: {', '.join(missing)}")

    def infer(self, model: str, inputs: list[Any], outputs: list[str], **kwargs: Any) -> Any:
        """One unary inference, waited for in this thread; returns the ``InferResult``.

        For threads that may block (a Triton adapter, a CLI command). On an event loop use
        :meth:`ainfer`.
        """
        try:
            return self.run(self._infer(model, inputs, outputs, **kwargs))
        except QuickTurnError:
            raise
        except Exception as exc:
            raise _error_from(f"Triton {model}", exc) from exc

    async def ainfer(self, model: str, inputs: list[Any], outputs: list[str], **kwargs: Any) -> Any:
        """One unary inference awaited from any event loop: the call runs on the client loop and the
        caller's loop goes on serving other sessions meanwhile."""
        try:
            future = self.io.submit(self._infer(model, inputs, outputs, **kwargs))
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s + 1)
        except QuickTurnError:
            raise
        except Exception as exc:
            raise _error_from(f"Triton {model}", exc) from exc

    async def _infer(self, model: str, inputs: list[Any], outputs: list[str], **kwargs: Any) -> Any:
        import tritonclient.grpc as grpcclient

        requested = [grpcclient.InferRequestedOutput(o) for o in outputs]
        return await self.client.infer(model, inputs, outputs=requested, client_timeout=self.timeout_s, **kwargs)

    def stream(self, model: str, keepalive_s: float | None = None) -> TritonStream:
        return TritonStream(self, model, keepalive_s)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self.client.close(), 5)
        self.io.close()


def _error_from(where: str, exc: BaseException) -> QuickTurnError:
    """A server answer that rejects the request is invalid input; anything else means unavailable."""
    text = _describe(exc)
    if "invalid request: " in text or "must specify the START flag" in text or "INVALID_ARG" in text:
        return InvalidInput(f"{where}: {text}")
    return BackendUnavailable(f"{where}: {text}")


Handler = Callable[[Any, QuickTurnError | None, bool], None]
"""Receives (InferResult or None, error, final): final=True is the request's last response."""


class TritonStream:
    """One ``ModelStreamInfer`` call: ordered requests, responses routed by request id.

    Thread-safe :meth:`send`; everything else runs on the connection's loop.
    Empty final responses are requested, so every request's handler learns
    when its (decoupled) responses are complete. An error without a request
    id, or a lost connection, fails every pending handler and breaks the
    stream: later sends fail at once.

    Args:
        keepalive_s: while a sequence is open and nothing was sent for this
            long, send ``keepalive()`` (a request that changes nothing), so
            Triton does not expire the sequence during a long pause.
    """

    def __init__(self, conn: TritonConnection, model: str, keepalive_s: float | None = None) -> None:
        self.conn = conn
        self.model = model
        self.keepalive_s = keepalive_s
        self.keepalive: Callable[[], None] | None = None
        self._ids = itertools.count(1)
        self._handlers: dict[str, Handler] = {}
        self._queue: asyncio.Queue[Any] | None = None
        self.error: QuickTurnError | None = None
        self._last_send = time.monotonic()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._ka_task: asyncio.Task[None] | None = None
        conn.io.call_soon(self._open)

    # ----------------------------------------------------------- any thread
    def send(self, inputs: list[Any], outputs: list[str], handler: Handler | None, *, sequence_id: int = 0,
             start: bool = False, end: bool = False) -> None:
        """Queue a request (in order with earlier sends); ``handler`` gets its responses."""
        rid = f"{next(self._ids)}"
        self.conn.io.call_soon(self._enqueue, rid, inputs, outputs, handler, sequence_id, start, end)

    def close(self) -> None:
        """Half-close: no more requests; pending answers still arrive."""
        self.conn.io.call_soon(self._half_close)

    def cancel(self) -> None:
        """Abort the call (the server sees the cancellation)."""
        self.conn.io.call_soon(self._cancel)

    # -------------------------------------------------------------- loop side
    def _open(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())
        if self.keepalive_s:
            self._ka_task = asyncio.get_running_loop().create_task(self._keepalive())

    def _enqueue(self, rid: str, inputs: list[Any], outputs: list[str], handler: Handler | None,
                 sequence_id: int, start: bool, end: bool) -> None:
        if self.error is not None or self._closed:
            if handler is not None:
                handler(None, self.error or BackendUnavailable(f"Triton {self.model}: stream closed"), True)
            return
        from tritonclient.grpc import InferRequestedOutput
        from tritonclient.grpc._utils import _get_inference_request

        request = _get_inference_request(
            model_name=self.model, inputs=inputs, model_version="", request_id=rid,
            outputs=[InferRequestedOutput(o) for o in outputs] if outputs else None,
            sequence_id=sequence_id or 0, sequence_start=start, sequence_end=end, priority=0, timeout=None,
            parameters=None,
        )
        # Every request ends with a response flagged final (possibly empty), so
        # a handler always learns that a decoupled request is complete.
        request.parameters["triton_enable_empty_final_response"].bool_param = True
        if handler is not None:
            self._handlers[rid] = handler
        self._last_send = time.monotonic()
        assert self._queue is not None
        self._queue.put_nowait(request)

    def _half_close(self) -> None:
        self._closed = True
        if self._ka_task is not None:
            self._ka_task.cancel()
        if self._queue is not None:
            self._queue.put_nowait(None)

    def _cancel(self) -> None:
        self._half_close()
        if self._task is not None:
            self._task.cancel()

    async def _requests(self) -> Any:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item

    async def _keepalive(self) -> None:
        assert self.keepalive_s
        while not self._closed:
            await asyncio.sleep(self.keepalive_s / 4)
            if self.keepalive is not None and time.monotonic() - self._last_send >= self.keepalive_s:
                self.keepalive()

    async def _run(self) -> None:
        from tritonclient.grpc import InferResult

        where = f"Triton {self.model} stream ({self.conn.address})"
        try:
            # The raw stub rather than ``client.stream_infer``: the latter cannot set
            # ``triton_enable_empty_final_response`` (a reserved parameter), which
            # the decoupled models need to tell a client that a request is complete.
            call = self.conn.client._client_stub.ModelStreamInfer(self._requests(), metadata=())
            async for response in call:
                rid = response.infer_response.id
                final = response.infer_response.parameters["triton_final_response"].bool_param
                if response.error_message:
                    error = _error_from(where, Exception(response.error_message))
                    handler = self._handlers.pop(rid, None) if rid else None
                    if handler is not None:
                        handler(None, error, True)
                    else:
                        self._fail(error)
                    continue
                handler = self._handlers.get(rid)
                if final:
                    self._handlers.pop(rid, None)
                if handler is not None:
                    has_outputs = len(response.infer_response.outputs) > 0
                    handler(InferResult(response.infer_response) if has_outputs else None, None, final)
        except asyncio.CancelledError:
            self._fail(BackendUnavailable(f"{where}: cancelled"))
        except Exception as exc:
            self._fail(_unavailable(f"{where}: connection lost; the next turn reconnects", exc))
        else:
            self._fail(BackendUnavailable(f"{where}: closed by the server before answering"))

    def _fail(self, error: QuickTurnError) -> None:
        if self.error is None:
            self.error = error
        handlers, self._handlers = self._handlers, {}
        for handler in handlers.values():
            with contextlib.suppress(Exception):
                handler(None, error, True)


# ------------------------------------------------------------------ shared connections
_CONNECTIONS: dict[tuple[str, float], TritonConnection] = {}
_LOCK = threading.Lock()


def triton_connection(address: str, timeout_s: float) -> TritonConnection:
    """A process-wide connection per address (channels are expensive, streams are cheap)."""
    with _LOCK:
        key = (address, timeout_s)
        conn = _CONNECTIONS.get(key)
        if conn is None:
            conn = _CONNECTIONS[key] = TritonConnection(address, timeout_s)
        return conn


