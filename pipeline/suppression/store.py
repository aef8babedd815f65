"""The suppression list: runs the multi-day rule (sql/suppression_candidates.sql), guards it,
keeps the list and its history, and answers "is this address suppressed?".

Owner of <data_dir>/suppression/current.parquet (the list, one row per address with its
evidence) and history.parquet (every add / release, never rewritten except to append). Both are
replaced atomically under a lock. Called by the CLI (`suppress`, `suppression …`, `export`,
`clean`), by reports and by the sender (suppressed_addresses()).
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core.config import Config
from ..core.errors import GuardTripped, InputError, NoDataError
from ..store.event_store import EventStore
from ..store.records import normalise_address
from ..store.warehouse import attach_views, run_sql

import duckdb

UTC = timezone.utc

CURRENT_SCHEMA = pa.schema([
    ("address", pa.string()), ("carrier", pa.string()), ("reasons", pa.string()),
    ("first_error", pa.timestamp("us", tz="UTC")), ("last_error", pa.timestamp("us", tz="UTC")),
    ("error_count", pa.int64()), ("distinct_days", pa.int64()), ("window_start", pa.date32()),
    ("last_dsn", pa.string()), ("last_reply_code", pa.int16()), ("last_diagnostic", pa.string()),
    ("last_sent", pa.timestamp("us", tz="UTC")), ("event_ids", pa.string()),
    ("source", pa.string()), ("note", pa.string()), ("added_at", pa.timestamp("us", tz="UTC")),
    ("rule", pa.string()),
])
HISTORY_SCHEMA = pa.schema([
    ("at", pa.timestamp("us", tz="UTC")), ("action", pa.string()), ("address", pa.string()),
    ("source", pa.string()), ("note", pa.string()), ("rule", pa.string()), ("evidence", pa.string()),
])
# Column order of the CSV export (address first).
EXPORT_COLUMNS = [
    "address", "carrier", "reasons", "first_error", "last_error", "error_count", "distinct_days",
    "window_start", "last_dsn", "last_reply_code", "last_diagnostic", "last_sent", "source",
    "note", "added_at", "rule",
]


def rule_label(cfg: Config) -> str:
    r = cfg["rule"]
    return (f"min_errors={r['min_errors']} min_days={r['min_days']} window_days={r['window_days']} "
            f"tz={cfg.timezone_name} reasons={'+'.join(r['counted_reasons'])}")


# --------------------------------------------------------------------------- storage
class SuppressionStore:
    def __init__(self, data_dir: str | os.PathLike):
        self.dir = Path(data_dir) / "suppression"
        self.current_path = self.dir / "current.parquet"
        self.history_path = self.dir / "history.parquet"

    @contextmanager
    def lock(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def current(self) -> pa.Table:
        if self.current_path.is_file():
            return pq.read_table(self.current_path).cast(CURRENT_SCHEMA)
        return CURRENT_SCHEMA.empty_table()

    def history(self) -> pa.Table:
        if self.history_path.is_file():
            return pq.read_table(self.history_path).cast(HISTORY_SCHEMA)
        return HISTORY_SCHEMA.empty_table()

    def save(self, current: pa.Table, history: pa.Table) -> None:
        """History first, then the list: a crash between them leaves an extra history line,
        never an entry without its history."""
        self.dir.mkdir(parents=True, exist_ok=True)
        _atomic_parquet(history.cast(HISTORY_SCHEMA), self.history_path)
        _atomic_parquet(current.cast(CURRENT_SCHEMA), self.current_path)


def _atomic_parquet(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def suppressed_addresses(cfg: Config) -> frozenset[str]:
    """Normalised addresses currently on the list (what the sender must never contact)."""
    table = SuppressionStore(cfg.data_dir).current()
    return frozenset(table.column("address").to_pylist())


def is_suppressed(cfg: Config, address: str) -> bool:
    return normalise_address(address) in suppressed_addresses(cfg)


# --------------------------------------------------------------------------- the rule
@dataclass
class GuardReport:
    tripped: bool = False
    reasons: list[str] = field(default_factory=list)
    active_addresses: int = 0
    new_fraction: float = 0.0
    carrier_days: list[dict] = field(default_factory=list)


@dataclass
class RuleResult:
    as_of: datetime
    candidates: pd.DataFrame          # every address the rule marks, with evidence
    new: pd.DataFrame                 # candidates not on the list yet
    already_listed: int
    guard: GuardReport
    applied: bool
    dry_run: bool
    forced: bool


def parse_as_of(value: str | None, cfg: Config) -> datetime:
    """`2026-11-20` (end of that local day) or an ISO timestamp (local when no zone); None = now."""
    if value is None or value == "":
        return datetime.now(UTC)
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            return datetime.combine(d, time(23, 59, 59, 999999), tzinfo=cfg.tz).astimezone(UTC)
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"cannot read {value!r} as a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+09:00]") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=cfg.tz)
    return dt.astimezone(UTC)


def _connection(cfg: Config, store: SuppressionStore) -> duckdb.DuckDBPyConnection:
    if EventStore(cfg.data_dir).is_empty():
        if not cfg.data_dir.exists():
            raise NoDataError(f"data dir {cfg.data_dir} does not exist: run `mailhygiene ingest LOGS` first "
                              "(or pass the right --data-dir)")
        raise NoDataError(f"no events in {cfg.data_dir} yet: run `mailhygiene ingest LOGS` first")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    attach_views(con, cfg.data_dir)
    hist = store.history().to_pandas()
    rel = hist[hist["action"] == "released"][["address", "at"]].rename(columns={"at": "released_at"})
    con.register("releases", pa.Table.from_pandas(rel, preserve_index=False,
                 schema=pa.schema([("address", pa.string()), ("released_at", pa.timestamp("us", tz="UTC"))])))
    return con


def _rule_params(cfg: Config, as_of: datetime) -> dict:
    r = cfg["rule"]
    return {"tz": cfg.timezone_name, "as_of": as_of, "min_errors": r["min_errors"],
            "min_days": r["min_days"], "window_days": r["window_days"],
            "counted_reasons": list(r["counted_reasons"])}


def evaluate(cfg: Config, as_of: datetime, con=None, store=None) -> pd.DataFrame:
    """Candidates of the rule over the whole stored history up to as_of."""
    store = store or SuppressionStore(cfg.data_dir)
    con = con or _connection(cfg, store)
    return run_sql(con, "suppression_candidates", _rule_params(cfg, as_of)).df()


def check_guard(cfg: Config, con, new: pd.DataFrame, as_of: datetime) -> GuardReport:
    report = GuardReport()
    if new.empty:
        return report
    g, r = cfg["guard"], cfg["rule"]
    first = pd.Timestamp(new["first_error"].min()).to_pydatetime()
    since = first - timedelta(days=r["window_days"])
    active = run_sql(con, "active_addresses", {"since": since, "as_of": as_of}).fetchone()[0]
    report.active_addresses = int(active)
    report.new_fraction = len(new) / active if active else 1.0
    if len(new) > g.get("min_new", 20) and report.new_fraction > g["max_new_fraction"]:
        report.tripped = True
        report.reasons.append(
            f"{len(new)} new entries are {report.new_fraction:.1%} of the {active} addresses active "
            f"since {since:%Y-%m-%d}: more than guard.max_new_fraction = {g['max_new_fraction']:.1%}")
    days = run_sql(con, "guard_carrier_days", {
        **_rule_params(cfg, as_of), "since": since, "block_rate": float(g["block_rate"]),
        "block_min_errors": int(g["block_min_errors"])}).df()
    for row in days.to_dict("records"):
        report.carrier_days.append(row)
        report.tripped = True
        report.reasons.append(
            f"{row['carrier']} on {row['day']:%Y-%m-%d}: {row['counted_errors']} of {row['attempts']} attempts "
            f"({row['error_rate']:.0%}) failed as dead addresses, which looks like {row['carrier']} blocking us; "
            f"top replies: {row['top_replies']}")
    return report


def run_rule(cfg: Config, *, as_of: str | datetime | None = None, dry_run: bool = False,
             force: bool = False) -> RuleResult:
    """Evaluate the rule; add the new addresses unless dry_run or the guard trips (unless force).

    Raises GuardTripped (after nothing was written) when the guard refuses the run.
    """
    as_of_dt = as_of if isinstance(as_of, datetime) else parse_as_of(as_of, cfg)
    store = SuppressionStore(cfg.data_dir)
    with store.lock():
        con = _connection(cfg, store)
        try:
            candidates = evaluate(cfg, as_of_dt, con, store)
            listed = set(store.current().column("address").to_pylist())
            new = candidates[~candidates["address"].isin(listed)].reset_index(drop=True)
            guard = check_guard(cfg, con, new, as_of_dt)
        finally:
            con.close()
        result = RuleResult(as_of=as_of_dt, candidates=candidates, new=new,
                            already_listed=len(candidates) - len(new), guard=guard,
                            applied=False, dry_run=dry_run, forced=force)
        if dry_run or new.empty:
            return result
        if guard.tripped and not force:
            raise GuardTripped(
                "the suppression guard refused this run; nothing was changed. "
                + " ; ".join(guard.reasons)
                + ". Check the replies (a block lifts when the cause is fixed); "
                  "re-run with --force only if these really are dead addresses.")
        now = datetime.now(UTC)
        label = rule_label(cfg)
        added = new.copy()
        added["source"] = "rule"
        added["note"] = "forced past the guard" if guard.tripped else None
        added["added_at"] = now
        added["rule"] = label
        current = pa.concat_tables([store.current(), _to_current(added)])
        hist = pa.concat_tables([store.history(), _history_rows(added, "added", now, label)])
        store.save(current, hist)
        result.applied = True
        return result


def _to_current(df: pd.DataFrame) -> pa.Table:
    df = df.copy()
    for col in CURRENT_SCHEMA.names:
        if col not in df.columns:
            df[col] = None
    if "window_start" in df and len(df):
        df["window_start"] = pd.to_datetime(df["window_start"]).dt.date
    return pa.Table.from_pandas(df[CURRENT_SCHEMA.names], schema=CURRENT_SCHEMA, preserve_index=False)


def _history_rows(df: pd.DataFrame, action: str, at: datetime, label: str | None) -> pa.Table:
    evidence_cols = ["carrier", "reasons", "first_error", "last_error", "error_count",
                     "distinct_days", "last_dsn", "last_diagnostic", "event_ids"]
    rows = []
    for rec in df.to_dict("records"):
        ev = {k: (str(rec[k]) if rec.get(k) is not None and not (isinstance(rec.get(k), float) and pd.isna(rec.get(k))) else None)
              for k in evidence_cols if k in rec}
        rows.append({"at": at, "action": action, "address": rec["address"],
                     "source": rec.get("source"), "note": rec.get("note"), "rule": label,
                     "evidence": json.dumps(ev, ensure_ascii=False)})
    return pa.Table.from_pylist(rows, schema=HISTORY_SCHEMA)


# --------------------------------------------------------------------------- manual actions
def _checked_address(address: str) -> str:
    a = normalise_address(address)
    local, at, domain = a.rpartition("@")
    if not at or not local or "." not in domain or " " in a:
        raise InputError(f"{address!r} is not an e-mail address (expected local@domain)")
    return a


def release(cfg: Config, address: str, note: str | None) -> dict:
    """Take an address off the list (kept in history; only errors after now count again)."""
    a = _checked_address(address)
    store = SuppressionStore(cfg.data_dir)
    with store.lock():
        current = store.current()
        entries = current.filter(pc.equal(current.column("address"), a))
        if entries.num_rows == 0:
            raise InputError(f"{a} is not on the suppression list (see `mailhygiene suppression list`)")
        keep = current.filter(pc.not_equal(current.column("address"), a))
        now = datetime.now(UTC)
        df = entries.to_pandas()
        df["note"] = note
        store.save(keep, pa.concat_tables([store.history(), _history_rows(df, "released", now, None)]))
        return df.iloc[0].to_dict()


def add(cfg: Config, address: str, note: str | None) -> None:
    """Put an address on the list by hand (source = manual)."""
    a = _checked_address(address)
    store = SuppressionStore(cfg.data_dir)
    with store.lock():
        current = store.current()
        if a in set(current.column("address").to_pylist()):
            raise InputError(f"{a} is already on the suppression list")
        now = datetime.now(UTC)
        df = pd.DataFrame([{"address": a, "source": "manual", "note": note, "added_at": now,
                            "carrier": _carrier(cfg, a)}])
        store.save(pa.concat_tables([current, _to_current(df)]),
                   pa.concat_tables([store.history(), _history_rows(df, "added", now, "manual")]))


def _carrier(cfg: Config, address: str) -> str:
    from ..classify.carriers import CarrierTable

    return CarrierTable.from_config(cfg["carriers"]).carrier_for(address.rpartition("@")[2])


def entries(cfg: Config) -> pd.DataFrame:
    return SuppressionStore(cfg.data_dir).current().to_pandas()


def show(cfg: Config, address: str) -> dict:
    """An entry (or None), its history and every delivery attempt to the address."""
    a = _checked_address(address)
    store = SuppressionStore(cfg.data_dir)
    current = store.current().to_pandas()
    entry = current[current["address"] == a]
    hist = store.history().to_pandas()
    hist = hist[hist["address"] == a]
    events = pd.DataFrame()
    if not EventStore(cfg.data_dir).is_empty():
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        attach_views(con, cfg.data_dir)
        events = run_sql(con, "address_history", {"address": a, "tz": cfg.timezone_name}).df()
        con.close()
    if entry.empty and hist.empty and events.empty:
        raise InputError(f"{a} is neither on the suppression list nor in any stored event")
    return {"address": a, "entry": None if entry.empty else entry.iloc[0].to_dict(),
            "history": hist, "events": events}


# --------------------------------------------------------------------------- export
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """Cells that a spreadsheet would run as a formula get a leading apostrophe (OWASP)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def export(cfg: Config, path: str | os.PathLike, fmt: str = "csv", excel: bool = False) -> int:
    """Write the list with its evidence; returns the number of rows. Atomic (temp + rename)."""
    df = entries(cfg)
    cols = [c for c in EXPORT_COLUMNS if c in df.columns]
    df = df[cols].sort_values("address")
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a directory: give a file name such as {path}/suppression.csv")
    if not path.parent.exists():
        raise InputError(f"folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp)
    elif fmt == "csv":
        out = df.copy()
        for col in ("first_error", "last_error", "last_sent", "added_at"):
            if col in out:
                out[col] = out[col].map(lambda v: "" if pd.isna(v) else pd.Timestamp(v).tz_convert(cfg.tz).isoformat())
        for col in ("error_count", "distinct_days", "last_reply_code"):  # ints, not 2.0
            if col in out:
                out[col] = out[col].map(lambda v: "" if pd.isna(v) else str(int(v)))
        with open(tmp, "w", encoding="utf-8-sig" if excel else "utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for rec in out.itertuples(index=False):
                w.writerow(["" if v is None or (isinstance(v, float) and pd.isna(v)) else neutralise(str(v)) for v in rec])
    else:
        raise InputError(f"unknown export format {fmt!r}: csv or parquet")
    os.replace(tmp, path)
    return len(df)
