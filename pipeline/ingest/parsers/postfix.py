"""Postfix log lines -> delivery events.

Reads syslog lines of any `postfix*/…` program. Emits one event per `to=… status=…` line of a
delivery agent (smtp, lmtp, local, virtual, pipe, error, retry, discard), of the queue manager
(qmgr and the old oqmgr log some deliveries themselves: `unknown mail transport error`,
`delivery temporarily suspended`) or of any other Postfix program (an agent run under another
name, `postfix/smtp-out`): Postfix writes that shape for delivery status only. One `expired` event
per recipient still deferred when qmgr logs `status=expired, returned to sender` (with that
recipient's last deferral reason). Sender (qmgr `from=`) and message-id (cleanup) are joined by
queue id. Inbound smtpd lines and address-verification probes are not our deliveries: skipped.
"""

from __future__ import annotations

import re

from ...store.records import bare_message_id, domain_of, normalise_address
from .common import (CLOCK, DELIVERY, EVENT, EXPIRED, FACILITY_PRIORITY, MALFORMED, MESSAGE_ID, NO_DEFERRALS, REMOVED,
                     SENDER, SKIP, SOLARIS_ID, SYSLOG_STAMP, QueueParser, as_rfc3339, feed_glued, glued_at, glued_in_line, iso_us, reply_code_of, stamp_is_local, stamp_unreadable)

DELIVERY_AGENTS = frozenset({"smtp", "lmtp", "local", "virtual", "pipe", "error", "retry", "discard"})
# The queue manager: `nqmgr`'s `qmgr`, or the old one (`oqmgr`, still shipped and selectable in master.cf).
QUEUE_MANAGERS = frozenset({"qmgr", "oqmgr"})

# A queue id: short hex, or the long form (enable_long_queue_ids).
QUEUE_ID = r"[0-9A-F]{5,20}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{11,20}"
# The syslog prefix with the program restricted to postfix*, then the queue id: one match does
# what split_syslog() + the program check + a queue-id match would (the prefix can match only one
# way; tests/test_parsers.py checks they agree). The rest of the line is sliced, not matched.
LINE_RE = re.compile(SYSLOG_STAMP + r" (?P<host>\S+) " + FACILITY_PRIORITY + r"(?P<prog>postfix[^\s\[:]*)(?:\[\d+\])?: " + SOLARIS_ID
                     + r"(?P<qid>" + QUEUE_ID + r"): ")
# The same prefix with anything where the queue id goes, before a field feed() reads: a line
# that matches this and not LINE_RE has an impossible queue id (counted as malformed).
LOOSE_RE = re.compile(SYSLOG_STAMP + r" \S+ " + FACILITY_PRIORITY + r"postfix[^\s\[:]*(?:\[\d+\])?: " + SOLARIS_ID
                      + r"[^\s:]+: (?:to=|from=|message-id=|removed$)")
BAD_QUEUE_ID = "bad queue id"


def may_be_read(line: str) -> bool:
    """feed()'s cheap pre-test: a line without these is skipped unread (postfix_block.INTERESTING_RE
    as substrings: what the block reader hands over)."""
    return "postfix" in line and (" to=" in line or " from=" in line or "message-id=" in line
                                  or line.endswith(": removed"))


def glued_tail(line: str, head) -> str | None:
    """The log line glued to `line` (cut short) that feed() reads in its place, or None; `head`:
    read_prefix(ctx, line). A line whose prefix and queue id are read (a LINE_RE match) holds it
    in its message, after the queue id (any message: `client=…` cut short too); one whose prefix
    or queue id cannot be read (cut within them) anywhere after its start (common.glued_in_line).
    Looked for in the lines the block reader hands over (may_be_read: `head` is None for others)."""
    if isinstance(head, tuple):
        m = head[0]
        rest = m.string[m.end():]
        if "]: " in rest:
            at = glued_at(rest)
            if at >= 0:
                return rest[at:]
        return None
    return glued_in_line(line) if head is not None and _fed_whole(line) else None


