"""Tensor helpers shared by the ``models/*/1/model.py`` adapters.

Only importable inside Triton's Python backend stub (it imports
``triton_python_backend_utils``). Keeps each ``model.py`` to: decode inputs,
call a core from ``services/``, encode outputs, and turn an exception into an
error response for that one request.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by the Python backend stub

from services.serving.sequences import UnknownSequence

log = logging.getLogger(__name__)

FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
INVALID_PREFIX = "invalid request: "  # clients map errors starting with it to InvalidInput


def parse_config(args: dict[str, str]) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(args["model_config"])
    return config


def tensor(request: Any, name: str, batched: bool = True) -> np.ndarray | None:
    """The input as numpy without the batch dimension, or None when the optional input is absent."""
    t = pb_utils.get_input_tensor_by_name(request, name)
    if t is None:
        return None
    array: np.ndarray = t.as_numpy()
    return array[0] if batched else array


def scalar(request: Any, name: str, default: Any = None) -> Any:
    """First element of an input (control inputs, flags), or ``default`` when absent."""
    t = pb_utils.get_input_tensor_by_name(request, name)
    if t is None:
        return default
    value = t.as_numpy().reshape(-1)
    if value.size == 0:
        return default
    item = value[0]
    return item.decode("utf-8") if isinstance(item, bytes) else item.item() if hasattr(item, "item") else item


def text(request: Any, name: str, default: str = "") -> str:
    value = scalar(request, name, default)
    return value if isinstance(value, str) else str(value)


def strings(request: Any, name: str) -> list[str]:
    t = pb_utils.get_input_tensor_by_name(request, name)
    if t is None:
        return []
    return [w.decode("utf-8") if isinstance(w, bytes) else str(w) for w in t.as_numpy().reshape(-1)]


def out(name: str, value: np.ndarray, batched: bool = True) -> Any:
    """An output tensor; adds the batch dimension for models with ``max_batch_size > 0``."""
    return pb_utils.Tensor(name, value[None] if batched else value)


def string_array(values: list[str]) -> np.ndarray:
    return np.array([v.encode("utf-8") for v in values], dtype=np.object_)


def error_response(exc: BaseException) -> Any:
    """A per-request error: INVALID_ARG for what the client got wrong, INTERNAL otherwise."""
    invalid = isinstance(exc, UnknownSequence | ValueError | KeyError | UnicodeDecodeError)
    code = pb_utils.TritonError.INVALID_ARG if invalid else pb_utils.TritonError.INTERNAL
    text = str(exc) or type(exc).__name__
    if not invalid:
        log.error("request failed: %r", exc)
    # gRPC stream errors carry only the text, so the text says which kind it is.
    message = f"{INVALID_PREFIX}{text}" if invalid else f"internal error: {text}"
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message, code))


def cancelled_response() -> Any:
    return pb_utils.InferenceResponse(
        output_tensors=[], error=pb_utils.TritonError("cancelled by the client", pb_utils.TritonError.CANCELLED)
    )
