"""Triton adapter for NLU: TEXT (+ dialog hints) in, intent, confidence and slots out.

The backend comes from services.nlu.load_nlu (JointBERT from this directory
when its files exist and pass their sha256 check, else the keyword baseline).
"""

import json
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
        from core.settings import load_settings
        from services.nlu import load_nlu

        p = string_parameters(pb.parse_config(args))
        settings = load_settings(overrides={"models_dir": str(Path(__file__).resolve().parents[2]),
                                            "nlu": p.get("mode", "auto")})
        self.nlu = load_nlu(settings)

    def execute(self, requests):
        from core.types import NluHints

        responses = []
        for request in requests:
            try:
                active = pb.text(request, T.ACTIVE_INTENT) or None
                expected = pb.text(request, T.EXPECTED_SLOT) or None
                hints = NluHints(active, expected) if active or expected else None
                result = self.nlu.parse(pb.text(request, T.TEXT), hints)
                responses.append(pb.pb_utils.InferenceResponse(output_tensors=[
                    pb.out(T.INTENT, pb.string_array([result.intent])),
                    pb.out(T.CONFIDENCE, np.array([result.confidence], np.float32)),
                    pb.out(T.SLOTS_JSON, pb.string_array([json.dumps(result.to_json()["slots"])])),
                ]))
            except Exception as exc:  # this request only
                responses.append(pb.error_response(exc))
        return responses
