"""The sending daemon: queue -> suppression check -> throttle -> route -> compose -> SMTP -> queue + events.

Reads the queue (queue.Queue), the suppression list (re-read whenever its files change, checked
for every recipient just before its message starts; missing, unreadable or older than its history
stops the daemon: enqueue.load_suppressed) and the [sender] settings; writes every result back to
the queue together with its attempt record (the throttle's memory across restarts) and its event
row (events.py), which the EventFlusher moves into the Parquet event store every
`event_flush_interval` seconds and at shutdown. Run by `mailhygiene send daemon` (one per data
dir, held by a lock file) or by tests and benchmarks through `run_daemon()`.

Shape: `concurrency` worker threads, each with at most one open SMTP session, tagged with the
carrier it was opened for; a carrier has at most `connections[carrier]` (or `default_connections`)
sessions at once, each carrying at most `session_recipients[carrier]` (or
`max_recipients_per_session`) messages of one recipient each. A session idle for `idle_timeout`
is closed; otherwise it waits for its carrier's next window. Workers pull their next message from
the Dispatcher, which owns the per-carrier lanes (deferred rows whose backoff ended go first, then
queued rows in enqueue order; held jobs are left out) and asks the throttle for a slot.

SMTP outcome -> row state:
  2xx                          sent
  4xx, connection lost/refused, deferred until now + min(backoff_base * 2^(attempts-1), backoff_max);
  a timeout, a garbage or      failed ("expired") after max_attempts
  truncated reply
  421, rate-limit wording      deferred as above; the carrier is paused for rate_limit_pause s and its
                               count multiplied by rate_limit_factor, recovering over rate_recovery s
  5xx at RCPT or DATA          failed, reason from pipeline.classify.classifier
  5xx at MAIL FROM, or a      deferred as 4xx, and the carrier paused: our IP or sender domain is
                               refused, which is not the recipient's fault
      "blocked", "auth" or
      "sender_domain" 5xx at any phase
  the relay unusable: the      deferred (scope network or sender, never recipient); the relay paused
      connection refused, timed    (relay_pause s, doubling at each failure in a row up to
      out, its host unresolvable,  relay_pause_max; then one message probes it), whatever the carrier:
      dropped or refused at the    every carrier routed through it waits, the carrier's other relays
      greeting or EHLO, a failed   go on. The row waits for the pause's end; such tries count neither
      TLS handshake or certificate, towards max_attempts nor in the backoff (`relay_waits`): the
      STARTTLS required and not    address was never judged, and an outage never expires a message.
      offered, AUTH refused        A 421 or rate-limit wording at the greeting also pauses the carrier.
  5xx "too_many_recipients"    deferred as 4xx (the session carried too many), connection dropped
SIGTERM/SIGINT: no new message starts; messages in flight finish; results and events are written;
connections QUIT; exit 0. <data_dir>/sender/daemon.running exists while a daemon runs and is removed
once every result is written: a daemon that finds it left behind (kill -9, a failed commit) counts
concurrency x commit_batch unrecorded sends in every carrier's first window (Throttle.assume_unrecorded).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import smtplib
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..core.errors import MailHygieneError, SuppressionUnavailable
from ..core.fsutil import describe_os_error, file_lock
from ..core.idn import ascii_address
from .compose import MessageTemplate, charset_for
from .events import attempt_event, dsn_in, flush_outbox
from .queue import DueRow, Queue, Result
from .recipients import smtp_address
from .relaysession import RelayPolicies, RelayPolicy, RelaySessionError, open_failure, open_session
from .routes import Relay, Router
from .throttle import Throttle


class SenderError(MailHygieneError):
    """The daemon could not go on (its log says why); nothing is lost, unsent rows stay queued."""


log = logging.getLogger("mailhygiene.sender")

_RATE_WORDS = re.compile(r"too many|\brate\b|rate.?limit|throttl|slow(?:er| down)|too fast|try again later",
                         re.IGNORECASE)
# 5xx reasons that refuse our sending identity, not the recipient (carriers.md: our IP blocked,
# SPF/DKIM/DMARC/PTR failures, our envelope sender's domain): every recipient of the carrier would
# be refused alike, so they defer and pause the carrier, at whatever phase they come.
OUR_IDENTITY_REFUSED = frozenset({"blocked", "auth", "sender_domain"})
PREFETCH = 200
COMMIT_AGE = 0.05          # seconds a finished result may wait for its batch


@dataclass
class Outcome:
    state: str                      # sent | deferred | failed
    code: int | None = None
    reply: str = ""
    phase: str | None = None
    reason: str | None = None
    rate_limited: bool = False
    drop_connection: bool = False
    scope: str | None = None
    hard: bool | None = None
    relay_pause: bool = False       # the relay itself refused the session: pause the relay, not the carrier


@dataclass
class DaemonStats:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0
    recovered: int = 0
    events: int = 0
    started: float = field(default_factory=time.time)
    stopped_by: int = 0  # the signal that stopped it (0: none, the queue was done or max_seconds)

    def line(self) -> str:
        return (f"sent {self.sent}, deferred {self.deferred}, failed {self.failed}, "
                f"skipped {self.skipped} (recovered {self.recovered} from an earlier run); "
                f"{self.events} events written")


def classify_reply(code: int | None, text: str, phase: str | None, carrier: str, *,
                   domain: str | None = None, relay: str | None = None) -> Outcome:
    """Turn one SMTP reply (or a lost connection / unintelligible reply when code is None) into a
    row outcome."""
    text = (text or "").strip()
    if code is not None and not 200 <= code <= 599:   # smtplib's -1: not an SMTP reply at all
        text, code = f"unintelligible reply: {text[:200]!r}", None
    if code is not None and 200 <= code < 300:
        return Outcome("sent", code, text, phase, "delivered", scope="none", hard=None)
    from ..classify.classifier import classify

    diagnostic = f"{code} {text}" if code is not None else text
    day = datetime.now(timezone.utc).date()
    kw = dict(dsn=dsn_in(text), reply_code=code, smtp_phase=phase, carrier=carrier, mta="mailhygiene",
              recipient_domain=domain, relay=relay, day=day)
    if code is None or 400 <= code < 500 or code < 400:
        c = classify(status="deferred", diagnostic=diagnostic, **kw)
        limited = code == 421 or c.reason == "rate_limited" or (code is not None and bool(_RATE_WORDS.search(text)))
        reason, scope = c.reason, c.scope
        if code is None and scope == "recipient":
            # No SMTP reply at all (connection lost, timeout, a line that is no reply): the server
            # said nothing about this address, whatever words came with it. A recipient scope
            # would make it a counted error of the suppression rule.
            reason, scope = "network", "network"
        elif code == 421 and scope == "recipient":
            # 421: the server closes the channel (RFC 5321 4.2.2): slow down, never this customer's
            # fault, however it words it; the daemon pauses the carrier for it below
            reason, scope = "rate_limited", "sender"
        return Outcome("deferred", code, text, phase, reason, rate_limited=limited,
                       drop_connection=code in (None, 421), scope=scope, hard=False)
    c = classify(status="bounced", diagnostic=diagnostic, **kw)
    if phase in ("connect", "helo", "mail") or c.reason in OUR_IDENTITY_REFUSED:
        # Refused before any recipient was named (blocked IP, our sender domain...), or our IP or
        # domain refused at any phase (docomo and others say it at RCPT: "blocked using ...",
        # reputation; SPF/DMARC at RCPT or end of DATA; Postfix's "Sender address rejected" at
        # RCPT): not this address's fault. Retry later and give the carrier a rest instead of
        # failing the row, and of failing every row of the carrier one after the other.
        return Outcome("deferred", code, text, phase, c.reason, rate_limited=True, drop_connection=True,
                       scope=c.scope, hard=False)
    if c.reason == "too_many_recipients":
        # the session carried more than the server takes (docomo: "552 Too many recipients"):
        # our fault, not the address's; it goes again in a new session
        return Outcome("deferred", code, text, phase, c.reason, drop_connection=True, scope=c.scope, hard=False)
    return Outcome("failed", code, text, phase, c.reason, scope=c.scope, hard=c.hard)


def _text(resp) -> str:
    return resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp or "")


def session_refused(exc: RelaySessionError) -> Outcome:
    """STARTTLS or AUTH with the relay failed: a deferral of our own cause (scope sender: never
    counted against the address). The relay is paused (refused credentials, a relay that offers
    no STARTTLS or a certificate we do not trust would refuse every recipient alike), not the
    carrier: other carriers' mail through that relay waits too, and the carrier's mail through its
    other relays goes on. The carrier's rate is left as it is: its servers said nothing."""
    return Outcome("deferred", exc.code, exc.text, "helo", "auth" if exc.auth_refused else "system",
                   drop_connection=True, scope="sender", hard=False, relay_pause=True)


