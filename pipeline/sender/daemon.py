"""The sending daemon: queue -> suppression check -> throttle -> route -> compose -> SMTP -> queue.

Reads the queue (queue.Queue), the suppression list (re-read whenever its files change, and
checked for every recipient just before its message starts) and the config's [sender] table;
writes every result back to the queue. Run by `mailhygiene send daemon` (one per data dir, held
by a lock file) or by tests and benchmarks through `run_daemon()`.

Shape: `concurrency` worker threads, each with at most one open SMTP connection (reused for up to
min(messages_per_connection, max_recipients_per_session) messages, one recipient each). Workers
pull their next message from the Dispatcher, which owns the per-carrier lanes and the throttle:
a row is claimed (queued -> sending) only once its carrier's throttle granted a slot, so the rows
in `sending` are exactly the messages in flight (at most `concurrency`).

SMTP outcome -> row state:
  2xx                          sent
  4xx, connection lost/refused deferred until now + min(backoff_base * 2^(attempts-1), backoff_max);
                               failed ("expired") after max_attempts
  421, rate-limit wording      deferred as above, and the carrier is paused for rate_limit_pause s
  5xx at RCPT or DATA          failed, reason from pipeline.classify.classifier
  5xx before RCPT (greeting,   deferred as 4xx, and the carrier paused: our IP or sender domain is
      HELO, MAIL FROM)         refused, which is not the recipient's fault
SIGTERM/SIGINT: no new message starts; messages in flight finish; connections QUIT; exit 0.
"""

from __future__ import annotations

import fcntl
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
from pathlib import Path

from ..core.errors import LockedError, MailHygieneError


class SenderError(MailHygieneError):
    """The daemon could not go on (its log says why); nothing is lost, in-flight rows are retried."""
from .compose import MessageTemplate, charset_for
from .queue import DueRow, Queue
from .recipients import smtp_address
from .routes import Relay, Router
from .throttle import Throttle

log = logging.getLogger("mailhygiene.sender")

_RATE_WORDS = re.compile(r"too many|\brate\b|rate.?limit|throttl|slow(?:er| down)|too fast|try again later",
                         re.IGNORECASE)
PREFETCH = 200


@dataclass
class Outcome:
    state: str                      # sent | deferred | failed
    code: int | None = None
    reply: str = ""
    phase: str | None = None
    reason: str | None = None
    rate_limited: bool = False
    drop_connection: bool = False


@dataclass
class DaemonStats:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0
    recovered: int = 0
    started: float = field(default_factory=time.time)

    def line(self) -> str:
        return (f"sent {self.sent}, deferred {self.deferred}, failed {self.failed}, "
                f"skipped {self.skipped} (recovered {self.recovered} from an earlier run)")


def classify_reply(code: int | None, text: str, phase: str | None, carrier: str) -> Outcome:
    """Turn one SMTP reply (or a lost connection when code is None) into a row outcome."""
    text = (text or "").strip()
    if code is not None and 200 <= code < 300:
        return Outcome("sent", code, text, phase, "delivered")
    from ..classify.classifier import classify

    diagnostic = f"{code} {text}" if code is not None else text
    if code is None or 400 <= code < 500:
        c = classify(status="deferred", diagnostic=diagnostic, reply_code=code, smtp_phase=phase, carrier=carrier)
        limited = code == 421 or c.reason == "rate_limited" or bool(_RATE_WORDS.search(text))
        return Outcome("deferred", code, text, phase, c.reason, rate_limited=limited,
                       drop_connection=code in (None, 421))
    c = classify(status="bounced", diagnostic=diagnostic, reply_code=code, smtp_phase=phase, carrier=carrier)
    if phase in ("connect", "helo", "mail"):
        # Refused before any recipient was named (blocked IP, our sender domain...): not this
        # address's fault. Retry later and give the carrier a rest instead of failing the row.
        return Outcome("deferred", code, text, phase, c.reason, rate_limited=True, drop_connection=True)
    return Outcome("failed", code, text, phase, c.reason)


