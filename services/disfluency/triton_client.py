"""Disfluency tagging on Triton (models/disfluency), with the Tagger protocol.

``tag(words)`` is a one-request sequence; ``stream()`` opens a sequence whose
per-stream state (the committed labels of the wait policy) lives in the
model, keyed by the correlation id. A streaming tagger that is dropped
without ``finish()`` ends its sequence when it is garbage collected (and the
model would expire it after 30 s idle anyway).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from core.types import PENDING_KIND, DisfluencyKind, TaggedToken
from services import triton_tensors as T
from services.disfluency.base import StreamingTagger, Tagger
from services.triton_transport import TritonConnection, new_sequence_id

_OUTPUTS = [T.TAGGED_WORDS, T.REMOVE, T.KIND]


def _inputs(words: Sequence[str], finish: bool) -> list[Any]:
    from tritonclient.grpc import InferInput

    w = InferInput(T.WORDS, [1, len(words)], "BYTES")
    w.set_data_from_numpy(np.array([[x.encode("utf-8") for x in words]], dtype=np.object_).reshape(1, len(words)))
    f = InferInput(T.FINISH, [1, 1], "BOOL")
    f.set_data_from_numpy(np.array([[finish]], np.bool_))
    return [w, f]


def _tokens(result: Any) -> list[TaggedToken]:
    words = result.as_numpy(T.TAGGED_WORDS).reshape(-1)
    remove = result.as_numpy(T.REMOVE).reshape(-1)
    kinds = result.as_numpy(T.KIND).reshape(-1)
    out = []
    for w, r, k in zip(words, remove, kinds, strict=True):
        kind = k.decode("utf-8") if isinstance(k, bytes) else str(k)
        word = w.decode("utf-8") if isinstance(w, bytes) else str(w)
        if kind == PENDING_KIND:
            out.append(TaggedToken(word, False, None, pending=True))
        else:
            out.append(TaggedToken(word, bool(r), cast(DisfluencyKind, kind) if kind else None))
    return out


class TritonStreamingTagger(StreamingTagger):
    """One utterance's streaming session on the server."""

    def __init__(self, conn: TritonConnection, model: str) -> None:
        self._conn = conn
        self._model = model
        self._seq = new_sequence_id()
        self._state = {"started": False, "ended": False}
        self._finalizer = weakref.finalize(self, _end_sequence, conn, model, self._seq, self._state)

    def _request(self, words: Sequence[str], finish: bool) -> dict[str, Any] | None:
        """The next request of the sequence (None: nothing to ask)."""
        if self._state["ended"]:
            raise RuntimeError("the streaming tagger is finished")
        if not words and not finish:
            return None
        start = not self._state["started"]
        self._state["started"] = True
        if finish:
            self._state["ended"] = True
        return {"inputs": _inputs(words, finish), "outputs": _OUTPUTS, "sequence_id": self._seq,
                "sequence_start": start, "sequence_end": finish}

    def update(self, words: Sequence[str]) -> list[TaggedToken]:
        request = self._request(words, False)
        return _tokens(self._conn.infer(self._model, **request)) if request else []

    def finish(self, words: Sequence[str]) -> list[TaggedToken]:
        return _tokens(self._conn.infer(self._model, **self._request(words, True)))  # type: ignore[arg-type]

    async def aupdate(self, words: Sequence[str]) -> list[TaggedToken]:
        request = self._request(words, False)
        return _tokens(await self._conn.ainfer(self._model, **request)) if request else []

    async def afinish(self, words: Sequence[str]) -> list[TaggedToken]:
        return _tokens(await self._conn.ainfer(self._model, **self._request(words, True)))  # type: ignore[arg-type]


def _end_sequence(conn: TritonConnection, model: str, seq: int, state: dict[str, bool]) -> None:
    """Close a sequence nobody finished (fire and forget; never raises)."""
    if not state["started"] or state["ended"]:
        return
    state["ended"] = True
    import tritonclient.grpc as grpcclient

    async def end() -> None:
        try:
            await conn.client.infer(model, _inputs([], False), outputs=[grpcclient.InferRequestedOutput(T.REMOVE)],
                                    sequence_id=seq, sequence_end=True, client_timeout=conn.timeout_s)
        except Exception:
            pass

    try:
        conn.io.submit(end())
    except RuntimeError:  # the client loop is already closed (interpreter exit)
        pass


def _one_shot() -> dict[str, Any]:
    """A whole utterance is a sequence of one request."""
    return {"sequence_id": new_sequence_id(), "sequence_start": True, "sequence_end": True}


class TritonTagger(Tagger):
    """The Tagger protocol on models/disfluency."""

    name = "triton"

    def __init__(self, conn: TritonConnection, model: str = T.DISFLUENCY_MODEL) -> None:
        self.conn = conn
        self.model = model

    def tag(self, words: Sequence[str]) -> list[TaggedToken]:
        if not words:
            return []
        return _tokens(self.conn.infer(self.model, _inputs(words, True), _OUTPUTS, **_one_shot()))

    async def atag(self, words: Sequence[str]) -> list[TaggedToken]:
        if not words:
            return []
        return _tokens(await self.conn.ainfer(self.model, _inputs(words, True), _OUTPUTS, **_one_shot()))

    def stream(self) -> TritonStreamingTagger:
        return TritonStreamingTagger(self.conn, self.model)
