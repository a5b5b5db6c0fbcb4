"""One registry of stage backends: which code serves each stage, for each kind of deployment.

``settings.backend.uri`` names the deployment: ``embedded`` (everything in this
process), ``triton://HOST:PORT`` (every stage on a Triton server) or
``riva://HOST:PORT`` (ASR and TTS on a Riva server, disfluency and NLU
embedded). Each ``(stage, scheme)`` pair has one registered factory; the
orchestrator asks for :func:`load_stages` and gets objects that satisfy the
stage protocols (:mod:`services.asr.base`, :mod:`services.disfluency.base`,
:mod:`services.nlu.base`, :mod:`services.tts.base`), whichever backend serves
them. Factories import their backend when called, so an embedded deployment
never imports a gRPC client and a remote one never loads a model it does not
run.

A backend registers itself with :func:`register` (Rasa's component registry
in miniature); :func:`backends` lists what is registered, which is also what
the contract tests (``tests/contracts/``) run every stage protocol against.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from core.errors import InvalidInput
from core.settings import Settings

log = logging.getLogger(__name__)

STAGES = ("asr", "disfluency", "nlu", "tts")
DEFAULT_PORTS = {"triton": 8001, "riva": 50051}


@dataclass(frozen=True, slots=True)
class BackendUri:
    """Where the stages run: ``scheme`` is ``embedded``, ``triton`` or ``riva``."""

    scheme: str
    host: str = ""
    port: int = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_backend_uri(uri: str) -> BackendUri:
    """``embedded``, ``triton://HOST[:PORT]`` or ``riva://HOST[:PORT]`` (default ports 8001 and 50051).

    Raises:
        InvalidInput: another scheme or a malformed address.
    """
    if uri == "embedded":
        return BackendUri("embedded")
    parts = urlsplit(uri)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise InvalidInput(f"backend {uri!r}: expected embedded, triton://HOST:PORT or riva://HOST:PORT")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:
        raise InvalidInput(f"backend {uri!r}: bad port") from exc
    return BackendUri(parts.scheme, parts.hostname, port)


Factory = Callable[[Settings, BackendUri], Any]
_FACTORIES: dict[tuple[str, str], Factory] = {}


def register(stage: str, scheme: str) -> Callable[[Factory], Factory]:
    """Decorator: ``factory(settings, uri)`` builds the ``stage`` backend for ``scheme`` deployments."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(STAGES)})")

    def add(factory: Factory) -> Factory:
        _FACTORIES[(stage, scheme)] = factory
        return factory

    return add


def backends() -> list[tuple[str, str]]:
    """Every registered ``(stage, scheme)`` pair, sorted."""
    return sorted(_FACTORIES)


def load_stage(stage: str, settings: Settings, uri: BackendUri | None = None) -> Any:
    """The backend of ``stage`` for the deployment ``uri`` (default: ``settings.backend.uri``).

    Raises:
        InvalidInput: a malformed URI.
        BackendUnavailable: the server or a model cannot be reached, or the client extra is missing.
        ModelFileError: an embedded model is missing or fails its sha256 check.
    """
    uri = uri or parse_backend_uri(settings.backend.uri)
    factory = _FACTORIES.get((stage, uri.scheme))
    if factory is None:
        raise InvalidInput(f"no {stage} backend is registered for {uri.scheme!r} deployments")
    return factory(settings, uri)


class Stages(NamedTuple):
    """The four model stages of a deployment (``asr`` is None when only text turns are needed)."""

    asr: Any
    tagger: Any
    nlu: Any
    tts: Any


