"""sendmail log lines -> delivery events.

Reads syslog lines of `sendmail`, `sm-mta` and `sm-msp-queue`. Emits one event per recipient of
each `to=` line (one line may carry several), and `expired` events for recipients still deferred
when sendmail logs `DSN: Cannot send message for …`. `from=`/`msgid=` are joined by queue id.
The MSP's hop to the local MTA (`mailer=relay`, relay to 127.0.0.1) is not a delivery. A row of a
local delivery to no address (`to=root`, `to=|/usr/bin/procmail`, `to=/var/mail/x`) is emitted as any
other (its queue id's state counts it) and counted by the sink as a local delivery, not stored
(records.is_local_recipient).

`dsn=` and `stat=` are sendmail's own mapping of the remote reply; when 8.15+'s `reply=` is
present it is the diagnostic, otherwise `stat=` is (and the classifier stays conservative).
"""

from __future__ import annotations

import re

from ...store.records import bare_message_id, domain_of, normalise_address
from .common import (CLOCK, DELIVERY, EVENT, EXPIRED, MALFORMED, MESSAGE_ID, NO_DEFERRALS, RECIPIENTS, REMOVED, SENDER,
                     SKIP, QueueParser, addr_list, feed_glued, glued_at, glued_in_line, reply_code_of, split_outside_quotes, split_syslog,
                     stamp_is_local, stamp_unreadable)

PROGRAMS = ("sendmail", "sm-mta", "sm-msp-queue")
QID_RE = re.compile(r"([0-9A-Za-z]{8,20}): (.*)")
# A line feed() reads after any prefix: with a time stamp that cannot be read it is malformed.
ANY_PREFIX_RE = re.compile(r" (?:sendmail|sm-mta|sm-msp-queue)(?:\[\d+\]:| \d+ \S+ \S+) [0-9A-Za-z]{8,20}: (?:to=|from=)")
BAD_STAMP = "bad stamp"
# What follows the program when the queue id is one no sendmail makes (too short or long, other
# characters) but the line is one feed() reads: counted as malformed, not skipped unseen.
LOOSE_QID_RE = re.compile(r"[^\s:]+: (?:to=|from=)")
BAD_QUEUE_ID = "bad queue id"
LOCAL_RELAYS = ("[127.0.0.1]", "localhost", "[::1]", "[IPv6:::1]")


def split_to_line(rest: str) -> dict[str, str] | None:
    """Fields of a `to=` line. `to=` runs to the first `, ` outside quotes and angle brackets
    (a display name may hold one); `stat=` is last and free text;
    `reply=` (8.15+) runs to `, stat=`. Other keys are parsed generically."""
    if not rest.startswith("to="):
        return None
    st = rest.rfind(", stat=")
    if st < 0:
        return None
    fields = {"stat": rest[st + 7 :]}
    head = rest[:st]
    rp = head.find(", reply=")
    if rp >= 0:
        fields["reply"] = head[rp + 8 :]
        head = head[:rp]
    to_and_rest = split_outside_quotes(head[3:], ", ", 1)  # `to="Yamada, Taro" <t@x>, ctladdr=…`
    fields["to"] = to_and_rest[0]
    if len(to_and_rest) > 1:
        for part in to_and_rest[1].split(", "):
            key, eq, value = part.partition("=")
            if eq:
                fields[key] = value
    return fields


def status_of(dsn: str | None, stat: str) -> str:
    """By dsn= when it is a class (2/4/5), else by stat=: `Sent…` sent, `Deferred…` and `queued`
    deferred (`stat=queued`: the recipient was queued, not refused: DeliveryMode=queue, `-odq`,
    or a load limit; with a dsn= it is usually 4.x.x), anything else bounced."""
    if dsn and dsn[:1] in "245":
        return {"2": "sent", "4": "deferred", "5": "bounced"}[dsn[0]]
    if stat.startswith("Sent"):
        return "sent"
    if stat.startswith(("Deferred", "queued")):
        return "deferred"
    return "bounced"


