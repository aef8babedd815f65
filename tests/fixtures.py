"""Helpers the test modules share: paths, the shared corpus, configs, event rows, sample text,
and the real things several modules drive (a `mailhygiene watch` process, a private Postfix).

Plain functions, classes and constants only: pytest fixtures and hooks live in conftest.py.
Test modules import from here (`from fixtures import SAMPLES, make_config`), never from conftest
or from another test module (tests/test_architecture.py checks it). Data files the tests read
are in tests/fixtures/ (a folder beside this module; `import fixtures` finds this file).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

if TYPE_CHECKING:
    from pipeline.sender.testing import RecordingServer

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_logs"
TOKYO = ZoneInfo("Asia/Tokyo")
CLI = "from pipeline.cli import main; main()"   # `python -c CLI ...` runs the console command


# The environment variables the CLI reads for its global options: a developer's own settings must
# not reach the tests (conftest removes them; run_as keeps them from a child too).
OPERATOR_ENV = ("MAILHYGIENE_CONFIG", "MAILHYGIENE_DATA_DIR", "MAILHYGIENE_TIMEZONE")


# ----------------------------------------------------------------------------- the shared folder
SHARED_ENV = "MAILHYGIENE_SHARED"
REQUIRE_SHARED_ENV = "MAILHYGIENE_REQUIRE_SHARED"


def shared_dir() -> Path:
    """The project's shared folder (design notes, reference tables, the public corpus):
    $MAILHYGIENE_SHARED, else `shared/` beside the checkout (../shared)."""
    return Path(os.environ.get(SHARED_ENV) or REPO.parent / "shared")


SHARED = shared_dir()
CORPUS = SHARED / "corpus" / "public"


def shared_required() -> bool:
    """MAILHYGIENE_REQUIRE_SHARED=1 (a run that must exercise the corpus): a missing shared
    folder fails the tests that need it instead of skipping them. Off by default: a clean
    checkout without ../shared (the project's CI among them) runs the rest and says what it skipped."""
    return os.environ.get(REQUIRE_SHARED_ENV, "").strip() == "1"


def _missing_shared(path: Path, what: str) -> str:
    how = (f"set {SHARED_ENV}=/path/to/shared (the folder holding corpus/ and reference/), or put it "
           f"at {REPO.parent / 'shared'}")
    where = f"${SHARED_ENV}={os.environ[SHARED_ENV]}" if os.environ.get(SHARED_ENV) else "../shared beside the checkout"
    return f"SKIPPED LOUDLY: {what} not found at {path} (looked in {where}); {how}"


def shared_path(*parts: str, what: str = "the shared corpus") -> Path:
    """A file or folder under the shared folder; when it is missing the test skips, with the path
    looked for and how to set it, or (with MAILHYGIENE_REQUIRE_SHARED=1) fails."""
    path = SHARED.joinpath(*parts)
    if path.exists():
        return path
    reason = _missing_shared(path, what)
    if shared_required():
        pytest.fail(f"{reason.removeprefix('SKIPPED LOUDLY: ')} ({REQUIRE_SHARED_ENV}=1: a failure, not a skip)",
                    pytrace=False)
    pytest.skip(reason)


def corpus_path(*parts: str) -> Path:
    """shared_path() under corpus/public/ (PROVENANCE.md there says where each file comes from)."""
    return shared_path("corpus", "public", *parts, what="the public corpus file")


def optional_corpus_path(*parts: str) -> Path | None:
    """For tests whose corpus lines are an extra on top of their own: the path, or None with a
    warning (a failure with MAILHYGIENE_REQUIRE_SHARED=1, as for corpus_path())."""
    path = CORPUS.joinpath(*parts)
    if path.exists():
        return path
    reason = _missing_shared(path, "the public corpus file")
    if shared_required():
        pytest.fail(f"{reason.removeprefix('SKIPPED LOUDLY: ')} ({REQUIRE_SHARED_ENV}=1: a failure)", pytrace=False)
    import warnings

    warnings.warn(reason.replace("SKIPPED LOUDLY", "corpus lines left out"), stacklevel=2)
    return None


# ----------------------------------------------------------------------------- configs
class Hung(BaseException):
    """Raised by alarm(): the work did not end in time (a hang, not a speed figure)."""


@contextmanager
def alarm(seconds: float):
    """Stop a hang: Hung is raised in the main thread after `seconds`. For work that takes well
    under a second unless something is quadratic or stuck, never as a speed target."""
    def ring(signum, frame):
        raise Hung(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def make_config(tmp_path, toml: str = "", **kw):
    """A config from `toml` written to tmp_path/mailhygiene.toml (data dir tmp_path/data)."""
    from pipeline.core.config import load_config

    path = tmp_path / "mailhygiene.toml"
    path.write_text(toml, encoding="utf-8")
    return load_config(path, data_dir=kw.get("data_dir", tmp_path / "data"), timezone=kw.get("timezone", "Asia/Tokyo"))


def sender_toml(relay: str, from_address: str = "news@mail.example.jp") -> str:
    """The [sender] table the sender tests share (more sender keys may follow it)."""
    return f'[sender]\nfrom_address = "{from_address}"\nfrom_name = "配信センター"\ndefault_relay = "{relay}"\n'


# ----------------------------------------------------------------------------- relays with STARTTLS and AUTH
PASSWORD = "s3cret-Pa55"   # the relay password of the TLS/AUTH tests


def make_cert(d: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 (its own CA) in directory d; the key beside it."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,digitalSignature,keyCertSign"],
                   check=True, capture_output=True, timeout=60)
    return d / "cert.pem"


def server_tls(cert: Path):
    """The server side's TLS context for RecordingServer(tls_context=...)."""
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, cert.with_name("key.pem"))
    return ctx


def password_file(tmp_path, text=PASSWORD + "\n", mode=0o600) -> Path:
    p = tmp_path / "relay.pass"
    p.write_text(text)
    os.chmod(p, mode)
    return p


# ----------------------------------------------------------------------------- event rows
_counter = iter(range(10**9))


