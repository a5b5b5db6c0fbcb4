"""``quickturn serve riva``: the Riva gRPC API (port 50051) backed by QuickTurn's stages.

Existing Riva clients (``riva.client.ASRService``, ``SpeechSynthesisService``,
``NLPService``, or any client generated from the Riva protos) work against it
unchanged. Services and what they map to:

``RivaSpeechRecognition``
    ``StreamingRecognize``: one stream = one utterance. Interim results (when
    ``interim_results`` is set) come every ``--interim-ms`` of new audio, then
    one ``is_final`` result when the client closes its side. ``Recognize``:
    the whole audio at once. Both run on the same core as the Triton asr
    model (:class:`services.serving.asr_sessions.AsrSessions`: one decode
    worker, finals before partials). LINEAR_PCM mono at any
    ``sample_rate_hertz`` (resampled to 16 kHz). Transcripts are QuickTurn's
    normalized text; with ``enable_automatic_punctuation`` the decoder's
    punctuated text instead.
``RivaSpeechSynthesis``
    ``Synthesize`` and ``SynthesizeOnline`` (audio streamed phrase by phrase,
    stops between phrases when the client cancels); LINEAR_PCM at the
    requested ``sample_rate_hz`` (resampled from the voice's rate).
``RivaLanguageUnderstanding``
    ``AnalyzeIntent``: disfluency cleaning then NLU; intent and confidence,
    slots as token/label/character span, ``options.previous_intent`` biases
    NLU toward the active frame. ``ClassifyTokens``: BIO slot tags per word,
    or, with ``model.model_name == "disfluency"``, the disfluency kind per
    word (``O`` for kept words).

Everything else answers UNIMPLEMENTED. A bad request is INVALID_ARGUMENT with
a readable message; a crash in one call is logged and answered INTERNAL,
and the server keeps running.
"""

from __future__ import annotations

import argparse
import logging
import math
import queue
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import BackendUnavailable
from core.settings import load_settings
from core.text import normalize_transcript
from core.types import NluHints
from services.disfluency import load_tagger
from services.nlu import load_lexicon, load_nlu
from services.nlu.guard import parse_tagged
from services.serving.asr_sessions import AsrSessions
from services.serving.tts_worker import phrase_chunks
from services.tts import load_tts

log = logging.getLogger(__name__)

DEFAULT_PORT = 50051
SAMPLE_RATE_HZ = 16000
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def _riva() -> Any:
    try:
        import grpc
        from riva.client.proto import (
            health_pb2,
            health_pb2_grpc,
            riva_asr_pb2,
            riva_asr_pb2_grpc,
            riva_audio_pb2,
            riva_nlp_pb2,
            riva_nlp_pb2_grpc,
            riva_tts_pb2,
            riva_tts_pb2_grpc,
        )
    except ImportError as exc:
        raise BackendUnavailable("the Riva protos are not installed: pip install 'quickturn[riva]'") from exc
    return grpc, riva_asr_pb2, riva_asr_pb2_grpc, riva_tts_pb2, riva_tts_pb2_grpc, riva_nlp_pb2, \
        riva_nlp_pb2_grpc, riva_audio_pb2, health_pb2, health_pb2_grpc


@dataclass
class Stages:
    """What the facade runs: the decode core, tagger, NLU and TTS."""

    sessions: Any  # AsrSessions
    tagger: Any
    nlu: Any
    tts: Any
    nlu_guard: bool = True
    lexicon: Any = None  # domains.lexicon.DomainLexicon (settings.lexicon_domains), as the pipeline parses

    @classmethod
    def load(cls, settings: Any) -> Stages:
        from services.asr.embedded import EmbeddedAsr

        a = settings.asr
        asr = EmbeddedAsr(a.model, a.threads, a.min_window_s, a.tokens_per_second, a.beam_size, a.fallback_window_s,
                          a.final_beam_size, a.timestamp_cut, max_batch=1)  # AsrSessions schedules the decoder
        return cls(
            sessions=AsrSessions(asr.decoder.decode, idle_s=30.0, decode_batch=asr.decoder.decode_batch,
                                 batch_key=asr.decoder.batch_key, max_batch=a.max_batch),
            tagger=load_tagger(settings),
            nlu=load_nlu(settings),
            tts=load_tts(settings.tts.engine, settings.tts.cache_phrases, settings.tts.espeak_voice),
            nlu_guard=settings.nlu_guard,
            lexicon=load_lexicon(settings),
        )


