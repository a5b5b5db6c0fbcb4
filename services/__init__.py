"""Stage services: VAD, ASR, disfluency tagging, NLU and TTS, each behind one interface."""
