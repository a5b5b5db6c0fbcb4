"""SQLite persistence for sessions, the conversation log, alarms and skill data.

One database file (or ``:memory:``) holds::

    sessions  session_id -> JSON SessionState, created/updated times
    turns     every turn: transcript, cleaned text, NLU result, response, latencies,
              barge-in (played_ms); fired alarms are logged here too
    alarms    timers and alarms: session, due time (epoch seconds), status
    records   skill records: coffee orders, bookings, ratings (JSON data)
    kv        small keyed skill data: playlists, device states, lists

Durability: the database runs in WAL mode with ``synchronous=FULL`` by default
(``durable=True``): every commit (a turn, a timer, an alarm, an order, a list item, a session
state) fsyncs the WAL before ``commit()`` returns, so it survives an OS crash or power loss, not
only a ``kill -9``. The setting is per connection, so it covers every committing write of the
store, inside :meth:`Store.transaction` or not. Why not ``NORMAL``: it syncs the WAL only at
checkpoints, and a power loss can drop the last committed turns and the timers the assistant
has already confirmed aloud (issue 29, item 8). The price is one ``fdatasync`` per commit: a
turn transaction took 0.4 ms (p50, idle local disk) to 4 ms (p50 while other processes wrote)
instead of 0.1 ms, small beside a spoken reply and paid off the event loop (the dialog runs in
a worker thread). ``durable=False`` (``NORMAL``) stays for
scratch databases (story runs, benchmarks) that nobody needs after a crash.

Stored numbers are bounded at this API: an integer that SQLite's 64-bit ``INTEGER`` cannot hold
(``played_ms`` of ``10**30``) or a non-finite float (``1e999``) is refused with
:class:`~core.errors.InvalidInput` before it reaches SQLite, instead of an ``OverflowError``.

The dialog manager wraps each turn in one :meth:`Store.transaction` so the
state, the skill side effects and the logged turn are committed together or
not at all.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InvalidInput

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_PLAYED_MS = 24 * 3600 * 1000
"""Longest reply playback recorded (a day): anything larger is not a playback position."""
MAX_EPOCH_S = 253402300799.0
"""9999-12-31T23:59:59Z, the last second ``datetime`` can represent: the bound of due and fired times."""
_INT64 = (-(2**63), 2**63 - 1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    t_wall REAL NOT NULL,
    transcript TEXT NOT NULL DEFAULT '',
    clean_text TEXT NOT NULL DEFAULT '',
    nlu TEXT,
    response TEXT NOT NULL,
    latencies TEXT,
    played_ms INTEGER
);
CREATE INDEX IF NOT EXISTS turns_by_session ON turns (session_id, turn_id);
CREATE TABLE IF NOT EXISTS alarms (
    alarm_id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    due_at REAL NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    fired_at REAL
);
CREATE INDEX IF NOT EXISTS alarms_pending ON alarms (status, due_at);
CREATE TABLE IF NOT EXISTS records (
    record_id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_kind ON records (kind, session_id);
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);
"""


@dataclass(frozen=True, slots=True)
class Alarm:
    """A timer or alarm row."""

    alarm_id: int
    session_id: str
    kind: str
    due_at: float
    label: str
    status: str


@dataclass(frozen=True, slots=True)
class Record:
    """A skill record (an order, a booking, a rating)."""

    record_id: int
    session_id: str
    kind: str
    status: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TurnRow:
    """One logged turn, as read back."""

    seq: int
    session_id: str
    turn_id: str
    transcript: str
    clean_text: str
    nlu: dict[str, Any] | None
    response: dict[str, Any]
    latencies: dict[str, float] | None
    played_ms: int | None


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def bounded_int(name: str, value: object, lo: int = _INT64[0], hi: int = _INT64[1]) -> int:
    """``value`` as an int in ``[lo, hi]``, or :class:`InvalidInput` naming the field.

    Integral floats (``1500.0``, what JSON numbers may arrive as) are accepted; booleans,
    non-finite and fractional numbers are not. Checked here because SQLite raises
    ``OverflowError`` past 64 bits and ``int(1e999)`` raises too: both were crashes.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{name} must be an integer, not {type(value).__name__}")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise InvalidInput(f"{name} must be a whole finite number")
        value = int(value)
    if not lo <= value <= hi:
        raise InvalidInput(f"{name} must be between {lo} and {hi}")
    return value


def bounded_time(name: str, value: object) -> float:
    """An epoch time in seconds, finite and within 1970..9999, or :class:`InvalidInput`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{name} must be a number of seconds, not {type(value).__name__}")
    if isinstance(value, int) and not 0 <= value <= MAX_EPOCH_S:  # before float(): 10**400 overflows it
        raise InvalidInput(f"{name} must be an epoch time between 0 and {MAX_EPOCH_S:.0f}")
    t = float(value)
    if not (math.isfinite(t) and 0.0 <= t <= MAX_EPOCH_S):
        raise InvalidInput(f"{name} must be an epoch time between 0 and {MAX_EPOCH_S:.0f}")
    return t


