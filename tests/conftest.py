"""Shared test helpers: a config on a temp data dir, and events written through the real store."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from pipeline.core.config import load_config
from pipeline.store.event_store import EventStore
from pipeline.store.records import EVENT_SCHEMA, domain_of, event_id_for

pytest_plugins = ["lakekit"]  # the lake tests' fixtures (s3_server, bucket): one moto server per session

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_logs"
SHARED = Path(os.environ.get("MAILHYGIENE_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus" / "public"
TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def cfg(tmp_path):
    return load_config(None, data_dir=tmp_path / "data", timezone="Asia/Tokyo")


def make_config(tmp_path, toml: str = "", **kw):
    path = tmp_path / "mailhygiene.toml"
    path.write_text(toml, encoding="utf-8")
    return load_config(path, data_dir=kw.get("data_dir", tmp_path / "data"), timezone=kw.get("timezone", "Asia/Tokyo"))


def sender_toml(relay: str, from_address: str = "news@mail.example.jp") -> str:
    """The [sender] table the sender tests share (more sender keys may follow it)."""
    return f'[sender]\nfrom_address = "{from_address}"\nfrom_name = "配信センター"\ndefault_relay = "{relay}"\n'


_counter = iter(range(10**9))


def event(recipient, when, status="bounced", reason="user_unknown", scope="recipient", carrier=None, mta="postfix", diagnostic=None, **extra):
    """One event row; `when` is a local Asia/Tokyo datetime unless it has a tzinfo."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=TOKYO)
    n = next(_counter)
    row = {
        "event_id": event_id_for(f"test line {n}", recipient), "ts": when, "mta": mta, "host": "mx1",
        "queue_id": f"Q{n}", "message_id": None, "sender": "news@mail.example.jp",
        "recipient": recipient, "recipient_domain": domain_of(recipient), "carrier": carrier or "docomo",
        "relay": None, "status": status, "dsn": "5.1.1" if status != "sent" else "2.0.0",
        "reply_code": 550 if status != "sent" else 250, "smtp_phase": "rcpt",
        "diagnostic": diagnostic or ("550 Unknown user" if status != "sent" else "250 ok"),
        "reason": "delivered" if status == "sent" else reason,
        "scope": "none" if status == "sent" else scope, "hard": status == "bounced",
        "source_file": "test", "source_offset": n,
    }
    row.update(extra)
    return row


def store_events(cfg, rows):
    table = pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)
    return EventStore(cfg.data_dir).write(table)


def at(day, hh=12, mm=0, month=11, year=2026):
    return datetime(year, month, day, hh, mm)
