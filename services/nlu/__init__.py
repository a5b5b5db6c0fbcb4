"""The NLU stage: intent + slots from a cleaned transcript.

:func:`load_nlu` picks the backend from ``settings.nlu``:

``bert``
    the shipped JointBERT model (INT8 ONNX under ``<models_dir>/nlu/1``);
    missing or corrupt files raise :class:`~assistant.errors.ModelFileError`.
``keywords``
    :class:`~services.nlu.keywords.KeywordNlu`, the regex baseline.
``auto``
    ``bert`` when its files exist, else ``keywords`` with a warning.

The loaded backend is cached per process (keyed by mode and model folder).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from services.nlu.base import OUT_OF_SCOPE, NluBackend, NluHints, NluResult, SlotValue

if TYPE_CHECKING:
    from assistant.settings import Settings

__all__ = ["OUT_OF_SCOPE", "NluBackend", "NluHints", "NluResult", "SlotValue", "load_nlu", "model_dir"]

log = logging.getLogger(__name__)
_CACHE: dict[tuple[str, str], NluBackend] = {}
_LOCK = threading.Lock()


def model_dir(settings: Settings) -> Path:
    """Where the shipped model lives: ``<models_dir>/nlu/1``."""
    return Path(settings.models_dir) / "nlu" / "1"


def load_nlu(settings: Settings) -> NluBackend:
    """The NLU backend named by ``settings.nlu`` (cached per process).

    Raises:
        ModelFileError: ``nlu="bert"`` and the model files are missing or fail their sha256 check
            (``auto`` also raises on a *corrupt* model; it falls back only when the folder is absent).
    """
    folder = model_dir(settings)
    key = (settings.nlu, str(folder))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        backend: NluBackend
        if settings.nlu == "keywords":
            from services.nlu.keywords import KeywordNlu

            backend = KeywordNlu()
        elif settings.nlu == "bert" or (folder / "model.onnx").is_file():
            from services.nlu.bert import JointBertNlu

            backend = JointBertNlu(folder)
        else:
            from services.nlu.keywords import KeywordNlu

            log.warning("NLU model not found in %s; using the keyword baseline (run `quickturn train nlu`)", folder)
            backend = KeywordNlu()
        _CACHE[key] = backend
        return backend