def event(recipient, when, status="bounced", reason="user_unknown", scope="recipient", carrier=None, mta="postfix", diagnostic=None, **extra):
    """One event row; `when` is a local Asia/Tokyo datetime unless it has a tzinfo."""
    from pipeline.store.records import domain_of, event_id_for

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
    """Rows written through the real event store (the only Parquet writer)."""
    import pyarrow as pa

    from pipeline.store.event_store import EventStore
    from pipeline.store.records import EVENT_SCHEMA

    table = pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)
    return EventStore(cfg.data_dir).write(table)


def at(day, hh=12, mm=0, month=11, year=2026):
    return datetime(year, month, day, hh, mm)


# ----------------------------------------------------------------------------- the report fixture store
def fixture_events():
    """The report fixture store's events (tests/test_reports.py's docstring has the table)."""
    D, A, O = "docomo", "au", "other"
    return [
        event("a1@docomo.ne.jp", at(10, 10), status="sent", carrier=D),
        event("a2@docomo.ne.jp", at(10, 11), status="sent", carrier=D),
        event("u1@docomo.ne.jp", at(10, 12), carrier=D, hard=True),
        event("u2@docomo.ne.jp", at(10, 13), carrier=D, hard=True),
        event("f1@docomo.ne.jp", at(10, 14), reason="filtered", scope="sender", carrier=D, hard=False,
              diagnostic="550 5.7.1 <f1@docomo.ne.jp>: Recipient address rejected: filtered"),
        event("m1@docomo.ne.jp", at(10, 15), status="deferred", reason="mailbox_full", carrier=D, hard=False),
        event("m1@docomo.ne.jp", at(10, 23, 30), status="expired", reason="expired", scope="unknown",
              carrier=D, hard=True),
        event("b1@au.com", at(10, 0, 30), status="sent", carrier=A),
        event("b2@au.com", at(10, 9), status="deferred", reason="rate_limited", scope="sender", carrier=A,
              hard=False, diagnostic="421 4.7.0 msmx.au.com Too many connections"),
        event("b2@au.com", at(10, 9, 30), status="sent", carrier=A),
        event("u3@au.com", at(10, 10), carrier=A, hard=True),
        event("a1@docomo.ne.jp", at(16, 10), status="sent", carrier=D),
        event("u1@docomo.ne.jp", at(16, 11), carrier=D, hard=True),
        event("b3@ezweb.ne.jp", at(16, 12), reason="blocked", scope="sender", carrier=A, hard=False,
              diagnostic="554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked"),
        event("typo@docomo.ne.jpp", at(16, 13), reason="host_unknown", carrier=O, hard=True),
        event("nobody@gone.example", at(16, 14), status="undeliverable", reason="host_unknown", carrier=O,
              hard=True),
        event("b1@au.com", at(17, 0, 10), status="sent", carrier=A),
    ]


def history_rows():
    """The suppression history beside fixture_events()."""
    import pyarrow as pa

    from pipeline.suppression.store import HISTORY_SCHEMA

    utc = timezone.utc
    rows = [(datetime(2026, 11, 11, 3, tzinfo=utc), "added", "u1@docomo.ne.jp", "rule"),
            (datetime(2026, 11, 11, 3, tzinfo=utc), "added", "u2@docomo.ne.jp", "rule"),
            (datetime(2026, 11, 11, 16, tzinfo=utc), "added", "z@au.com", "manual"),   # 11-12 01:00 JST
            (datetime(2026, 11, 17, 1, tzinfo=utc), "released", "u2@docomo.ne.jp", "rule")]
    return pa.Table.from_pylist([{"at": t, "action": a, "address": addr, "source": s, "note": None,
                                  "rule": None, "evidence": "{}"} for t, a, addr, s in rows],
                                schema=HISTORY_SCHEMA)


# ----------------------------------------------------------------------------- time
class ManualClock:
    """A clock the test moves (the interface of pipeline.core.clock.Clock): nothing sleeps.
    time() starts at the real wall clock, so a file written now has an mtime of "now"; both
    clocks move only by advance(). wait() lets the time asked for pass at once."""

    def __init__(self):
        self._wall = time.time()
        self._mono = 1024.0   # (a binary fraction plus binary-fraction steps stays exact)

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "time does not go back"
        self._wall += seconds
        self._mono += seconds

    def wait(self, event, timeout: float) -> bool:
        if not event.is_set():
            self.advance(max(0.0, timeout))
        return event.is_set()


# ----------------------------------------------------------------------------- Postfix lines, `mailhygiene watch`
WATCH_FLUSH = 0.3   # the watch tests' flush_interval (seconds)


def pf_line(n: int, stamp: str = "Nov  3 16:04:31", status: str = "sent", qid: str = "3C6D1C0A1F") -> str:
    text = "250 ok" if status == "sent" else "host mfsmax.docomo.ne.jp[203.138.181.112] said: 450 4.2.0 busy (in reply to RCPT TO command)"
    dsn = "2.0.0" if status == "sent" else "4.2.0"
    return (f"{stamp} mx1 postfix/smtp[123]: {qid}: to=<u{n}@docomo.ne.jp>, "
            f"relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=0.5, delays=0.1/0/0.2/0.2, "
            f"dsn={dsn}, status={status} ({text})\n")


def pf_lines(start: int, stop: int, stamp: str = "Nov  3 16:04:31") -> str:
    return "".join(pf_line(n, stamp) for n in range(start, stop))


def append(path: Path, text: str) -> None:
    with open(path, "a") as fh:
        fh.write(text)


def write_watch_config(path: Path, sources: list[tuple[str, str]], flush: float, poll: float,
                       extra: str = "") -> Path:
    """A `watch` config at `path`: UTC, the (path, format[, olddir]) sources, the [watch]
    intervals, and `extra` TOML after them (more tables)."""
    body = 'timezone = "UTC"\n'
    for log, fmt, *olddir in sources:
        body += f'[[sources]]\npath = "{log}"\nformat = "{fmt}"\n'
        if olddir:
            body += f'olddir = "{olddir[0]}"\n'
    body += f"[watch]\nflush_interval = {flush}\npoll_interval = {poll}\n" + extra
    path.write_text(body)
    return path


