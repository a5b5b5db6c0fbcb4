"""``results.jsonl``: one JSON object per finished file, appended and fsynced as it finishes.

A rerun reads the file back, keeps the last successful row of every key
(a line cut short by a crash is ignored) and skips those files; failed files
are tried again. The file is rewritten compactly (atomically) before new rows
are appended, so it never holds two rows for one file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO


def read_results(path: Path) -> tuple[dict[str, dict[str, object]], int]:
    """(key → last row, number of unreadable lines)."""
    rows: dict[str, dict[str, object]] = {}
    bad = 0
    if not path.is_file():
        return rows, 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("key"), str):
            rows[row["key"]] = row
    return rows, bad


def compact(path: Path, keep: list[dict[str, object]]) -> None:
    """Atomically rewrite ``path`` with ``keep`` only."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in keep:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class ResultWriter:
    """Appends rows durably (flush + fsync after each)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: IO[str] = path.open("a", encoding="utf-8")

    def write(self, row: dict[str, object]) -> None:
        self._f.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_json(path: Path, value: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
