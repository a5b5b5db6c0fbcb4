"""ASR on a Riva server (or ``quickturn serve riva``) through ``nvidia-riva-client``.

One ``StreamingRecognize`` call per turn, with interim results. Riva decides
when to send interim results, so ``hypothesis()`` returns the newest interim
result once one arrives for audio sent after the previous call (waiting at
most ``interim_wait_s``), and ``final()`` closes the audio side and waits for
the final results. The blocking client runs in a worker thread per turn.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any

import numpy as np

from core.errors import BackendUnavailable, InvalidInput
from core.text import normalize_transcript
from core.types import Hypothesis
from services.asr.base import AsrBackend, AsrStream

_END = object()


def _hyp(transcript: str, confidence: float) -> Hypothesis:
    import math

    logprob = math.log(confidence) if confidence > 0 else 0.0
    return Hypothesis(text=normalize_transcript(transcript), raw_text=transcript.strip(), avg_logprob=logprob)


def riva_error(address: str, exc: BaseException) -> Exception:
    import grpc

    if isinstance(exc, grpc.RpcError):
        code = exc.code() if hasattr(exc, "code") else None
        detail = exc.details() if hasattr(exc, "details") else str(exc)
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return InvalidInput(f"Riva at {address}: {detail}")
        return BackendUnavailable(f"Riva at {address}: {getattr(code, 'name', code)}: {detail}")
    return BackendUnavailable(f"Riva at {address}: {exc}")


class RivaAsrStream(AsrStream):
    """One turn as one StreamingRecognize call."""

    def __init__(self, service: Any, address: str, hint_words: list[str] | None, timeout_s: float,
                 interim_wait_s: float) -> None:
        import riva.client

        self._address = address
        self._timeout_s = timeout_s
        self._interim_wait_s = interim_wait_s
        config = riva.client.RecognitionConfig(
            encoding=riva.client.AudioEncoding.LINEAR_PCM, sample_rate_hertz=16000, language_code="en-US",
            max_alternatives=1, audio_channel_count=1, enable_automatic_punctuation=False,
        )
        if hint_words:
            riva.client.add_word_boosting_to_config(config, list(hint_words), 10.0)
        self._config = riva.client.StreamingRecognitionConfig(config=config, interim_results=True)
        self._audio: queue.Queue[Any] = queue.Queue()
        self._loop = asyncio.get_running_loop()
        self._latest: Hypothesis | None = None
        self._version = 0
        self._finals: list[str] = []
        self._confidence = 1.0
        self._error: Exception | None = None
        self._changed = asyncio.Event()
        self._done = asyncio.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._run, args=(service,), name="riva-asr", daemon=True)
        self._thread.start()

    def _chunks(self) -> Any:
        while True:
            item = self._audio.get()
            if item is _END:
                return
            yield item

    def _run(self, service: Any) -> None:
        try:
            for response in service.streaming_response_generator(self._chunks(), self._config):
                for result in response.results:
                    if not result.alternatives:
                        continue
                    alt = result.alternatives[0]
                    self._post(self._on_result, alt.transcript, alt.confidence, result.is_final)
        except Exception as exc:
            self._post(self._on_error, riva_error(self._address, exc))
        finally:
            self._post(self._done.set)
            self._post(self._changed.set)

    def _post(self, callback: Any, *args: Any) -> None:
        """Hand a result to the session's loop; a loop already closed (the session was abandoned
        with its stream still open) has no one left to tell, so the result is dropped, not raised
        in this thread."""
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            if not self._loop.is_closed():
                raise

    def _on_result(self, transcript: str, confidence: float, is_final: bool) -> None:
        if is_final:
            self._finals.append(transcript.strip())
            self._confidence = min(self._confidence, confidence or 1.0)
            self._latest = _hyp(" ".join(self._finals), self._confidence)
        else:
            self._latest = _hyp(" ".join([*self._finals, transcript.strip()]), confidence)
        self._version += 1
        self._changed.set()

    def _on_error(self, error: Exception) -> None:
        self._error = error

    async def accept(self, pcm: np.ndarray) -> None:
        if self._error is not None:
            raise self._error
        self._audio.put(pcm.astype("<i2").tobytes())

    async def hypothesis(self) -> Hypothesis:
        """The newest interim result (waits up to ``interim_wait_s`` for one newer than the last)."""
        seen = self._version
        try:
            while self._version == seen and not self._done.is_set():
                self._changed.clear()
                await asyncio.wait_for(self._changed.wait(), self._interim_wait_s)
        except TimeoutError:
            pass
        if self._error is not None:
            raise self._error
        return self._latest or Hypothesis("", "", 0.0)

    async def final(self) -> Hypothesis:
        """Close the audio side and wait for the final result."""
        if not self._ended:
            self._ended = True
            self._audio.put(_END)
        try:
            await asyncio.wait_for(self._done.wait(), self._timeout_s)
        except TimeoutError as exc:
            raise BackendUnavailable(f"Riva at {self._address}: no final result within {self._timeout_s:g} s") from exc
        if self._error is not None:
            raise self._error
        return _hyp(" ".join(self._finals), self._confidence) if self._finals else Hypothesis("", "", 0.0)

    async def aclose(self) -> None:
        if not self._ended:
            self._ended = True
            self._audio.put(_END)


class RivaAsr(AsrBackend):
    """The AsrBackend protocol on a Riva ASR service."""

    name = "riva"

    def __init__(self, address: str, timeout_s: float = 10.0, interim_wait_s: float = 1.0) -> None:
        try:
            import riva.client
        except ImportError as exc:
            raise BackendUnavailable("the Riva client is not installed: pip install 'quickturn[riva]'") from exc
        self.address = address
        self.timeout_s = timeout_s
        self.interim_wait_s = interim_wait_s
        self.service = riva.client.ASRService(riva.client.Auth(uri=address))

    def open_stream(self, session_id: str, turn_id: str, hint_words: list[str] | None = None) -> RivaAsrStream:
        return RivaAsrStream(self.service, self.address, hint_words, self.timeout_s, self.interim_wait_s)

    async def aclose(self) -> None:
        return None