class Watcher:
    """One `mailhygiene watch` subprocess on a temp config; stderr goes to a file."""

    def __init__(self, tmp: Path, sources: list[tuple[str, str]], flush: float = WATCH_FLUSH, poll: float = 0.3):
        self.tmp = tmp
        self.data = tmp / "data"
        self.config = write_watch_config(tmp / "mailhygiene.toml", sources, flush, poll)
        self.proc: subprocess.Popen | None = None
        self.stderr_path = tmp / "watch.stderr"
        self.runs = 0

    def start(self, *extra: str, preexec_fn=None) -> "Watcher":
        self.runs += 1
        err = open(self.stderr_path, "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CLI, "--config", str(self.config),
             "--data-dir", str(self.data), "watch", *extra],
            stdout=subprocess.DEVNULL, stderr=err, cwd=self.tmp, preexec_fn=preexec_fn)
        err.close()
        deadline = time.monotonic() + 10
        while self.stderr().count("following") < self.runs and time.monotonic() < deadline:
            assert self.proc.poll() is None, self.stderr()
            time.sleep(0.05)
        return self

    def stop(self, sig=signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def counts(self) -> tuple[int, int]:
        """(rows, distinct recipients) as a reader sees them now. The running watch may compact a
        day while the query runs (a file listed at bind time is gone at read time): read again."""
        import duckdb

        import pipeline

        from pipeline.store.warehouse import vanished_file

        for attempt in range(20):
            con = None
            try:
                con = pipeline.connect(self.data)
                return tuple(con.execute("SELECT count(*), count(DISTINCT recipient) FROM events").fetchone())
            except duckdb.IOException as exc:
                if not vanished_file(exc) or attempt == 19:
                    raise
                time.sleep(0.05)
            finally:
                if con is not None:
                    con.close()
        raise AssertionError("unreachable")

    def wait_for(self, n: int, timeout: float = 10.0) -> tuple[int, int]:
        deadline = time.monotonic() + timeout
        got = self.counts()
        while got[0] < n and time.monotonic() < deadline:
            if self.proc is not None:
                assert self.proc.poll() is None, f"watch exited: {self.stderr()}"
            time.sleep(0.1)
            got = self.counts()
        return got


class Follower:
    """The follower of `mailhygiene watch` (pipeline.ingest.engine.Engine.following + step) in
    this process, on a ManualClock: the test decides when a pass runs and how much time passes,
    so flush intervals, idle closing, retries and the partial-line grace are reached without
    sleeping. start()/stop() are a watch started and stopped with SIGTERM (state committed),
    with watch's own on_stored hook (lake.node.watch_hook: uploads when `extra` sets [store];
    each upload waited for, so what a pass uploads does not depend on a thread's timing).
    The default intervals are binary fractions, so "0.25 s later" is exactly the flush time."""

    def __init__(self, tmp: Path, sources: list[tuple[str, str]], flush: float = 0.25, poll: float = 0.25,
                 extra: str = "", inotify: bool = False):
        from pipeline.core.config import load_config

        self.data = tmp / "data"
        self.config = write_watch_config(tmp / "mailhygiene.toml", sources, flush, poll, extra)
        self.cfg = load_config(self.config, data_dir=self.data)
        self.clock = ManualClock()
        self.inotify = inotify   # file-system notifications on (they only set the engine's wake-up)
        self.engine = None
        self._following = None

    def start(self) -> "Follower":
        from pipeline.ingest.engine import Engine
        from pipeline.lake.node import watch_hook

        self.engine = Engine.from_config(self.cfg, clock=self.clock)
        self._following = self.engine.following(self.cfg.sources, use_watchdog=self.inotify,
                                                on_stored=watch_hook(self.cfg, background=False))
        self._following.__enter__()
        return self

    def stop(self) -> None:
        following, self._following = self._following, None
        following.__exit__(None, None, None)

    def run(self, seconds: float = 0.0, max_passes: int = 10_000) -> None:
        """Passes of the follower loop for `seconds` of its clock, each wait it would make
        (engine.wait_time(): the poll interval, or less until a flush is due) passed at once;
        always at least one pass, and until no file has unread data."""
        engine, end = self.engine, self.clock.monotonic() + seconds
        for _ in range(max_passes):
            if engine.step():
                continue
            # the store's writer thread is real: its batch is written before time moves on
            assert engine.session.wait_stored(timeout=60), "the event store took over 60 s to write a batch"
            if self.clock.monotonic() >= end:
                return
            self.clock.advance(min(engine.wait_time(), end - self.clock.monotonic()))
        raise AssertionError(f"the follower was still busy after {max_passes} passes")

    def counts(self) -> tuple[int, int]:
        import pipeline

        if not (self.data / "events").exists():
            return (0, 0)
        con = pipeline.connect(self.data)
        try:
            return tuple(con.execute("SELECT count(*), count(DISTINCT recipient) FROM events").fetchone())
        finally:
            con.close()


# ----------------------------------------------------------------------------- another user
_PYTHON: dict[int, tuple[list[str], dict]] = {}


def user_python(user):
    """An interpreter the service user can start, with this checkout and its dependencies: this
    venv's, or (when it lives under a directory only root may enter, e.g. pyenv in /root) the
    system python3 of the same version over the venv's site-packages."""
    if user.pw_uid in _PYTHON:
        return _PYTHON[user.pw_uid]
    import site

    probe = "import pipeline.cli, click, pyarrow, duckdb, pandas"
    candidates = [([sys.executable], {"PYTHONPATH": str(REPO)})]
    system = shutil.which("python3", path="/usr/bin:/bin")
    if system:
        candidates.append(([system], {"PYTHONPATH": os.pathsep.join([str(REPO), *site.getsitepackages()])}))
    for cmd, env in candidates:
        try:
            r = subprocess.run([*cmd, "-c", f"import sys; assert sys.version_info[:2] == {tuple(sys.version_info[:2])}; "
                                            + probe], user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                               env={**env, "PATH": "/usr/bin:/bin"}, cwd="/", capture_output=True, timeout=60)
        except PermissionError:
            continue
        if r.returncode == 0:
            _PYTHON[user.pw_uid] = (cmd, env)
            return cmd, env
    pytest.skip(f"SKIPPED LOUDLY: no Python {sys.version_info[0]}.{sys.version_info[1]} with this checkout's "
                "dependencies that another user may start")


def run_as(data, *args, user=None):
    """`mailhygiene --data-dir DATA ARGS` in a subprocess, as root or as `user`."""
    python, extra_env = user_python(pwd.getpwuid(data.stat().st_uid))  # the data dir's owner can start it
    env = {k: v for k, v in os.environ.items() if k not in (*OPERATOR_ENV, "PYTHONPATH")}
    env.update(extra_env, PYTHONDONTWRITEBYTECODE="1", HOME=str(data.parent))
    kwargs = {}
    if user is not None:
        kwargs = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    return subprocess.run([*python, "-c", CLI, "--data-dir", str(data), "--timezone", "Asia/Tokyo", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=data.parent, timeout=120, **kwargs)


# ----------------------------------------------------------------------------- a private Postfix
POSTFIX = shutil.which("postfix") or ("/usr/sbin/postfix" if os.path.exists("/usr/sbin/postfix") else None)
DAEMON_DIR = "/usr/lib/postfix/sbin"
POSTFIX_TEST_DOMAINS = {"docomo": "docomo.ne.jp", "au": "au.com", "softbank": "i.softbank.jp"}


MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PrivatePostfix:
    """A Postfix of its own in `root`; `main_extra`/`master_extra` are appended to main.cf/master.cf
    (a later main.cf line overrides an earlier one), `transport` replaces the carrier routes."""

    def __init__(self, root: Path, carriers: dict[str, RecordingServer], *, transport: str | None = None,
                 main_extra: str = "", master_extra: str = ""):
        self.root = root
        self.conf = root / "conf"
        self.maillog = root / "maillog"
        from pipeline.sender.testing import free_port

        self.port = free_port()
        self.env = {**os.environ, "TZ": "UTC"}
        for d in ("conf", "queue", "data"):
            (root / d).mkdir()
        shutil.chown(root / "data", user="postfix")
        if transport is None:
            lines = [f"{POSTFIX_TEST_DOMAINS[c]} smtp:[127.0.0.1]:{srv.port}" for c, srv in carriers.items()]
            lines.append("mail.example.jp discard:")  # our bounces go nowhere
            transport = "\n".join(lines) + "\n"
        (self.conf / "transport").write_text(transport)
        (self.conf / "master.cf").write_text(MASTER_CF.format(port=self.port) + master_extra)
        (self.conf / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
command_directory = /usr/sbin
daemon_directory = {DAEMON_DIR}
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.closedloop.test
mydomain = closedloop.test
myorigin = closedloop.test
mydestination =
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
transport_maps = texthash:{self.conf}/transport
maillog_file = {self.maillog}
maillog_file_prefixes = {root}
smtp_dns_support_level = disabled
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtputf8_enable = no
biff = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
default_process_limit = 20
""" + main_extra)

    def postfix(self, *args, check=True):
        return subprocess.run([POSTFIX, "-c", str(self.conf), *args], env=self.env, capture_output=True,
                              text=True, timeout=60, check=check)

    def start(self):
        self.postfix("check")
        self.postfix("start")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait for smtpd to answer
            try:
                import smtplib
                with smtplib.SMTP("127.0.0.1", self.port, timeout=2) as s:
                    s.noop()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"Postfix did not start:\n{self.log_text()}")

    def stop(self):
        if self.postfix("stop", check=False).returncode != 0:
            self.postfix("abort", check=False)

    def log_text(self) -> str:
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""


# ----------------------------------------------------------------------------- a private sendmail
SENDMAIL_ROOT = Path(os.environ.get("MAILHYGIENE_SENDMAIL_ROOT", "/opt/mailhygiene-test/sendmail"))
SENDMAIL = SENDMAIL_ROOT / "usr/libexec/sendmail/sendmail"
CF_DIR = SENDMAIL_ROOT / "usr/share/sendmail/cf"

SENDMAIL_MARKS = [   # where the private sendmail cannot run, its tests skip with the reason
    pytest.mark.skipif(not SENDMAIL.exists() or not (CF_DIR / "m4/cf.m4").exists(),
                       reason=f"sendmail is not unpacked in {SENDMAIL_ROOT} (bash .ci/fetch_sendmail.sh; .ci/run does this)"),
    pytest.mark.skipif(shutil.which("m4") is None, reason="m4 is not installed (apt-get install m4)"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a private mount namespace needs root"),
]

SENDMAIL_SENDER = "news@mail.example.jp"

SENDMAIL_MC = """divert(0)dnl
VERSIONID(`mailhygiene private test instance')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `mx.closedloop.test')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`QUEUE_DIR', `{root}/queue')dnl
define(`STATUS_FILE', `{root}/statistics')dnl
define(`ALIAS_FILE', `{root}/aliases')dnl
define(`HELP_FILE', `{root}/helpfile')dnl
define(`confPID_FILE', `{root}/sendmail.pid')dnl
define(`confSERVICE_SWITCH_FILE', `{root}/service.switch')dnl
define(`confHOSTS_FILE', `{root}/hosts')dnl
define(`confLOG_LEVEL', `9')dnl
define(`confTO_CONNECT', `10s')dnl
define(`confTO_INITIAL', `10s')dnl
define(`confDONT_INIT_GROUPS', `True')dnl
define(`confDEF_USER_ID', `0:0')dnl
define(`confRUN_AS_USER', `root')dnl
define(`confDONT_BLAME_SENDMAIL', `GroupWritableDirPathSafe,InsufficientEntropy')dnl
define(`SMART_HOST', `esmtp:[127.0.0.1]')dnl
define(`ESMTP_MAILER_ARGS', `TCP $h {port}')dnl
FEATURE(`nocanonify')dnl
FEATURE(`nouucp', `reject')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
"""

# Inside the namespace: our /dev (with the real null/zero/random/urandom bound in), our hosts and
# resolv.conf (a resolver on loopback: no DNS query leaves the machine), our host name.
NAMESPACE_SH = """set -e
hostname mx.closedloop.test
for n in null zero random urandom; do mount --bind /dev/$n "$ROOT/dev/$n"; done
mount --rbind "$ROOT/dev" /dev
mount --bind "$ROOT/hosts" /etc/hosts
mount --bind "$ROOT/resolv.conf" /etc/resolv.conf
exec "$@"
"""


class PrivateSendmail:
    """One unpacked sendmail with its own config, queue and syslog socket, run per message."""

    def __init__(self, root: Path, smtp_port: int):
        self.root = root
        for d in ("dev", "queue"):
            (root / d).mkdir()
        os.chmod(root / "queue", 0o700)
        for n in ("null", "zero", "random", "urandom"):
            (root / "dev" / n).touch()
        (root / "aliases").write_text("")
        (root / "helpfile").write_text("")
        (root / "service.switch").write_text("hosts files\naliases files\n")
        (root / "hosts").write_text("127.0.0.1 localhost mx.closedloop.test\n")
        (root / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        (root / "test.mc").write_text(SENDMAIL_MC.format(root=root, port=smtp_port))
        cf = subprocess.run(["m4", f"-D_CF_DIR_={CF_DIR}/", str(CF_DIR / "m4/cf.m4"), str(root / "test.mc")],
                            capture_output=True, text=True, timeout=60, check=True)
        (root / "sendmail.cf").write_text(cf.stdout)
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(root / "dev" / "log"))
        os.chmod(root / "dev" / "log", 0o666)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.lines.append(data.decode("utf-8", "replace").rstrip("\n"))

    def send(self, recipient: str, sender: str = SENDMAIL_SENDER) -> subprocess.CompletedProcess:
        message = f"From: {sender}\nTo: {recipient}\nSubject: test\n\nhello\n"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", "ROOT": str(self.root)}
        return subprocess.run(["unshare", "-m", "-u", "sh", "-c", NAMESPACE_SH, "sh", str(SENDMAIL),
                               "-C", str(self.root / "sendmail.cf"), "-odi", "-oem", "-f", sender, recipient],
                              input=message, capture_output=True, text=True, timeout=60, env=env)

    def syslog_text(self, settle: float = 5.0) -> str:
        """The received lines as a syslog file (`<22>Dec  4 12:00:00 sendmail[1]: ...` -> with host)."""
        deadline = time.monotonic() + settle
        last = -1
        while time.monotonic() < deadline:  # until no new line for a moment
            with self._lock:
                n = len(self.lines)
            if n == last:
                break
            last = n
            time.sleep(0.3)
        out = []
        with self._lock:
            for raw in self.lines:
                line = re.sub(r"^<\d+>", "", raw)
                out.append(f"{line[:15]} mx.closedloop.test {line[16:]}")
        return "\n".join(out) + "\n"

    def close(self):
        self._stop.set()
        self.sock.close()
        self._reader.join(timeout=5)


# ----------------------------------------------------------------------------- odd Postfix lines
# Postfix lines off the usual path (bare recipients, orig_to, conn_use, ISO stamps, postfix-out,
# lmtp, repeated fields, Feb 30, a queue id reused, an old qmgr line ...): the block readers must
# give the per-line parser's result on each.
POSTFIX_ODD_LINES = """\
Nov 10 08:59:59 postfix1 postfix/smtp[3]: 1A2B3C4D0F: to=<postmaster>, relay=mx.example.com[192.0.2.25]:25, delay=1, delays=1/0/0/0, dsn=5.1.1, status=bounced (host mx.example.com[192.0.2.25] said: 550 5.1.1 <postmaster@mx.example.com>: no such user (in reply to RCPT TO command))
Nov 10 09:00:00 mx1 postfix/cleanup[1]: 1A2B3C4D01: message-id=<a1@example.jp>
Nov 10 09:00:00 mx1 postfix/qmgr[2]: 1A2B3C4D01: from=<News@Example.JP>, size=100, nrcpt=3 (queue active)
Nov 10 09:00:01 mx1 postfix/smtp[3]: 1A2B3C4D01: to=<Taro@DoCoMo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4Xyz)
Nov 10 09:00:01 mx1 postfix/smtp[3]: 1A2B3C4D01: to=<"taro..yamada."@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=5.0.0, status=bounced (host mfsmax.docomo.ne.jp[203.138.181.112] said: 550 Unknown user taro..yamada.@docomo.ne.jp (in reply to RCPT TO command))
Nov 10 09:00:01 mx1 postfix/smtp[3]: 1A2B3C4D01: to=<b@au.com>, orig_to=<alias@example.jp>, relay=msmx.au.com[111.86.141.160]:25, conn_use=2, delay=1, delays=1/0/0/0, dsn=4.7.0, status=deferred (host msmx.au.com[111.86.141.160] refused to talk to me: 421 4.7.0 Too many concurrent SMTP connections)
Nov 10 09:00:02 mx1 postfix/smtp[3]: 1A2B3C4D01: to=<c@softbank.ne.jp>, relay=none, delay=1, delays=1/0/0/0, dsn=4.4.1, status=deferred (connect to mx.softbank.ne.jp[210.146.60.90]:25: Connection timed out)
Nov 10 09:00:02 mx1 postfix/smtp[3]: 1A2B3C4D01: to=<d@example.com>, relay=mx.example.com[192.0.2.25]:25, delay=1, delays=1/0/0/0, tls=yes, dsn=2.0.0, status=sent (250 ok)
Nov 10 09:00:02 mx1 postfix/smtp[3]: 1A2B3C4D01: host mx.example.com[192.0.2.25] said: 450 try again (in reply to RCPT TO command)
Nov 10 09:00:03 mx1 postfix/smtp[3]: 1A2B3C4D0A: to=<b@au.com>, relay=msmx.au.com[111.86.141.160]:25, delay=1, delays=1/0/0/0, dsn=4.2.0, status=deferred (host msmx.au.com[111.86.141.160] said: 450 4.2.0 <b@au.com>: Recipient address rejected: Greylisted (in reply to RCPT TO command))
2026-11-10T09:00:04.123456+09:00 mx1 postfix/smtp[3]: 1A2B3C4D02: to=<e@ezweb.ne.jp>, relay=lsean.ezweb.ne.jp[111.86.141.161]:25, delay=1, delays=1/0/0/0, dsn=5.0.0, status=bounced (host lsean.ezweb.ne.jp[111.86.141.161] said: 550 : User unknown (in reply to end of DATA command))
Nov 10 09:00:05 mx1 postfix/smtp[3]: 1A2B3C4D03: to=<f@example.com>, relay=local, delay=0, delays=0/0/0/0, dsn=2.0.0, status=deliverable (delivers to mailbox)
Nov 10 09:00:05 mx1 postfix/smtp[3]: 1A2B3C4D03: to=<g@example.com>, relay=x, delay=0, delays=0/0/0/0, dsn=5.0.0, status=weird
Nov 10 09:00:05 mx1 postfix/smtp[3]: 1A2B3C4D03: to=<h@example.com>, relay=x, delay=0, delays=0/0/0/0, dsn=5.0.0, status=bounced (no closing paren
Nov 10 09:00:06 mx1 postfix/local[4]: 1A2B3C4D04: to=<root@mx1.example.jp>, orig_to=<root>, relay=local, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)
Nov 10 09:00:06 mx1 postfix-out/lmtp[5]: 1A2B3C4D04: to=<i@example.jp>, relay=lmtp.example.jp[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <i@example.jp> Saved)
Nov 10 09:00:07 mx-2.example.jp postfix/smtp[6]: 1A2B3C4D05: to=<j@i.softbank.jp>, relay=mx.softbank.ne.jp[210.146.60.90]:25, delay=1, delay=2, delay=3, delays=1/0/0/0, delay=4, delay=5, delay=6, dsn=5.1.1, status=bounced (host mx.softbank.ne.jp[210.146.60.90] said: 550 5.1.1 <j@i.softbank.jp>... User unknown (in reply to RCPT TO command))
Nov 10 09:00:08 mx1 postfix/smtp[7]: 1A2B3C4D06: to=<k@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=1/0/0/0, dsn=5.0.0, status=bounced (host mfsmax.docomo.ne.jp[203.138.181.112] said: 550 Unknown user, status=sent (in reply to end of DATA command))
Nov 10 09:00:08 mx1 postfix/cleanup[8]: 1A2B3C4D06: message-id=<>
Nov 10 09:00:08 mx1 postfix/qmgr[9]: 1A2B3C4D06: from=<>, size=1, nrcpt=1 (queue active)
Nov 10 09:00:09 mx1 postfix/smtp[7]: 1A2B3C4D06: to=<l@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (250 ok)
Nov 10 09:00:09 mx1 dovecot: lmtp(user): msgid=<x@y>: saved mail to INBOX, from= to=
Nov 10 09:00:09 mx1 postfix/smtpd[10]: connect from unknown[192.0.2.9]
Nov 10 09:00:09 mx1 postfix/smtpd[10]: NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 554 5.7.1 <x@y>: Relay access denied; from=<a@b> to=<x@y> proto=ESMTP helo=<h>
Feb 30 09:00:10 mx1 postfix/smtp[7]: 1A2B3C4D07: to=<m@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (250 ok)
Nov 10 09:00:10 mx1 postfix/qmgr[2]: 1A2B3C4D01: removed
Nov 10 09:00:11 mx1 postfix/qmgr[9]: 1A2B3C4D01: from=<again@example.jp>, size=1, nrcpt=1 (queue active)
Nov 10 09:00:12 mx1 postfix/smtp[3]: 1A2B3C4D01: to=<n@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (250 ok)
Nov 10 09:00:12 mx1 postfix/smtp[3]: 1A2B3C4D0B: to=<o@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=1/0/0/0, dsn=4.4.1, status=deferred (connect to mfsmax.docomo.ne.jp[203.138.181.112]:25: Connection timed out)
Nov 10 09:00:13 mx1 postfix/smtp[3]: 1A2B3C4D0B: to=<p@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=1/0/0/0, dsn=4.4.1, status=deferred (connect to mfsmax.docomo.ne.jp[203.138.181.112]:25: Connection timed out)
Nov 10 10:00:13 mx1 postfix/smtp[3]: 1A2B3C4D0B: to=<p@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (250 ok)
Nov 10 12:00:00 mx1 postfix/qmgr[2]: 1A2B3C4D0B: from=<news@example.jp>, status=expired, returned to sender
Nov 10 12:00:01 mx1 postfix/qmgr[2]: 1A2B3C4D0A: from=<news@example.jp>, status=expired, returned to sender
Nov 10 11:00:00 mx1 postfix/smtp[3]: 1A2B3C4D0D: to=<r1@example.com>, relay=mx.example.com[192.0.2.25]:25, delay=1, delays=1/0/0/0, dsn=5.0.0, status=bounced (conversation with mx.example.com[192.0.2.25] timed out while receiving the initial server greeting: 554 go away)
Nov 10 11:00:00 mx1 postfix/smtp[3]: 1A2B3C4D0D: to=<r2@example.com>, relay=mx.example.com[192.0.2.25]:25, delay=1, delays=1/0/0/0, dsn=4.3.0, status=deferred (delivery temporarily suspended: reply=451 4.3.0 try later)
Nov 10 11:00:00 mx1 postfix/smtp[3]: 1A2B3C4D0D: to=<r3@example.com>, relay=mx.example.com[192.0.2.25]:25, delay=1, delays=1/0/0/0, dsn=5.1.1, status=bounced (host mx.example.com[192.0.2.25] said: 5.1.1 no code here (in reply to RCPT TO command))
Nov 10 11:00:00 mx1 postfix/smtp[3]: 1A2B3C4D0D: to=<r4@example.com>, relay=mx.example.com[192.0.2.25]:25, delay=1, delays=1/0/0/0, dsn=4.4.2, status=deferred (lost connection with mx.example.com[192.0.2.25] while sending end of data -- message may be sent more than once)
Nov  1 08:00:00 mx1 postfix/qmgr[2]: 1A2B3C4D0C: from=<old@example.jp>, size=1, nrcpt=1 (queue active)
Nov 10 12:00:02 mx1 postfix/smtp[3]: 1A2B3C4D0C: to=<q@docomo.ne.jp>, relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (250 ok)
"""


# ----------------------------------------------------------------------------- block readers vs per-line parsers
GEN_LOGS = REPO / "bench" / "gen_logs.py"


def ingest_both(tmp_path, paths, block_bytes=None, monkeypatch=None, *, fmt: str, timezone: str = "Asia/Tokyo"):
    """Ingest `paths` column-wise (the block reader) and per line (the parser, the executable
    definition); both runs' (events, parser state, rejects, reject samples, lines, events parsed)."""
    import json

    import pipeline
    import pipeline.ingest.source as source_mod
    from pipeline.core.config import load_config
    from pipeline.ingest.engine import ingest

    if block_bytes is not None:
        monkeypatch.setattr(source_mod, "BLOCK_BYTES", block_bytes)
    out = []
    for columnar in (True, False):
        data = tmp_path / f"data-{columnar}-{block_bytes}"
        cfg = load_config(None, data_dir=data, timezone=timezone)
        s = ingest(cfg, paths, fmt=fmt, year=2026, columnar=columnar)
        events = pipeline.connect(data).sql("SELECT * FROM events ORDER BY event_id").fetchall() \
            if (data / "events").is_dir() else []
        state = json.loads((data / "state" / "ingest-state.json").read_text())["parsers"]
        samples = sorted((r["reason"], r["offset"]) for r in map(json.loads, open(s.rejects_file))) if s.rejects_file else []
        out.append((events, state, dict(s.rejected), samples, s.lines, s.events_parsed))
    return out


def assert_same(fast, slow):
    for name, a, b in zip(("events", "state", "rejected", "reject samples", "lines", "events parsed"), fast, slow):
        assert a == b, f"column-wise and per-line ingest differ in {name}"


def generated_log(tmp_path, mta: str, lines: int = 20_000, seed: int = 3, ascii_only: bool = False,
                  stamps: str = "traditional", splogger: bool = False) -> Path:
    """A Japanese sender's log of `mta` from bench/gen_logs.py (one day); `stamps="rfc3339"`:
    with the stamps rsyslog writes by default (`2026-11-01T00:00:02.140891+09:00`); `splogger`:
    qmail's lines through splogger into syslog."""
    log = tmp_path / f"{mta}-{lines}-{seed}-{ascii_only}-{stamps}-{splogger}.log"
    subprocess.run([sys.executable, str(GEN_LOGS), str(log), "--mta", mta, "--lines", str(lines), "--seed", str(seed),
                    "--days", "1", "--stamps", stamps, *(["--ascii"] if ascii_only else []),
                    *(["--splogger"] if splogger else [])], check=True)
    return log


# Stamps of every shape the per-line parsers' SYSLOG_STAMP takes or nearly takes. RFC 3339: zones
# (Z, +hh:mm, +hhmm, -00:00, none: local time, in New York a time that does not exist and one that
# is there twice), fractions of 1 to 12 digits, and what is no date or time (Feb 30, a leap
# second, hour 24, zone +24:00 or +09:60, year 1970 in Tokyo: before the epoch), a space for T.
# Traditional with a fraction (journalctl -o short-precise), and a '.' without digits.
ODD_STAMPS = (
    "2026-11-10T09:00:00.123456+09:00", "2026-11-10T09:00:01Z", "2026-11-10T09:00:02+0900",
    "2026-11-09T19:00:03-05:00", "2026-11-10T09:00:04", "2026-11-10T09:00:05.1+09:00",
    "2026-11-10T09:00:06.123456789012+09:00", "2026-02-30T09:00:07+09:00", "2026-11-10T23:59:60+09:00",
    "2026-11-10T24:00:00+09:00", "1970-01-01T08:00:00+09:00", "2026-11-10 09:00:08+09:00",
    "2026-11-10T09:00:09+09", "2026-11-10T09:00:10+24:00", "2026-11-10T09:00:11+09:60",
    "2026-11-10T09:00:12.+09:00", "2026-03-08T02:30:00", "2026-11-01T01:30:00", "2026-11-10T09:00:13-00:00",
    "9999-12-31T23:59:59+09:00", "2026-12-31T23:59:59.999999-12:00", "2024-02-29T12:00:00+05:45",
    "Nov 10 09:00:14.5", "Nov 10 09:00:15.123456789", "Nov  9 23:59:59.999999", "Nov 10 09:00:16.",
)


def restamped(text: str, stamps=ODD_STAMPS) -> str:
    """`text` (traditional syslog lines) with each line's stamp replaced by the next of `stamps`."""
    out = []
    for i, line in enumerate(text.splitlines(keepends=True)):
        out.append(stamps[i % len(stamps)] + line[15:] if line[:1].isupper() and line[15:16] == " " else line)
    return "".join(out)


# the lines a parser reads (`QID: to=`, `from=`, `message-id=`, `removed`): glue_lines cuts these
READ_LINE_RE = re.compile(r"\]: [0-9A-Za-z]+: (?:to=|from=|message-id=|removed\n)")
# qmail's lines that change its state (multilog or splogger): glue_lines cuts these
QMAIL_LINE_RE = re.compile(r"(?:^@\S+ |qmail: \S+ )(?:starting delivery|delivery|info msg|end msg) ")


def glue_lines(text: str, seed: int = 7, every: int = 40, anywhere: bool = False,
               pattern: re.Pattern = READ_LINE_RE) -> tuple[str, list[str], str]:
    """`text` with about one in `every` of the lines a parser reads (`pattern`) cut short
    after its queue id (`anywhere`: at any place after its first byte, within its stamp, host,
    program or queue id too) and the next line glued to it (what a writer that died or a disk that
    filled mid-line leaves); the glued lines (each whole, as written); and `text` without the
    lines that were cut (what a reader that reads every glued line must store the events of)."""
    import random

    rng = random.Random(seed)
    lines = text.splitlines(keepends=True)
    out, glued, dropped, i = [], [], [], 0
    while i < len(lines):
        line = lines[i]
        m = pattern.search(line)
        at = (0 if anywhere else line.find(": ", m.start() + 3)) if m else -1
        if i + 1 < len(lines) and at >= 0 and rng.randrange(every) == 0:
            out.append(line[:rng.randrange(at + (1 if anywhere else 3), len(line) - 1)] + lines[i + 1])
            glued.append(lines[i + 1])
            dropped.append(lines[i + 1])
            i += 2
            continue
        out.append(line)
        dropped.append(line)
        i += 1
    return "".join(out), glued, "".join(dropped)


def assert_glued_lines_read(tmp_path, mta: str, deliveries_of, anywhere: bool = False, **generated) -> None:
    """A generated `mta` log with one in 25 read lines cut short (`anywhere`: also within its
    prefix) and the next glued to it (glue_lines): the fast path agrees with the per-line parser;
    no recipient holds a piece of the next line; each cut line is a `malformed` reject; every glued
    line's deliveries (deliveries_of(line): {(recipient, status)}; None: each glued line is one
    feed() reads, its cut line a reject) are stored (the recipient in its canonical form: the store
    keys an IDN domain in A-label form); and the events are
    those of the log without the cut lines (the same ids: each glued line is read as itself)."""
    import pipeline

    text, glued, dropped = glue_lines(generated_log(tmp_path, mta, lines=6000, **generated).read_text(), every=25,
                                      anywhere=anywhere,
                                      pattern=QMAIL_LINE_RE if mta == "qmail" else READ_LINE_RE)
    log = tmp_path / "glued.log"
    log.write_text(text)
    fast, slow = ingest_both(tmp_path, [log], fmt=mta)
    assert_same(fast, slow)
    query = "SELECT event_id, recipient, status, queue_id, sender FROM events ORDER BY event_id"
    events = pipeline.connect(tmp_path / "data-True-None").sql(query).fetchall()
    assert not [r for r in events if " " in r[1] or "]:" in r[1] or "@4000" in r[1]]
    if deliveries_of is None:  # (qmail: a result names no recipient; every cut line is one feed() reads)
        assert len(glued) > 100 and fast[2].get("malformed", 0) >= len(glued)
    else:
        wanted = [ln for ln in glued if deliveries_of(ln)]
        assert len(wanted) > 10 and fast[2].get("malformed", 0) >= len(wanted)
        got = {(r[1], r[2]) for r in events}
        from pipeline.store.records import canonical_address

        for ln in wanted:
            assert {(canonical_address(r), st) for r, st in deliveries_of(ln)} <= got, ln
    whole = tmp_path / "without-cut" / "whole.log"
    whole.parent.mkdir()
    whole.write_text(dropped)
    ingest_both(whole.parent, [whole], fmt=mta)
    assert pipeline.connect(whole.parent / "data-True-None").sql(query).fetchall() == events


def mutated(text: str, rng, alphabet, edits: int, inserts: float = 0.4, deletes: float = 0.3) -> str:
    """`text` with 1 to `edits` random edits, each a character of `alphabet` inserted (with
    probability `inserts`), a character deleted (`deletes`) or replaced (the rest): the texts a
    compiled reader is held to its Python definition on (tests/test_sendmail_block.py,
    test_qmail_block.py)."""
    t = list(text)
    for _ in range(rng.randint(1, edits)):
        at = rng.randint(0, len(t))
        op = rng.random()
        if op < inserts:
            t.insert(at, rng.choice(alphabet))
        elif op < inserts + deletes and t:
            del t[min(at, len(t) - 1)]
        elif t:
            t[min(at, len(t) - 1)] = rng.choice(alphabet)
    return "".join(t)


def fall_back_log(tmp_path, mta: str, lines: int = 3000) -> tuple[Path, dict]:
    """A generated `mta` log (traditional stamps) whose lines are spread evenly over three hours
    of real time across the end of summer time in New York (2026-11-01 00:30 EDT to 02:30 EST),
    stamped in local time: 01:00-01:59 comes twice. Returns the log and the true time (us since
    the epoch) of the line at each byte offset."""
    from datetime import datetime, timedelta, timezone

    text = generated_log(tmp_path, mta, lines, ascii_only=True).read_text()
    ny = ZoneInfo("America/New_York")
    start = datetime(2026, 11, 1, 4, 30, tzinfo=timezone.utc)
    rows = text.splitlines(keepends=True)
    out, truth, offset = [], {}, 0
    for i, line in enumerate(rows):
        t = start + timedelta(microseconds=i * 3 * 3600 * 1_000_000 // len(rows))
        t = t.replace(microsecond=0)
        local = t.astimezone(ny)
        new = f"{local:%b} {local.day:2d} {local:%H:%M:%S}" + line[15:]
        out.append(new)
        truth[offset] = int(t.timestamp()) * 1_000_000
        offset += len(new.encode())
    path = tmp_path / f"{mta}-fall-back.log"
    path.write_text("".join(out))
    return path, truth


def assert_true_times(data: Path, truth: dict) -> None:
    """Every event stored in `data` (from a fall_back_log) has the true time of its line."""
    import pipeline

    got = pipeline.connect(data).sql("SELECT source_offset, epoch_us(ts) FROM events").fetchall()
    assert len(got) > 300
    wrong = [(o, t, truth[o]) for o, t in got if t != truth[o]]
    assert not wrong, f"{len(wrong)} of {len(got)} events at another time, e.g. {wrong[:3]}"
