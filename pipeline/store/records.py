"""The one shape of a delivery event, as an Arrow schema, plus address normalisation.

Parsers produce rows with these columns; the event store writes exactly this schema; SQL in sql/
reads it through the `events` view. Nobody else defines event columns.
"""

from __future__ import annotations

import binascii
from array import array

import pyarrow as pa

from ..core.hashes import blake2b  # not hashlib: it loads OpenSSL (2.5 ms)
from . import arrow_compute as pc

# status: sent | deferred | bounced | expired | undeliverable
# smtp_phase: connect | helo | mail | rcpt | data | end_of_data | quit | None (not an SMTP reply)
# scope: recipient | sender | network | unknown
EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("mta", pa.string(), nullable=False),
        pa.field("host", pa.string()),
        pa.field("queue_id", pa.string()),
        pa.field("message_id", pa.string()),
        pa.field("sender", pa.string()),
        pa.field("recipient", pa.string(), nullable=False),
        pa.field("recipient_domain", pa.string()),
        pa.field("carrier", pa.string()),
        pa.field("relay", pa.string()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("dsn", pa.string()),
        pa.field("reply_code", pa.int16()),
        pa.field("smtp_phase", pa.string()),
        pa.field("diagnostic", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("scope", pa.string()),
        pa.field("hard", pa.bool_()),
        pa.field("source_file", pa.string()),
        pa.field("source_offset", pa.int64()),
    ]
)

EVENT_COLUMNS = tuple(EVENT_SCHEMA.names)

# Columns a parser fills; the classifier fills carrier, reason, scope, hard; the store fills event_id.
PARSED_COLUMNS = tuple(
    c for c in EVENT_COLUMNS if c not in ("event_id", "carrier", "reason", "scope", "hard")
)


def normalise_address(address: str | None) -> str:
    """Lower-case, strip <>, surrounding space and the quotes of a quoted local part.

    `"Taro..Yamada."@DoCoMo.ne.jp` -> `taro..yamada.@docomo.ne.jp`. Case is folded in the local
    part too: carriers treat local parts case-insensitively, and one address must not split in two.
    """
    if not address:
        return ""
    a = address.strip().strip("<>").strip()
    if a.startswith('"'):
        at = a.rfind("@")
        if at > 0 and a[at - 1] == '"':
            a = a[1 : at - 1].replace('\\"', '"').replace("\\\\", "\\") + a[at:]
    return a.lower()


def canonical_address(address: str | None) -> str:
    """The address as a key: normalise_address, then the domain in A-label form
    (`Taro@例え.JP` and `taro@XN--R8JZ45G.jp` -> `taro@xn--r8jz45g.jp`; pipeline/core/idn.py).
    What the queue, the suppression list and the event store key on; a domain that is no valid
    IDN is left as normalise_address made it (the recipient check refuses it)."""
    from ..core.idn import ascii_address

    return ascii_address(normalise_address(address))


# A recipient split at its last @ (RE2, by Arrow): `.` matches no newline, so a value holding one
# does not match (it is not one address), nor does one without @.
_LAST_AT_RE2 = r"^(?P<local>.*)@(?P<domain>[^@\n]*)$"


def canonical_recipients(table: pa.Table) -> pa.Table:
    """`table` (EVENT_SCHEMA) with every recipient in canonical form and its recipient_domain
    the domain of that: a bounce logged to `taro@例え.jp` is stored as `taro@xn--r8jz45g.jp`, so it
    counts against the address the queue and the suppression list key on. A table whose
    recipients are all ASCII (numpy over the column's bytes: under 1 ms per million rows) is
    returned as it is; otherwise the rows with a non-ASCII recipient (found by Arrow, in the chunks
    that have a high byte) are split at their last @ by Arrow (RE2), each distinct domain is
    converted once in Python (pipeline/core/idn.py) and the new values are joined and put in by
    Arrow: a few percent of the rows, without a Python string per row.
    Event ids are left alone (they hash the log line as read). Called by EventStore.write: every
    event reaches the store through it."""
    import numpy as np

    from . import arrow_build as ab

    column = table.column("recipient")
    rows, base = [], 0
    for chunk in column.chunks:
        n, data = len(chunk), chunk.buffers()[2]
        if n and data is not None:
            offsets = ab.offsets(chunk)
            # only the chunk's own bytes: a slice shares the buffer of the whole block it was cut from
            raw = np.frombuffer(data, np.uint8)[offsets[0]: offsets[-1]]
            if raw.size and raw.max() >= 0x80:
                rows.append(base + np.flatnonzero(ab.to_bools(pc.invert(pc.string_is_ascii(chunk)))))
        base += n
    if not rows:
        return table
    from ..core.idn import IdnError, ascii_domain

    rows = np.concatenate(rows)
    # local part and domain, split at the last @ (the domain holds none; a value with a newline
    # is not one address: no match, left as it is, as is a value without @)
    parts = pc.extract_regex(pc.take(column, ab.indices(rows)), _LAST_AT_RE2)
    if isinstance(parts, pa.ChunkedArray):
        parts = parts.combine_chunks()
    matched = ab.to_bools(pc.is_valid(parts))
    if not matched.any():
        return table
    if not matched.all():
        keep = ab.booleans(matched)
        rows, parts = rows[matched], pc.filter(parts, keep)
    local, domain = parts.field("local"), parts.field("domain")
    encoded = pc.dictionary_encode(domain)               # each distinct domain converted once
    domains, canonical = encoded.dictionary.to_pylist(), []
    for d in domains:
        try:
            canonical.append(ascii_domain(d))
        except IdnError:
            canonical.append(d)   # no A-label form: kept as written (the recipient check refuses such an address)
    if canonical == domains:
        return table   # non-ASCII local parts only
    new_domain = pc.take(ab.strings(canonical), encoded.indices)
    new_recipient = pc.binary_join_element_wise(local, new_domain, ab.scalar("@"))
    for name, values in (("recipient", new_recipient), ("recipient_domain", new_domain)):
        at = table.schema.get_field_index(name)
        table = table.set_column(at, table.schema.field(at), ab.with_rows_replaced(table.column(name), rows, values))
    return table