def _fed_whole(line: str) -> bool:
    """Is `line` one the block reader hands to feed() whatever its prefix (postfix_block's
    candidates: the second ": " followed by t, f, m or r, or two "]: ")? A line cut within its own
    prefix has the glued line's `]: ` first: it is read when the glued line's message is one
    feed() reads, or when it was cut after its own `]: ` (within its queue id)."""
    c1 = line.find(": ")
    c2 = line.find(": ", c1 + 2) if c1 >= 0 else -1
    if c2 < 0:
        return False
    if line[c2 + 2:c2 + 3] in ("t", "f", "m", "r"):
        return True
    tag = line.find("]: ")
    return tag >= 0 and line.find("]: ", tag + 3) >= 0


def head_as_fed(ctx, line: str, head):
    """read_prefix(ctx, line) as feed() goes by it: of the glued line when one was glued to it."""
    tail = glued_tail(line, head)
    if tail is not None:
        return head_as_fed(ctx, tail, read_prefix(ctx, tail))
    return head
# The same after any prefix: a line whose prefix cannot be read (another stamp shape, a date that
# does not exist, no host) but whose rest is a line feed() reads is counted as malformed, not skipped.
ANY_PREFIX_RE = re.compile(r" postfix[^\s\[:]*(?:\[\d+\])?: " + SOLARIS_ID + r"[^\s:]+: (?:to=|from=|message-id=|removed$)")
BAD_STAMP = "bad stamp"
UNREAD_PREFIX = "unread prefix"
STATUS_RE = re.compile(r"status=([a-z][a-z-]*|SOFTBOUNCE)(?: \((.*)\))?$")
# With soft_bounce=yes a refusal is logged `dsn=4.x.x, status=SOFTBOUNCE (…)` and the message stays
# queued: a deferral (its recipients are returned at expiry like any other deferred one).
STATUS_ALIASES = {"SOFTBOUNCE": "deferred"}
# The phase is the command in `(in reply to X command)` at the end of the text (then `)` and
# white space): `\(in reply to (.+?) command\)\)?\s*$` searched, as one pass (phase_command).
_IN_REPLY_TO = "(in reply to "
_PHASE_END_RE = re.compile(r" command\)\)?\s*$")
# `lost connection with X while sending RCPT TO`, `… timed out while performing the EHLO handshake`
WHILE_SENDING_RE = re.compile(r"while (?:sending (RCPT TO|MAIL FROM|end of data|DATA|message body)"
                              r"|performing the (?:EHLO|HELO|LHLO) handshake)", re.I)
PHASES = {
    "RCPT TO": "rcpt", "MAIL FROM": "mail", "end of DATA": "end_of_data", "DATA": "data",
    "HELO": "helo", "EHLO": "helo", "QUIT": "quit", "RSET": "quit", "XFORWARD": "helo",
    "XCLIENT": "helo", "STARTTLS": "helo", "BDAT": "data", "LHLO": "helo", "AUTH": "helo",
}
# The common shape of a delivery line's fields, read with one regex; anything else (quoted or
# odd addresses, repeated keys, keys after dsn=) goes to parse_fields(), whose result this equals.
COMMON_FIELDS_RE = re.compile(
    r'to=(<[^<>",]*>)(?:, orig_to=<[^<>",]*>)?, relay=([^,=<>"]*)'
    r'(?:, (?!to=|relay=|dsn=)[a-z_]+=[^,=<>"]*)*, dsn=([^,=<>"]*), status=([a-z][a-z-]*)(?: \((.*)\))?$')
