"""A recording SMTP server on loopback (aiosmtpd) that stands in for a carrier's MX or a relay.

Reads nothing; keeps what it received in memory (`received`: receive time, envelope, bytes).
Used by the sender tests and bench/bench_sender.py; operators can use it to rehearse a campaign:
`python -m pipeline.sender.testing 2525` prints a line per message received.

Replies are scripted per recipient with `rcpt_reply(address) -> "550 …" | None` and
`data_reply(address) -> "…" | "DISCONNECT" | None`. `tls_context` offers STARTTLS with it;
`logins` ({user: password}) offers AUTH PLAIN and LOGIN (over TLS only) and requires it.
`implicit_tls_context` makes it an SMTPS server (TLS from the first byte, as on port 465).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable

from aiosmtpd.controller import Controller

from ..store.records import normalise_address


@dataclass
class Received:
    at: float
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: tuple | None = None
    tls: bool = False          # the message came over STARTTLS
    login: str | None = None   # the AUTH user it came with


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler:
    def __init__(self, owner: "RecordingServer"):
        self.o = owner

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        o = self.o
        with o.lock:
            o.rcpt_attempts.append((time.time(), normalise_address(address)))
        reply = o.rcpt_reply(normalise_address(address)) if o.rcpt_reply else None
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        o = self.o
        now = time.time()
        for addr in envelope.rcpt_tos:
            reply = o.data_reply(normalise_address(addr)) if o.data_reply else None
            if reply == "DISCONNECT":
                server.transport.close()
                return "421 closing"
            if reply:
                return reply
        with o.lock:
            o.received.append(Received(now, envelope.mail_from, [normalise_address(a) for a in envelope.rcpt_tos],
                                       envelope.content, session.peer, session.ssl is not None or self.o.implicit_tls,
                                       session.login_data.decode() if session.login_data else None))
        if o.close_after_message:   # like a server with a one-message session limit, or a silent idle cut
            import asyncio

            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 2.0.0 Ok: queued"


class RecordingServer:
    """Start with `with RecordingServer() as srv:`; `srv.port`, `srv.received`."""

    def __init__(self, port: int | None = None, *, rcpt_reply: Callable[[str], str | None] | None = None,
                 data_reply: Callable[[str], str | None] | None = None, close_after_message: bool = False,
                 tls_context=None, logins: dict[str, str] | None = None,
                 auth_mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN"), implicit_tls_context=None):
        self.port = port or free_port()
        self.close_after_message = close_after_message  # drop the connection after each accepted message
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.rcpt_attempts: list[tuple[float, str]] = []
        self.auth_attempts: list[str] = []   # the user of every AUTH tried
        options = {}
        self.implicit_tls = implicit_tls_context is not None   # every session is TLS from its first byte
        if implicit_tls_context is not None:
            options["ssl_context"] = implicit_tls_context
        if tls_context is not None:
            options["tls_context"] = tls_context
        if logins is not None:
            # (aiosmtpd counts only STARTTLS as TLS for auth_require_tls: an SMTPS server is TLS throughout)
            options.update(authenticator=self._authenticator(logins), auth_required=True,
                           auth_require_tls=implicit_tls_context is None,
                           auth_exclude_mechanism={"PLAIN", "LOGIN"} - set(auth_mechanisms))
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                     ready_timeout=10, data_size_limit=10_000_000, **options)

    def _authenticator(self, logins: dict[str, str]):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        def check(server, session, envelope, mechanism, auth_data):
            if not isinstance(auth_data, LoginPassword):
                return AuthResult(success=False, handled=False)
            user = auth_data.login.decode()
            with self.lock:
                self.auth_attempts.append(user)
            ok = logins.get(user) == auth_data.password.decode()
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        return check

    @property
    def relay(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "RecordingServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def addresses(self) -> list[str]:
        with self.lock:
            return [a for r in self.received for a in r.rcpt_tos]

    def times(self) -> list[float]:
        with self.lock:
            return sorted(r.at for r in self.received)


def max_in_window(times: list[float], interval: float) -> int:
    """The largest number of `times` inside any half-open window [t, t + interval)."""
    ts = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(ts):
        while ts[j] <= t - interval:
            j += 1
        best = max(best, i - j + 1)
    return best


if __name__ == "__main__":  # pragma: no cover - manual rehearsal helper
    import sys

    srv = RecordingServer(int(sys.argv[1]) if len(sys.argv) > 1 else 2525).start()
    print(f"listening on {srv.relay}; Ctrl-C to stop", flush=True)
    seen = 0
    try:
        while True:
            time.sleep(0.5)
            with srv.lock:
                new = srv.received[seen:]
                seen = len(srv.received)
            for r in new:
                print(f"{r.at:.3f} {r.mail_from} -> {','.join(r.rcpt_tos)} {len(r.data)} bytes", flush=True)
    except KeyboardInterrupt:
        srv.stop()


class BrokenRelay:
    """A relay on loopback that cannot be used, for the relay-outage tests: `mode`
      "silent"    accepts and never says a word (the client's timeout)
      "drop"      accepts and closes before any greeting
      "greet"     greets with `greeting` (e.g. "421 4.3.2 busy", "554 no service") and closes
      "backlog"   accepts nothing: its listen queue is full, so a new connection is never
                  completed (the client's connect timeout)
    `accepted`: the times of the connections it took (every mode but "backlog")."""

    def __init__(self, mode: str, greeting: str = "554 5.3.0 no service here", port: int | None = None):
        self.mode = mode
        self.greeting = greeting
        self.accepted: list[float] = []
        self._open: list[socket.socket] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port or 0))
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def relay(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "BrokenRelay":
        if self.mode == "backlog":
            self.sock.listen(0)
            # fill the accept queue (never accepted): later SYNs are dropped by the kernel
            for _ in range(3):
                c = socket.socket()
                c.setblocking(False)
                c.connect_ex(("127.0.0.1", self.port))
                self._open.append(c)
            time.sleep(0.05)
        else:
            self.sock.listen(64)
            self.sock.settimeout(0.05)
            self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self.accepted.append(time.time())
            if self.mode == "silent":
                self._open.append(conn)
                continue
            try:
                if self.mode == "greet":
                    conn.sendall(self.greeting.encode() + b"\r\n")
            except OSError:
                pass
            conn.close()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        for c in self._open:
            c.close()
        self.sock.close()