class Store:
    """The dialog database. Not shared between processes; one instance per process.

    Args:
        path: the database file (created with its parent directory), or ``None`` for a private
            in-memory database that disappears with the object.
        durable: fsync every commit (``synchronous=FULL``, the default: power-loss-safe) or rely on
            the WAL alone (``False``: ``NORMAL``, crash-safe but not power-loss-safe; for scratch
            databases). See the module docstring for the measured cost.
    """

    def __init__(self, path: Path | str | None, *, durable: bool = True) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per turn.
        self._db = sqlite3.connect(
            str(self.path) if self.path else ":memory:", isolation_level=None, check_same_thread=False
        )
        self._lock = threading.RLock()
        self._depth = 0
        self.durable = durable
        if self.path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        # Another process holding the write lock (a second `quickturn say`) is waited for, not an error.
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript("BEGIN;" + _SCHEMA + "COMMIT;")  # one commit (one fsync) for a new file
        self._db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )
        # The first write of a process re-creates the WAL file (~10 ms here); do it now, not on a turn.
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('opened_at', ?)", (str(time.time()),))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit; nested uses join the outer one. Rolls back on any exception."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    # ------------------------------------------------------------------ sessions

    def load_session(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def save_session(self, session_id: str, state: dict[str, Any]) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO sessions (session_id, created_at, updated_at, state) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(session_id) DO UPDATE SET updated_at = excluded.updated_at, state = excluded.state",
                (session_id, now, now, _dumps(state)),
            )

    def session_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT session_id FROM sessions ORDER BY created_at")]

    # ------------------------------------------------------------------ turns

    def insert_turn(
        self,
        session_id: str,
        turn_id: str,
        *,
        transcript: str,
        clean_text: str,
        nlu: dict[str, Any] | None,
        response: dict[str, Any],
    ) -> int:
        """Log a turn; returns its row number. A turn id already logged in the session is logged again
        (updates then go to the latest row) with a warning, since ids are meant to be unique per call."""
        with self._lock:
            if self._latest_turn_seq(session_id, turn_id) is not None:
                log.warning("turn id %s is already logged in session %s", turn_id, session_id)
            cur = self._db.execute(
                "INSERT INTO turns (session_id, turn_id, t_wall, transcript, clean_text, nlu, response) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, turn_id, time.time(), transcript, clean_text,
                 _dumps(nlu) if nlu is not None else None, _dumps(response)),
            )  # fmt: skip
            return int(cur.lastrowid or 0)

    def _latest_turn_seq(self, session_id: str, turn_id: str) -> int | None:
        row = self._db.execute(
            "SELECT MAX(seq) FROM turns WHERE session_id = ? AND turn_id = ?", (session_id, turn_id)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def update_turn(
        self,
        session_id: str,
        turn_id: str,
        *,
        latencies: dict[str, float] | None = None,
        played_ms: int | None = None,
    ) -> bool:
        """Attach latencies (merged with any stored) or a barge-in to the latest turn with this id.

        Raises:
            InvalidInput: ``played_ms`` outside ``[0, MAX_PLAYED_MS]`` or not a whole number, or a latency
                that is not a finite number of milliseconds. Nothing is written then.
        """
        played = bounded_int("played_ms", played_ms, 0, MAX_PLAYED_MS) if played_ms is not None else None
        lat: dict[str, float] | None = None
        if latencies is not None:
            lat = {}
            for k, v in latencies.items():
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or abs(v) > 1e12:
                    raise InvalidInput(f"latency {k!r} must be a finite number of milliseconds")
                lat[str(k)] = round(float(v), 3)
        with self._lock, self._metrics_only(played is None):
            return self._update_turn(session_id, turn_id, lat, played)

    @contextmanager
    def _metrics_only(self, metrics: bool) -> Iterator[None]:
        """A commit of measurements only (latencies) is not fsynced by itself.

        Latencies are diagnostics, not something the user was told; the next durable commit (the
        next turn) fsyncs the WAL and them with it. This halves the fsyncs of a turn (its commit,
        then its latencies), which run on the pipeline's event loop. Inside an outer transaction the
        outer commit decides.
        """
        relax = metrics and self.durable and self._depth == 0 and self.path is not None
        if relax:
            self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            if relax:
                self._db.execute("PRAGMA synchronous=FULL")

    def _update_turn(
        self, session_id: str, turn_id: str, lat: dict[str, float] | None, played: int | None
    ) -> bool:
        with self.transaction():
            seq = self._latest_turn_seq(session_id, turn_id)
            if seq is None:
                return False
            if lat is not None:
                row = self._db.execute("SELECT latencies FROM turns WHERE seq = ?", (seq,)).fetchone()
                merged = json.loads(row[0]) if row and row[0] else {}
                merged.update(lat)
                self._db.execute("UPDATE turns SET latencies = ? WHERE seq = ?", (_dumps(merged), seq))
            if played is not None:
                self._db.execute("UPDATE turns SET played_ms = ? WHERE seq = ?", (played, seq))
            return True

    def turns(self, session_id: str) -> list[TurnRow]:
        """Every logged turn of a session, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, session_id, turn_id, transcript, clean_text, nlu, response, latencies, played_ms "
                "FROM turns WHERE session_id = ? ORDER BY seq",
                (session_id,),
            ).fetchall()
        return [
            TurnRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]) if r[5] else None, json.loads(r[6]),
                    json.loads(r[7]) if r[7] else None, r[8])
            for r in rows
        ]  # fmt: skip

    # ------------------------------------------------------------------ alarms

    def add_alarm(self, session_id: str, kind: str, due_at: float, label: str) -> int:
        """Store a pending timer or alarm; ``due_at`` must be a finite epoch time (else InvalidInput)."""
        due = bounded_time("due_at", due_at)
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO alarms (session_id, kind, due_at, label, created_at) VALUES (?, ?, ?, ?, ?)",
                (session_id, kind, due, label, time.time()),
            )
            return int(cur.lastrowid or 0)

    def alarms(
        self, session_id: str | None = None, *, kind: str | None = None, status: str = "pending"
    ) -> list[Alarm]:
        """Alarms by status (``pending``, ``fired``, ``cancelled``), soonest first."""
        sql = "SELECT alarm_id, session_id, kind, due_at, label, status FROM alarms WHERE status = ?"
        args: list[Any] = [status]
        if session_id is not None:
            sql += " AND session_id = ?"
            args.append(session_id)
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        with self._lock:
            return [Alarm(*r) for r in self._db.execute(sql + " ORDER BY due_at, alarm_id", args)]

    def set_alarm_status(self, alarm_id: int, status: str, fired_at: float | None = None) -> None:
        aid = bounded_int("alarm_id", alarm_id)
        fired = bounded_time("fired_at", fired_at) if fired_at is not None else None
        with self._lock:
            self._db.execute(
                "UPDATE alarms SET status = ?, fired_at = ? WHERE alarm_id = ?", (status, fired, aid)
            )

    def move_alarm(self, alarm_id: int, due_at: float, label: str) -> None:
        aid, due = bounded_int("alarm_id", alarm_id), bounded_time("due_at", due_at)
        with self._lock:
            self._db.execute(
                "UPDATE alarms SET due_at = ?, label = ? WHERE alarm_id = ?", (due, label, aid)
            )

    def due_alarms(self, now: float) -> list[Alarm]:
        with self._lock:
            return [
                Alarm(*r)
                for r in self._db.execute(
                    "SELECT alarm_id, session_id, kind, due_at, label, status FROM alarms "
                    "WHERE status = 'pending' AND due_at <= ? ORDER BY due_at, alarm_id",
                    (now,),
                )
            ]

    def next_due(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(due_at) FROM alarms WHERE status = 'pending'").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    # ------------------------------------------------------------------ records

    def add_record(self, session_id: str, kind: str, data: dict[str, Any], status: str = "active") -> int:
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO records (session_id, kind, created_at, updated_at, status, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, kind, now, now, status, _dumps(data)),
            )
            return int(cur.lastrowid or 0)

    def update_record(
        self, record_id: int, data: dict[str, Any] | None = None, status: str | None = None
    ) -> None:
        record_id = bounded_int("record_id", record_id)
        with self._lock:
            if data is not None:
                self._db.execute(
                    "UPDATE records SET data = ?, updated_at = ? WHERE record_id = ?",
                    (_dumps(data), time.time(), record_id),
                )
            if status is not None:
                self._db.execute(
                    "UPDATE records SET status = ?, updated_at = ? WHERE record_id = ?",
                    (status, time.time(), record_id),
                )

    def records(
        self, kind: str, session_id: str | None = None, status: str | None = "active"
    ) -> list[Record]:
        sql = "SELECT record_id, session_id, kind, status, data FROM records WHERE kind = ?"
        args: list[Any] = [kind]
        if session_id is not None:
            sql += " AND session_id = ?"
            args.append(session_id)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY record_id", args).fetchall()
        return [Record(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def record(self, record_id: int) -> Record | None:
        record_id = bounded_int("record_id", record_id)
        with self._lock:
            r = self._db.execute(
                "SELECT record_id, session_id, kind, status, data FROM records WHERE record_id = ?",
                (record_id,),
            ).fetchone()
        return Record(r[0], r[1], r[2], r[3], json.loads(r[4])) if r else None

    # ------------------------------------------------------------------ kv

    def kv_get(self, namespace: str, key: str) -> Any | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def kv_put(self, namespace: str, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT(namespace, key) DO UPDATE SET value = excluded.value",
                (namespace, key, _dumps(value)),
            )

    def kv_delete(self, namespace: str, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key))

    def kv_all(self, namespace: str) -> dict[str, Any]:
        with self._lock:
            return {
                k: json.loads(v)
                for k, v in self._db.execute(
                    "SELECT key, value FROM kv WHERE namespace = ? ORDER BY key", (namespace,)
                )
            }
