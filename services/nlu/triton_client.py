"""NLU on Triton (models/nlu), with the NluBackend protocol."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from core.types import NluHints, NluResult, SlotValue
from services import triton_tensors as T
from services.nlu.base import NluBackend
from services.triton_transport import TritonConnection


def _string(name: str, value: str) -> Any:
    from tritonclient.grpc import InferInput

    t = InferInput(name, [1, 1], "BYTES")
    t.set_data_from_numpy(np.array([[value.encode("utf-8")]], dtype=np.object_))
    return t


def result_from(intent: str, confidence: float, slots_json: str) -> NluResult:
    slots = tuple(
        SlotValue(s["slot"], s["value"], s["normalized"], int(s["start"]), int(s["end"])) for s in json.loads(slots_json)
    )
    return NluResult(intent, float(confidence), slots)


class TritonNlu(NluBackend):
    """The NluBackend protocol on models/nlu (one unary call per utterance)."""

    name = "triton"

    def __init__(self, conn: TritonConnection, model: str = T.NLU_MODEL) -> None:
        self.conn = conn
        self.model = model

    def parse(self, text: str, hints: NluHints | None = None) -> NluResult:
        return _result(self.conn.infer(self.model, _request(text, hints), _OUTPUTS))

    async def aparse(self, text: str, hints: NluHints | None = None) -> NluResult:
        return _result(await self.conn.ainfer(self.model, _request(text, hints), _OUTPUTS))


_OUTPUTS = [T.INTENT, T.CONFIDENCE, T.SLOTS_JSON]


def _request(text: str, hints: NluHints | None) -> list[Any]:
    inputs = [_string(T.TEXT, text)]
    if hints is not None and hints.active_intent:
        inputs.append(_string(T.ACTIVE_INTENT, hints.active_intent))
    if hints is not None and hints.expected_slot:
        inputs.append(_string(T.EXPECTED_SLOT, hints.expected_slot))
    return inputs


def _result(r: Any) -> NluResult:
    intent = r.as_numpy(T.INTENT).reshape(-1)[0]
    slots = r.as_numpy(T.SLOTS_JSON).reshape(-1)[0]
    return result_from(
        intent.decode("utf-8") if isinstance(intent, bytes) else str(intent),
        float(r.as_numpy(T.CONFIDENCE).reshape(-1)[0]),
        slots.decode("utf-8") if isinstance(slots, bytes) else str(slots),
    )