def load_stages(settings: Settings, *, need_asr: bool = True,
                timed: Callable[[str, Callable[[], Any]], Any] | None = None) -> Stages:
    """Every stage for ``settings.backend.uri``; ``timed(name, fn)`` may wrap each load to time it.

    A Triton deployment is checked once up front (server live, every model ready), so a
    missing model stops the start instead of the first turn.
    """
    uri = parse_backend_uri(settings.backend.uri)
    run = timed or (lambda _name, fn: fn())
    if uri.scheme == "triton":
        from services import triton_tensors as names

        models = [names.DISFLUENCY_MODEL, names.NLU_MODEL, names.TTS_MODEL] + ([names.ASR_MODEL] if need_asr else [])
        run("remote", lambda: _triton(settings, uri).check_models(models))
    asr = run("asr", lambda: load_stage("asr", settings, uri)) if need_asr else None
    tagger = run("disfluency", lambda: load_stage("disfluency", settings, uri))
    nlu = run("nlu", lambda: load_stage("nlu", settings, uri))
    tts = run("tts", lambda: load_stage("tts", settings, uri))
    return Stages(asr, tagger, nlu, tts)


def remote_stages(uri: str, need_asr: bool = True) -> frozenset[str]:
    """The stages a deployment runs on a server (where a call can time out or be refused)."""
    scheme = parse_backend_uri(uri).scheme
    served = {"embedded": (), "triton": STAGES, "riva": ("asr", "tts")}[scheme]
    return frozenset(s for s in served if need_asr or s != "asr")


# ------------------------------------------------------------------ embedded


@register("asr", "embedded")
def _embedded_asr(settings: Settings, uri: BackendUri) -> Any:
    from services.asr.embedded import EmbeddedAsr

    a = settings.asr
    return EmbeddedAsr(a.model, a.threads, a.min_window_s, a.tokens_per_second, a.beam_size, a.fallback_window_s,
                       a.final_beam_size, a.timestamp_cut, max_batch=a.max_batch, batch_delay_ms=a.batch_delay_ms,
                       batch_finals=a.batch_finals, n_best=a.n_best)


@register("disfluency", "embedded")
@register("disfluency", "riva")  # Riva has no disfluency model: the tagger stays in process
def _embedded_tagger(settings: Settings, uri: BackendUri) -> Any:
    from services.disfluency import load_tagger

    return load_tagger(settings)


@register("nlu", "embedded")
@register("nlu", "riva")  # Riva's NLU is not QuickTurn's joint model: the NLU stays in process
def _embedded_nlu(settings: Settings, uri: BackendUri) -> Any:
    from services.nlu import load_nlu

    return load_nlu(settings)


@register("tts", "embedded")
def _embedded_tts(settings: Settings, uri: BackendUri) -> Any:
    from services.tts import load_tts

    return load_tts(settings.tts.engine, settings.tts.cache_phrases, settings.tts.espeak_voice)


# ------------------------------------------------------------------ Triton


def _triton(settings: Settings, uri: BackendUri) -> Any:
    from services.triton_transport import triton_connection

    return triton_connection(uri.address, settings.backend.timeout_s)


@register("asr", "triton")
def _triton_asr(settings: Settings, uri: BackendUri) -> Any:
    from services.asr.triton_client import TritonAsr

    return TritonAsr(_triton(settings, uri))


@register("disfluency", "triton")
def _triton_tagger(settings: Settings, uri: BackendUri) -> Any:
    from services.disfluency.triton_client import TritonTagger

    return TritonTagger(_triton(settings, uri))


@register("nlu", "triton")
def _triton_nlu(settings: Settings, uri: BackendUri) -> Any:
    from services.nlu.triton_client import TritonNlu

    return TritonNlu(_triton(settings, uri))


@register("tts", "triton")
def _triton_tts(settings: Settings, uri: BackendUri) -> Any:
    from services.tts.triton_client import TritonTts

    return TritonTts(_triton(settings, uri))


# ------------------------------------------------------------------ Riva


@register("asr", "riva")
def _riva_asr(settings: Settings, uri: BackendUri) -> Any:
    from services.asr.riva_client import RivaAsr

    return RivaAsr(uri.address, timeout_s=settings.backend.timeout_s)


@register("tts", "riva")
def _riva_tts(settings: Settings, uri: BackendUri) -> Any:
    from services.tts.riva_client import RivaTts

    return RivaTts(uri.address, timeout_s=settings.backend.timeout_s)