# Probes and pseudo-statuses that are not delivery attempts of our mail.
NOT_DELIVERIES = frozenset({"deliverable", "undeliverable-but-not-cached"})
FINAL_OR_TRY = frozenset({"sent", "deferred", "bounced", "undeliverable", "expired"})
# A hand-off to a content filter (amavisd-new, a second Postfix instance … on this host): `status=sent`
# to a relay on a loopback address or a local socket whose reply says the message was queued
# again (`250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5E6F7A8B02`). The
# re-injected copy's delivery to the recipient's server follows under that new queue id: the hop
# is no attempt to reach the recipient (as an event it would double the carrier's deliveries,
# halve its bounce rate, and make every address look delivered to just before its refusal).
# Where that next hop is never logged (another host's log, a file not read) the recipient has no
# event for that message: its outcome is unknown, not "delivered". The queue-id state takes the
# hop as a final status (the original queue id will not expire that recipient).
# ASCII classes only, read alike by Python and RE2: the block reader tests the same two patterns
# column-wise (postfix_block.filter_hops).
FILTER_HOP_RELAY = r"^[^\[\]]*\[(?:127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|::1|ipv6:::1|(?:private|public)/[^\]]*|/[^\]]*)\](?::[0-9]+)?$"
FILTER_HOP_REPLY = r"(?:^| )queued as [0-9A-Za-z]"
_FILTER_HOP_RELAY_RE, _FILTER_HOP_REPLY_RE = re.compile(FILTER_HOP_RELAY), re.compile(FILTER_HOP_REPLY)


def is_filter_hop(status: str, relay: str | None, text: str | None) -> bool:
    """Is this delivery line a hand-off to a content filter on this host (FILTER_HOP_RELAY)?"""
    return (status == "sent" and relay is not None and text is not None
            and _FILTER_HOP_RELAY_RE.match(relay) is not None and _FILTER_HOP_REPLY_RE.search(text) is not None)


_PROGRAM_MARKERS = ("/smtp", "/qmgr", "/oqmgr", "/cleanup", "/local", "/pickup", "/postfix-script", "/master", "/smtpd",
                    "/bounce", "/lmtp", "/virtual", "/pipe", "/error", "/discard", "/anvil", "/scache",
                    "/postsuper", "/postqueue", "/sendmail", "/trivial-rewrite", "/tlsmgr", "/postscreen",
                    "/dnsblog", "/verify", "/proxymap", "/postdrop", "/showq")


def line_time(ctx, m: re.Match) -> int:
    """The time of a LINE_RE match (traditional or RFC 3339 stamp); ValueError when it is no date."""
    mon, day, hms, frac, iso = m.group("mon", "day", "hms", "frac", "iso")
    return ctx.syslog_us(mon, day, hms, frac) if mon is not None else iso_us(iso, ctx.tz)


def read_prefix(ctx, line: str):
    """(LINE_RE match, time) of a line PostfixParser.feed reads; None for a line it skips
    unread (may_be_read); BAD_QUEUE_ID for a Postfix line whose queue id is impossible, BAD_STAMP
    for one feed() would read whose time stamp cannot be, UNREAD_PREFIX for another whose prefix
    cannot be read (feed() skips it, unless a line was glued to it: glued_tail) (the block reader
    asks this of the lines it feeds, to know the log's clock). An RFC 5424 line is read as its
    RFC 3339 form."""
    # cheap substring tests first: most lines (smtpd connect/disconnect, client=, TLS notes)
    # carry none of the fields we join or report
    if not may_be_read(line):
        return None
    # prefix, program and queue id in one match (LINE_RE); any failure is a SKIP, but for lines
    # feed() would read: an impossible queue id, a stamp that cannot be read (counted as malformed)
    m = LINE_RE.match(line)
    if m is None:
        converted = as_rfc3339(line)
        if converted is not None:
            return read_prefix(ctx, converted)  # the match is of the converted line (m.string)
        if LOOSE_RE.match(line):
            return BAD_QUEUE_ID
        # a line feed() would read behind a prefix that cannot be (a stamp no parser reads, a
        # line without host): counted as malformed, never skipped unseen
        return BAD_STAMP if ANY_PREFIX_RE.search(line) else UNREAD_PREFIX
    try:
        return m, line_time(ctx, m)
    except ValueError:  # a date that does not exist
        rest = line[m.end():]
        return BAD_STAMP if rest.startswith(("to=", "from=", "message-id=")) or rest == "removed" else UNREAD_PREFIX


