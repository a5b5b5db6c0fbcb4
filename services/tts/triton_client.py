"""TTS on Triton (models/tts, decoupled): the TtsBackend protocol plus chunk streaming."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import numpy as np

from core.errors import BackendUnavailable, QuickTurnError
from services import triton_tensors as T
from services.triton_transport import TritonConnection
from services.tts.base import TtsBackend

_OUTPUTS = [T.TTS_AUDIO, T.SAMPLE_RATE_HZ, T.PHRASE_INDEX]
_DONE = object()


def _text_input(text: str) -> Any:
    from tritonclient.grpc import InferInput

    t = InferInput(T.TEXT, [1], "BYTES")
    t.set_data_from_numpy(np.array([text.encode("utf-8")], dtype=np.object_))
    return t


class TritonTts(TtsBackend):
    """Speech from models/tts.

    ``sample_rate_hz`` is learned from a one-word synthesis at construction
    (which also warms the server's voice).
    """

    name = "triton"

    def __init__(self, conn: TritonConnection, model: str = T.TTS_MODEL) -> None:
        self.conn = conn
        self.model = model
        self.sample_rate_hz = 0
        for rate, _index, _chunk in self.stream("Okay."):
            self.sample_rate_hz = rate
        if not self.sample_rate_hz:
            raise BackendUnavailable("Triton tts: the warm-up synthesis returned no audio")

    def stream(self, text: str) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield (sample_rate_hz, phrase_index, int16 chunk) as the server sends them.

        Closing the generator early cancels the request on the server (it
        stops before the next phrase).
        """
        chunks: queue.Queue[Any] = queue.Queue()

        def handle(result: Any, error: QuickTurnError | None, final: bool) -> None:
            if error is not None:
                chunks.put(error)
            elif result is not None:
                chunks.put((int(result.as_numpy(T.SAMPLE_RATE_HZ).reshape(-1)[0]),
                            int(result.as_numpy(T.PHRASE_INDEX).reshape(-1)[0]),
                            result.as_numpy(T.TTS_AUDIO).reshape(-1).astype(np.int16)))
            if final or error is not None:
                chunks.put(_DONE)

        wire = self.conn.stream(self.model)
        wire.send([_text_input(text)], _OUTPUTS, handle)
        wire.close()
        finished = False
        try:
            while True:
                try:
                    item = chunks.get(timeout=self.conn.timeout_s)
                except queue.Empty as exc:
                    raise BackendUnavailable(f"Triton tts: no audio within {self.conn.timeout_s:g} s") from exc
                if item is _DONE:
                    finished = True
                    return
                if isinstance(item, QuickTurnError):
                    finished = True
                    raise item
                yield item
        finally:
            if not finished:
                wire.cancel()

    def synthesize(self, text: str) -> np.ndarray:
        """The whole phrase's audio (int16 at ``sample_rate_hz``)."""
        parts = [chunk for _rate, _index, chunk in self.stream(text)]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)


