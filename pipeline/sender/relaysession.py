"""Opening an SMTP session to a relay: connect, EHLO, STARTTLS and AUTH as the relay's settings say.

Like Postfix's smtp client with smtp_tls_security_level and smtp_sasl_password_maps. Reads
`sender.tls`, `sender.tls_ca_file` and `sender.relays` (per "host:port": tls, ca_file, username,
password_file) and the password files; writes nothing. Used by the daemon's connections and by the
intake's replies.

TLS levels (sender.tls, or the relay's own `tls`):
  may      STARTTLS when the relay offers it, certificate not checked; plain when it is not
           offered, or over a new connection when the handshake fails (as Postfix's `may`)
  encrypt  STARTTLS required, certificate not checked
  verify   STARTTLS required, the certificate checked against the relay's host name, with the
           system CA store or the configured CA file
With `implicit_tls` (SMTPS, port 465; Postfix's smtp_tls_wrappermode) the connection is TLS from
its first byte, no STARTTLS; "may" then counts as "encrypt" (there is no plain fallback).
AUTH (PLAIN when offered, else LOGIN; tried once per session) is only ever sent over TLS: a
password never crosses the network in clear, whatever the level.

A failure here (STARTTLS required but not offered, a failed handshake or certificate, AUTH refused
or impossible) raises RelaySessionError: the cause is ours or the relay's, never the recipient's.
"""

from __future__ import annotations

import base64
import logging
import os
import smtplib
import socket
import ssl
import stat
from dataclasses import dataclass, field

from ..core.config import SECRET_MASK
from ..core.errors import ConfigError
from .routes import Relay, parse_relay

log = logging.getLogger("mailhygiene.sender")


class RelaySessionError(Exception):
    """STARTTLS or AUTH with a relay failed. `auth_refused`: the relay refused our credentials (535),
    so the route should rest rather than be tried again at once."""

    def __init__(self, text: str, code: int | None = None, *, auth_refused: bool = False):
        super().__init__(text)
        self.text = text
        self.code = code
        self.auth_refused = auth_refused


@dataclass(frozen=True)
class RelayPolicy:
    tls: str = "may"
    ca_file: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    implicit_tls: bool = False

    def mask(self, text: str) -> str:
        """`text` with the password (plain, and as AUTH PLAIN or LOGIN would carry it) masked."""
        if not self.password:
            return text
        forms = {self.password, base64.b64encode(self.password.encode()).decode(),
                 base64.b64encode(f"\0{self.username}\0{self.password}".encode()).decode()}
        for f in sorted(forms, key=len, reverse=True):
            text = text.replace(f, SECRET_MASK)
        return text


def read_password(path: str, where: str) -> str:
    """The password in `path` (its first line). Refused: a file others may read or write, a
    missing or empty one. The error names the file, never its content."""
    if not os.path.isabs(path):
        raise ConfigError(f"{where}: password_file {path!r} must be an absolute path")
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(f"{where}: password_file {path} is not a regular file")
            if st.st_mode & (stat.S_IROTH | stat.S_IWOTH):
                raise ConfigError(f"{where}: password_file {path} is readable or writable by every user (mode "
                                  f"{stat.S_IMODE(st.st_mode):04o}): chmod 600 it; the password was not used")
            data = fh.read(4096)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read password_file {path}: {exc.strerror or exc}") from None
    try:
        password = data.decode("utf-8").split("\n", 1)[0].rstrip("\r")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: password_file {path} is not UTF-8 text") from None
    if not password:
        raise ConfigError(f"{where}: password_file {path} is empty: its first line is the password")
    return password