def _text(resp) -> str:
    return resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp or "")


class Connection:
    def __init__(self, relay: Relay, helo: str, timeout: float):
        self.relay = relay
        self.smtp = smtplib.SMTP(relay.host, relay.port, local_hostname=helo or None, timeout=timeout)
        self.smtp.ehlo_or_helo_if_needed()
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
        """One MAIL/RCPT/DATA dialogue. Exceptions from a dead connection become a deferral."""
        s = self.smtp
        self.count += 1
        self.last_used = time.monotonic()
        phase = "mail"
        try:
            code, resp = s.mail(envelope_from)
            if code != 250:
                return self._failed_step(code, resp, phase, carrier)
            phase = "rcpt"
            code, resp = s.rcpt(smtp_address(to))
            if code not in (250, 251):
                return self._failed_step(code, resp, phase, carrier)
            phase = "data"
            try:
                code, resp = s.data(data)
            except smtplib.SMTPDataError as exc:  # the server refused DATA itself (no 354)
                return self._failed_step(exc.smtp_code, exc.smtp_error, phase, carrier)
            return classify_reply(code, _text(resp), "end_of_data" if code >= 300 else phase, carrier)
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException, OSError) as exc:
            out = classify_reply(None, f"connection lost during {phase}: {exc}", phase, carrier)
            out.drop_connection = True
            return out

    def _failed_step(self, code, resp, phase, carrier) -> Outcome:
        out = classify_reply(code, _text(resp), phase, carrier)
        if code == 421 or code == -1:
            out.drop_connection = True
        else:
            try:
                self.smtp.rset()
            except (smtplib.SMTPException, OSError):
                out.drop_connection = True
        return out


class SuppressionWatch:
    """The suppression set, re-read whenever a file under <data_dir>/suppression/ changes."""

    def __init__(self, cfg, loader=None):
        from .enqueue import load_suppressed

        self.cfg = cfg
        self.dir = Path(cfg.data_dir) / "suppression"
        self.loader = loader or load_suppressed
        self._sig = None
        self.addresses: frozenset[str] = frozenset()
        self.refresh()

    def _signature(self):
        try:
            return tuple(sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in os.scandir(self.dir)))
        except FileNotFoundError:
            return ()

    def refresh(self) -> frozenset[str]:
        sig = self._signature()
        if sig != self._sig:
            self.addresses = self.loader(self.cfg)
            self._sig = sig
        return self.addresses


class Dispatcher:
    """Hands workers their next message: per-carrier lanes, throttle, suppression, claim."""

    def __init__(self, daemon: "Daemon"):
        self.d = daemon
        self.lock = threading.Lock()
        self.lanes: dict[str, deque[DueRow]] = {}
        self.last_refresh = 0.0
        self.rr = 0
        self.in_flight = 0
        self.done = False

    def _refresh(self, now: float) -> None:
        q = self.d.queue
        for carrier in q.due_carriers(now):
            lane = self.lanes.setdefault(carrier, deque())
            if not lane:
                lane.extend(q.due(carrier, now, PREFETCH))
        self.last_refresh = now

    def next(self, current_relay: Relay | None):
        """(row, token, relay) to send now, or (None, seconds to wait)."""
        d = self.d
        with self.lock:
            if d.stop.is_set() or self.done:
                return None, 0.0
            now = d.clock()
            if now - self.last_refresh >= d.refresh_interval:
                self._refresh(now)
            carriers = [c for c, lane in self.lanes.items() if lane]
            if not carriers:
                if d.exit_when_done and self.in_flight == 0 and not d.queue.pending():
                    self.done = True
                    return None, 0.0
                return None, d.refresh_interval
            self.rr = (self.rr + 1) % len(carriers)
            carriers = carriers[self.rr:] + carriers[: self.rr]
            if current_relay is not None:  # keep the worker's connection busy when we can
                carriers.sort(key=lambda c: d.router.route(self.lanes[c][0].domain, c) != current_relay)
            suppressed = d.suppression.refresh()
            wait = None
            for carrier in carriers:
                w = d.throttle.wait_time(carrier, now)
                if w != 0.0:
                    if w is not None:
                        wait = w if wait is None else min(wait, w)
                    continue
                lane = self.lanes[carrier]
                while lane:
                    row = lane.popleft()
                    if row.address in suppressed:
                        d.queue.skip(row.id, "suppressed", now)
                        d.stats.skipped += 1
                        log.info("skipped %s: suppressed since enqueue", row.address)
                        continue
                    token = d.throttle.try_acquire(carrier)
                    if token is None:
                        lane.appendleft(row)
                        break
                    if not d.queue.claim(row.id, now):
                        d.throttle.cancel(carrier, token)
                        continue
                    self.in_flight += 1
                    return (row, token, d.router.route(row.domain, carrier)), 0.0
            return None, min(wait if wait is not None else d.refresh_interval, d.refresh_interval)

    def finished_one(self) -> None:
        with self.lock:
            self.in_flight -= 1