def phase_command(diagnostic: str) -> str | None:
    r"""What `\(in reply to (.+?) command\)\)?\s*$` finds (group 1), in one pass: that search
    read from every "(in reply to " to the end, quadratic in a text that repeats it. Only one
    ` command)` ends such a text; the match starts at the first "(in reply to " after the last
    line break before it (`.` is not a line break) and leaves at least a character between."""
    end = _PHASE_END_RE.search(diagnostic)
    if end is None:
        return None
    command_at = end.start()
    start = diagnostic.find(_IN_REPLY_TO, diagnostic.rfind("\n", 0, command_at) + 1)
    if start < 0 or start + len(_IN_REPLY_TO) >= command_at:
        return None
    return diagnostic[start + len(_IN_REPLY_TO):command_at]


def smtp_phase_of(diagnostic: str | None) -> str | None:
    if not diagnostic:
        return None
    command = phase_command(diagnostic) if "in reply to " in diagnostic else None
    if command is not None:
        return PHASES.get(command, command.lower())
    if "refused to talk to me" in diagnostic or "while receiving the initial server greeting" in diagnostic:
        return "connect"
    m = WHILE_SENDING_RE.search(diagnostic)
    if m:
        if m.group(1) is None:
            return "helo"                      # while performing the EHLO/HELO/LHLO handshake
        word = m.group(1).lower()
        return {"rcpt to": "rcpt", "mail from": "mail", "data": "data"}.get(word, "end_of_data")
    return None


def parse_fields(rest: str) -> dict[str, str] | None:
    """Generic `key=value, key=value, …, status=word (text)` parser (tolerates new keys).

    `to=` and `orig_to=` values run to the first `, ` outside quotes and angle brackets;
    `status=` is last and its parenthesised text may contain anything.
    """
    st = rest.find(" status=")
    if st < 0:
        if rest.startswith("status="):
            st = -1
        else:
            return None
    head, status = rest[: st if st >= 0 else 0].rstrip(","), rest[st + 1 :]
    fields: dict[str, str] = {}
    i, n = 0, len(head)
    while i < n:
        eq = head.find("=", i)
        if eq < 0:
            break
        key = head[i:eq]
        j = eq + 1
        if j < n and head[j] in "<\"":
            # address: to the closing > outside quotes (no quote before the first >: that one)
            k = head.find(">", j)
            if k < 0 or '"' in head[j:k]:
                quoted = False
                k = j
                while k < n:
                    c = head[k]
                    if c == '"':
                        quoted = not quoted
                    elif c == ">" and not quoted:
                        break
                    k += 1
            end = head.find(", ", k)
        else:
            end = head.find(", ", j)
        if end < 0:
            end = n
        fields[key] = head[j:end]
        i = end + 2
    m = STATUS_RE.match(status)
    if m is None:
        return None
    fields["status"] = m.group(1)
    fields["_text"] = m.group(2)
    return fields


def relay_host(relay: str | None) -> str | None:
    return None if relay in (None, "none") else relay


_UNREAD = object()


