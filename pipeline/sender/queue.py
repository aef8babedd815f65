"""The send queue: the only owner of `<data_dir>/sender/queue.sqlite3` (SQLite, WAL).

Written by `send enqueue` and `intake` (new jobs) and by the daemon (state changes); read by
`send status`. Nobody else opens this file.

A recipient row moves through:

    queued ──claim──▶ sending ──▶ sent
       ▲                 │  ├──▶ deferred (next_attempt_at) ──due──▶ sending …
       │                 │  └──▶ failed (5xx, or max_attempts reached)
       └── recover() ────┘        skipped (suppressed at enqueue or just before sending)

Every transition is one SQLite transaction, committed before the daemon moves on. A row is
claimed (queued/deferred -> sending) just before its SMTP dialogue starts, so after a crash the
only rows whose fate is unknown are those left in `sending`: at most the messages in flight
(`sender.concurrency`). `recover()` puts them back to `queued` when the daemon starts; they are
sent again (at-least-once), so one crash duplicates at most `concurrency` messages.

Enqueue connections use synchronous=FULL (an enqueue that reported success survives a power
loss); the daemon uses NORMAL in WAL mode, which survives a process crash (kill -9) fully and at
worst forgets the last state changes on power loss, which only means re-sending.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

STATES = ("queued", "sending", "sent", "deferred", "failed", "skipped")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id       INTEGER PRIMARY KEY,
    name         TEXT,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    from_address TEXT NOT NULL,
    from_name    TEXT NOT NULL DEFAULT '',
    source       TEXT NOT NULL,
    requester    TEXT,
    request_key  TEXT UNIQUE,
    created_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS recipients (
    id              INTEGER PRIMARY KEY,
    job_id          INTEGER NOT NULL REFERENCES jobs(job_id),
    address         TEXT NOT NULL,
    domain          TEXT NOT NULL,
    carrier         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued','sending','sent','deferred','failed','skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_attempt_at REAL,
    updated_at      REAL NOT NULL,
    reply_code      INTEGER,
    reply           TEXT,
    smtp_phase      TEXT,
    reason          TEXT,
    relay           TEXT,
    message_id      TEXT,
    UNIQUE (job_id, address)
);
CREATE INDEX IF NOT EXISTS recipients_due ON recipients (state, carrier, next_attempt_at);
CREATE INDEX IF NOT EXISTS recipients_attempt ON recipients (last_attempt_at);
"""

_INSERT_JOB = """
INSERT INTO jobs (name, subject, body, from_address, from_name, source, requester, request_key, created_at)
VALUES (:name, :subject, :body, :from_address, :from_name, :source, :requester, :request_key, :created_at)
"""
_INSERT_RECIPIENT = """
INSERT OR IGNORE INTO recipients (job_id, address, domain, carrier, state, reason, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
_JOB_BY_KEY = "SELECT job_id FROM jobs WHERE request_key = ?"
_JOB = "SELECT job_id, name, subject, body, from_address, from_name, source, requester, created_at FROM jobs WHERE job_id = ?"
_DUE_CARRIERS = """
SELECT DISTINCT carrier FROM recipients
WHERE state = 'queued' OR (state = 'deferred' AND next_attempt_at <= ?)
"""
_DUE = """
SELECT id, job_id, address, domain, carrier, attempts FROM recipients
WHERE carrier = ? AND (state = 'queued' OR (state = 'deferred' AND next_attempt_at <= ?))
ORDER BY next_attempt_at, id LIMIT ?
"""
_NEXT_DEFERRED = "SELECT MIN(next_attempt_at) FROM recipients WHERE state = 'deferred'"
_CLAIM = """
UPDATE recipients SET state = 'sending', attempts = attempts + 1, last_attempt_at = ?, updated_at = ?
WHERE id = ? AND state IN ('queued', 'deferred')
"""
_FINISH = """
UPDATE recipients SET state = ?, updated_at = ?, next_attempt_at = ?, reply_code = ?, reply = ?,
    smtp_phase = ?, reason = ?, relay = ?, message_id = COALESCE(?, message_id)