def relay_unusable(code: int | None, text: str, carrier: str, domain: str, relay: Relay) -> Outcome:
    """A session with the relay could not be opened (relaysession.open_failure): deferred, the
    relay paused. Whatever the words, no recipient was named yet: never the address's fault (a
    recipient scope would make it a counted error of the suppression rule). A 421 or rate-limit
    wording at the greeting is also the carrier's rate signal."""
    if code is not None and not 400 <= code <= 599:
        code = None
    out = classify_reply(code, text, "connect", carrier, domain=domain, relay=str(relay))
    limited = code == 421 or out.reason == "rate_limited" or (code is not None and bool(_RATE_WORDS.search(text)))
    if out.scope in (None, "recipient", "none"):
        out.reason, out.scope = ("network", "network") if code is None else ("system", "sender")
    return Outcome("deferred", code, text, "connect", out.reason, rate_limited=limited, drop_connection=True,
                   scope=out.scope, hard=False, relay_pause=True)


class Connection:
    def __init__(self, relay: Relay, helo: str, timeout: float, carrier: str,
                 policy: RelayPolicy | None = None):
        self.relay = relay
        self.carrier = carrier
        self.smtp = open_session(relay, policy or RelayPolicy(), helo, timeout)
        self.count = 0
        self.last_used = time.monotonic()

    def close(self) -> None:
        try:
            self.smtp.quit()
        except (smtplib.SMTPException, OSError):
            try:
                self.smtp.close()
            except OSError:
                pass

    def send(self, envelope_from: str, to: str, data: bytes, carrier: str) -> Outcome:
        """One MAIL/RCPT/DATA dialogue. A dead connection, a timeout or a reply that is no SMTP
        reply becomes a deferral (temporary), never a failure of the recipient."""
        s = self.smtp
        self.count += 1
        self.last_used = time.monotonic()
        phase = "mail"
        domain = to.rpartition("@")[2]
        try:
            code, resp = s.mail(envelope_from)
            if code != 250:
                return self._failed_step(code, resp, phase, carrier, domain)
            phase = "rcpt"
            code, resp = s.rcpt(smtp_address(to))
            if code not in (250, 251):
                return self._failed_step(code, resp, phase, carrier, domain)
            phase = "data"
            try:
                code, resp = s.data(data)
            except smtplib.SMTPDataError as exc:  # the server refused DATA itself (no 354)
                return self._failed_step(exc.smtp_code, exc.smtp_error, phase, carrier, domain)
            out = classify_reply(code, _text(resp), "end_of_data", carrier,
                                 domain=domain, relay=str(self.relay))
            if out.code is None:
                out.drop_connection = True
            return out
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException, OSError) as exc:
            out = classify_reply(None, f"connection lost during {phase}: {exc}", phase, carrier, domain=domain,
                                 relay=str(self.relay))
            out.drop_connection = True
            return out

    def _failed_step(self, code, resp, phase, carrier, domain) -> Outcome:
        out = classify_reply(code, _text(resp), phase, carrier, domain=domain, relay=str(self.relay))
        if code == 421 or out.code is None:
            out.drop_connection = True
        else:
            try:
                rc, _ = self.smtp.rset()
                if rc != 250:
                    out.drop_connection = True
            except (smtplib.SMTPException, OSError):
                out.drop_connection = True
        return out


