"""Triton adapter for streaming TTS: TEXT in, one response per audio chunk, then FINAL.

Synthesis runs on services.serving.tts_worker (one worker thread, phrase by
phrase), so execute returns at once; cancellation is checked between phrases.
"""

import runpy
from pathlib import Path

_BOOTSTRAP = Path(__file__).resolve().parents[2] / "bootstrap.py"  # puts QuickTurn on sys.path
if _BOOTSTRAP.is_file():  # absent when this model was copied into another repository
    runpy.run_path(str(_BOOTSTRAP))

import numpy as np  # noqa: E402

from services import triton_tensors as T  # noqa: E402
from services.serving import python_backend as pb  # noqa: E402
from services.serving.sequences import string_parameters  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        from services.serving.tts_worker import TtsWorker
        from services.tts import load_tts

        p = string_parameters(pb.parse_config(args))
        self.max_chars = int(p.get("max_text_chars", "2000"))
        tts = load_tts(p.get("engine", "piper"), int(p.get("cache_phrases", "256")))
        self.worker = TtsWorker(tts.synthesize, tts.sample_rate_hz, int(p.get("max_chunk_ms", "1000")),
                                workers=int(p.get("workers", "1")))

    def execute(self, requests):
        from services.serving.tts_worker import TtsJob

        for request in requests:
            sender = request.get_response_sender()
            try:
                text = pb.text(request, T.TEXT)
                if len(text) > self.max_chars:
                    raise ValueError(f"text of {len(text)} characters exceeds the limit of {self.max_chars}")
                self.worker.submit(TtsJob(text, _emitter(sender, self.worker.sample_rate_hz), _finisher(sender),
                                          sender.is_cancelled))
            except Exception as exc:  # this request only
                sender.send(pb.error_response(exc), flags=pb.FINAL)
        return None

    def finalize(self):
        self.worker.close()


def _emitter(sender, rate):
    def emit(index, chunk):
        sender.send(pb.pb_utils.InferenceResponse(output_tensors=[
            pb.out(T.TTS_AUDIO, chunk.astype(np.int16), batched=False),
            pb.out(T.SAMPLE_RATE_HZ, np.array([rate], np.int32), batched=False),
            pb.out(T.PHRASE_INDEX, np.array([index], np.int32), batched=False),
        ]))

    return emit


def _finisher(sender):
    def done(error, cancelled):
        if error is not None:
            sender.send(pb.error_response(error), flags=pb.FINAL)
        elif cancelled:
            sender.send(pb.cancelled_response(), flags=pb.FINAL)
        else:
            sender.send(flags=pb.FINAL)

    return done
