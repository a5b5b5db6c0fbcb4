"""One exception hierarchy for QuickTurn.

Every error a user can cause or meet carries a stable machine ``code`` and a
one-line readable message, so the CLI prints one line (never a traceback) and
transports turn it into an ``error`` event::

    QuickTurnError
    ├── InvalidAudio          malformed, empty, unsupported or oversized audio
    ├── InvalidInput          bad text, bad manifest line, bad CLI argument
    ├── MessageTooLarge       a frame or message over the configured limit
    ├── ModelFileError        a model file is missing or fails its sha256 check
    ├── BackendUnavailable    a service (Triton, Riva, audio device) cannot be reached
    ├── DomainError           a domain file is invalid (file and line in the message)
    └── AudioDeviceError      no usable microphone / speaker
"""

from __future__ import annotations


class QuickTurnError(Exception):
    """Base class: a readable message plus a stable machine code."""

    code: str = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class InvalidAudio(QuickTurnError):
    code = "invalid-audio"


class InvalidInput(QuickTurnError):
    code = "invalid-input"


class MessageTooLarge(QuickTurnError):
    code = "message-too-large"


class ModelFileError(QuickTurnError):
    code = "model-file"


class BackendUnavailable(QuickTurnError):
    code = "backend-unavailable"


class DomainError(QuickTurnError):
    code = "domain"


class AudioDeviceError(QuickTurnError):
    code = "audio-device"