class RelayPolicies:
    """relay -> RelayPolicy, from the sender settings; password files are read (and checked) once here."""

    def __init__(self, default: RelayPolicy, per_relay: dict[Relay, RelayPolicy]):
        self.default = default
        self.per_relay = per_relay

    @classmethod
    def from_config(cls, s) -> "RelayPolicies":
        default = RelayPolicy(tls=s.tls, ca_file=s.tls_ca_file)
        per_relay: dict[Relay, RelayPolicy] = {}
        for key, r in (s.relays or {}).items():
            where = f"sender.relays.{key!r}"
            relay = parse_relay(key, where=where)
            relay = Relay(relay.host.lower(), relay.port)
            if relay in per_relay:
                raise ConfigError(f"{where}: {relay} is named twice in sender.relays")
            if bool(r.username) != bool(r.password_file):
                raise ConfigError(f"{where}: username and password_file go together: give both for AUTH, or neither")
            password = read_password(r.password_file, where) if r.password_file else ""
            tls = r.tls or s.tls
            per_relay[relay] = RelayPolicy(tls="encrypt" if r.implicit_tls and tls == "may" else tls,
                                           ca_file=r.ca_file or s.tls_ca_file, username=r.username,
                                           password=password, implicit_tls=bool(r.implicit_tls))
        for policy in (default, *per_relay.values()):
            tls_context(policy)   # a CA file that cannot be loaded stops the start, not every send
        return cls(default, per_relay)

    @classmethod
    def for_config(cls, cfg) -> "RelayPolicies":
        """The policies of the whole config; a `sender.relays` entry must name a relay that
        routes, default_relay or intake.reply_relay uses (a typo would fall back to sender.tls
        without AUTH, unnoticed)."""
        from .routes import Router

        s = cfg.sender
        policies = cls.from_config(s)
        used = {Relay(r.host.lower(), r.port) for r in Router.from_config(s).relays()}
        if cfg.intake.reply_relay:
            r = parse_relay(cfg.intake.reply_relay, where="intake.reply_relay")
            used.add(Relay(r.host.lower(), r.port))
        unused = sorted(set(policies.per_relay) - used)
        if unused:
            raise ConfigError(f"sender.relays names {unused[0]}, which no route, default_relay nor intake.reply_relay "
                              f"uses; relays used: {', '.join(map(str, sorted(used)))}")
        return policies

    def for_relay(self, relay: Relay) -> RelayPolicy:
        return self.per_relay.get(Relay(relay.host.lower(), relay.port), self.default)


def tls_context(policy: RelayPolicy) -> ssl.SSLContext:
    if policy.tls == "verify":
        try:
            return ssl.create_default_context(cafile=policy.ca_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"sender: cannot load the CA file {policy.ca_file or '(system store)'}: {exc}") from None
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _ehlo(smtp: smtplib.SMTP) -> None:
    code, resp = smtp.ehlo()
    if not 200 <= code < 300:
        code, resp = smtp.helo()
        if not 200 <= code < 300:
            raise smtplib.SMTPHeloError(code, resp)


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.close()
    except OSError:
        pass


def open_session(relay: Relay, policy: RelayPolicy, helo: str | None, timeout: float) -> smtplib.SMTP:
    """A session ready for MAIL FROM. Connection faults raise OSError/SMTPException as smtplib
    does; TLS and AUTH failures raise RelaySessionError (the session is closed)."""
    smtp = _connect(relay, helo, timeout, policy)
    try:
        encrypted = policy.implicit_tls or _starttls(smtp, relay, policy)
    except _PlainFallback as exc:
        _close(smtp)
        # `may`: the handshake failed; like Postfix, the mail goes over a new plain connection
        log.warning("%s; tls = \"may\": sending over a new plain-text connection", exc)
        smtp = _connect(relay, helo, timeout, policy)
        encrypted = False
    except BaseException:
        _close(smtp)
        raise
    if policy.username:
        try:
            _login(smtp, relay, policy, encrypted)
        except BaseException:
            _close(smtp)
            raise
    return smtp


class _PlainFallback(Exception):
    pass


def _connect(relay: Relay, helo: str | None, timeout: float, policy: RelayPolicy | None = None) -> smtplib.SMTP:
    """Connected and greeted (EHLO); with implicit TLS over a TLS connection made first (its
    handshake or certificate failing raises ssl.SSLError, as the connection's own faults)."""
    if policy is not None and policy.implicit_tls:
        smtp = smtplib.SMTP_SSL(relay.host, relay.port, local_hostname=helo or None, timeout=timeout,
                                context=tls_context(policy))
    else:
        smtp = smtplib.SMTP(relay.host, relay.port, local_hostname=helo or None, timeout=timeout)
    try:
        _ehlo(smtp)
    except BaseException:
        _close(smtp)
        raise
    return smtp


