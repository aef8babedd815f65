"""Enqueue a campaign: check the message and the recipients, then write one job to the queue.

Reads the recipient CSV (or a list), the suppression list (pipeline.suppression.store) and the carrier
table (pipeline.classify.carriers); writes through queue.Queue. Called by `send enqueue` and by intake.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import InputError
from ..core.fsutil import read_bounded
from ..store.records import domain_of
from .compose import MessageTemplate, charset_for, check_header_value
from .queue import Queue
from .recipients import check_recipients

_ADDRESS_HEADERS = ("email", "e-mail", "mail", "address", "mailaddress", "mail_address", "to",
                    "メール", "メールアドレス", "アドレス", "宛先")


def decode_csv_bytes(data: bytes) -> str:
    """CSV files from Japanese offices are UTF-8 (often with BOM), CP932 (Excel) or UTF-16 with its
    BOM (Excel's "Unicode テキスト"): the same decoding as any list of addresses."""
    from ..suppression.address_file import decode_list_bytes

    return decode_list_bytes(data, "the recipient CSV")


def parse_recipient_csv(text: str) -> list[str]:
    """Addresses from a CSV: the column named email/address/メールアドレス…, else the one column
    holding addresses (_address_column). A plain list (one address per line) is a one-column CSV; a file whose first
    line has tabs and no comma (Excel's "テキスト (タブ区切り)") is tab-separated.

    A list with two address columns (PCメール and 携帯メール) and no recognised header is refused
    rather than guessed: the first one was taken, and a mobile campaign went to the PC addresses."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = "\t" if "\t" in first and "," not in first else ","
    from ..suppression.address_file import csv_rows  # the one reader of address lists' CSV

    rows = csv_rows(text, delimiter, "the recipient list")
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    named = [i for i, name in enumerate(header) if name in _ADDRESS_HEADERS]
    if len(named) > 1:
        raise InputError(_several_columns(rows[0], named, "are all named like an address column"))
    if named:
        col, body = named[0], rows[1:]
    else:
        body = rows if any("@" in c for c in rows[0]) else rows[1:]  # else a header row we do not recognise
        col = _address_column(rows[0], body)
    return [r[col].strip() for r in body if len(r) > col and r[col].strip()]


def _address_column(header: list[str], body: list[list[str]]) -> int:
    """The column holding addresses (cells that are one word with an @; a note such as "転送
    c@example.jp" is none): exactly one, or InputError naming them."""
    def columns(looks_like):
        return sorted({i for r in body for i, cell in enumerate(r) if looks_like(cell.strip())})

    found = (columns(lambda c: "@" in c and not any(ch.isspace() for ch in c))
             or columns(lambda c: "@" in c))
    if len(found) > 1:
        raise InputError(_several_columns(header, found, "hold addresses"))
    return found[0] if found else 0


def _several_columns(header: list[str], columns: list[int], what: str) -> str:
    names = ", ".join(f"column {i + 1}" + (f" ({header[i].strip()})" if i < len(header) and header[i].strip()
                                           and "@" not in header[i] else "") for i in columns)
    return (f"the recipient list has several columns that {what}: {names}. Which one to send to is not "
            "guessed: name that column `email` (or メールアドレス) and the others otherwise, or save a list "
            "with that column alone; nothing was queued")


def read_recipient_file(path: str | Path, data: bytes | None = None) -> list[str]:
    """The addresses of the list at `path`, or of its bytes `data` already read (standard input)."""
    from ..suppression.address_file import MAX_BYTES  # the same bound as any list of addresses

    too_large = f"recipient file {path} is larger than {MAX_BYTES >> 20} MB: not a list of addresses"
    if data is None:
        data = read_bounded(path, MAX_BYTES, name=f"recipient file {path}", too_large=too_large)
    elif len(data) > MAX_BYTES:
        raise InputError(too_large)
    return parse_recipient_csv(decode_csv_bytes(data))


@dataclass
class EnqueueReport:
    job_id: int | None
    created: bool
    queued: int
    suppressed: int
    duplicates: int
    invalid: list[tuple[str, str]] = field(default_factory=list)
    charsets: dict[str, str] = field(default_factory=dict)    # carrier -> charset actually used
    notes: dict[str, list[str]] = field(default_factory=dict)  # carrier -> substitutions/fallbacks
    suppressed_addresses: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return self.suppressed + self.duplicates + len(self.invalid)

    def lines(self) -> list[str]:
        state = "" if self.created else " (already enqueued earlier: nothing added)"
        out = [f"job {self.job_id}{state}: {self.queued} queued, {self.skipped} skipped "
               f"({self.suppressed} suppressed, {self.duplicates} duplicates, {len(self.invalid)} invalid)"]
        if self.suppressed_addresses:
            out.append(f"  suppressed (on the suppression list, not sent): {len(self.suppressed_addresses)}, e.g. "
                       + ", ".join(self.suppressed_addresses[:3]))
        for reason, n in Counter(r for _, r in self.invalid).most_common():
            examples = ", ".join([a for a, r in self.invalid if r == reason][:3])
            out.append(f"  invalid ({reason}): {n}, e.g. {examples}")
        for carrier, notes in sorted(self.notes.items()):
            for note in notes:
                out.append(f"  {carrier} ({self.charsets[carrier]}): {note}")
        return out


def _carrier_lookup(cfg):
    from ..classify.carriers import CarrierTable

    return CarrierTable.from_config(cfg.carriers).carrier_for


def load_suppressed(cfg) -> frozenset[str]:
    """The suppression list, or SuppressionUnavailable: the sender fails closed.

    suppression.store.suppressed_addresses() raises SuppressionUnavailable when the list is
    missing while its history records changes, unreadable, or older than its history; any other
    failure to read it is turned into the same stop here. Never "nothing suppressed" by accident.
    """
    from ..core.errors import SuppressionUnavailable
    from ..suppression.store import suppressed_addresses

    prefix = "the suppression list cannot be trusted, so nothing is sent until it is repaired: "
    where = Path(cfg.data_dir) / "suppression"
    if os.path.lexists(where) and not where.is_dir():  # read as "no list yet", it would suppress nothing
        raise SuppressionUnavailable(prefix + f"{where} is not a directory (move it away, or restore the "
                                     "suppression directory from a backup)")
    try:
        addresses = suppressed_addresses(cfg)
    except SuppressionUnavailable as exc:
        raise SuppressionUnavailable(prefix + str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any unreadable list is a stop, never "no suppressions"
        raise SuppressionUnavailable(prefix + f"{exc.__class__.__name__}: {exc}") from None
    if not addresses:
        _require_history_if_used(cfg, prefix)
    return addresses


def _require_history_if_used(cfg, prefix: str) -> None:
    """No list and no history reads as a new install's empty list. But a queue that skipped
    addresses as suppressed proves there was a list: its history (only ever appended to) is gone
    (the directory deleted, moved, or left out of a restore), and nothing is suppressed any more."""
    from ..core.errors import SuppressionUnavailable
    from ..suppression.store import SuppressionStore

    history = SuppressionStore.of(cfg).history_path
    if os.path.lexists(history):
        return
    if Queue.for_config(cfg, read_only=True).skipped_as_suppressed():
        raise SuppressionUnavailable(
            prefix + f"there is no suppression list or history ({history} is missing), yet the send queue "
            "skipped addresses as suppressed: the list was lost. Restore the suppression directory from a "
            "backup, or rebuild it (`mailhygiene suppress` for the rule's entries, `mailhygiene suppression add` "
            "for those added by hand): any change in a new history lifts this stop")


# C0 controls other than TAB (and, in the text, line ends): ESC, SO and SI switch an ISO-2022-JP
# decoder's character set (a stray ESC $ B turns the ASCII after it into kanji on the phone), the
# others are shown as garbage or dropped; none belongs in a campaign.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_NAMES = {"\x1b": "ESC", "\x0e": "SO", "\x0f": "SI", "\x00": "NUL", "\x0c": "form feed", "\x7f": "DEL"}


def _control_problem(what: str, text: str) -> str | None:
    m = _CONTROLS.search(text)
    if m is None:
        return None
    ch = m.group()
    line = text.count("\n", 0, m.start()) + 1
    name = _CONTROL_NAMES.get(ch, "control character")
    where = f" (line {line})" if what == "text" else ""
    return (f"the {what} contains {name} U+{ord(ch):04X}{where}: control characters garble the message on phones "
            "(ESC, SO and SI switch the character set of ISO-2022-JP); remove them")


def check_message(cfg, subject: str, body: str) -> None:
    if not subject or not subject.strip():
        raise InputError("the message has no subject")
    if not body or not body.strip():
        raise InputError("the message has no text")
    check_header_value("subject", subject)
    problem = _control_problem("subject", subject) or _control_problem("text", body.replace("\r", "\n"))
    if problem:
        raise InputError(problem)


# Bytes the relays on the way add to a message (Received:, DKIM-Signature:, Authentication-Results:
# ...): a message this far under a carrier's limit when it leaves us can still arrive over it.
RELAY_HEADROOM = 4_000


def check_sizes(templates: dict[str, MessageTemplate], rows) -> None:
    """Refuse a campaign whose message is larger than a carrier of its recipients takes (the
    carrier table's max_message_bytes: SoftBank 1 MB, au 3 MB ...): every message to that carrier
    would be refused (552, mesg_too_big), by some carriers only after the whole message was sent,
    and the send would waste the carrier's window. Measured on the bytes the daemon sends to the
    carrier's longest address, in that carrier's charset, plus RELAY_HEADROOM."""
    from ..classify.carriers import size_limits

    limits = size_limits()
    counts = Counter(c for _, _, c in rows)
    over = []
    for carrier, template in templates.items():
        if carrier not in limits:
            continue
        longest = max((a for a, _, c in rows if c == carrier), key=len)
        size = len(template.render(longest).data) + RELAY_HEADROOM
        limit, note = limits[carrier]
        if size > limit:
            over.append(f"{carrier}: {size:,} bytes with the relays' headers ({template.charset}), over its "
                        f"{limit:,} ({note}), {counts[carrier]} recipient(s)")
    if over:
        raise InputError("the message is too large for " + "; ".join(over) + ": every such message would be "
                         "refused (552). Shorten the text, or link to large content instead of including it; "
                         "nothing was queued")


def templates_for(cfg, carriers, subject: str, body: str) -> dict[str, MessageTemplate]:
    s = cfg.sender
    return {
        c: MessageTemplate(subject=subject, body=body, from_address=s.from_address,
                           from_name=s.from_name, charset=charset_for(s, c), unmappable=s.unmappable,
                           substitutions=s.substitutions)
        for c in carriers
    }


def enqueue(cfg, *, subject: str, body: str, addresses: list[str], name: str | None = None,
            source: str = "cli", requester: str | None = None, request_key: str | None = None,
            queue: Queue | None = None) -> EnqueueReport:
    """Check everything, then add one job. Raises InputError when nothing can be queued."""
    check_message(cfg, subject, body)
    if name:
        check_header_value("job name", name)     # shown by `send list` / `send status` on a terminal
        problem = _control_problem("job name", name)
        if problem:
            raise InputError(problem)
    if not addresses:
        raise InputError("the recipient list is empty")
    limit = cfg.intake.max_recipients
    if source == "mail" and len(addresses) > limit:
        raise InputError(f"{len(addresses)} recipients is over intake.max_recipients ({limit})")
    screened = check_recipients(addresses, load_suppressed(cfg))
    if not screened.accepted and not screened.suppressed:
        reasons = ", ".join(f"{r}: {n}" for r, n in screened.invalid_reasons().most_common())
        raise InputError(f"no valid recipient in the list ({reasons or 'empty'})")
    carrier_for = _carrier_lookup(cfg)
    rows = [(a, domain_of(a), carrier_for(domain_of(a))) for a in screened.accepted]
    skipped = [(a, domain_of(a), carrier_for(domain_of(a)), "suppressed") for a in screened.suppressed]
    carriers = sorted({c for _, _, c in rows})
    templates = templates_for(cfg, carriers, subject, body)  # refuses a message we could not send
    check_sizes(templates, rows)
    s = cfg.sender
    q = queue or Queue.for_config(cfg, durable=True)
    job_id, created = q.add_job(subject=subject, body=body, from_address=s.from_address,
                                from_name=s.from_name, recipients=rows, skipped=skipped, name=name,
                                source=source, requester=requester, request_key=request_key)
    return EnqueueReport(
        job_id=job_id, created=created, queued=len(rows) if created else 0,
        suppressed=len(screened.suppressed), duplicates=screened.duplicates, invalid=screened.invalid,
        suppressed_addresses=screened.suppressed,
        charsets={c: t.charset for c, t in templates.items()},
        notes={c: t.notes for c, t in templates.items() if t.notes},
    )
