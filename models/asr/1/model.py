"""Triton adapter for streaming ASR: tensors in, services.serving.asr_sessions, tensors out.

Every request of a sequence appends its AUDIO; one with DECODE=true (or the
END request) is answered, possibly later, with the transcript of all audio so
far. Null requests (READY=0) of the direct strategy are completed empty.
"""

import runpy
from pathlib import Path

_BOOTSTRAP = Path(__file__).resolve().parents[2] / "bootstrap.py"  # puts QuickTurn on sys.path
if _BOOTSTRAP.is_file():  # absent when this model was copied into another repository
    runpy.run_path(str(_BOOTSTRAP))

import numpy as np  # noqa: E402

from services import triton_tensors as T  # noqa: E402
from services.serving import python_backend as pb  # noqa: E402
from services.serving.sequences import idle_seconds, string_parameters  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        from core.settings import load_settings
        from services.asr.embedded import EmbeddedAsr  # verifies the model files' sha256
        from services.serving.asr_sessions import AsrSessions

        config = pb.parse_config(args)
        p = string_parameters(config)
        # The decoder settings are QuickTurn's (defaults, QUICKTURN_CONFIG, QUICKTURN_ASR__*), so the
        # server transcribes exactly as the embedded backend; config.pbtxt parameters override them.
        a = load_settings().asr
        asr = EmbeddedAsr(
            p.get("model", a.model),
            threads=int(p.get("threads", a.threads)),
            min_window_s=float(p.get("min_window_s", a.min_window_s)),
            tokens_per_second=float(p.get("tokens_per_second", a.tokens_per_second)),
            beam_size=int(p.get("beam_size", a.beam_size)),
            fallback_window_s=float(p.get("fallback_window_s", a.fallback_window_s)),
            final_beam_size=int(p.get("final_beam_size", a.final_beam_size)),
            timestamp_cut=p.get("timestamp_cut", str(a.timestamp_cut)).lower() in ("1", "true", "yes"),
            max_batch=1,  # the sessions below schedule the decoder; the embedded scheduler is not used here
        )
        # Partials of the sequences waiting together are decoded in one call (AsrSessions' docstring).
        self.sessions = AsrSessions(
            asr.decoder.decode, idle_s=idle_seconds(config), max_samples=int(float(p.get("max_stream_s", "30")) * 16000),
            decode_batch=asr.decoder.decode_batch, batch_key=asr.decoder.batch_key,
            max_batch=int(p.get("max_batch", a.max_batch)),
        )

    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            try:
                self._one(request, sender)
            except Exception as exc:  # this request only; the rest of the batch goes on
                sender.send(pb.error_response(exc), flags=pb.FINAL)
        self.sessions.expire()
        return None

    def _one(self, request, sender):
        if not pb.scalar(request, T.READY, 1):
            sender.send(flags=pb.FINAL)  # padding slot of the direct strategy
            return
        corrid = str(pb.scalar(request, T.CORRID))
        if pb.scalar(request, T.START, 0):
            hints = pb.text(request, T.HINTS).split()
            self.sessions.start(corrid, hints or None)
        audio = pb.tensor(request, T.AUDIO)
        if audio is not None:
            self.sessions.append(corrid, audio.astype(np.int16, copy=False))
        end = bool(pb.scalar(request, T.END, 0))
        if bool(pb.scalar(request, T.DECODE, False)):
            best = end or bool(pb.scalar(request, T.SPECULATE, False))
            self.sessions.ask(corrid, _replier(sender, end), final=end, best=best)
        else:
            if end:
                self.sessions.end(corrid)
            sender.send(flags=pb.FINAL)

    def finalize(self):
        self.sessions.close()


def _replier(sender, final):
    def reply(hyp, samples, error):
        if error is not None:
            sender.send(pb.error_response(error), flags=pb.FINAL)
            return
        outputs = [
            pb.out(T.TRANSCRIPT, pb.string_array([hyp.text])),
            pb.out(T.RAW_TRANSCRIPT, pb.string_array([hyp.raw_text])),
            pb.out(T.AVG_LOGPROB, np.array([hyp.avg_logprob], np.float32)),
            pb.out(T.IS_FINAL, np.array([final], np.bool_)),
            pb.out(T.AUDIO_SAMPLES, np.array([samples], np.int64)),
            pb.out(T.DECODE_FLAGS, np.array([hyp.loop_cut, hyp.fallback], np.int32)),
        ]
        sender.send(pb.pb_utils.InferenceResponse(output_tensors=outputs), flags=pb.FINAL)

    return reply