class SuppressionWatch:
    """The suppression set, re-read whenever a file under <data_dir>/suppression/ changes.
    A list that cannot be trusted raises SuppressionUnavailable (the daemon stops).

    The history is only ever appended to, so once this watch has seen it, a history that is gone
    (the directory moved away, deleted, a file system unmounted under it) is a list that cannot be
    trusted, not "nothing suppressed": the store alone reads a missing directory as a new install's
    empty list."""

    def __init__(self, cfg, loader=None):
        from .enqueue import load_suppressed

        self.cfg = cfg
        self.dir = Path(cfg.data_dir) / "suppression"
        self.loader = loader or load_suppressed
        self._sig = None
        self._checked = 0.0
        self.addresses: frozenset[str] = frozenset()
        self.had_history = False
        self.refresh()

    def _signature(self):
        try:
            return tuple(sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in os.scandir(self.dir)))
        except FileNotFoundError:
            return ()
        except OSError as exc:  # not a directory, not readable: the list cannot be trusted
            raise SuppressionUnavailable(
                f"the suppression list cannot be trusted, so nothing is sent until it is repaired: cannot read "
                f"{self.dir}: {describe_os_error(exc)}") from None

    def refresh(self) -> frozenset[str]:
        now = time.monotonic()
        if now - self._checked < 0.2 and self._sig is not None:
            return self.addresses
        self._checked = now
        sig = self._signature()
        if sig != self._sig:
            has_history = any(name == "history.parquet" for name, _, _ in sig)
            if self.had_history and not has_history:
                raise SuppressionUnavailable(
                    "the suppression list cannot be trusted, so nothing is sent until it is repaired: its history "
                    f"{self.dir / 'history.parquet'} was there when this daemon read the list and is gone now "
                    "(moved, deleted, or its file system unmounted); put the suppression directory back, or "
                    "restore it from a backup, then start the daemon again")
            self.addresses = self.loader(self.cfg)
            self._sig = sig
            self.had_history = self.had_history or has_history
        return self.addresses