class Daemon:
    def __init__(self, cfg, *, clock=time.time, exit_when_done: bool = False,
                 max_seconds: float | None = None, suppression_loader=None, queue: Queue | None = None):
        s = cfg["sender"]
        self.cfg = cfg
        self.s = s
        self.clock = clock
        self.queue = queue or Queue.for_config(cfg)
        self.router = Router.from_config(s)
        self.throttle = Throttle.from_config(s, tz=cfg.tz, clock=clock)
        self.suppression = SuppressionWatch(cfg, suppression_loader)
        self.exit_when_done = exit_when_done
        self.max_seconds = max_seconds
        self.stop = threading.Event()
        self.error: Exception | None = None
        self.stats = DaemonStats()
        self.refresh_interval = min(float(s["poll_interval"]), 0.25)
        self.per_connection = max(1, min(int(s["messages_per_connection"]), int(s["max_recipients_per_session"])))
        self.envelope_from = s["envelope_from"] or s["from_address"]
        self._templates: dict[tuple[int, str], MessageTemplate] = {}
        self._tlock = threading.Lock()
        self.dispatcher = Dispatcher(self)

    # ------------------------------------------------------------------ helpers
    def template(self, job_id: int, carrier: str) -> MessageTemplate:
        key = (job_id, charset_for(self.s, carrier))
        with self._tlock:
            t = self._templates.get(key)
            if t is None:
                job = self.queue.job(job_id)
                t = MessageTemplate(subject=job.subject, body=job.body, from_address=job.from_address,
                                    from_name=job.from_name, charset=key[1], unmappable=self.s["unmappable"])
                self._templates[key] = t
            return t

    def backoff(self, attempts: int) -> float:
        base, top = float(self.s["backoff_base"]), float(self.s["backoff_max"])
        return min(base * (2 ** max(attempts - 1, 0)), top)

    def record(self, row: DueRow, out: Outcome, relay: Relay, message_id: str | None) -> None:
        now = self.clock()
        attempts = row.attempts + 1
        state, next_at, reason = out.state, 0.0, out.reason
        if state == "deferred":
            if attempts >= int(self.s["max_attempts"]):
                state, reason = "failed", "expired"
            else:
                next_at = now + self.backoff(attempts)
            if out.rate_limited:
                self.throttle.pause(row.carrier, float(self.s["rate_limit_pause"]))
                log.warning("%s: rate-limit reply %s %s; pausing %s for %ss", relay, out.code, out.reply,
                            row.carrier, self.s["rate_limit_pause"])
        self.queue.finish(row.id, state, now=now, next_attempt_at=next_at, reply_code=out.code,
                          reply=out.reply[:500], smtp_phase=out.phase, reason=reason, relay=str(relay),
                          message_id=message_id)
        setattr(self.stats, state, getattr(self.stats, state) + 1)
        log.debug("%s %s via %s: %s %s", state, row.address, relay, out.code, out.reply)

    # ------------------------------------------------------------------ workers
    def _worker(self) -> None:
        conn: Connection | None = None
        helo = self.s["helo"] or socket.getfqdn()
        timeout = float(self.s["timeout"])
        try:
            while True:
                item, wait = self.dispatcher.next(conn.relay if conn else None)
                if item is None:
                    if self.stop.is_set() or self.dispatcher.done:
                        return
                    if conn and time.monotonic() - conn.last_used > 2.0:
                        conn.close()
                        conn = None
                    self.stop.wait(wait)
                    continue
                row, token, relay = item
                message_id = None
                try:
                    msg = self.template(row.job_id, row.carrier).render(row.address)
                    message_id = msg.message_id
                except Exception:  # nothing was sent: give the row and the slot back, then stop
                    self.queue.unclaim(row.id, self.clock())
                    self.throttle.cancel(row.carrier, token)
                    self.dispatcher.finished_one()
                    raise
                try:
                    if conn and (conn.relay != relay or conn.count >= self.per_connection):
                        conn.close()
                        conn = None
                    try:
                        if conn is None:
                            conn = Connection(relay, helo, timeout)
                        out = conn.send(self.envelope_from, row.address, msg.data, row.carrier)
                    except (smtplib.SMTPException, OSError) as exc:
                        code = getattr(exc, "smtp_code", None)
                        text = _text(getattr(exc, "smtp_error", "")) or f"cannot connect to {relay}: {exc}"
                        out = classify_reply(code if isinstance(code, int) and code > 0 else None, text, "connect",
                                             row.carrier)
                        out.drop_connection = True
                    if out.drop_connection and conn is not None:
                        conn.close()
                        conn = None
                finally:
                    self.throttle.release(row.carrier, token)
                try:
                    self.record(row, out, relay, message_id)
                finally:
                    self.dispatcher.finished_one()
        except Exception as exc:  # never die silently: a crashed worker leaves its row for recover()
            log.exception("sender worker crashed")
            self.error = exc
            self.stop.set()
        finally:
            if conn is not None:
                conn.close()

    # ------------------------------------------------------------------ run
    def run(self) -> DaemonStats:
        self.stats.recovered = self.queue.recover(self.clock())
        if self.stats.recovered:
            log.info("%d recipients were in flight when the last run stopped: sending them again",
                     self.stats.recovered)
        n = max(1, int(self.s["concurrency"]))
        threads = [threading.Thread(target=self._worker, name=f"sender-{i}", daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        deadline = None if self.max_seconds is None else time.monotonic() + self.max_seconds
        last_log = time.monotonic()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.2)
                if not t.is_alive():
                    continue
                break
            if deadline is not None and time.monotonic() > deadline:
                self.stop.set()
            if time.monotonic() - last_log > 10:
                log.info("%s", self.stats.line())
                last_log = time.monotonic()
        if self.error is not None:
            if isinstance(self.error, MailHygieneError):
                raise self.error
            raise SenderError(f"the daemon stopped after an unexpected error: {self.error!r}; the messages "
                              "in flight are sent again at the next start") from self.error
        return self.stats


class DaemonLock:
    """One daemon per data dir: an flock on <data_dir>/sender/daemon.lock."""

    def __init__(self, data_dir):
        self.path = Path(data_dir) / "sender" / "daemon.lock"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = None

    def __enter__(self):
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.close()
            raise LockedError(f"another sender daemon is running on this data dir ({self.path})") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"{os.getpid()}\n")
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def run_daemon(cfg, *, exit_when_done: bool = False, max_seconds: float | None = None,
               install_signals: bool = False, suppression_loader=None) -> DaemonStats:
    """Run until stopped (SIGTERM/SIGINT when install_signals), or until the queue is done."""
    with DaemonLock(cfg.data_dir):
        d = Daemon(cfg, exit_when_done=exit_when_done, max_seconds=max_seconds,
                   suppression_loader=suppression_loader)
        if install_signals:
            def _stop(signum, frame):
                log.info("signal %d: finishing the messages in flight, then stopping", signum)
                d.stop.set()
            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
        return d.run()
