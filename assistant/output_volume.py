"""The speaker volume the dialog keeps per session (``SetVolume``), applied to the reply audio.

Why here, in the orchestrator: the volume is the loudness of the device the assistant speaks
on, whatever carries the audio (the browser page, the microphone session, a WAV from ``chat``),
so it is applied once where the reply audio is emitted. The dialog owns the level (0 muted to
10, 5 by default, persisted with the session); this module only turns a level into a gain.

Level 5 is the voice as synthesized (the level every reply had before volume existed), each
step is 3 dB, and the loudest steps are limited at full scale rather than wrapping. A "mute"
reply itself is spoken at the level before it ("Okay, muted." should be heard), and spoken
notifications (a timer, a reminder) are never silenced by a mute: they play at the last
audible level.
"""

from __future__ import annotations

import numpy as np

from dialog.skills.media import DEFAULT_VOLUME as DEFAULT_LEVEL
from dialog.skills.media import MAX_VOLUME

STEP_DB = 3.0


def gain(level: int) -> float:
    """Linear gain for a level 0-10 (0: silence; 5: 1.0)."""
    level = max(0, min(MAX_VOLUME, int(level)))
    return 0.0 if level == 0 else float(10 ** ((level - DEFAULT_LEVEL) * STEP_DB / 20))


def apply(pcm: np.ndarray, level: int) -> np.ndarray:
    """``pcm`` (int16) at ``level``; level 5 returns it unchanged (no copy)."""
    g = gain(level)
    if g == 1.0:
        return pcm
    return np.clip(np.rint(pcm.astype(np.float32) * g), -32768, 32767).astype(np.int16)


class SessionVolume:
    """The level a conversation speaks at, following the dialog's replies."""

    def __init__(self) -> None:
        self.level = DEFAULT_LEVEL
        self.audible = DEFAULT_LEVEL  # the last level above 0: what a mute reply and notifications use

    def for_reply(self, new_level: int | None) -> int:
        """Take the level a reply reports (None: the backend keeps no volume) and return the level
        to speak that reply at."""
        if new_level is None:
            return self.level
        new_level = max(0, min(MAX_VOLUME, int(new_level)))
        # The reply that mutes (the level falls to 0 with it) is heard; later replies are not.
        speak_at = self.audible if new_level == 0 and self.level > 0 else new_level
        self.level = new_level
        if new_level > 0:
            self.audible = new_level
        return speak_at

    def for_notification(self) -> int:
        return self.level if self.level > 0 else self.audible
