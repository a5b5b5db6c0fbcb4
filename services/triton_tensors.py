"""The Triton contract in one place: model names and tensor names.

Every ``models/<name>/config.pbtxt``, every ``model.py`` and every client
(``services/*/triton_client.py``) uses these constants, and
``tests/services/serving/test_triton_config.py`` checks them against each ``config.pbtxt``, so
a renamed tensor fails a test instead of a live request.

Shapes below are per request, without the batch dimension that models with
``max_batch_size > 0`` add in front.
"""

from __future__ import annotations

# ----------------------------------------------------------------- models
ASR_MODEL = "asr"
DISFLUENCY_MODEL = "disfluency"
NLU_MODEL = "nlu"
TTS_MODEL = "tts"
ALL_MODELS = (ASR_MODEL, DISFLUENCY_MODEL, NLU_MODEL, TTS_MODEL)

# ------------------------------------------- sequence batcher control inputs
# Filled in by Triton from the request's sequence_id / start / end flags; a
# client never sends them as tensors.
START = "START"  # INT32 [1]: 1 on the first request of a sequence
END = "END"  # INT32 [1]: 1 on the last request
READY = "READY"  # INT32 [1]: 0 for the padding ("null") requests of the direct strategy
CORRID = "CORRID"  # UINT64 [1]: the sequence (correlation) id
CONTROL_INPUTS = (START, END, READY, CORRID)

# -------------------------------------------------------------------- asr
AUDIO = "AUDIO"  # INT16 [-1]: new 16 kHz mono samples since the previous request (may be empty)
DECODE = "DECODE"  # BOOL [1]: answer this request with a transcript of all audio so far
SPECULATE = "SPECULATE"  # BOOL [1], optional: that transcript is a speculative final (final beam, urgent)
HINTS = "HINTS"  # STRING [1], optional: space-separated prompt words, read on START
TRANSCRIPT = "TRANSCRIPT"  # STRING [1]: normalized transcript
RAW_TRANSCRIPT = "RAW_TRANSCRIPT"  # STRING [1]: the decoder's text before normalization
AVG_LOGPROB = "AVG_LOGPROB"  # FP32 [1]
IS_FINAL = "IS_FINAL"  # BOOL [1]: the answer to the request that carried END
AUDIO_SAMPLES = "AUDIO_SAMPLES"  # INT64 [1]: samples of the stream covered by this transcript
DECODE_FLAGS = "DECODE_FLAGS"  # INT32 [2]: loop_cut, fallback (see services.asr.decoder.Hypothesis)

# ------------------------------------------------------------- disfluency
WORDS = "WORDS"  # STRING [-1]: the word prefix heard so far (or the whole utterance)
FINISH = "FINISH"  # BOOL [1]: the utterance is complete: label every word
REMOVE = "REMOVE"  # BOOL [-1]: per committed word
KIND = "KIND"  # STRING [-1]: per committed word, "" when kept
TAGGED_WORDS = "TAGGED_WORDS"  # STRING [-1]: the committed words themselves

# -------------------------------------------------------------------- nlu
TEXT = "TEXT"  # STRING [1]: cleaned transcript (also the TTS input)
ACTIVE_INTENT = "ACTIVE_INTENT"  # STRING [1], optional: NluHints.active_intent
EXPECTED_SLOT = "EXPECTED_SLOT"  # STRING [1], optional: NluHints.expected_slot
INTENT = "INTENT"  # STRING [1]
CONFIDENCE = "CONFIDENCE"  # FP32 [1]
SLOTS_JSON = "SLOTS_JSON"  # STRING [1]: NluResult.to_json()["slots"] as JSON

# -------------------------------------------------------------------- tts
# input TEXT (above); outputs, one response per synthesized phrase chunk:
TTS_AUDIO = "TTS_AUDIO"  # INT16 [-1]
SAMPLE_RATE_HZ = "SAMPLE_RATE_HZ"  # INT32 [1]
PHRASE_INDEX = "PHRASE_INDEX"  # INT32 [1]: which phrase of TEXT this chunk belongs to

MODEL_TENSORS: dict[str, dict[str, tuple[str, ...]]] = {
    ASR_MODEL: {
        "inputs": (AUDIO, DECODE, SPECULATE, HINTS),
        "outputs": (TRANSCRIPT, RAW_TRANSCRIPT, AVG_LOGPROB, IS_FINAL, AUDIO_SAMPLES, DECODE_FLAGS),
        "control": CONTROL_INPUTS,
    },
    DISFLUENCY_MODEL: {
        "inputs": (WORDS, FINISH),
        "outputs": (TAGGED_WORDS, REMOVE, KIND),
        "control": CONTROL_INPUTS,
    },
    NLU_MODEL: {
        "inputs": (TEXT, ACTIVE_INTENT, EXPECTED_SLOT),
        "outputs": (INTENT, CONFIDENCE, SLOTS_JSON),
        "control": (),
    },
    TTS_MODEL: {
        "inputs": (TEXT,),
        "outputs": (TTS_AUDIO, SAMPLE_RATE_HZ, PHRASE_INDEX),
        "control": (),
    },
}
"""Which tensor names each model declares (checked against config.pbtxt by a test)."""
