"""The dialog backend named by ``settings.dialog.backend``."""

from __future__ import annotations

import logging
from pathlib import Path

from core.errors import QuickTurnError
from core.settings import Settings
from dialog.base import DialogBackend

log = logging.getLogger(__name__)


def load_dialog(settings: Settings, db_path: Path | None) -> DialogBackend:
    """The backend ``settings.dialog.backend`` names: the stateful dialog manager (``embedded``;
    the templated baseline if it cannot load) or a Rasa server (``rasa://HOST:PORT``)."""
    backend = settings.dialog.backend
    if backend != "embedded":
        if not backend.startswith(("rasa://", "http://", "https://")):
            raise QuickTurnError(f"dialog backend {backend!r}: use embedded or rasa://HOST:PORT", code="invalid-input")
        from dialog.rasa_backend import RasaDialog

        rasa = RasaDialog(backend, settings.dialog.timeout_s, settings.dialog.rasa_nlu)
        log.info("dialog: Rasa server %s (%s)", rasa.base_url, rasa.status())
        return rasa  # type: ignore[return-value]
    try:
        from dialog.manager import DialogManager

        return DialogManager(db_path, sound_alike=settings.dialog.sound_alike)  # type: ignore[return-value]
    except (ImportError, QuickTurnError) as exc:
        log.warning("stateful dialog manager unavailable (%s); using the templated baseline", exc)
        from dialog.templated import TemplatedDialog

        return TemplatedDialog()