class WorkerState:
    def __init__(self, n: int):
        self.n = n
        self.conn: Connection | None = None
        self.session_carrier: str | None = None
        self.results: list[Result] = []
        self.first_result_at = 0.0


class Dispatcher:
    """Hands workers their next message: per-carrier lanes, sessions, throttle, suppression."""

    def __init__(self, daemon: "Daemon"):
        self.d = daemon
        self.lock = threading.Lock()
        self.lanes: dict[str, deque[DueRow]] = {}
        self.queued_after: dict[str, int] = {}
        self.more_queued: dict[str, bool] = {}   # the last fetch was full: more rows may wait
        self.in_lane: set[int] = set()
        self.taken: set[int] = set()        # handed to a worker, result not yet committed
        self.sessions: dict[str, int] = {}  # open SMTP sessions per carrier
        self.last_refresh = -1e18
        self.rr = 0
        self.done = False

    def _refresh(self, now: float) -> None:
        q = self.d.queue
        held = q.held_jobs()
        if held:  # a job put on hold since its rows were fetched: take them out of the lanes
            for carrier, lane in self.lanes.items():
                keep = deque(r for r in lane if r.job_id not in held)
                for r in lane:
                    if r.job_id in held:
                        self.in_lane.discard(r.id)
                        self.queued_after[carrier] = min(self.queued_after.get(carrier, 0), r.id - 1)
                self.lanes[carrier] = keep
        for carrier in q.due_carriers(now):
            lane = self.lanes.setdefault(carrier, deque())
            for row in reversed(q.due_deferred(carrier, now, PREFETCH)):   # retries first, when due
                if row.id not in self.in_lane and row.id not in self.taken:
                    lane.appendleft(row)
                    self.in_lane.add(row.id)
            if len(lane) < PREFETCH // 2:
                self._fetch_queued(carrier, lane)
        self.last_refresh = time.monotonic()

    def _fetch_queued(self, carrier: str, lane: deque) -> None:
        rows = self.d.queue.due_queued(carrier, self.queued_after.get(carrier, 0), PREFETCH)
        for row in rows:
            if row.id not in self.in_lane and row.id not in self.taken:
                lane.append(row)
                self.in_lane.add(row.id)
        if rows:
            self.queued_after[carrier] = rows[-1].id
        self.more_queued[carrier] = len(rows) == PREFETCH

    def session_limit(self, carrier: str) -> int:
        s = self.d.s
        return int(s.connections.get(carrier, s.default_connections) or self.d.concurrency)

    def next(self, w: WorkerState):
        """(row, token, relay) to send now, or (None, seconds to wait)."""
        d = self.d
        with self.lock:
            if d.stop.is_set() or self.done:
                return None, 0.0
            now = d.clock()
            # the cadence on the monotonic clock: after a step of the wall clock back, `now -
            # last_refresh` stayed negative and new jobs, due retries and holds went unseen for
            # the length of the step
            if time.monotonic() - self.last_refresh >= d.refresh_interval:
                self._refresh(now)
            own = w.session_carrier
            if own is not None and self.lanes.get(own):
                carriers = [own]   # keep the worker's session busy; the others only when it cannot go
            else:
                carriers = self._others(w)
                if not carriers:
                    if (d.exit_when_done and not self.taken and not w.results
                            and not d.queue.pending()):
                        self.done = True
                        return None, 0.0
                    return None, d.refresh_interval
            suppressed = d.suppression.refresh()
            wait = None
            for carrier in carriers:
                if carrier != w.session_carrier and self.sessions.get(carrier, 0) >= self.session_limit(carrier):
                    continue
                lane = self.lanes[carrier]
                if len(lane) < PREFETCH // 2 and self.more_queued.get(carrier):
                    self._fetch_queued(carrier, lane)   # a fast lane refills before it runs dry
                token = d.throttle.try_acquire(carrier)
                if token is None:
                    w_t = d.throttle.wait_time(carrier, now)
                    if w_t is not None:
                        wait = w_t if wait is None else min(wait, w_t)
                    if carrier == own and len(carriers) == 1:   # own carrier must wait: try the others
                        carriers.extend(c for c in self._others(w) if c != own)
                    continue
                held: list[DueRow] = []    # rows whose relay is paused: they keep their place
                picked = None
                while lane:
                    row = lane.popleft()
                    self.in_lane.discard(row.id)
                    if row.address in suppressed or (not row.address.isascii()
                                                     and ascii_address(row.address) in suppressed):
                        # (a row queued before addresses were keyed in A-label form: core/idn.py)
                        d.queue.skip(row.id, "suppressed", now)
                        d.count("skipped")
                        log.info("skipped %s: suppressed since enqueue", row.address)
                        continue
                    relay = d.route(row)
                    rest = d.throttle.relay_wait(str(relay))
                    if rest > 0:
                        held.append(row)
                        wait = rest if wait is None else min(wait, rest)
                        continue
                    picked = (row, relay)
                    break
                if held:
                    lane.extendleft(reversed(held))
                    self.in_lane.update(r.id for r in held)
                if picked is not None:
                    row, relay = picked
                    d.throttle.relay_taken(str(relay))    # after failures: the probe, the rest wait
                    if carrier != w.session_carrier:  # the worker's session moves to this carrier
                        if w.session_carrier is not None:
                            self.sessions[w.session_carrier] -= 1
                        self.sessions[carrier] = self.sessions.get(carrier, 0) + 1
                        w.session_carrier = carrier
                    self.taken.add(row.id)
                    return (row, token, relay), 0.0
                d.throttle.cancel(carrier, token)   # every row of the lane was suppressed or its relay paused
                if carrier == own and len(carriers) == 1:
                    carriers.extend(c for c in self._others(w) if c != own)
            return None, min(wait if wait is not None else d.refresh_interval, d.refresh_interval)

    def _others(self, w: WorkerState) -> list[str]:
        """Carriers with work, round robin, the worker's own first."""
        carriers = [c for c, lane in self.lanes.items() if lane]
        if carriers:
            self.rr = (self.rr + 1) % len(carriers)
            carriers = carriers[self.rr:] + carriers[: self.rr]
            if w.session_carrier in carriers:
                carriers.remove(w.session_carrier)
                carriers.insert(0, w.session_carrier)
        return carriers

    def session_closed(self, w: WorkerState) -> None:
        with self.lock:
            if w.session_carrier is not None:
                self.sessions[w.session_carrier] -= 1
                w.session_carrier = None

    def committed(self, ids) -> None:
        with self.lock:
            self.taken.difference_update(ids)

    def give_back(self, row: DueRow) -> None:
        with self.lock:
            self.taken.discard(row.id)
            self.lanes.setdefault(row.carrier, deque()).appendleft(row)
            self.in_lane.add(row.id)