WHERE id = ? AND state = 'sending'
"""
_SKIP = """
UPDATE recipients SET state = 'skipped', reason = ?, updated_at = ?
WHERE id = ? AND state IN ('queued', 'deferred', 'sending')
"""
_UNCLAIM = """
UPDATE recipients SET state = 'queued', attempts = MAX(attempts - 1, 0), updated_at = ?
WHERE id = ? AND state = 'sending'
"""
_RECOVER = "UPDATE recipients SET state = 'queued', updated_at = ? WHERE state = 'sending'"
_COUNTS = """
SELECT r.job_id, COALESCE(j.name, ''), r.carrier, r.state, COUNT(*)
FROM recipients r JOIN jobs j USING (job_id)
GROUP BY r.job_id, r.carrier, r.state ORDER BY r.job_id, r.carrier, r.state
"""
_RECENT_ATTEMPTS = """
SELECT carrier, COUNT(*) FROM recipients WHERE last_attempt_at >= ? GROUP BY carrier
"""
_PENDING = "SELECT state, COUNT(*) FROM recipients WHERE state IN ('queued','sending','deferred') GROUP BY state"
_ROWS = """
SELECT id, job_id, address, carrier, state, attempts, reply_code, reply, smtp_phase, reason, relay
FROM recipients WHERE (? IS NULL OR job_id = ?) ORDER BY id
"""


@dataclass(frozen=True)
class DueRow:
    id: int
    job_id: int
    address: str
    domain: str
    carrier: str
    attempts: int


@dataclass(frozen=True)
class Job:
    job_id: int
    name: str | None
    subject: str
    body: str
    from_address: str
    from_name: str
    source: str
    requester: str | None
    created_at: float


def queue_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "sender" / "queue.sqlite3"


class Queue:
    """One per process; each thread gets its own SQLite connection."""

    def __init__(self, path: str | Path, *, durable: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._durable = durable
        self._local = threading.local()
        con = self._con()
        con.executescript(_SCHEMA)

    @classmethod
    def for_config(cls, cfg, *, durable: bool = False) -> "Queue":
        return cls(queue_path(cfg.data_dir), durable=durable)

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=" + ("FULL" if self._durable else "NORMAL"))
            con.execute("PRAGMA busy_timeout=30000")
            con.execute("PRAGMA foreign_keys=ON")
            self._local.con = con
        return con

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # ------------------------------------------------------------------ jobs
    def add_job(self, *, subject: str, body: str, from_address: str, from_name: str = "",
                recipients: list[tuple[str, str, str]], skipped: list[tuple[str, str, str, str]] = (),
                name: str | None = None, source: str = "cli", requester: str | None = None,
                request_key: str | None = None, now: float | None = None) -> tuple[int, bool]:
        """Insert a job with its rows in one transaction. Returns (job_id, created).

        recipients: (address, domain, carrier) to queue; skipped: (address, domain, carrier, reason).
        A request_key seen before (the same request mail processed twice) adds nothing.
        """
        now = time.time() if now is None else now
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            if request_key is not None:
                row = con.execute(_JOB_BY_KEY, (request_key,)).fetchone()
                if row:
                    con.execute("ROLLBACK")
                    return row[0], False
            cur = con.execute(_INSERT_JOB, {
                "name": name, "subject": subject, "body": body, "from_address": from_address,
                "from_name": from_name, "source": source, "requester": requester,
                "request_key": request_key, "created_at": now,
            })
            job_id = cur.lastrowid
            con.executemany(_INSERT_RECIPIENT, [(job_id, a, d, c, "queued", None, now) for a, d, c in recipients])
            con.executemany(_INSERT_RECIPIENT, [(job_id, a, d, c, "skipped", r, now) for a, d, c, r in skipped])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return job_id, True

    def job(self, job_id: int) -> Job:
        row = self._con().execute(_JOB, (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return Job(*row)

    # ------------------------------------------------------------------ daemon side
    def recover(self, now: float | None = None) -> int:
        """Rows left in `sending` by a crash go back to `queued`. Call once at daemon start."""
        return self._con().execute(_RECOVER, (time.time() if now is None else now,)).rowcount

    def due_carriers(self, now: float) -> list[str]:
        return [r[0] for r in self._con().execute(_DUE_CARRIERS, (now,))]

    def due(self, carrier: str, now: float, limit: int) -> list[DueRow]:
        return [DueRow(*r) for r in self._con().execute(_DUE, (carrier, now, limit))]

    def next_deferred_at(self) -> float | None:
        return self._con().execute(_NEXT_DEFERRED).fetchone()[0]

    def claim(self, row_id: int, now: float) -> bool:
        """queued/deferred -> sending; False when the row is no longer claimable."""
        return self._con().execute(_CLAIM, (now, now, row_id)).rowcount == 1

    def unclaim(self, row_id: int, now: float) -> None:
        """sending -> queued without counting an attempt (stopped before any byte was sent)."""
        self._con().execute(_UNCLAIM, (now, row_id))

    def finish(self, row_id: int, state: str, *, now: float, next_attempt_at: float = 0.0,
               reply_code: int | None = None, reply: str | None = None, smtp_phase: str | None = None,
               reason: str | None = None, relay: str | None = None, message_id: str | None = None) -> None:
        if state not in ("sent", "deferred", "failed"):
            raise ValueError(state)
        self._con().execute(_FINISH, (state, now, next_attempt_at, reply_code, reply, smtp_phase,
                                      reason, relay, message_id, row_id))

    def skip(self, row_id: int, reason: str, now: float) -> None:
        self._con().execute(_SKIP, (reason, now, row_id))

    # ------------------------------------------------------------------ reading
    def counts(self) -> list[tuple[int, str, str, str, int]]:
        """(job_id, job name, carrier, state, count) rows."""
        return [tuple(r) for r in self._con().execute(_COUNTS)]

    def recent_attempts(self, since: float) -> dict[str, int]:
        return dict(self._con().execute(_RECENT_ATTEMPTS, (since,)).fetchall())

    def pending(self) -> dict[str, int]:
        return dict(self._con().execute(_PENDING).fetchall())

    def rows(self, job_id: int | None = None) -> list[dict]:
        cols = ("id", "job_id", "address", "carrier", "state", "attempts", "reply_code", "reply",
                "smtp_phase", "reason", "relay")
        return [dict(zip(cols, r)) for r in self._con().execute(_ROWS, (job_id, job_id))]
