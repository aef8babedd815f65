"""The sender's own results as event rows: every SMTP attempt of the daemon and every bounce mail
read by `mailhygiene bounces` becomes a row of the event store (EVENT_SCHEMA, mta "mailhygiene"),
so the suppression rule, the reports and the notebook see them like MTA log lines.

Rows are built here (`attempt_event`, `bounce_event`), kept in the queue's outbox table (written in
the same SQLite transaction as the result they describe, so neither exists without the other) and
moved into the Parquet event store by `flush_outbox` (the daemon's EventFlusher every
`sender.event_flush_interval` seconds and at shutdown; `bounces` at its end). The store drops
event ids it holds already, so a flush repeated after a crash adds nothing twice.

Provenance: `source_file` is `mailhygiene-sender:<queue file>` with `source_offset` the queue's
recipient row id (attempts), or `mailhygiene-bounces:<mail file or stdin>` with the recipient's
position in that mail (bounces). `queue_id` is `<job>.<row>` for attempts.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from ..core.vocabulary import SENDER_MTA
from ..store.records import EVENT_SCHEMA, bare_message_id, domain_of, event_id_for

MTA = SENDER_MTA
_DSN = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")


def dsn_in(text: str | None) -> str | None:
    """The first enhanced status code (RFC 3463) in a reply text."""
    m = _DSN.search(text or "")
    return m.group(1) if m else None


def attempt_event(*, ts: float, host: str, job_id: int, row_id: int, attempt: int, message_id: str | None,
                  sender: str, recipient: str, carrier: str, relay: str, status: str, reply_code: int | None,
                  reply: str, smtp_phase: str | None, reason: str | None, scope: str | None,
                  hard: bool | None, queue_file: str) -> dict:
    """One event row for one SMTP attempt (status sent | deferred | bounced | expired)."""
    diagnostic = f"{reply_code} {reply}".strip() if reply_code is not None else reply
    return {
        "event_id": event_id_for(f"{MTA} attempt {queue_file} {job_id} {row_id} {attempt}", recipient),
        "ts": ts, "mta": MTA, "host": host, "queue_id": f"{job_id}.{row_id}", "message_id": bare_message_id(message_id),
        "sender": sender, "recipient": recipient, "recipient_domain": domain_of(recipient), "carrier": carrier,
        "relay": relay, "status": status, "dsn": dsn_in(reply), "reply_code": reply_code,
        "smtp_phase": smtp_phase, "diagnostic": diagnostic[:2000] if diagnostic else None, "reason": reason,
        "scope": scope, "hard": hard, "source_file": f"{MTA}-sender:{queue_file}", "source_offset": row_id,
    }


def bounce_event(*, ts: float, host: str, bounce_id: str, position: int, message_id: str | None, sender: str,
                 recipient: str, carrier: str, relay: str | None, status: str, dsn: str | None,
                 reply_code: int | None, smtp_phase: str | None, diagnostic: str, reason: str, scope: str,
                 hard: bool | None, source: str) -> dict:
    """One event row for one recipient named in a bounce mail."""
    return {
        "event_id": event_id_for(f"{MTA} bounce {bounce_id} {position}", recipient),
        "ts": ts, "mta": MTA, "host": host, "queue_id": None, "message_id": bare_message_id(message_id), "sender": sender,
        "recipient": recipient, "recipient_domain": domain_of(recipient), "carrier": carrier, "relay": relay,
        "status": status, "dsn": dsn, "reply_code": reply_code, "smtp_phase": smtp_phase,
        "diagnostic": diagnostic[:2000] if diagnostic else None, "reason": reason, "scope": scope, "hard": hard,
        "source_file": f"{MTA}-bounces:{source}", "source_offset": position,
    }


def to_table(rows: list[dict]):
    """Event dicts (ts in epoch seconds) -> an Arrow table of EVENT_SCHEMA."""
    import pyarrow as pa

    fixed = []
    for r in rows:
        r = dict(r)
        r["ts"] = datetime.fromtimestamp(float(r["ts"]), timezone.utc)
        fixed.append(r)
    return pa.Table.from_pylist(fixed, schema=EVENT_SCHEMA)


def flush_outbox(queue, data_dir: str | Path, *, limit: int = 50_000) -> int:
    """Move the outbox's rows into the event store; returns how many were moved.

    Written first, dropped from the outbox after: a crash in between writes them again at the next
    flush, and the store keeps one row per event id.
    """
    from ..store.event_store import EventStore

    moved = 0
    while True:
        rows, last = queue.outbox(limit)
        if not rows:
            return moved
        EventStore(data_dir).write(to_table(rows))
        queue.drop_from_outbox(last)
        moved += len(rows)
        if len(rows) < limit:
            return moved
