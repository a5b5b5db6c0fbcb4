"""Batch evaluation of recorded audio (``quickturn eval``).

:mod:`.manifest` reads the inputs, :mod:`.worker` runs files through the
pipeline in worker processes, :mod:`.results` keeps ``results.jsonl``
resumable, :mod:`.scoring` computes the metrics and ``summary.json``, and
:mod:`.report` renders ``report.html``. The command is
:mod:`assistant.commands.evaluate`; docs/eval.md describes it all.
"""
