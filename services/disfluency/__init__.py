"""Disfluency removal: ``load_tagger(settings)`` picks the backend.

``settings.disfluency`` chooses:

* ``"bert"``: the ONNX MiniLM tagger in ``settings.models_dir/disfluency/1``;
  missing or corrupt files raise :class:`~core.errors.ModelFileError`;
* ``"rules"``: the rule-based :class:`~services.disfluency.rules.RuleTagger`;
* ``"auto"`` (default): the BERT tagger if its files exist, else the rules
  (with a warning in the log).

Taggers are cached: one onnxruntime session per model directory per process.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from core.errors import InvalidInput
from core.settings import Settings, load_settings
from services.disfluency.base import StreamingTagger, Tagger
from services.disfluency.rules import RuleTagger

__all__ = ["RuleTagger", "StreamingTagger", "Tagger", "load_named", "load_tagger", "model_dir"]

log = logging.getLogger(__name__)

MODEL_VERSION = "1"


def model_dir(settings: Settings) -> Path:
    """Where the shipped BERT tagger lives."""
    return settings.models_dir / "disfluency" / MODEL_VERSION


@cache
def _bert(directory: Path, threads: int) -> Tagger:
    from services.disfluency.bert import BertTagger

    return BertTagger(directory, threads=threads)


@cache
def _rules() -> Tagger:
    return RuleTagger()


def load_tagger(settings: Settings, *, threads: int = 1) -> Tagger:
    """The configured tagger (cached per process).

    Raises:
        ModelFileError: ``disfluency="bert"`` and the model is missing or fails
            its sha256 check; with ``"auto"`` a *corrupt* model also raises
            (only a missing one falls back to the rules).
    """
    mode = settings.disfluency
    directory = model_dir(settings).resolve()
    if mode == "rules":
        return _rules()
    if mode == "auto" and not (directory / "model_int8.onnx").is_file():
        log.warning("disfluency model not found in %s; using the rule-based tagger", directory)
        return _rules()
    return _bert(directory, threads)


def load_named(
    name: str | None, *, wait_threshold: float | None = None, remove_threshold: float | None = None
) -> Tagger:
    """The tagger ``name`` (``auto``, ``bert``, ``rules``; None: as configured), optionally with
    another wait threshold (the BERT tagger's streaming commit policy) or removal threshold
    (``eval disfluency``).

    Raises:
        InvalidInput: a wait or removal threshold for a tagger that has none.
    """
    tagger = load_tagger(load_settings(overrides={"disfluency": name} if name else None))
    if wait_threshold is not None or remove_threshold is not None:
        if tagger.name != "bert":
            flag = "--wait-threshold" if wait_threshold is not None else "--remove-threshold"
            raise InvalidInput(f"{flag} applies to the bert tagger only")
        from services.disfluency.bert import BertTagger

        assert isinstance(tagger, BertTagger)
        tagger = BertTagger(tagger.model_dir, wait_threshold=wait_threshold, remove_threshold=remove_threshold)
    return tagger
