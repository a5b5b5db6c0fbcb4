"""Disfluency removal: ``load_tagger(settings)`` picks the backend.

``settings.disfluency`` chooses:

* ``"bert"``: the ONNX MiniLM tagger in ``settings.models_dir/disfluency/1``;
  missing or corrupt files raise :class:`~assistant.errors.ModelFileError`;
* ``"rules"``: the rule-based :class:`~services.disfluency.rules.RuleTagger`;
* ``"auto"`` (default): the BERT tagger if its files exist, else the rules
  (with a warning in the log).

Taggers are cached: one onnxruntime session per model directory per process.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from assistant.settings import Settings
from services.disfluency.base import StreamingTagger, TaggedToken, Tagger, clean_text
from services.disfluency.rules import RuleTagger

__all__ = ["RuleTagger", "StreamingTagger", "TaggedToken", "Tagger", "clean_text", "load_tagger", "model_dir"]

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
