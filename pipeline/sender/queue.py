"""The send queue: the only owner of `<data_dir>/sender/queue.sqlite3` (SQLite, WAL).

Written by `send enqueue` and `intake` (new jobs, remembered requests), by the daemon (results,
the attempt log of the throttle, the event outbox, throttle state) and by the queue commands
(`send hold/release/cancel/retry`); read by `send status/list`. Nobody else opens this file.

A recipient row moves through:

    queued ──────────▶ sent
       │  ├──────────▶ deferred (next_attempt_at) ──due──▶ sent | deferred | failed
       │  └──────────▶ failed (5xx, or max_attempts reached)
       └─ skipped (suppressed at enqueue or just before sending, or its job cancelled)

(`sending` is a legacy state of older queues; `recover()` puts such rows back to `queued`.)

The daemon keeps the rows it has handed to a worker in memory and writes each result with
`finish_many()`: one transaction for a batch of results, carrying for each the row's new state,
one row of the attempt log (the throttle's window survives restarts: Throttle.restore) and one
event row in the outbox (moved to the Parquet event store by daemon.EventFlusher). The result,
its attempt record and its event are therefore written together or not at all. A batch holds at
most `sender.commit_batch` results and waits at most 50 ms, so after a crash (kill -9) at most
`concurrency × commit_batch` messages were sent without their result being stored: they are still
`queued` and are sent again (at-least-once). A graceful stop writes everything first.

Jobs can be held (nothing of them starts; `send hold`), released, and cancelled (their queued and
deferred rows become `skipped` with reason `cancelled`).

Enqueue connections use synchronous=FULL (an enqueue that reported success survives a power
loss); the daemon uses NORMAL in WAL mode, which survives a process crash (kill -9) fully and at
worst forgets the last results on power loss, which only means re-sending.

Commands that only read (`send status`, `send list`, `send preview --job`) open the queue
read-only (`Queue(..., read_only=True)`): they write nothing, so they work on a read-only data dir
and for other users of the service group; a queue that does not exist yet reads as empty.

A queue database that cannot be used — damaged or truncated, not a database at all, a directory in
its place, locked by another process for longer than the busy timeout, read-only, on a full disk,
an I/O error — is QueueUnavailable (QueueCorrupt when the file is damaged), raised from one place,
`unusable()`, for every public method of Queue (each is wrapped by `_guarded`), with the file named
and the way out. Other sqlite3 errors (a constraint, a misuse) are bugs and are not translated.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError, StoreCorrupt, StoreError
from ..core.fsutil import describe_os_error, ensure_dir

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
-- the daemon's next queued rows of a carrier, in id order: an index search, not a sort of every
-- queued row (a backlog of 1M rows cost 50 ms per fetch of 200 without it)
CREATE INDEX IF NOT EXISTS recipients_queued ON recipients (carrier) WHERE state = 'queued';
-- (recipients_attempt, on last_attempt_at, is gone: the attempt log answers "how many lately")
DROP INDEX IF EXISTS recipients_attempt;
-- every SMTP send the daemon started, for the throttle's window across restarts
CREATE TABLE IF NOT EXISTS attempts (
    carrier TEXT NOT NULL,
    started REAL NOT NULL,
    ended   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_ended ON attempts (ended);
-- per-carrier throttle state that must outlive a daemon: rate-limit pause and reduced rate
CREATE TABLE IF NOT EXISTS throttle_state (
    carrier      TEXT PRIMARY KEY,
    paused_until REAL NOT NULL DEFAULT 0,
    factor       REAL NOT NULL DEFAULT 1,
    factor_at    REAL NOT NULL DEFAULT 0
);
-- event rows waiting to be written to the Parquet event store (EVENT_SCHEMA as JSON); no index
-- on event_id: the store keeps one row per event id, so a row written twice is harmless
CREATE TABLE IF NOT EXISTS event_outbox (
    seq      INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    row      TEXT NOT NULL
);
-- request mails seen by intake (Message-ID and body hash), for replay protection
CREATE TABLE IF NOT EXISTS intake_seen (
    key TEXT PRIMARY KEY,
    at  REAL NOT NULL
);
"""
# columns added after the first release: (table, column, definition)
_MIGRATIONS = (("jobs", "held", "INTEGER NOT NULL DEFAULT 0"),
               # set by `send cancel`: a running daemon drops the job's rows it fetched already
               ("jobs", "cancelled", "INTEGER NOT NULL DEFAULT 0"),
               # the row's tries that found its relay unusable (refused, unreachable, ...): they
               # count neither towards max_attempts nor in its backoff (the address was never judged)
               ("recipients", "relay_waits", "INTEGER NOT NULL DEFAULT 0"),
               # a relay's failures in a row (key relay:host:port): its next pause doubles
               ("throttle_state", "strikes", "INTEGER NOT NULL DEFAULT 0"))