class PostfixParser(QueueParser):
    mta = "postfix"
    # read_prefix() of lines the block reader has read already (it needs their queue id and time
    # before it feeds them): {line: head}, filled and emptied by parsers/postfix_block.read_block.
    # read_prefix is a function of the context and the line, so feed() reads each such line once.
    read_heads: dict = {}

    @staticmethod
    def recognises(line: str) -> bool:
        return " postfix" in line and any(p in line for p in _PROGRAM_MARKERS)

    @classmethod
    def detect(cls, lines):
        return sum(1 for ln in lines if cls.recognises(ln))

    def feed(self, line: str, offset: int) -> str:
        """One line: its fields are read here, and what it does to the queue-id table goes
        through change() (the block reader applies its column-wise lines the same way)."""
        head = self.read_heads.get(line, _UNREAD) if self.read_heads else _UNREAD
        if head is _UNREAD:
            head = read_prefix(self.ctx, line)
        if head is None:
            return SKIP
        tail = glued_tail(line, head)
        if tail is not None:  # this line was cut short and another glued to it: that one is read
            return feed_glued(self.feed, line, tail, offset)
        if head is UNREAD_PREFIX:
            return SKIP
        if head is BAD_QUEUE_ID or head is BAD_STAMP:
            return MALFORMED
        m, ts = head
        ts = self.unfold(ts, lambda: stamp_is_local(line))  # (the hour a fall-back repeats)
        host, prog, qid = m.group("host", "prog", "qid")
        service = prog.rsplit("/", 1)[-1]
        rest = m.string[m.end():]  # (m.string: the line as read, or as converted from RFC 5424)

        if service in DELIVERY_AGENTS or rest.startswith("to="):
            # (a `to=` line of another program is a delivery status too: see the module docstring)
            if not rest.startswith("to="):
                self.change(CLOCK, None, ts)
                return SKIP  # "host X said: …" before a retry on another MX, conn notes, …
            m = COMMON_FIELDS_RE.match(rest)
            if m is not None:
                to, relay, dsn, status, text = m.groups()
            else:
                fields = parse_fields(rest)
                if fields is None or "to" not in fields:
                    self.change(CLOCK, None, ts)
                    return MALFORMED
                to, relay, dsn, status, text = (fields["to"], fields.get("relay"), fields.get("dsn"),
                                                fields["status"], fields["_text"])
            status = STATUS_ALIASES.get(status, status)
            recipient = normalise_address(to) if status in FINAL_OR_TRY else ""
            if not recipient:
                self.change(CLOCK, None, ts)
                return SKIP if status in NOT_DELIVERIES else MALFORMED
            row = {
                "ts": ts, "mta": self.mta, "host": host, "queue_id": qid,
                "message_id": None, "sender": None,
                "recipient": recipient, "recipient_domain": domain_of(recipient),
                "relay": relay_host(relay), "status": status,
                "dsn": dsn, "reply_code": reply_code_of(text),
                "smtp_phase": smtp_phase_of(text), "diagnostic": text,
                "source_file": self.ctx.source_file, "source_offset": offset,
                "_line": line,
            }
            self.change(DELIVERY, qid, ts, row)  # joins sender and message-id; keeps a deferral
            if is_filter_hop(status, row["relay"], text):
                return SKIP
            self.emit(row)
            return EVENT

        if service in QUEUE_MANAGERS:
            if rest.startswith("from="):
                expired = ", status=expired" in rest
                known = not expired or self.live(qid, ts)
                self.change(SENDER, qid, ts, normalise_address(rest[5:].split(", ", 1)[0]))
                if expired:
                    rows = self.change(EXPIRED, qid, ts, (host, line, offset))
                    for row in rows:
                        self.emit(row)
                    # (none of its queue id's lines read: its deferrals were before the log began)
                    return EVENT if rows else SKIP if known else NO_DEFERRALS
                return SKIP
            if rest == "removed":
                self.change(REMOVED, qid, ts)
                return SKIP

        elif service == "cleanup" and rest.startswith("message-id="):
            self.change(MESSAGE_ID, qid, ts, bare_message_id(rest[11:]))
            return SKIP
        elif service == "postsuper" and rest == "removed":
            # `postsuper -d`: the message is deleted by hand (no bounce, no expiry follows); its
            # queue id may be reused, and must not carry its deferred recipients to the next one
            self.change(REMOVED, qid, ts)
            return SKIP
        self.change(CLOCK, None, ts)
        return SKIP