class InvalidRequest(ValueError):
    pass


def _pcm16k(audio: bytes, config: Any, audio_pb2: Any) -> np.ndarray:
    """Request audio → int16 16 kHz mono (raises InvalidRequest)."""
    if config.encoding not in (audio_pb2.LINEAR_PCM, audio_pb2.ENCODING_UNSPECIFIED):
        raise InvalidRequest("only LINEAR_PCM (16-bit little-endian) audio is supported")
    if config.audio_channel_count > 1:
        raise InvalidRequest("only mono audio is supported (audio_channel_count=1)")
    if len(audio) % 2:
        raise InvalidRequest("LINEAR_PCM audio must be a whole number of 16-bit samples")
    pcm = np.frombuffer(audio, dtype="<i2").astype(np.int16)
    rate = config.sample_rate_hertz or SAMPLE_RATE_HZ
    if rate != SAMPLE_RATE_HZ:
        from core.audio import resample, to_pcm16

        pcm = to_pcm16(resample(pcm.astype(np.float32) / 32768.0, rate, SAMPLE_RATE_HZ))
    return pcm


def _confidence(hyp: Any) -> float:
    return float(min(1.0, math.exp(hyp.avg_logprob))) if hyp is not None else 0.0


def _answer(sessions: Any, key: str, final: bool, timeout_s: float = 60.0) -> Any:
    """Ask the decode core and wait (raises on error)."""
    box: queue.Queue[Any] = queue.Queue()
    sessions.ask(key, lambda hyp, n, err: box.put((hyp, n, err)), final=final)
    hyp, _n, err = box.get(timeout=timeout_s)
    if err is not None:
        raise err
    return hyp