_INSERT_JOB = """
INSERT INTO jobs (name, subject, body, from_address, from_name, source, requester, request_key, created_at)
VALUES (:name, :subject, :body, :from_address, :from_name, :source, :requester, :request_key, :created_at)
"""
_INSERT_RECIPIENT = """
INSERT OR IGNORE INTO recipients (job_id, address, domain, carrier, state, reason, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
_JOB_BY_KEY = "SELECT job_id FROM jobs WHERE request_key = ?"
_JOB = ("SELECT job_id, name, subject, body, from_address, from_name, source, requester, created_at, held "
        "FROM jobs WHERE job_id = ?")
_NOT_HELD = "job_id NOT IN (SELECT job_id FROM jobs WHERE held = 1)"
# The carriers with work (Queue.due_carriers): hop from one carrier to the next through the index,
# then ask each whether a row of a job not on hold is waiting (queued) or due (deferred).
_FIRST_CARRIER = "SELECT MIN(carrier) FROM recipients WHERE state = ?"
_NEXT_CARRIER = "SELECT MIN(carrier) FROM recipients WHERE state = ? AND carrier > ?"
_QUEUED_FOR = f"SELECT 1 FROM recipients WHERE state = 'queued' AND carrier = ? AND {_NOT_HELD} LIMIT 1"
_DUE_DEFERRED_FOR = f"""
SELECT 1 FROM recipients
WHERE state = 'deferred' AND carrier = ? AND next_attempt_at <= ? AND {_NOT_HELD} LIMIT 1
"""
_DUE_DEFERRED = f"""
SELECT id, job_id, address, domain, carrier, attempts, relay_waits FROM recipients
WHERE state = 'deferred' AND carrier = ? AND next_attempt_at <= ? AND {_NOT_HELD}
ORDER BY next_attempt_at, id LIMIT ?
"""
_DUE_QUEUED = f"""
SELECT id, job_id, address, domain, carrier, attempts, relay_waits FROM recipients
WHERE state = 'queued' AND carrier = ? AND id > ? AND {_NOT_HELD}
ORDER BY id LIMIT ?
"""
_HELD_JOBS = "SELECT job_id FROM jobs WHERE held = 1 OR cancelled = 1"
_NEXT_DEFERRED = f"SELECT MIN(next_attempt_at) FROM recipients WHERE state = 'deferred' AND {_NOT_HELD}"
_FINISH = """
UPDATE recipients SET state = ?, attempts = attempts + 1, relay_waits = relay_waits + ?,
    last_attempt_at = ?, updated_at = ?,
    next_attempt_at = ?, reply_code = ?, reply = ?, smtp_phase = ?, reason = ?, relay = ?,
    message_id = COALESCE(?, message_id)