def bare_message_id(value: str | None) -> str | None:
    """A Message-ID as the event store keeps it: without its angle brackets and surrounding
    space (`<20261110.1@mail.example.jp>` -> `20261110.1@mail.example.jp`), None for none. The
    one spelling of every source (Postfix cleanup's and sendmail's `msgid=`, the daemon's own
    messages, the bounce mails' returned headers), so a message is found by its id across them."""
    if value is None:
        return None
    return value.strip().strip("<>") or None


def domain_of(address: str) -> str:
    at = address.rfind("@")
    return address[at + 1 :] if at >= 0 else ""


# A recipient that is no mail address: a local user (sendmail's local mailer after alias expansion
# logs `to=root`, `to=<root>`, `to=\root`), a program (`to=|/usr/bin/procmail`, `"|…"`), a file
# (`to=/var/mail/x`), an include list (`:include:/etc/list`), or nothing after its last `@` (its
# domain, domain_of, is empty). Such a delivery is local: not an event (a suppression entry `root`
# would mean nothing), counted as a local delivery (pipeline.ingest.sink). A local delivery to an
# address (Postfix `relay=local`/`virtual`/a pipe, qmail's `to local u@d`, sendmail's `mailer=local`
# to `root@host`) is an event like any other: its refusal says that address takes no mail.
LOCAL_PREFIXES = ("|", "/", "\\", '"|', '"/', ":include:")
LOCAL_PREFIX_RE2 = r'^(?:"?[|/\\]|:include:)'   # LOCAL_PREFIXES as one pattern (RE2 and re alike)


def is_local_recipient(recipient: str, domain: str) -> bool:
    """Is this recipient (with its domain, domain_of) no mail address (see LOCAL_PREFIXES)?"""
    return not domain or recipient.startswith(LOCAL_PREFIXES)


def _id_bytes(line: bytes | str, recipient: str) -> bytes:
    """What an event id hashes: the line without its line end, then NUL + recipient if any."""
    if isinstance(line, str):
        line = line.encode("utf-8", "surrogateescape")
    data = line.rstrip(b"\r\n")
    if recipient:
        data += b"\x00" + recipient.encode("utf-8", "surrogateescape")
    return data


ID_BYTES = 10
_BLAKE10 = blake2b(digest_size=ID_BYTES)


def event_id_for(line: bytes | str, recipient: str = "", extra: str = "") -> str:
    """Stable id: the same log line (and recipient on it) always gives the same id.

    Deliberately independent of the file name and offset, so a rotated or gzipped copy of an
    already-ingested file adds nothing.
    """
    data = _id_bytes(line, recipient)
    if extra:
        data += b"\x01" + extra.encode()
    return blake2b(data, digest_size=ID_BYTES).hexdigest()


def event_ids_for(lines: list[str], recipients: list[str]) -> list[str]:
    """event_id_for(line, recipient) for many rows at once (the batch path of ingest)."""
    blake = blake2b
    return [blake(_id_bytes(line, rcpt), digest_size=ID_BYTES).hexdigest() for line, rcpt in zip(lines, recipients)]


def event_ids_for_plain(lines: list[bytes], recipients: list[str]) -> pa.StringArray:
    """event_ids_for() of ASCII lines without their line end, each with a recipient (what the
    Postfix block reader has), as an Arrow array: the same ids, about twice as fast (a copied
    hasher instead of a new one per id, one hex conversion for all)."""
    digests = []
    append = digests.append
    for line, rcpt in zip(lines, recipients):
        h = _BLAKE10.copy()
        h.update(b"%s\x00%s" % (line, rcpt.encode()))
        append(h.digest())
    n = len(digests)
    width = 2 * ID_BYTES
    offsets = pa.py_buffer(array("i", range(0, width * n + 1, width)))
    return pa.StringArray.from_buffers(n, offsets, pa.py_buffer(binascii.hexlify(b"".join(digests))))