def build_server(stages: Stages, port: int, host: str = "0.0.0.0", max_workers: int = 16,
                 interim_ms: int = 480) -> Any:
    """A started-ready (not yet started) ``grpc.Server`` with the three Riva services and health."""
    (grpc, asr_pb2, asr_grpc, tts_pb2, tts_grpc, nlp_pb2, nlp_grpc, audio_pb2, health_pb2,
     health_grpc) = _riva()

    def abort_invalid(context: Any, exc: Exception) -> None:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    def abort_with_status(context: Any, exc: Exception, name: str) -> None:
        """One call's exception → its gRPC status (INVALID_ARGUMENT or INTERNAL); aborts pass through."""
        if isinstance(exc, InvalidRequest):
            abort_invalid(context, exc)
            return
        if isinstance(exc, grpc.RpcError) or type(exc).__name__ == "_AbortError":
            raise exc
        log.exception("%s failed", name)
        context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")

    def guarded(method: Any) -> Any:
        """Turn exceptions of one call into a status; the server goes on."""

        def wrapper(self: Any, request: Any, context: Any) -> Any:
            try:
                return method(self, request, context)
            except Exception as exc:
                abort_with_status(context, exc, method.__name__)

        wrapper.__name__ = method.__name__
        return wrapper

    def guarded_stream(method: Any) -> Any:
        def wrapper(self: Any, request: Any, context: Any) -> Iterator[Any]:
            try:
                yield from method(self, request, context)
            except Exception as exc:
                abort_with_status(context, exc, method.__name__)

        wrapper.__name__ = method.__name__
        return wrapper

    def alternative(hyp: Any, punctuated: bool) -> Any:
        text = hyp.raw_text if punctuated else hyp.text
        return asr_pb2.SpeechRecognitionAlternative(transcript=text, confidence=_confidence(hyp))

    class Recognition(asr_grpc.RivaSpeechRecognitionServicer):
        @guarded
        def Recognize(self, request: Any, context: Any) -> Any:
            pcm = _pcm16k(request.audio, request.config, audio_pb2)
            key = f"riva-{uuid.uuid4().hex}"
            stages.sessions.start(key, None)
            stages.sessions.append(key, pcm)
            hyp = _answer(stages.sessions, key, final=True)
            result = asr_pb2.SpeechRecognitionResult(
                alternatives=[alternative(hyp, request.config.enable_automatic_punctuation)],
                audio_processed=len(pcm) / SAMPLE_RATE_HZ,
            )
            return asr_pb2.RecognizeResponse(results=[result])

        @guarded_stream
        def StreamingRecognize(self, request_iterator: Any, context: Any) -> Iterator[Any]:
            first = next(request_iterator, None)
            if first is None or not first.HasField("streaming_config"):
                raise InvalidRequest("the first StreamingRecognizeRequest must carry streaming_config")
            config = first.streaming_config.config
            interim = first.streaming_config.interim_results
            punctuated = config.enable_automatic_punctuation
            key = f"riva-{uuid.uuid4().hex}"
            # Riva's word boosting (speech_contexts) becomes the decoder's prompt hints.
            hints = [w for ctx in config.speech_contexts for phrase in ctx.phrases for w in phrase.split()]
            stages.sessions.start(key, hints or None)
            out: queue.Queue[Any] = queue.Queue()
            step = int(SAMPLE_RATE_HZ * interim_ms / 1000)
            state = {"samples": 0, "asked_at": 0, "in_flight": False}
            lock = threading.Lock()

            def on_interim(hyp: Any, n: int, err: BaseException | None) -> None:
                with lock:
                    state["in_flight"] = False
                if err is None and hyp is not None and hyp.text:
                    out.put(("interim", hyp, n))

            def on_final(hyp: Any, n: int, err: BaseException | None) -> None:
                out.put(("final", hyp, n) if err is None else ("error", err, n))

            def read() -> None:
                try:
                    for request in request_iterator:
                        if not request.audio_content:
                            continue
                        pcm = _pcm16k(request.audio_content, config, audio_pb2)
                        stages.sessions.append(key, pcm)
                        with lock:
                            state["samples"] += len(pcm)
                            due = interim and not state["in_flight"] and state["samples"] - state["asked_at"] >= step
                            if due:
                                state["in_flight"] = True
                                state["asked_at"] = state["samples"]
                        if due:
                            stages.sessions.ask(key, on_interim, final=False)
                    stages.sessions.ask(key, on_final, final=True)
                except Exception as exc:  # client gone, bad audio: end the call with its error
                    out.put(("error", exc, 0))

            reader = threading.Thread(target=read, name="riva-asr-reader", daemon=True)
            reader.start()
            try:
                while True:
                    try:
                        kind, value, n = out.get(timeout=1.0)
                    except queue.Empty:
                        if not context.is_active():
                            return
                        continue
                    if kind == "error":
                        if isinstance(value, ValueError):
                            raise InvalidRequest(str(value))
                        raise value
                    result = asr_pb2.StreamingRecognitionResult(
                        alternatives=[alternative(value, punctuated)],
                        is_final=kind == "final",
                        stability=1.0 if kind == "final" else 0.5,
                        audio_processed=n / SAMPLE_RATE_HZ,
                    )
                    yield asr_pb2.StreamingRecognizeResponse(results=[result])
                    if kind == "final":
                        return
            finally:
                stages.sessions.discard(key)

    def synthesize_pcm(request: Any, context: Any) -> Iterator[bytes]:
        if request.encoding not in (audio_pb2.LINEAR_PCM, audio_pb2.ENCODING_UNSPECIFIED):
            raise InvalidRequest("only LINEAR_PCM output is supported")
        if not request.text.strip():
            raise InvalidRequest("text is empty")
        if len(request.text) > 2000:
            raise InvalidRequest(f"text of {len(request.text)} characters exceeds the limit of 2000")
        voice_rate = stages.tts.sample_rate_hz
        rate = request.sample_rate_hz or voice_rate
        chunk = max(1, voice_rate // 2)
        for _index, audio in phrase_chunks(stages.tts.synthesize, request.text, chunk, lambda: not context.is_active()):
            if rate != voice_rate:
                from core.audio import resample, to_pcm16

                audio = to_pcm16(resample(audio.astype(np.float32) / 32768.0, voice_rate, rate))
            yield audio.astype("<i2").tobytes()

    class Synthesis(tts_grpc.RivaSpeechSynthesisServicer):
        @guarded
        def Synthesize(self, request: Any, context: Any) -> Any:
            audio = b"".join(synthesize_pcm(request, context))
            return tts_pb2.SynthesizeSpeechResponse(audio=audio)

        @guarded_stream
        def SynthesizeOnline(self, request_iterator: Any, context: Any) -> Iterator[Any]:
            requests = [request_iterator] if isinstance(request_iterator, tts_pb2.SynthesizeSpeechRequest) \
                else request_iterator
            for request in requests:
                for audio in synthesize_pcm(request, context):
                    yield tts_pb2.SynthesizeSpeechResponse(audio=audio)

    def understand(query: str, previous_intent: str = "") -> tuple[str, Any]:
        words = normalize_transcript(query).split()
        hints = NluHints(active_intent=previous_intent) if previous_intent else None
        parsed = parse_tagged(stages.nlu, stages.tagger.tag(words) if words else [], hints, guard=stages.nlu_guard,
                              lexicon=stages.lexicon)
        return parsed.text, parsed.result

    def char_span(words: list[str], start: int, end: int) -> Any:
        offset = sum(len(w) + 1 for w in words[:start])
        length = len(" ".join(words[start:end]))
        return nlp_pb2.Span(start=offset, end=offset + length)

    class Language(nlp_grpc.RivaLanguageUnderstandingServicer):
        @guarded
        def AnalyzeIntent(self, request: Any, context: Any) -> Any:
            if not request.query.strip():
                raise InvalidRequest("query is empty")
            clean, result = understand(request.query, request.options.previous_intent)
            words = clean.split()
            slots = [
                nlp_pb2.TokenClassValue(
                    token=s.value,
                    label=[nlp_pb2.Classification(class_name=s.slot, score=result.confidence)],
                    span=[char_span(words, s.start, s.end)],
                )
                for s in result.slots
            ]
            return nlp_pb2.AnalyzeIntentResponse(
                intent=nlp_pb2.Classification(class_name=result.intent, score=result.confidence),
                slots=slots,
                domain_str=request.options.domain,
                domain=nlp_pb2.Classification(class_name=request.options.domain, score=1.0),
            )

        @guarded
        def ClassifyTokens(self, request: Any, context: Any) -> Any:
            disfluency = request.model.model_name == "disfluency"
            sequences = []
            for text in request.text:
                words = normalize_transcript(text).split()
                if disfluency:
                    labels = [(t.word, (t.kind or "O") if t.remove else "O") for t in stages.tagger.tag(words)]
                    score = 1.0
                else:
                    _clean, result = understand(text)
                    words = _clean.split()
                    tags = ["O"] * len(words)
                    for s in result.slots:
                        for i in range(s.start, min(s.end, len(words))):
                            tags[i] = ("B-" if i == s.start else "I-") + s.slot
                    labels = list(zip(words, tags, strict=True))
                    score = result.confidence
                values = [
                    nlp_pb2.TokenClassValue(token=w, label=[nlp_pb2.Classification(class_name=lab, score=score)],
                                            span=[char_span(words, i, i + 1)])
                    for i, (w, lab) in enumerate(labels)
                ]
                sequences.append(nlp_pb2.TokenClassSequence(results=values))
            return nlp_pb2.TokenClassResponse(results=sequences)

    class Health(health_grpc.HealthServicer):
        def Check(self, request: Any, context: Any) -> Any:
            return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="riva"),
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)],
    )
    asr_grpc.add_RivaSpeechRecognitionServicer_to_server(Recognition(), server)
    tts_grpc.add_RivaSpeechSynthesisServicer_to_server(Synthesis(), server)
    nlp_grpc.add_RivaLanguageUnderstandingServicer_to_server(Language(), server)
    health_grpc.add_HealthServicer_to_server(Health(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise BackendUnavailable(f"cannot listen on {host}:{port} (in use?)")
    server.bound_port = bound
    return server


def serve_riva_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="quickturn serve riva", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="gRPC port (Riva's default: 50051)")
    parser.add_argument("--max-workers", type=int, default=16, help="concurrent calls (each stream holds one)")
    parser.add_argument("--interim-ms", type=int, default=480, help="new audio between two interim results")
    parser.add_argument("--config", help="QuickTurn settings file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    stages = Stages.load(load_settings(args.config))
    server = build_server(stages, args.port, args.host, args.max_workers, args.interim_ms)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    print(f"quickturn: Riva API ready on {args.host}:{server.bound_port}", file=sys.stderr, flush=True)
    stop.wait()
    server.stop(grace=5).wait()
    stages.sessions.close()
    print("quickturn: Riva API stopped", file=sys.stderr)
    return 0
