"""Postfix logs a block at a time: PostfixParser's work done in columns (Arrow + DuckDB).

Batch ingest of a large Postfix log is dominated by per-line Python. This reader takes a block
of whole lines (a few tens of MB), splits it with Arrow's multithreaded CSV reader (one column,
no quoting), and runs the parser's logic as SQL in DuckDB:

    sql/postfix_block_parse.sql     lines -> queue-id touches (delivery, from=, message-id=, removed)
    sql/postfix_block_sequence.sql  the queue-id joins (sender, message-id, lifetimes, expiry epochs)
    sql/postfix_block_events.sql    delivery events and the `expired` rows of qmgr's expiry lines
    sql/postfix_block_state.sql     the queue ids still open, handed back to the parser

Python does only what is per distinct value (the hour of a timestamp, a carrier per domain and
relay, a classification per distinct reply) or rare (fields of unusual shape, via the per-line
parser's own functions), plus the event ids. The per-line PostfixParser stays the reference and
the only parser of live logs; both share one state (PostfixParser.queue), so blocks and lines
can alternate. A block that is not plain ASCII or has NUL, CR, over-long lines is declined
(read() returns None) and the caller feeds its lines to the per-line parser, which knows how to
reject and recover them. tests/test_postfix_block.py checks that both paths store identical
events and state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..carriers import CarrierTable
from ..classify import classify
from ..records import EVENT_SCHEMA, domain_of, normalise_address
from ..warehouse import _PARAM_RE, read_sql
from .common import MONTHS, reply_code_of, iso_us
from .postfix import PostfixParser, parse_fields, relay_host, smtp_phase_of

_CSV_PARSE = pacsv.ParseOptions(delimiter="\x01", quote_char=False, escape_char=False,
                                newlines_in_values=False, ignore_empty_lines=False)
_CSV_CONVERT = pacsv.ConvertOptions(column_types={"line": pa.string()}, strings_can_be_null=False,
                                    quoted_strings_can_be_null=False)

_FIX_SCHEMA = pa.schema([("n", pa.int64()), ("recipient", pa.string()), ("relay", pa.string()),
                         ("dsn", pa.string()), ("status", pa.string()), ("text", pa.string()),
                         ("sender", pa.string()), ("message_id", pa.string()), ("malformed", pa.bool_())])
_CARRY_SCHEMA = pa.schema([
    ("n", pa.int64()), ("off", pa.int64()), ("line", pa.string()), ("kind", pa.string()),
    ("host", pa.string()), ("qid", pa.string()), ("ts", pa.int64()), ("seen", pa.int64()),
    ("recipient", pa.string()), ("relay", pa.string()), ("dsn", pa.string()), ("status", pa.string()),
    ("text", pa.string()), ("sender", pa.string()), ("message_id", pa.string()), ("source_file", pa.string()),
])


@dataclass
class BlockResult:
    table: pa.Table                 # EVENT_SCHEMA rows, classified, with event ids
    malformed: list[int]            # byte offsets of malformed delivery lines (rejects)
    lines: int                      # lines in the block


def block_eligible(block: bytes, max_line_bytes: int) -> bool:
    """Plain ASCII without the bytes the per-line path must see (NUL, CR, the CSV delimiter)."""
    return block.isascii() and b"\x00" not in block and b"\r" not in block and b"\x01" not in block


class PostfixBlockReader:
    def __init__(self, parser: PostfixParser, carriers: CarrierTable, max_line_bytes: int):
        self.parser = parser
        self.carriers = carriers
        self.max_line_bytes = max_line_bytes
        self.con = duckdb.connect()
        self.con.execute("SET preserve_insertion_order = false")
        self._sql = {name: _statements(read_sql(name)) for name in (
            "postfix_block_parse", "postfix_block_sequence", "postfix_block_events", "postfix_block_state")}

    def close(self) -> None:
        self.con.close()

    # ------------------------------------------------------------------ one block
    def read(self, block: bytes, start: int) -> BlockResult | None:
        """Events of `block` (whole lines, the last one may lack its newline) read from byte
        `start` of the parser's current file; None when the block must go line by line."""
        if not block or not block_eligible(block, self.max_line_bytes):
            return None
        lines = pacsv.read_csv(pa.BufferReader(block), read_options=pacsv.ReadOptions(
            column_names=["line"], block_size=1 << 23, use_threads=True),
            parse_options=_CSV_PARSE, convert_options=_CSV_CONVERT).column("line")
        if block.endswith(b"\n") and block.count(b"\n") != len(lines):
            return None  # the CSV reader saw the lines differently: let the reference read them
        lengths = pc.binary_length(lines).to_numpy(zero_copy_only=False).astype(np.int64)
        if len(lengths) and int(lengths.max()) + 1 > self.max_line_bytes:
            return None
        offsets = np.empty(len(lengths), dtype=np.int64)
        if len(lengths):
            offsets[0] = start
            np.cumsum(lengths[:-1] + 1, out=offsets[1:])
            offsets[1:] += start
        con = self.con
        con.register("pf_block", pa.table({"n": np.arange(len(lengths), dtype=np.int64), "off": offsets, "line": lines}))
        try:
            params = {"ttl_us": self.parser.STATE_TTL_US, "source_file": self.parser.ctx.source_file}
            self._run("postfix_block_parse", params)
            con.register("pf_fix", self._fixes())
            con.register("pf_stamps", self._stamps())
            con.register("pf_carry", self._carry_in())
            self._run("postfix_block_sequence", params)
            events = self._run("postfix_block_events", params, arrow=True)
            state = self._run("postfix_block_state", params).fetchall()
            malformed = [r[0] for r in con.execute("SELECT off FROM pf_seq WHERE malformed ORDER BY n").fetchall()]
        finally:
            for name in ("pf_block", "pf_fix", "pf_stamps", "pf_carry"):
                con.unregister(name)
        self.parser.queue = self._carry_out(state)
        return BlockResult(self._classified(events), malformed, len(lengths))

    def _run(self, name: str, params: dict, arrow: bool = False):
        """Run the statements of sql/<name>.sql in order; the last one's result."""
        *head, last = self._sql[name]
        for sql, wanted in head:
            self.con.execute(sql, {k: params[k] for k in wanted})
        sql, wanted = last
        if arrow:
            return self.con.sql(sql, params={k: params[k] for k in wanted}).to_arrow_table()
        return self.con.execute(sql, {k: params[k] for k in wanted})

    # ------------------------------------------------------------------ Python's share
    def _fixes(self) -> pa.Table:
        """Rows of unusual shape (quoted local parts, odd keys): the reference functions decide."""
        rows = self.con.execute("SELECT n, kind, rest FROM pf_parsed WHERE NOT simple").fetchall()
        out = {name: [] for name in _FIX_SCHEMA.names}
        for n, kind, rest in rows:
            rec = dict.fromkeys(_FIX_SCHEMA.names)
            rec["n"], rec["malformed"] = n, False
            if kind == "D":
                fields = parse_fields(rest)
                if fields is None or "to" not in fields:
                    rec["malformed"] = True
                else:
                    rec.update(recipient=normalise_address(fields["to"]), relay=fields.get("relay"),
                               dsn=fields.get("dsn"), status=fields["status"], text=fields["_text"])
            elif kind == "F":
                rec["sender"] = normalise_address(rest[5:].split(", ", 1)[0])
            elif kind == "M":
                rec["message_id"] = rest[11:].strip().strip("<>") or None
            for name in _FIX_SCHEMA.names:
                out[name].append(rec[name])
        return pa.Table.from_pydict(out, schema=_FIX_SCHEMA)

    def _stamps(self) -> pa.Table:
        """Microseconds (UTC) of each distinct stamp minute, by the parser's own year inference
        and zone rules (a key that makes no time gets NULL: its lines are skipped)."""
        ctx = self.parser.ctx
        keys, bases = [], []
        for (key,) in self.con.execute("SELECT DISTINCT stamp_key FROM pf_parsed").fetchall():
            base = None
            try:
                if key[0] == "T":  # 'TNov  1 00:00'
                    month, day = MONTHS.get(key[1:4]), int(key[5:7])
                    if month is not None:
                        base = ctx.local_us(ctx.syslog_year(month, day), month, day, key[8:13] + ":00", None)
                else:  # 'I2024-08-26 01:33+09:00'
                    base = iso_us(f"{key[1:11]}T{key[12:17]}:00{key[17:]}", ctx.tz)
            except ValueError:
                base = None
            keys.append(key)
            bases.append(base)
        return pa.table({"key": pa.array(keys, pa.string()), "base_us": pa.array(bases, pa.int64())})

    def _carry_in(self) -> pa.Table:
        """The parser's open queue ids as rows before the block (n < 0)."""
        out = {name: [] for name in _CARRY_SCHEMA.names}

        def add(**values):
            for name in _CARRY_SCHEMA.names:
                out[name].append(values.get(name))

        n = -1 - sum(1 + len(st["deferred"]) for st in self.parser.queue.values())
        for qid, st in self.parser.queue.items():
            n += 1
            add(n=n, kind="S", qid=qid, ts=st["seen"], seen=st["seen"], sender=st["sender"],
                message_id=st["message_id"])
            for row in st["deferred"].values():
                n += 1
                add(n=n, off=row["source_offset"], line=row["_line"], kind="D", host=row["host"], qid=qid,
                    ts=row["ts"], seen=st["seen"], recipient=row["recipient"], relay=row["relay"],
                    dsn=row["dsn"], status=row["status"], text=row["diagnostic"], sender=row["sender"],
                    message_id=row["message_id"], source_file=row["source_file"])
        return pa.Table.from_pydict(out, schema=_CARRY_SCHEMA)

    def _carry_out(self, rows: list[tuple]) -> dict:
        """postfix_block_state.sql rows -> PostfixParser.queue (the per-line parser's shape)."""
        queue: dict[str, dict] = {}
        for (kind, qid, seen, sender, message_id, ts, host, recipient, relay, dsn, status, text,
             source_file, source_offset, line, _n) in rows:
            if kind == "S":
                queue[qid] = {"sender": sender, "message_id": message_id, "seen": seen, "deferred": {}}
            else:
                queue[qid]["deferred"][recipient] = {
                    "ts": ts, "mta": "postfix", "host": host, "queue_id": qid, "message_id": message_id,
                    "sender": sender, "recipient": recipient, "recipient_domain": domain_of(recipient),
                    "relay": relay_host(relay), "status": status, "dsn": dsn,
                    "reply_code": reply_code_of(text), "smtp_phase": smtp_phase_of(text),
                    "diagnostic": text, "source_file": source_file, "source_offset": source_offset,
                    "_line": line,
                }
        return queue

    def _classified(self, events: pa.Table) -> pa.Table:
        """Carrier (per distinct domain and relay), reason/scope/hard (per distinct reply), ids."""
        con = self.con
        con.register("pf_events", events)
        try:
            pairs = con.execute("SELECT DISTINCT recipient_domain, relay FROM pf_events").fetchall()
            carrier_for = self.carriers.carrier_for
            con.register("pf_carriers", pa.table({
                "recipient_domain": pa.array([p[0] for p in pairs], pa.string()),
                "relay": pa.array([p[1] for p in pairs], pa.string()),
                "carrier": pa.array([carrier_for(p[0] or "", p[1]) for p in pairs], pa.string())}))
            replies = con.execute("SELECT DISTINCT status, diagnostic, dsn, reply_code, smtp_phase "
                                  "FROM pf_events WHERE status <> 'sent'").fetchall()
            classes = [classify(status=s, diagnostic=d, dsn=dsn, reply_code=rc, smtp_phase=ph, mta="postfix")
                       for s, d, dsn, rc, ph in replies]
            con.register("pf_classes", pa.table({
                "status": pa.array([r[0] for r in replies], pa.string()),
                "diagnostic": pa.array([r[1] for r in replies], pa.string()),
                "dsn": pa.array([r[2] for r in replies], pa.string()),
                "reply_code": pa.array([r[3] for r in replies], pa.int16()),
                "smtp_phase": pa.array([r[4] for r in replies], pa.string()),
                "reason": pa.array([c.reason for c in classes], pa.string()),
                "scope": pa.array([c.scope for c in classes], pa.string()),
                "hard": pa.array([c.hard for c in classes], pa.bool_())}))
            table = con.sql("""
                SELECT e.*, c.carrier,
                    CASE WHEN e.status = 'sent' THEN 'delivered' ELSE k.reason END AS reason,
                    CASE WHEN e.status = 'sent' THEN 'none' ELSE k.scope END AS scope,
                    CASE WHEN e.status = 'sent' THEN NULL ELSE k.hard END AS hard
                FROM pf_events e
                JOIN pf_carriers c ON c.recipient_domain IS NOT DISTINCT FROM e.recipient_domain
                                  AND c.relay IS NOT DISTINCT FROM e.relay
                LEFT JOIN pf_classes k ON e.status <> 'sent' AND k.status = e.status
                    AND k.diagnostic IS NOT DISTINCT FROM e.diagnostic AND k.dsn IS NOT DISTINCT FROM e.dsn
                    AND k.reply_code IS NOT DISTINCT FROM e.reply_code
                    AND k.smtp_phase IS NOT DISTINCT FROM e.smtp_phase
                """).to_arrow_table()
        finally:
            for name in ("pf_events", "pf_carriers", "pf_classes"):
                con.unregister(name)
        ids = event_ids(table.column("_line").to_pylist(), table.column("recipient").to_pylist())
        table = table.append_column("event_id", pa.array(ids, pa.string()))
        return table.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)


def _statements(sql: str) -> list[tuple[str, set[str]]]:
    """A SQL file's statements (split at a ';' ending a line) with the $params each one uses."""
    out = []
    for part in sql.split(";\n"):
        body = "\n".join(line.split("--", 1)[0] for line in part.splitlines())
        if body.strip():
            out.append((part, set(_PARAM_RE.findall(body))))
    return out


def event_ids(lines: list[str], recipients: list[str]) -> list[str]:
    """records.event_id_for(line, recipient) for many ASCII lines without line ends."""
    blake = hashlib.blake2b
    return [blake(ln.encode() + b"\x00" + r.encode(), digest_size=10).hexdigest()
            for ln, r in zip(lines, recipients)]
