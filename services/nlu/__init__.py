"""The NLU stage: intent + slots from a cleaned transcript.

:func:`load_nlu` picks the backend from ``settings.nlu``:

``bert``
    the shipped JointBERT model (INT8 ONNX under ``<models_dir>/nlu/1``);
    missing or corrupt files raise :class:`~core.errors.ModelFileError`.
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

from core.errors import DomainError, InvalidInput
from core.settings import load_settings
from domains import load_domains
from domains.lexicon import DomainLexicon
from services.nlu.base import NluBackend

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = ["NluBackend", "load_lexicon", "load_named", "load_nlu", "model_dir"]

log = logging.getLogger(__name__)
_CACHE: dict[tuple[str, str], NluBackend] = {}
_LOCK = threading.Lock()


def model_dir(settings: Settings) -> Path:
    """Where the shipped model lives: ``<models_dir>/nlu/1``."""
    return Path(settings.models_dir) / "nlu" / "1"


def load_nlu(settings: Settings) -> NluBackend:
    """The NLU backend named by ``settings.nlu`` (cached per process).

    The backend is given the built-in domains (their slot lists and values); a broken domain
    file stops the load with its ``file:line``.

    Raises:
        ModelFileError: ``nlu="bert"`` and the model files are missing or fail their sha256 check
            (``auto`` also raises on a *corrupt* model; it falls back only when the folder is absent).
        DomainError: a domain file is invalid.
    """
    folder = model_dir(settings)
    key = (settings.nlu, str(folder))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        domains = load_domains()
        backend: NluBackend
        if settings.nlu == "keywords":
            from services.nlu.keywords import KeywordNlu

            backend = KeywordNlu(domains)
        elif settings.nlu == "bert" or (folder / "model.onnx").is_file():
            from services.nlu.bert import JointBertNlu

            backend = JointBertNlu(folder, domains)
        else:
            from services.nlu.keywords import KeywordNlu

            log.warning("NLU model not found in %s; using the keyword baseline (run `quickturn train nlu`)", folder)
            backend = KeywordNlu(domains)
        _CACHE[key] = backend
        return backend


def load_lexicon(settings: Settings) -> DomainLexicon | None:
    """The closed vocabulary of ``settings.lexicon_domains`` that the parse snaps misheard words to
    (services.nlu.guard), or None when the list is empty; one definition for the pipeline and the
    Riva facade.

    Raises:
        InvalidInput: a listed domain does not exist (named, at start-up rather than on a turn).
    """
    if not settings.lexicon_domains:
        return None
    try:
        return DomainLexicon.of(load_domains(names=settings.lexicon_domains), settings.lexicon_threshold)
    except DomainError as exc:
        raise InvalidInput(f"lexicon_domains: {exc}") from exc


def load_named(name: str) -> NluBackend:
    """The backend ``name`` (``auto``, ``bert`` or ``keywords``), everything else as configured.

    What ``parse``, ``bench nlu`` and ``eval nlu --backend NAME`` load.
    """
    return load_nlu(load_settings(overrides={"nlu": name}))