WHERE id = ? AND state IN ('queued', 'deferred', 'sending')
"""
_ATTEMPT = "INSERT INTO attempts (carrier, started, ended) VALUES (?, ?, ?)"
_OUTBOX = "INSERT INTO event_outbox (event_id, row) VALUES (?, ?)"
_SKIP = """
UPDATE recipients SET state = 'skipped', reason = ?, updated_at = ?
WHERE id = ? AND state IN ('queued', 'deferred', 'sending')
"""
_RECOVER = "UPDATE recipients SET state = 'queued', updated_at = ? WHERE state = 'sending'"
_COUNTS = """
SELECT r.job_id, COALESCE(j.name, ''), r.carrier, r.state, COUNT(*)
FROM recipients r JOIN jobs j USING (job_id)
WHERE (? IS NULL OR r.job_id = ?)
GROUP BY r.job_id, r.carrier, r.state ORDER BY r.job_id, r.carrier, r.state
"""
_JOBS = """
SELECT j.job_id, COALESCE(j.name, ''), j.subject, j.source, j.requester, j.created_at, j.held,
       SUM(r.state = 'queued'), SUM(r.state = 'deferred'), SUM(r.state = 'sent'), SUM(r.state = 'failed'),
       SUM(r.state = 'skipped'), COUNT(r.id)
FROM jobs j LEFT JOIN recipients r USING (job_id)
GROUP BY j.job_id ORDER BY j.job_id
"""
_RECENT_ATTEMPTS = "SELECT carrier, COUNT(*) FROM attempts WHERE started >= ? GROUP BY carrier"
_WINDOW_ATTEMPTS = "SELECT carrier, started, ended FROM attempts WHERE ended >= ? ORDER BY ended"
_PRUNE_ATTEMPTS = "DELETE FROM attempts WHERE ended < ?"
_PENDING = f"""
SELECT state, COUNT(*) FROM recipients WHERE state IN ('queued','sending','deferred') AND {_NOT_HELD} GROUP BY state
"""
_ROWS = """
SELECT id, job_id, address, carrier, state, attempts, reply_code, reply, smtp_phase, reason, relay,
       last_attempt_at, next_attempt_at, message_id
FROM recipients WHERE (? IS NULL OR job_id = ?) ORDER BY id
"""
# per carrier, its latest deferred row (SQLite takes the bare columns from the MAX row)
_LAST_DEFERRALS = """
SELECT carrier, relay, reply_code, reply, smtp_phase, reason, MAX(last_attempt_at)
FROM recipients WHERE state = 'deferred' AND last_attempt_at IS NOT NULL
GROUP BY carrier
"""
_ROW_COLUMNS = ("id", "job_id", "address", "carrier", "state", "attempts", "reply_code", "reply", "smtp_phase",
                "reason", "relay", "last_attempt_at", "next_attempt_at", "message_id")


@dataclass(frozen=True)
class DueRow:
    id: int
    job_id: int
    address: str
    domain: str
    carrier: str
    attempts: int
    relay_waits: int = 0            # of `attempts`: tries that found the relay unusable


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
    held: int = 0


@dataclass(frozen=True)
class Result:
    """One finished attempt, as the daemon hands it to finish_many()."""

    row_id: int
    state: str                      # sent | deferred | failed
    carrier: str
    started: float
    ended: float
    next_attempt_at: float = 0.0
    reply_code: int | None = None
    reply: str | None = None
    smtp_phase: str | None = None
    reason: str | None = None
    relay: str | None = None
    message_id: str | None = None
    event: dict | None = None       # the event row (EVENT_SCHEMA columns, ts as epoch seconds)
    relay_wait: bool = False        # the relay could not be used: not a try of the address


BUSY_TIMEOUT_S = 30         # how long a statement waits for another process's write lock
MAX_JOB_ID = 2**63 - 1      # SQLite's largest INTEGER: job ids are 1 .. MAX_JOB_ID


class QueueUnavailable(StoreError):
    """The send queue's database cannot be used (locked for too long, read-only, a full disk, a
    directory in its place, an I/O error); the message names the file and what to do. Nothing was
    changed by the statement that failed (SQLite rolls it back)."""


class QueueCorrupt(QueueUnavailable, StoreCorrupt):
    """The send queue's database is damaged (truncated, overwritten, not a database)."""


def queue_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "sender" / "queue.sqlite3"


