"""qmail-send log lines -> delivery events.

Reads multilog lines (`@<tai64n> …`, UTC) and splogger lines (`Mon DD hh:mm:ss host qmail:
<unix.secs> …`). Joins `starting delivery D: msg M to remote|local R` with
`delivery D: success|deferral|failure: <text>`, and `info msg M: … from <S>` for the sender.
The text is unescaped (`_` -> space, `/` -> newline) and the SMTP phase is read from qmail's
wording: `does_not_like_recipient` (RCPT), `failed_on_DATA_command` (DATA),
`failed_after_I_sent_the_message` (end of DATA), greeting/sender/HELO failures, connection and
DNS failures. A failure saying the message was in the queue too long is an `expired` event.
"""

from __future__ import annotations

import re

from ...store.records import domain_of, normalise_address
from .common import EVENT, MALFORMED, NO_START, SKIP, SYSLOG_STAMP, Parser, feed_glued, split_syslog

TAI64_BASE = 4611686018427387914  # 2**62 + 10
TAI64N_RE = re.compile(r"@([0-9a-fA-F]{16})([0-9a-fA-F]{8})\s+(.*)")
UNIX_RE = re.compile(r"(\d{9,10})\.(\d{1,6})\s+(.*)")
START_RE = re.compile(r"starting delivery (\d+): msg (\d+) to (remote|local) (\S+)")
RESULT_RE = re.compile(r"delivery (\d+): (success|deferral|failure): ?(.*)")
INFO_RE = re.compile(r"info msg (\d+): bytes \d+ from <([^>]*)>")
END_RE = re.compile(r"end msg (\d+)")
# A start or a result after a stamp that cannot be read (a multilog label that is not one, a
# syslog stamp of no day, journalctl's other formats): counted as malformed, not skipped unseen.
UNREAD_DELIVERY_RE = re.compile(r"(?:^|\s)(?:starting delivery \d+: msg \d+ to |delivery \d+: (?:success|deferral|failure):)")
_UNREADABLE = object()  # (_split: the line's stamp cannot be read)
# An `info msg M:` or `end msg M` line whose message number is none (a token with a non-digit):
# counted as malformed, not skipped unseen (the sender of message M would be lost unseen).
BAD_MSG_RE = re.compile(r"(?:info|end) msg (?![0-9]+(?:[\s:]|$))[^\s:]+")
# An IPv6 address is a whole run of hex digits and colons with a colon inside it: the look-ahead
# checks the colon, the possessive run does not backtrack (`[…]+:[…]+` does, quadratically, over a
# long run of them in a remote server's reply).
IP_RE = re.compile(r"(?:^|Connected to |\s)(\d{1,3}(?:\.\d{1,3}){3}|(?=[0-9a-fA-F:]+:[0-9a-fA-F:])[0-9a-fA-F:]++)(?=[ ._])")
CODE_RE = re.compile(r"Remote host said: ([2-5]\d\d)[ -]")
SUCCESS_CODE_RE = re.compile(r"accepted message\.\nRemote host said: (2\d\d)")

PHASE_MARKERS = (
    ("does not like recipient", "rcpt"),
    ("failed on DATA command", "data"),
    ("failed after I sent the message", "end_of_data"),
    ("but sender was rejected", "mail"),
    ("but my name was rejected", "helo"),
    ("but greeting failed", "connect"),
    ("wasn't able to establish an SMTP connection", "connect"),
)
STATUS = {"success": "sent", "deferral": "deferred", "failure": "bounced"}
# Where a qmail line glued to one cut short starts (its writer died or the disk filled mid-line; a
# copy that ends mid-line with lines appended after it): a multilog label, or splogger's syslog
# prefix, after the line's start. qmail writes no space into its texts (`_`) nor addresses, so
# neither is ever part of a line's own message. The block reader hands every line that may hold
# one to feed() (qmail_block.glue_suspects).
GLUED_LABEL_RE = re.compile(r"@[0-9a-fA-F]{24} ")
GLUED_SPLOGGER_RE = re.compile(SYSLOG_STAMP + r" \S+ qmail: ")
# The changes of QmailParser's state (QmailParser.change): what one line does to it.
START, RESULT, INFO, END = range(4)


def outcome(word: str, text: str, local: bool) -> tuple[str, int | None, str | None]:
    """(status, reply code, relay) of a `delivery D: success|deferral|failure: text` line."""
    status = STATUS[word]
    if status == "bounced" and "in the queue too long" in text:
        status = "expired"
    code_m = CODE_RE.search(text)
    code = int(code_m.group(1)) if code_m else None
    if status == "sent" and code is None and not local:
        code = 250
    if local:
        return status, code, "local"
    ip = IP_RE.search(text)
    return status, code, ip.group(1) if ip else None