def _starttls(smtp: smtplib.SMTP, relay: Relay, policy: RelayPolicy) -> bool:
    required = policy.tls in ("encrypt", "verify")
    if not smtp.has_extn("starttls"):
        if required:
            raise RelaySessionError(f"STARTTLS not offered by {relay} (tls = \"{policy.tls}\"): nothing was sent")
        return False
    ctx = tls_context(policy)
    try:
        code, resp = smtp.starttls(context=ctx)
    except smtplib.SMTPResponseException as exc:
        text = f"STARTTLS refused by {relay}: {exc.smtp_code} {_text(exc.smtp_error)}"
        if required:
            raise RelaySessionError(text + "; nothing was sent", exc.smtp_code) from None
        raise _PlainFallback(text) from None
    except ssl.SSLCertVerificationError as exc:
        raise RelaySessionError(f"TLS certificate of {relay} not trusted (tls = \"verify\"): "
                                f"{exc.verify_message or exc}; nothing was sent") from None
    except (ssl.SSLError, OSError) as exc:
        text = f"TLS handshake with {relay} failed: {exc}"
        if required:
            raise RelaySessionError(text + "; nothing was sent") from None
        raise _PlainFallback(text) from None
    _ehlo(smtp)   # RFC 3207: the server forgets what it knew; ask again over TLS
    return True


def _login(smtp: smtplib.SMTP, relay: Relay, policy: RelayPolicy, encrypted: bool) -> None:
    if not encrypted:
        raise RelaySessionError(f"STARTTLS not offered by {relay}: AUTH credentials are never sent in plain text; "
                                "nothing was sent")
    if not smtp.has_extn("auth"):
        raise RelaySessionError(f"{relay} offers no AUTH, but sender.relays gives it credentials; nothing was sent")
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
    if mechanism is None:
        raise RelaySessionError(f"{relay} offers neither AUTH PLAIN nor LOGIN (only {' '.join(offered)[:80]}); "
                                "nothing was sent")
    # one mechanism, tried once (smtplib's login() would try each offered one with the same
    # password: two refusals counted against us by the relay instead of one)
    smtp.user, smtp.password = policy.username, policy.password
    try:
        smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))
    except smtplib.SMTPAuthenticationError as exc:
        raise RelaySessionError(
            policy.mask(f"AUTH as {policy.username} refused by {relay}: {exc.smtp_code} {_text(exc.smtp_error)}"),
            exc.smtp_code, auth_refused=500 <= exc.smtp_code < 600) from None
    except smtplib.SMTPException as exc:
        code = getattr(exc, "smtp_code", None)
        raise RelaySessionError(policy.mask(f"AUTH with {relay} failed: {exc}"),
                                code if isinstance(code, int) and code > 0 else None) from None


def open_failure(exc: BaseException, relay: Relay, timeout: float) -> tuple[int | None, str]:
    """(reply code or None, text) for a session with `relay` that could not be opened: the
    connection refused or timed out, the host name unresolvable, the connection dropped before or
    at the greeting, a greeting or EHLO/HELO refused, a failed TLS handshake. Each means the relay
    cannot be used now, whichever recipient the message is for."""
    if isinstance(exc, smtplib.SMTPConnectError):       # a greeting that is no 220
        return exc.smtp_code, f"{relay} refused the session at its greeting: {exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPHeloError):
        return exc.smtp_code, f"{relay} refused our EHLO/HELO: {exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code, f"{relay} refused the session: {exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if isinstance(exc.__context__, (TimeoutError, socket.timeout)):   # smtplib's reading of a silent server
            return None, f"no answer from {relay} within {timeout:g} s"
        return None, f"{relay} closed the connection before the session was open: {exc}"
    if isinstance(exc, socket.gaierror):
        return None, f"cannot resolve the relay host {relay.host}: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return None, f"connection to {relay} refused"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return None, f"no answer from {relay} within {timeout:g} s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return None, f"TLS certificate of {relay} not trusted (implicit TLS): {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        return None, f"TLS handshake with {relay} failed: {exc}"
    if isinstance(exc, OSError):
        return None, f"cannot connect to {relay}: {exc.strerror or exc}"
    return None, f"cannot open a session with {relay}: {exc}"


def _text(resp) -> str:
    return resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp or "")