class EventFlusher(threading.Thread):
    """Moves the outbox's event rows into the event store every `interval` seconds and once more
    when stopped. A failing store (disk full...) is logged and retried: the rows stay in SQLite."""

    def __init__(self, daemon: "Daemon", interval: float):
        super().__init__(name="sender-events", daemon=True)
        self.d = daemon
        self.interval = interval
        self.halt = threading.Event()
        self.last_error: str | None = None

    def flush(self) -> int:
        try:
            n = flush_outbox(self.d.queue, self.d.cfg.data_dir)
            self.d.stats.events += n
            self.last_error = None
            return n
        except Exception as exc:  # noqa: BLE001 - kept in the outbox, tried again
            msg = f"{exc.__class__.__name__}: {exc}"
            if msg != self.last_error:
                log.error("could not write the sender's events to the event store (%s); they wait in the "
                          "queue's outbox and are written at the next try", msg)
            self.last_error = msg
            return 0

    def run(self) -> None:
        last_prune = time.monotonic()
        while not self.halt.wait(self.interval):
            self.flush()
            if time.monotonic() - last_prune > 60:
                self.d.prune_attempts()
                last_prune = time.monotonic()


class Daemon:
    def __init__(self, cfg, *, clock=time.time, exit_when_done: bool = False,
                 max_seconds: float | None = None, suppression_loader=None, queue: Queue | None = None):
        s = cfg.sender
        self.cfg = cfg
        self.s = s
        self.clock = clock
        self.queue = queue or Queue.for_config(cfg)
        self.queue_file = str(self.queue.path)
        self.router = Router.from_config(s)
        self.policies = RelayPolicies.for_config(cfg)   # password files read and checked: before any send
        self.relay_mode = s.mode == "relay"
        self.default_relay = self.router.default
        # windows on the monotonic clock: a step of the wall clock neither empties nor stalls them
        self.throttle = Throttle.from_config(s, tz=cfg.tz, clock=clock, monotonic=time.monotonic,
                                             on_state=self.queue.save_throttle_state)
        self.suppression = SuppressionWatch(cfg, suppression_loader)   # fails closed before anything is sent
        self.exit_when_done = exit_when_done
        self.max_seconds = max_seconds
        self.stop = threading.Event()
        self.error: Exception | None = None
        self.stats = DaemonStats()
        self._slock = threading.Lock()
        self.concurrency = max(1, int(s.concurrency))
        self.refresh_interval = min(float(s.poll_interval), 0.25)
        self.envelope_from = s.envelope_from or s.from_address
        self.helo = s.helo or socket.getfqdn()
        self._templates: dict[tuple[int, str], MessageTemplate] = {}
        self._tlock = threading.Lock()
        self.dispatcher = Dispatcher(self)
        self.flusher = EventFlusher(self, float(s.event_flush_interval))
        # present while a daemon runs; left behind by one that did not record all it sent
        self.running_marker = Path(cfg.data_dir) / "sender" / "daemon.running"
        self.unrecorded = False     # a last commit failed: sends without their results

    # ------------------------------------------------------------------ helpers
    def count(self, what: str, n: int = 1) -> None:
        with self._slock:
            setattr(self.stats, what, getattr(self.stats, what) + n)

    def route(self, row: DueRow) -> Relay:
        return self.default_relay if self.relay_mode else self.router.route(row.domain, row.carrier)

    def per_session(self, carrier: str) -> int:
        s = self.s
        return max(1, min(int(s.messages_per_connection),
                          int(s.session_recipients.get(carrier, s.max_recipients_per_session))))

    def template(self, job_id: int, carrier: str) -> MessageTemplate:
        key = (job_id, charset_for(self.s, carrier))
        with self._tlock:
            t = self._templates.get(key)
            if t is None:
                job = self.queue.job(job_id)
                t = MessageTemplate(subject=job.subject, body=job.body, from_address=job.from_address,
                                    from_name=job.from_name, charset=key[1], unmappable=self.s.unmappable,
                                    substitutions=self.s.substitutions)
                self._templates[key] = t
            return t

    def mail_from(self, address: str) -> str:
        if not self.s.verp:
            return self.envelope_from
        return verp_address(self.envelope_from, address)

    def backoff(self, attempts: int) -> float:
        base, top = float(self.s.backoff_base), float(self.s.backoff_max)
        return min(base * (2 ** max(attempts - 1, 0)), top)

    def prune_attempts(self) -> None:
        try:
            self.queue.prune_attempts(self.clock() - 2 * self.throttle.longest_interval() - 60)
        except Exception:  # noqa: BLE001 - housekeeping only
            log.exception("could not prune the attempt log")

    def result(self, row: DueRow, out: Outcome, relay: Relay, message_id: str | None, started: float) -> Result:
        now = self.clock()
        attempts = row.attempts + 1
        state, next_at, reason = out.state, 0.0, out.reason
        status = {"sent": "sent", "deferred": "deferred", "failed": "bounced"}[state]
        tries = attempts - row.relay_waits      # the tries a server judged (relay outages left out)
        if state == "deferred":
            if out.relay_pause:
                # the relay could not be used: the row waits for the relay's pause, and this try
                # neither counts towards max_attempts nor lengthens its backoff (never expired)
                until, n = self.throttle.pause_relay(str(relay), float(self.s.relay_pause),
                                                     float(self.s.relay_pause_max))
                next_at = max(now, until)
                log.warning("%s: %s; pausing the relay until %s (failure %d in a row; every carrier routed "
                            "through it waits)", relay, out.reply,
                            time.strftime("%H:%M:%S", time.localtime(until)), n)
            elif tries >= int(self.s.max_attempts):
                state, reason, status = "failed", "expired", "expired"
            else:
                next_at = now + self.backoff(tries)
            if out.rate_limited:
                until, count = self.throttle.rate_limited(row.carrier, float(self.s.rate_limit_pause))
                log.warning("%s: %s %s; pausing %s until %s, then %d per %ss", relay, out.code,
                            out.reply, row.carrier, time.strftime("%H:%M:%S", time.localtime(until)), count,
                            self.throttle.rate_for(row.carrier).interval)
        event = None
        # A 250 from the carrier's server (a route) is a delivery; a 250 from default_relay or in
        # relay mode only hands the message to another MTA, whose own log or bounces tell the rest
        # (a "sent" row for it would hide the real result from the rule).
        handoff = self.relay_mode or self.router.lookup(row.domain, row.carrier) is None
        if not (handoff and status == "sent"):
            event = attempt_event(
                ts=now, host=self.helo, job_id=row.job_id, row_id=row.id, attempt=attempts, message_id=message_id,
                sender=self.mail_from(row.address), recipient=row.address, carrier=row.carrier, relay=str(relay),
                status=status, reply_code=out.code, reply=out.reply, smtp_phase=out.phase,
                reason=out.reason if status != "expired" else (out.reason or "expired"),
                scope=out.scope, hard=out.hard if status == "bounced" else (None if status == "sent" else False),
                queue_file=self.queue_file)
        self.count(state)
        log.debug("%s %s via %s: %s %s", state, row.address, relay, out.code, out.reply)
        return Result(row.id, state, row.carrier, started, now, next_at, out.code, out.reply[:500], out.phase,
                      reason, str(relay), message_id, event, relay_wait=out.relay_pause and state == "deferred")

    def commit(self, w: WorkerState) -> None:
        if not w.results:
            return
        results, w.results = w.results, []
        try:
            self.queue.finish_many(results)
        except BaseException:
            self.unrecorded = True      # sent, but no result: the next start must count them
            raise
        self.dispatcher.committed([r.row_id for r in results])

    # ------------------------------------------------------------------ workers
    def _close(self, w: WorkerState) -> None:
        if w.conn is not None:
            w.conn.close()
            w.conn = None
        self.dispatcher.session_closed(w)

    def _worker(self, w: WorkerState) -> None:
        timeout = float(self.s.timeout)
        idle = float(self.s.idle_timeout)
        batch = int(self.s.commit_batch)
        try:
            while True:
                item, wait = self.dispatcher.next(w)
                if item is None:
                    self.commit(w)
                    if self.stop.is_set() or self.dispatcher.done:
                        return
                    if w.conn and time.monotonic() - w.conn.last_used > idle:
                        self._close(w)
                    elif w.conn is None and w.session_carrier is not None:
                        self.dispatcher.session_closed(w)
                    self.stop.wait(wait)
                    continue
                row, token, relay = item
                try:
                    msg = self.template(row.job_id, row.carrier).render(row.address)
                except Exception:  # nothing was sent: give the row and the slot back, then stop
                    self.throttle.cancel(row.carrier, token)
                    self.dispatcher.give_back(row)
                    raise
                started = self.clock()
                try:
                    if w.conn and (w.conn.relay != relay or w.conn.carrier != row.carrier
                                   or w.conn.count >= self.per_session(row.carrier)):
                        w.conn.close()
                        w.conn = None
                    try:
                        reused = w.conn is not None
                        if w.conn is None:
                            w.conn = Connection(relay, self.helo, timeout, row.carrier,
                                                self.policies.for_relay(relay))
                            self.throttle.relay_ok(str(relay))
                        out = w.conn.send(self.mail_from(row.address), row.address, msg.data, row.carrier)
                        if reused and out.code is None and out.phase == "mail":
                            # the kept session was gone before MAIL FROM was answered (the server's
                            # own per-session limit, or an idle cut): the server was told nothing
                            # of this message, which goes at once over a new session instead of
                            # being deferred for backoff_base
                            w.conn.close()
                            w.conn = None
                            w.conn = Connection(relay, self.helo, timeout, row.carrier,
                                                self.policies.for_relay(relay))
                            out = w.conn.send(self.mail_from(row.address), row.address, msg.data, row.carrier)
                    except RelaySessionError as exc:
                        out = session_refused(exc)
                        log.warning("%s", exc.text)
                    except (smtplib.SMTPException, OSError) as exc:
                        # the session could not be opened (Connection.send catches its own faults)
                        code, text = open_failure(exc, relay, timeout)
                        out = relay_unusable(code, text, row.carrier, row.domain, relay)
                    if out.drop_connection and w.conn is not None:
                        w.conn.close()
                        w.conn = None
                finally:
                    self.throttle.release(row.carrier, token)
                    self.throttle.relay_done(str(relay))
                if not w.results:
                    w.first_result_at = time.monotonic()
                w.results.append(self.result(row, out, relay, msg.message_id, started))
                if len(w.results) >= batch or time.monotonic() - w.first_result_at >= COMMIT_AGE:
                    self.commit(w)
        except Exception as exc:  # never die silently: unsent rows stay queued for the next run
            if not isinstance(exc, MailHygieneError):
                log.exception("sender worker crashed")
            self.error = exc
            self.stop.set()
        finally:
            try:
                self.commit(w)
            except Exception:  # noqa: BLE001 - those rows are still queued: sent again next run
                log.exception("could not write the last results")
            self._close(w)

    # ------------------------------------------------------------------ run
    def run(self) -> DaemonStats:
        now = self.clock()
        self.stats.recovered = self.queue.recover(now)
        if self.stats.recovered:
            log.info("%d recipients were in flight when the last run stopped: sending them again",
                     self.stats.recovered)
        self.throttle.restore(self.queue.window_attempts(now - self.throttle.longest_interval()),
                              self.queue.throttle_states(), self.queue.relay_strikes())
        if os.path.lexists(self.running_marker):
            # the last daemon was killed (or lost its last results): the sends it made without a
            # result are not in the attempt log, yet the servers counted them
            bound = self.concurrency * int(self.s.commit_batch)
            log.warning("the last sender daemon did not stop cleanly: up to %d messages it sent may be unrecorded; "
                        "they are sent again, and every carrier's first window counts them", bound)
            self.throttle.assume_unrecorded(bound)
        try:
            self.running_marker.write_text(f"{os.getpid()}\n")
        except OSError as exc:
            raise SenderError(f"cannot write {self.running_marker}: {describe_os_error(exc)}; nothing was sent") from None
        self.flusher.flush()            # rows an earlier run could not write
        self.flusher.start()
        workers = [WorkerState(i) for i in range(self.concurrency)]
        threads = [threading.Thread(target=self._worker, args=(w,), name=f"sender-{w.n}", daemon=True)
                   for w in workers]
        for t in threads:
            t.start()
        deadline = None if self.max_seconds is None else time.monotonic() + self.max_seconds
        last_log = time.monotonic()
        try:
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(timeout=0.05)
                    if t.is_alive():
                        break
                if deadline is not None and time.monotonic() > deadline:
                    self.stop.set()
                if time.monotonic() - last_log > 10:
                    log.info("%s", self.stats.line())
                    last_log = time.monotonic()
        finally:
            self.stop.set()
            for t in threads:
                t.join(timeout=float(self.s.timeout) * 4)
            self.flusher.halt.set()
            self.flusher.join(timeout=60)
            self.flusher.flush()
            if not self.unrecorded and not any(t.is_alive() for t in threads):
                self.running_marker.unlink(missing_ok=True)   # every send's result is recorded
        if self.error is not None:
            if isinstance(self.error, MailHygieneError):
                raise self.error
            raise SenderError(f"the daemon stopped after an unexpected error: {self.error!r}; unsent messages "
                              "stay queued and are sent at the next start") from self.error
        return self.stats


