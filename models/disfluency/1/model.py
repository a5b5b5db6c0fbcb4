"""Triton adapter for the disfluency tagger: WORDS in, committed labels out.

The tagger and its streaming policy come from services.disfluency
(load_tagger: the BERT tagger in this directory when its files exist and pass
their sha256 check, else the rule tagger); this file only moves tensors.
"""

import runpy
from pathlib import Path

_BOOTSTRAP = Path(__file__).resolve().parents[2] / "bootstrap.py"  # puts QuickTurn on sys.path
if _BOOTSTRAP.is_file():  # absent when this model was copied into another repository
    runpy.run_path(str(_BOOTSTRAP))

import numpy as np  # noqa: E402

from core.types import PENDING_KIND  # noqa: E402
from services import triton_tensors as T  # noqa: E402
from services.serving import python_backend as pb  # noqa: E402
from services.serving.sequences import SequenceStates, idle_seconds, string_parameters  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        from core.settings import load_settings
        from services.disfluency import load_tagger

        config = pb.parse_config(args)
        p = string_parameters(config)
        settings = load_settings(overrides={"models_dir": str(Path(__file__).resolve().parents[2]),
                                            "disfluency": p.get("mode", "auto")})
        self.tagger = load_tagger(settings, threads=int(p.get("threads", "1")))
        self.streams = SequenceStates(self.tagger.stream, idle_seconds(config))

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                responses.append(self._one(request))
            except Exception as exc:  # this request only
                responses.append(pb.error_response(exc))
        self.streams.expire()
        return responses

    def _one(self, request):
        words = pb.strings(request, T.WORDS)
        finish = bool(pb.scalar(request, T.FINISH, False))
        corrid = str(pb.scalar(request, T.CORRID, 0))
        start = bool(pb.scalar(request, T.START, 1))
        end = bool(pb.scalar(request, T.END, 1))
        if start and end:
            tokens = self.tagger.tag(words) if finish else self.tagger.stream().update(words)
        else:
            session = self.streams.start(corrid) if start else self.streams.get(corrid)
            tokens = session.finish(words) if finish else session.update(words)
            if end:
                self.streams.end(corrid)
        # A word still waiting while a later one is committed (the out-of-order
        # policy) travels with KIND "pending" (the client restores pending=True).
        return pb.pb_utils.InferenceResponse(output_tensors=[
            pb.out(T.TAGGED_WORDS, pb.string_array([t.word for t in tokens])),
            pb.out(T.REMOVE, np.array([t.remove for t in tokens], np.bool_)),
            pb.out(T.KIND, pb.string_array([PENDING_KIND if t.pending else t.kind or "" for t in tokens])),
        ])