def unescape(text: str) -> str:
    """qmail writes newline as `/` and space/unprintables as `_`."""
    return text.replace("_", " ").replace("/", "\n").rstrip("\n")


def phase_of(text: str) -> str | None:
    for marker, phase in PHASE_MARKERS:
        if marker in text:
            return phase
    return None


def tai64n_us(label: str, nanos: str) -> int:
    return (int(label, 16) - TAI64_BASE) * 1_000_000 + int(nanos, 16) // 1000


class QmailParser(Parser):
    """State: the deliveries under way (D -> message, recipient) and the senders of the messages
    in the queue (M -> sender). Both are forgotten at their final line (`delivery D: …`,
    `end msg M`); at most MAX_ENTRIES of each are kept (a log whose deliveries never finish,
    or a qmail-send restart that reuses D, cannot grow them): beyond, the oldest tenth goes."""

    mta = "qmail"
    MAX_ENTRIES = 100_000

    def __init__(self, ctx, emit):
        super().__init__(ctx, emit)
        self.deliveries: dict[str, dict] = {}   # D -> {"msg", "recipient", "local"}
        self.senders: dict[str, str] = {}       # M -> sender

    @staticmethod
    def recognises(line: str) -> bool:
        return ("delivery " in line or " msg " in line or "status: local" in line) and (
            line.startswith("@4000") or " qmail:" in line or " qmail[" in line or line.startswith("qmail:")
            or (line[:1] == "<" and " qmail " in line))  # RFC 5424

    @classmethod
    def detect(cls, lines):
        return sum(1 for ln in lines if cls.recognises(ln))

    def _split(self, line: str):
        """(ts_us, host, message) for multilog, splogger or bare `<unix secs> message` lines;
        None for another program's syslog line, _UNREADABLE for a stamp that cannot be read."""
        if line.startswith("@"):
            m = TAI64N_RE.match(line)
            if m is None:
                return _UNREADABLE
            return tai64n_us(m.group(1), m.group(2)), self.ctx.default_host, m.group(3)
        parts = split_syslog(line, self.ctx)
        if parts is not None:
            ts, host, prog, msg = parts
            if not prog.startswith("qmail"):
                return None
            m = UNIX_RE.match(msg)
            if m:  # splogger's own stamp is exact and UTC: prefer it to syslog's local one
                ts = int(m.group(1)) * 1_000_000 + int((m.group(2) + "000000")[:6])
                msg = m.group(3)
            return ts, host, msg
        m = UNIX_RE.match(line)
        if m:
            return int(m.group(1)) * 1_000_000 + int((m.group(2) + "000000")[:6]), self.ctx.default_host, m.group(3)
        return _UNREADABLE

    def feed(self, line: str, offset: int) -> str:
        """One line; what it does to the deliveries and senders goes through change()."""
        tail = glued_tail(line)
        if tail is not None:  # this line was cut short and another glued to it: that one is read
            return feed_glued(self.feed, line, tail, offset)
        head = self.read_line(line)
        if head is None:
            return SKIP
        if head is MALFORMED:
            return MALFORMED
        ts, host, kind, key, value = head
        if kind != RESULT:
            self.change(kind, key, value)
            return SKIP
        d = self.change(RESULT, key)
        if d is None:
            return NO_START  # its start was not read (before this log began): counted, not an event
        word, raw_text = value
        text = unescape(raw_text)
        status, code, relay = outcome(word, text, d["local"])
        recipient = d["recipient"]
        self.emit({
            "ts": ts, "mta": self.mta, "host": host, "queue_id": d["msg"],
            "message_id": None, "sender": self.senders.get(d["msg"]),
            "recipient": recipient, "recipient_domain": domain_of(recipient),
            "relay": relay, "status": status, "dsn": _dsn_in(text), "reply_code": code,
            "smtp_phase": phase_of(text), "diagnostic": text,
            "source_file": self.ctx.source_file, "source_offset": offset, "_line": line,
        })
        return EVENT

    def read_line(self, line: str):
        """What a line says: (ts, host, kind, key, value) with kind START (key D, value (M,
        local, recipient)), RESULT (key D, value (word, raw text)), INFO (key M, value sender)
        or END (key M); MALFORMED; or None for a line without meaning here. (The block reader
        asks this of the lines it feeds.)"""
        if "deliver" not in line and " msg " not in line:
            return None
        parts = self._split(line)
        if parts is None:
            return None
        if parts is _UNREADABLE:
            return MALFORMED if UNREAD_DELIVERY_RE.search(line) else None
        ts, host, msg = parts
        if msg.startswith("delivery "):
            m = RESULT_RE.match(msg)
            return MALFORMED if m is None else (ts, host, RESULT, m.group(1), (m.group(2), m.group(3)))
        if msg.startswith("starting delivery "):
            m = START_RE.match(msg)
            if m is None:
                return MALFORMED
            return ts, host, START, m.group(1), (m.group(2), m.group(3) == "local", normalise_address(m.group(4)))
        if msg.startswith("info msg "):
            m = INFO_RE.match(msg)
            if m is None:
                return MALFORMED if BAD_MSG_RE.match(msg) else None
            return ts, host, INFO, m.group(1), normalise_address(m.group(2))
        if msg.startswith("end msg "):
            m = END_RE.match(msg)
            if m is None:
                return MALFORMED if BAD_MSG_RE.match(msg) else None
            return ts, host, END, m.group(1), None
        return None

    def change(self, kind: int, key: str, value=None):
        """The one way the state changes (feed() and the block reader both call it), in line order:
        START key=D value=(M, local, recipient); RESULT key=D: returns the delivery under way
        ({"msg", "local", "recipient"}) and forgets it, or None; INFO key=M value=sender;
        END key=M: the message's sender is forgotten."""
        if kind == RESULT:
            return self.deliveries.pop(key, None)
        if kind == START:
            deliveries = self.deliveries
            deliveries.pop(key, None)  # a reused number: the newest start goes last
            msg, local, recipient = value
            deliveries[key] = {"msg": msg, "local": local, "recipient": recipient}
            if len(deliveries) > self.MAX_ENTRIES:
                self.deliveries = _newest(deliveries, self.MAX_ENTRIES * 9 // 10)
        elif kind == INFO:
            senders = self.senders
            senders.pop(key, None)
            senders[key] = value
            if len(senders) > self.MAX_ENTRIES:
                self.senders = _newest(senders, self.MAX_ENTRIES * 9 // 10)
        elif kind == END:
            self.senders.pop(key, None)
        return None

    def get_state(self):
        return {"deliveries": self.deliveries, "senders": self.senders}

    def set_state(self, state):
        """Restore get_state(); ValueError for a state of another shape (nothing is changed)."""
        deliveries, senders = dict(state.get("deliveries", {})), dict(state.get("senders", {}))
        if not all(isinstance(d, dict) and {"msg", "recipient", "local"} <= d.keys() for d in deliveries.values()):
            raise ValueError("a delivery is not an entry this parser saved")
        self.deliveries, self.senders = deliveries, senders


def glued_tail(line: str) -> str | None:
    """The qmail line glued to `line` (cut short: the last multilog label, GLUED_LABEL_RE, or
    splogger prefix, GLUED_SPLOGGER_RE, after the line's start) that feed() reads in its place,
    or None. (Cheap pre-tests first: an `@` after the start; a second ` qmail: `, or one behind a
    prefix that is not the line's own.)"""
    at = -1
    if line.find("@", 1) > 0:
        for m in GLUED_LABEL_RE.finditer(line, 1):
            at = m.start()
    first = line.find(" qmail: ")
    if first >= 0 and (line.find(" qmail: ", first + 8) >= 0 or GLUED_SPLOGGER_RE.match(line) is None):
        for m in GLUED_SPLOGGER_RE.finditer(line, 1):
            at = max(at, m.start())
    return line[at:] if at > 0 else None


def _newest(table: dict, keep: int) -> dict:
    """The last `keep` entries of an insertion-ordered table."""
    return dict(list(table.items())[len(table) - keep:])


# an enhanced status code: `(#5.1.1)` or one standing alone; not the first three numbers of an
# IPv4 address (`5.9.100.20_does_not_like_recipient.`, `1.2.3.4_accepted_message.`: hosts in
# 2/8, 4/8 and 5/8 would give a success dsn 2.x.x or a 5.1.1 from a policy refusal)
_DSN_RE = re.compile(r"(?:\(#|(?<![\w.]))([245]\.\d{1,3}\.\d{1,3})(?!\d|\.\d)\)?")


def _dsn_in(text: str) -> str | None:
    m = _DSN_RE.search(text)
    return m.group(1) if m else None