def unusable(path: Path, exc: BaseException) -> QueueUnavailable | None:
    """The QueueUnavailable that says why the queue database at `path` could not be used, given
    the error SQLite (or the OS) raised; None for errors that are bugs rather than a state of the
    file (a constraint violated, an API misuse), which callers re-raise as they are.

    The one place that turns an unusable queue into words: every public method of Queue comes here."""
    if isinstance(exc, QueueUnavailable):
        return exc
    if not isinstance(exc, (sqlite3.Error, OSError, StoreError)):
        return None
    detail = str(exc) if not isinstance(exc, OSError) else describe_os_error(exc)
    if path.is_dir():
        return QueueUnavailable(f"the send queue {path} cannot be opened: a directory is in its place; move it "
                                "away and the next `mailhygiene send enqueue` creates the queue")
    if os.path.lexists(path.parent) and not path.parent.is_dir():
        return QueueUnavailable(f"the send queue {path} cannot be opened: {path.parent} is not a directory; move "
                                "it away and the next `mailhygiene send enqueue` creates the queue")
    if not isinstance(exc, sqlite3.Error):  # the sender directory cannot be made, the file not opened
        return QueueUnavailable(f"the send queue {path} cannot be opened: {detail}")
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "malformed" in detail or "not a database" in detail:
        broken = path.with_name(path.name + ".broken")
        return QueueCorrupt(
            f"the send queue {path} is damaged ({detail}). To start again: stop `mailhygiene send daemon` and move "
            f"the file aside with its -wal and -shm files (mv {path} {broken}); the next `mailhygiene send enqueue` "
            "or `send daemon` creates an empty queue. Lost with it: the recipients not yet sent (enqueue those "
            "campaigns again), the results `send status` shows, the throttle's memory of the current window and "
            f"sender events not yet in the event store (`sqlite3 {broken} .recover` may salvage rows)")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in detail:
        return QueueUnavailable(
            f"the send queue {path} stayed locked by another process for more than {BUSY_TIMEOUT_S} s ({detail}): "
            f"a `send daemon`, `intake` or queue command is busy or hung (see `fuser {path}`); nothing was "
            "changed, try again")
    if name.startswith("SQLITE_READONLY") or "readonly" in detail:
        return QueueUnavailable(f"the send queue {path} cannot be written ({detail}): {_who_may_write(path)}; "
                                "nothing was changed")
    if name == "SQLITE_FULL" or "disk is full" in detail:
        return QueueUnavailable(f"the disk holding the send queue {path} is full: free some space and try again; "
                                "nothing was changed")
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")) or "unable to open" in detail:
        return QueueUnavailable(f"the send queue {path} cannot be opened ({detail}): {_who_may_write(path)}")
    if name.startswith("SQLITE_IOERR") or "disk I/O error" in detail:
        return QueueUnavailable(f"input/output error on the send queue {path} ({detail}): a failing disk, a file "
                                "system that went read-only (see `dmesg`) or a directory this user may not write; "
                                "nothing was changed")
    if name == "SQLITE_ERROR" and ("no such table" in detail or "no such column" in detail):
        return QueueUnavailable(
            f"the send queue {path} lacks the queue's tables ({detail}): a queue of an older version, read "
            "read-only; run a writing command once as the data directory's owner (`mailhygiene send "
            "flush-events`) to upgrade it, or it is another file: move it away")
    return None


def _who_may_write(path: Path) -> str:
    """How to get write access to the queue: run as the data dir's owner, or (being the owner)
    make the read-only file, directory or file system writable again."""
    from ..core.owner import user_name

    data_dir, me = path.parent.parent, os.geteuid()
    try:
        owner = data_dir.stat().st_uid
    except OSError:
        return "run as the data directory's owner"
    if owner != me:
        name = user_name(owner)
        return f"run as {name}, the data directory's owner (sudo -u {name} mailhygiene ...)"
    return (f"{user_name(me)} owns {data_dir}, but the queue, its directory or the file system is read-only: "
            "make them writable again (chmod u+w, or remount read-write)")