def verp_address(envelope_from: str, recipient: str) -> str:
    """`bounce@mail.example.jp` + `taro@docomo.ne.jp` -> `bounce+taro=docomo.ne.jp@mail.example.jp`."""
    local, _, domain = envelope_from.rpartition("@")
    r_local, _, r_domain = recipient.rpartition("@")
    return smtp_address(f"{local}+{r_local}={r_domain}@{domain}")


class DaemonLock:
    """One daemon per data dir: an flock on <data_dir>/sender/daemon.lock holding the daemon's pid
    (pipeline.core.fsutil.file_lock: LockedError when another daemon has it, StoreError when the
    lock file cannot be made, e.g. a read-only data dir)."""

    def __init__(self, data_dir):
        self.path = Path(data_dir) / "sender" / "daemon.lock"
        self._held = None

    def __enter__(self):
        held = file_lock(self.path, write_pid=True,
                         busy=f"another sender daemon is running on this data dir ({self.path}); this one did "
                              "not start")
        held.__enter__()
        self._held = held
        return self

    def __exit__(self, *exc):
        held, self._held = self._held, None
        return held.__exit__(*exc) if held is not None else False


def run_daemon(cfg, *, exit_when_done: bool = False, max_seconds: float | None = None,
               install_signals: bool = False, suppression_loader=None, clock=time.time) -> DaemonStats:
    """Run until stopped (SIGTERM/SIGINT/SIGHUP when install_signals), or until the queue is done.
    SIGHUP (`kill -HUP`, `systemctl kill -s HUP`: what operators send to "reload") stops as
    gracefully as SIGTERM, never mid-message; the command then exits 129 so that systemd's
    Restart=on-failure starts it again, with the config read anew."""
    with DaemonLock(cfg.data_dir):
        d = Daemon(cfg, exit_when_done=exit_when_done, max_seconds=max_seconds,
                   suppression_loader=suppression_loader, clock=clock)
        got: list[int] = []
        if install_signals:
            def _stop(signum, frame):
                got.append(signum)
                log.info("signal %d: finishing the messages in flight, then stopping", signum)
                d.stop.set()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(signum, _stop)
        stats = d.run()
        stats.stopped_by = got[0] if got else 0
        return stats