class SendmailParser(QueueParser):
    mta = "sendmail"

    @staticmethod
    def recognises(line: str) -> bool:
        return " sendmail[" in line or " sm-mta[" in line or " sm-msp-queue[" in line or (
            line[:1] == "<" and (" sendmail " in line or " sm-mta " in line or " sm-msp-queue " in line))  # RFC 5424

    @classmethod
    def detect(cls, lines):
        return sum(1 for ln in lines if cls.recognises(ln))

    def feed(self, line: str, offset: int) -> str:
        """One line; what it does to the queue-id table goes through change()."""
        head = read_prefix(self.ctx, line)
        tail = glued_tail(line, head)
        if tail is not None:  # this line was cut short and another glued to it: that one is read
            return feed_glued(self.feed, line, tail, offset)
        if head is None:
            return SKIP
        if head is BAD_STAMP or head is BAD_QUEUE_ID:
            return MALFORMED
        ts, host, qid, rest = head
        ts = self.unfold(ts, lambda: stamp_is_local(line))  # (the hour a fall-back repeats)

        if rest.startswith("to="):
            fields = split_to_line(rest)
            if fields is None:
                self.change(CLOCK, None, ts)
                return MALFORMED
            relay = fields.get("relay")
            if fields.get("mailer") == "relay" and relay and relay.strip().startswith(LOCAL_RELAYS):
                # MSP -> local MTA hop: not a delivery; the MTA's own line follows under another
                # queue id, so this one is done
                self.change(REMOVED, qid, ts)
                return SKIP
            rows = delivery_rows(self.mta, ts, host, qid, fields, self.ctx.source_file, offset, line)
            if not rows:
                self.change(CLOCK, None, ts)
                return MALFORMED
            for row in rows:
                self.change(DELIVERY, qid, ts, row)  # joins sender and message-id; keeps a deferral
                self.emit(row)
            return EVENT

        if rest.startswith("from="):
            self.change(SENDER, qid, ts, normalise_address(rest[5:].split(", ", 1)[0]))
            mi = rest.find("msgid=")
            if mi >= 0:
                self.change(MESSAGE_ID, qid, ts, bare_message_id(rest[mi + 6 :].split(", ", 1)[0]))
            nr = rest.find("nrcpts=")
            if nr >= 0:
                count = rest[nr + 7 :].split(",", 1)[0]
                if count.isdigit() and int(count) > 0:
                    self.change(RECIPIENTS, qid, ts, int(count))
            return SKIP

        if ": DSN: Cannot send message" in rest:  # the queue lifetime ran out: expiry
            if not self.live(qid, ts):
                self.change(CLOCK, None, ts)
                return NO_DEFERRALS  # (none of its queue id's lines read: before the log began)
            rows = self.change(EXPIRED, qid, ts, (host, line, offset))
            self.change(REMOVED, qid, ts)  # the message is returned: nothing of it follows
            for row in rows:
                self.emit(row)
            return EVENT if rows else SKIP
        self.change(CLOCK, None, ts)
        return SKIP


# A sendmail program with its pid: a line without one holds no sendmail line glued to it.
_PROGRAM_TAGS = (" sendmail[", " sm-mta[", " sm-msp-queue[")


def glued_tail(line: str, head) -> str | None:
    """The log line glued to `line` (cut short) that feed() reads in its place, or None; `head`:
    read_prefix(ctx, line). A line of a queue id holds it in its message (after the queue id); a
    line whose prefix or queue id cannot be read (cut within them) anywhere after its start, when
    it names a sendmail program (common.glued_in_line)."""
    if isinstance(head, tuple):
        rest = head[3]
        if "]: " not in rest:
            return None
        at = glued_at(rest)
        return rest[at:] if at >= 0 else None
    if "]: " in line and any(tag in line for tag in _PROGRAM_TAGS):
        return glued_in_line(line)
    return None


def head_as_fed(ctx, line: str, head):
    """read_prefix() of a line as feed() goes by it: of the glued line when one was glued to it."""
    tail = glued_tail(line, head)
    if tail is not None:
        return head_as_fed(ctx, tail, read_prefix(ctx, tail))
    return head