def _guarded(method):
    """`method` with every unusable-queue error turned into QueueUnavailable (see unusable())."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except QueueUnavailable:
            raise
        except (sqlite3.Error, OSError, StoreError) as exc:
            translated = unusable(self.path, exc)
            if translated is None:
                raise
            raise translated from exc
    return guarded


def _every_method_guarded(cls):
    """Wrap __init__ and every public method: a method added later is covered without a thought."""
    for name, value in list(vars(cls).items()):
        if inspect.isfunction(value) and (name == "__init__" or not name.startswith("_")) and name != "close":
            setattr(cls, name, _guarded(value))
    return cls


def check_job_id(job_id: int) -> None:
    """InputError for a job id no queue can hold (below 1, or past SQLite's 64-bit integers)."""
    if not isinstance(job_id, int) or not 1 <= job_id <= MAX_JOB_ID:
        raise InputError(f"there is no job {job_id} in the queue: job ids are whole numbers from 1 to "
                         f"{MAX_JOB_ID} (see `mailhygiene send list`)")


@_every_method_guarded
class Queue:
    """One per process; each thread gets its own SQLite connection.

    `read_only`: open the database read-only (commands that only read); a missing database then
    reads as an empty queue and nothing is created."""

    def __init__(self, path: str | Path, *, durable: bool = False, read_only: bool = False):
        self.path = Path(path)
        self._durable = durable
        self._read_only = read_only
        self._local = threading.local()
        if read_only:
            self._con()
            return
        ensure_dir(self.path.parent)
        con = self._con()
        con.executescript(_SCHEMA)
        for table, column, definition in _MIGRATIONS:
            have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                try:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
                except sqlite3.OperationalError as exc:  # another process added it just now
                    if "duplicate column" not in str(exc):
                        raise

    @classmethod
    def for_config(cls, cfg, *, durable: bool = False, read_only: bool = False) -> "Queue":
        return cls(queue_path(cfg.data_dir), durable=durable, read_only=read_only)

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._connect()
            self._local.con = con
        return con

    def _connect(self) -> sqlite3.Connection:
        if self._read_only:
            return self._connect_read_only()
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=" + ("FULL" if self._durable else "NORMAL"))
            con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
            con.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            con.close()
            raise
        return con

    def _connect_read_only(self) -> sqlite3.Connection:
        parent_usable = self.path.parent.is_dir() or not os.path.lexists(self.path.parent)
        if parent_usable and not os.path.lexists(self.path):
            # no queue yet: an empty one in memory, so readers say "empty" and create nothing
            con = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            con.executescript(_SCHEMA)
            for table, column, definition in _MIGRATIONS:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            return con
        uri = self.path.resolve().as_uri()
        immutable = f"{uri}?mode=ro&immutable=1"
        # A WAL database is read through its -shm index, which SQLite creates when it is missing:
        # as another user than the data dir's owner (root looking, a member of the service group),
        # that would leave files the owner's next writer cannot use. Without a -shm no process
        # has the queue open, so it is read as an unchanging file (a writer starting during that
        # read is the one case this can mis-read; run status commands as the owner to rule it out).
        try:
            owned = self.path.parent.stat().st_uid == os.geteuid()
        except OSError:
            owned = False
        if not owned and not os.path.exists(f"{self.path}-shm"):
            return sqlite3.connect(immutable, uri=True, isolation_level=None, check_same_thread=False)
        con = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                              check_same_thread=False)
        try:
            con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
            con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            con.close()
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_READONLY_DIRECTORY":
                raise
            # the owner, in a directory it may not write (a read-only data dir): no -shm can be
            # made, so no process has the queue open either
            con = sqlite3.connect(immutable, uri=True, isolation_level=None, check_same_thread=False)
        return con

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    def _transaction(self):
        return _Tx(self._con())

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
        with self._transaction() as con:
            if request_key is not None:
                row = con.execute(_JOB_BY_KEY, (request_key,)).fetchone()
                if row:
                    return row[0], False
            cur = con.execute(_INSERT_JOB, {
                "name": name, "subject": subject, "body": body, "from_address": from_address,
                "from_name": from_name, "source": source, "requester": requester,
                "request_key": request_key, "created_at": now,
            })
            job_id = cur.lastrowid
            con.executemany(_INSERT_RECIPIENT, [(job_id, a, d, c, "queued", None, now) for a, d, c in recipients])
            con.executemany(_INSERT_RECIPIENT, [(job_id, a, d, c, "skipped", r, now) for a, d, c, r in skipped])
        return job_id, True

    def job(self, job_id: int) -> Job:
        check_job_id(job_id)
        row = self._con().execute(_JOB, (job_id,)).fetchone()
        if row is None:
            raise InputError(f"there is no job {job_id} in the queue (see `mailhygiene send list`)")
        return Job(*row)

    def jobs(self) -> list[dict]:
        cols = ("job_id", "name", "subject", "source", "requester", "created_at", "held", "queued", "deferred",
                "sent", "failed", "skipped", "recipients")
        return [dict(zip(cols, (*r[:7], *(int(x or 0) for x in r[7:])))) for r in self._con().execute(_JOBS)]

    # ------------------------------------------------------------------ queue management
    def set_held(self, job_id: int, held: bool) -> int:
        """Hold or release a job; returns the number of its rows still to send."""
        self.job(job_id)
        con = self._con()
        con.execute("UPDATE jobs SET held = ? WHERE job_id = ?", (1 if held else 0, job_id))
        return con.execute("SELECT COUNT(*) FROM recipients WHERE job_id = ? AND state IN ('queued','deferred')",
                           (job_id,)).fetchone()[0]

    def cancel(self, job_id: int, now: float | None = None) -> int:
        """Every queued or deferred row of the job -> skipped (reason `cancelled`); returns how many."""
        self.job(job_id)
        now = time.time() if now is None else now
        with self._transaction() as con:
            con.execute("UPDATE jobs SET cancelled = 1 WHERE job_id = ?", (job_id,))
            return con.execute(
                "UPDATE recipients SET state = 'skipped', reason = 'cancelled', updated_at = ? "
                "WHERE job_id = ? AND state IN ('queued', 'deferred')", (now, job_id)).rowcount

    def retry_now(self, job_id: int | None = None, now: float | None = None) -> int:
        """Deferred rows (of one job or all) become due now; returns how many."""
        if job_id is not None:
            self.job(job_id)
        now = time.time() if now is None else now
        return self._con().execute(
            "UPDATE recipients SET next_attempt_at = ?, updated_at = ? WHERE state = 'deferred' "
            "AND (? IS NULL OR job_id = ?)", (now, now, job_id, job_id)).rowcount

    # ------------------------------------------------------------------ daemon side
    def recover(self, now: float | None = None) -> int:
        """Rows left in `sending` by an older daemon go back to `queued`. Call once at daemon start."""
        return self._con().execute(_RECOVER, (time.time() if now is None else now,)).rowcount

    def due_carriers(self, now: float) -> list[str]:
        """Carriers with a queued row, or a deferred row due by `now`, of a job not on hold: those
        with queued rows first, then the others, each in name order. A few index searches per
        carrier: the daemon asks every refresh (0.25 s), and `SELECT DISTINCT carrier` over the
        waiting rows read every one of them (0.4 s with 1M queued)."""
        con = self._con()
        found: list[str] = []
        for state, has_work, extra in (("queued", _QUEUED_FOR, ()), ("deferred", _DUE_DEFERRED_FOR, (now,))):
            carrier = con.execute(_FIRST_CARRIER, (state,)).fetchone()[0]
            while carrier is not None:
                if carrier not in found and con.execute(has_work, (carrier, *extra)).fetchone():
                    found.append(carrier)
                carrier = con.execute(_NEXT_CARRIER, (state, carrier)).fetchone()[0]
        return found

    def due_deferred(self, carrier: str, now: float, limit: int) -> list[DueRow]:
        """Deferred rows whose backoff has ended, earliest first."""
        return [DueRow(*r) for r in self._con().execute(_DUE_DEFERRED, (carrier, now, limit))]

    def due_queued(self, carrier: str, after_id: int, limit: int) -> list[DueRow]:
        """Queued rows with an id above `after_id`, in enqueue order."""
        return [DueRow(*r) for r in self._con().execute(_DUE_QUEUED, (carrier, after_id, limit))]

    def due(self, carrier: str, now: float, limit: int) -> list[DueRow]:
        """Due rows of a carrier: deferred ones whose backoff ended first, then queued ones."""
        rows = self.due_deferred(carrier, now, limit)
        return rows + self.due_queued(carrier, 0, limit - len(rows)) if len(rows) < limit else rows

    def skipped_as_suppressed(self) -> bool:
        """Whether any row was ever skipped because its address was on the suppression list: the
        sender's own evidence that a list existed."""
        return self._con().execute(
            "SELECT 1 FROM recipients WHERE state = 'skipped' AND reason = 'suppressed' LIMIT 1").fetchone() is not None

    def held_jobs(self) -> set[int]:
        """Jobs none of whose rows may start: held, or cancelled (a daemon drops the rows of
        these it fetched before)."""
        return {r[0] for r in self._con().execute(_HELD_JOBS)}

    def next_deferred_at(self) -> float | None:
        return self._con().execute(_NEXT_DEFERRED).fetchone()[0]

    def finish_many(self, results: list[Result]) -> None:
        """Results, their attempt records and their events: one transaction."""
        if not results:
            return
        with self._transaction() as con:
            con.executemany(_FINISH, [(r.state, int(r.relay_wait), r.started, r.ended, r.next_attempt_at, r.reply_code, r.reply,
                                       r.smtp_phase, r.reason, r.relay, r.message_id, r.row_id) for r in results])
            con.executemany(_ATTEMPT, [(r.carrier, r.started, r.ended) for r in results])
            events = [(r.event["event_id"], json.dumps(r.event, ensure_ascii=False)) for r in results if r.event]
            if events:
                con.executemany(_OUTBOX, events)

    def finish(self, row_id: int, state: str, *, now: float, next_attempt_at: float = 0.0,
               reply_code: int | None = None, reply: str | None = None, smtp_phase: str | None = None,
               reason: str | None = None, relay: str | None = None, message_id: str | None = None,
               carrier: str = "other", started: float | None = None) -> None:
        if state not in ("sent", "deferred", "failed"):
            raise ValueError(state)
        self.finish_many([Result(row_id, state, carrier, now if started is None else started, now, next_attempt_at,
                                 reply_code, reply, smtp_phase, reason, relay, message_id)])

    def skip(self, row_id: int, reason: str, now: float) -> None:
        self._con().execute(_SKIP, (reason, now, row_id))

    # ------------------------------------------------------------------ throttle state
    def window_attempts(self, since: float) -> list[tuple[str, float, float]]:
        """(carrier, started, ended) of the sends that ended at or after `since`."""
        return [tuple(r) for r in self._con().execute(_WINDOW_ATTEMPTS, (since,))]

    def prune_attempts(self, before: float) -> None:
        self._con().execute(_PRUNE_ATTEMPTS, (before,))

    def throttle_states(self) -> dict[str, tuple[float, float, float]]:
        """carrier -> (paused_until, factor, factor_at)."""
        return {r[0]: (r[1], r[2], r[3]) for r in
                self._con().execute("SELECT carrier, paused_until, factor, factor_at FROM throttle_state")}

    def save_throttle_state(self, carrier: str, paused_until: float, factor: float, factor_at: float,
                            strikes: int = 0) -> None:
        self._con().execute(
            "INSERT INTO throttle_state (carrier, paused_until, factor, factor_at, strikes) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(carrier) DO UPDATE SET paused_until = excluded.paused_until, factor = excluded.factor, "
            "factor_at = excluded.factor_at, strikes = excluded.strikes",
            (carrier, paused_until, factor, factor_at, strikes))

    def relay_strikes(self) -> dict[str, int]:
        """relay key (relay:host:port) -> its failures in a row (only relays with any). A queue
        of an older release read without migrating (read-only) has none."""
        try:
            return {r[0]: r[1] for r in self._con().execute(
                "SELECT carrier, strikes FROM throttle_state WHERE strikes > 0")}
        except sqlite3.OperationalError as exc:
            if "no such column" in str(exc):
                return {}
            raise

    # ------------------------------------------------------------------ event outbox
    def outbox(self, limit: int = 50_000) -> tuple[list[dict], int]:
        """The oldest outbox rows (at most `limit`) and the sequence number of the last one."""
        rows = self._con().execute("SELECT seq, row FROM event_outbox ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [json.loads(r[1]) for r in rows], (rows[-1][0] if rows else 0)

    def outbox_size(self) -> int:
        return self._con().execute("SELECT COUNT(*) FROM event_outbox").fetchone()[0]

    def drop_from_outbox(self, up_to_seq: int) -> None:
        """Forget the outbox rows up to and including `up_to_seq` (they are in the event store)."""
        self._con().execute("DELETE FROM event_outbox WHERE seq <= ?", (up_to_seq,))

    def add_events(self, events: list[dict]) -> None:
        """Event rows that belong to no send (bounce mails read by `bounces`)."""
        with self._transaction() as con:
            con.executemany(_OUTBOX, [(e["event_id"], json.dumps(e, ensure_ascii=False)) for e in events])

    # ------------------------------------------------------------------ intake replay protection
    def seen_before(self, keys: list[str], now: float, forget_before: float, *, remember: bool = True) -> str | None:
        """The first of `keys` remembered already; else (with remember) remember them all."""
        with self._transaction() as con:
            con.execute("DELETE FROM intake_seen WHERE at < ?", (forget_before,))
            for k in keys:
                if con.execute("SELECT 1 FROM intake_seen WHERE key = ?", (k,)).fetchone():
                    return k
            if remember:
                con.executemany("INSERT OR IGNORE INTO intake_seen (key, at) VALUES (?, ?)", [(k, now) for k in keys])
        return None

    # ------------------------------------------------------------------ reading
    def counts(self, job_id: int | None = None) -> list[tuple[int, str, str, str, int]]:
        """(job_id, job name, carrier, state, count) rows."""
        return [tuple(r) for r in self._con().execute(_COUNTS, (job_id, job_id))]

    def recent_attempts(self, since: float) -> dict[str, int]:
        return dict(self._con().execute(_RECENT_ATTEMPTS, (since,)).fetchall())

    def pending(self) -> dict[str, int]:
        return dict(self._con().execute(_PENDING).fetchall())

    def last_deferrals(self) -> dict[str, dict]:
        """carrier -> its latest deferral {relay, reply_code, reply, smtp_phase, reason, at}: why a
        carrier is held back (a relay refusing our AUTH or TLS, a rate limit)."""
        return {r[0]: {"relay": r[1], "reply_code": r[2], "reply": r[3], "smtp_phase": r[4], "reason": r[5],
                       "at": r[6]} for r in self._con().execute(_LAST_DEFERRALS)}

    def rows(self, job_id: int | None = None) -> list[dict]:
        return [dict(zip(_ROW_COLUMNS, r)) for r in self._con().execute(_ROWS, (job_id, job_id))]


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (also when COMMIT itself fails, so
    the connection is never left inside a transaction; SQLite may have rolled back already after a
    full disk or an I/O error, and the original error is the one that counts)."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def __enter__(self) -> sqlite3.Connection:
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                self.con.execute("COMMIT")
                return False
            except BaseException:
                self._rollback()
                raise
        self._rollback()
        return False

    def _rollback(self) -> None:
        if self.con.in_transaction:
            try:
                self.con.execute("ROLLBACK")
            except sqlite3.Error:
                pass