def read_prefix(ctx, line: str):
    """(time, host, queue id, rest) of a line SendmailParser.feed reads, None for a line it
    skips unread, BAD_STAMP for a `to=`/`from=` line whose time stamp cannot be read, or
    BAD_QUEUE_ID for one whose queue id is impossible (the block reader asks this of the lines
    it feeds, to know the log's clock)."""
    if "s" not in line:
        return None
    parts = split_syslog(line, ctx)
    if parts is None:
        return BAD_STAMP if stamp_unreadable(line) and ANY_PREFIX_RE.search(line) else None
    ts, host, prog, msg = parts
    if prog not in PROGRAMS:
        # a to=/from= line of sendmail behind a prefix that reads otherwise (no host: the
        # program taken for the host): counted as malformed, never skipped unseen
        return BAD_STAMP if ANY_PREFIX_RE.search(line) else None
    m = QID_RE.match(msg)
    if m is None:
        return BAD_QUEUE_ID if LOOSE_QID_RE.match(msg) else None
    return ts, host, m.group(1), m.group(2)


def delivery_rows(mta: str, ts: int, host: str, qid: str, fields: dict, source_file: str, offset: int,
                  line: str) -> list[dict]:
    """The event rows of a `to=` line: one per recipient (sender and message-id are joined later)."""
    recipients = [normalise_address(a) for a in addr_list(fields["to"])]
    recipients = [r for r in recipients if r]
    if not recipients:
        return []
    relay = fields.get("relay")
    stat = fields["stat"]
    dsn = fields.get("dsn")
    status = status_of(dsn, stat)
    text, code = diagnostic_of(fields, status)
    phase = smtp_phase_of(stat, dsn, code)
    return [{
        "ts": ts, "mta": mta, "host": host, "queue_id": qid, "message_id": None, "sender": None,
        "recipient": recipient, "recipient_domain": domain_of(recipient),
        "relay": relay.strip() if relay else None, "status": status, "dsn": dsn,
        "reply_code": code if status != "sent" else (code or 250),
        "smtp_phase": phase, "diagnostic": text,
        "source_file": source_file, "source_offset": offset, "_line": line,
    } for recipient in recipients]


def diagnostic_of(fields: dict, status: str) -> tuple[str, int | None]:
    """(diagnostic text, reply code) of a `to=` line: 8.15+'s `reply=` when present, else `stat=`."""
    stat = fields["stat"]
    reply = fields.get("reply")
    text = reply or stat
    code = reply_code_of(reply) if reply else None
    if status != "sent" and (code is None or code < 400):
        # after a 421 `reply=` holds the answer to QUIT; the real reply is in stat=
        code = _code_in_stat(stat) or code
        if (reply or "").startswith("221"):
            text = stat
    return text, code


# smtp_phase_of() is None for every stat= that starts with none of these (the block reader asks
# it only about the lines that do; tests/test_sendmail_block.py holds the two together)
PHASE_STAT_PREFIXES = ("User unknown", "Service unavailable", "Data format error")


def smtp_phase_of(stat: str, dsn: str | None, reply_code: int | None) -> str | None:
    """The SMTP command a remote refusal answered, from sendmail's own `stat=` and `dsn=`.

    sendmail logs no "in reply to"; its stat=/dsn= are its own mapping of the reply code and the
    command (recorded from a real sendmail 8.17, tests/test_sendmail_real.py):
      RCPT TO 550/551/553        stat=User unknown, dsn=5.1.1/5.1.6/5.1.3 (whatever the remote said)
      end of DATA 550            stat=Service unavailable, dsn=5.2.0
      MAIL FROM 553              stat=Data format error, dsn=5.1.3
      greeting 554               stat=Service unavailable, dsn=5.5.0
    Everything else (554 -> 5.0.0, 552 -> 5.2.2, 4xx) reads the same at every command: None.
    """
    if stat.startswith("User unknown"):
        return "rcpt"
    if dsn == "5.2.0" and stat.startswith("Service unavailable") and reply_code in (550, None):
        return "end_of_data"
    if dsn == "5.1.3" and stat.startswith("Data format error"):
        return "mail"
    if dsn == "5.5.0" and stat.startswith("Service unavailable") and reply_code in (554, 421, None):
        return "connect"
    return None


_STAT_CODE_RE = re.compile(r"\b([245]\d\d)[ -]\d\.\d{1,3}\.\d{1,3}\b|\b([45]\d\d) ")


def _code_in_stat(stat: str) -> int | None:
    m = _STAT_CODE_RE.search(stat)
    if m is None:
        return None
    return int(m.group(1) or m.group(2))
