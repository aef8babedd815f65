"""`doctor relays`: can the sender open a session with each configured relay as its settings say?

For every relay of `[sender.relays."host:port"]` (and, when `sender.tls` is "encrypt" or
"verify", every other relay the routes, default_relay and intake.reply_relay use: they need
STARTTLS too): connect, EHLO, STARTTLS per the relay's tls mode and CA file (the same TLS
context the daemon uses: relaysession.tls_context), EHLO again, and when a username is set,
whether AUTH PLAIN or LOGIN is offered over TLS (`implicit_tls`: over TLS from the first byte
instead of STARTTLS). The password file is read and checked (mode,
content) but the password is sent only with `login=True` (`--login`), once, and only over TLS:
never in clear. QUIT; nothing is mailed.

One CheckResult per relay (shown by the CLI as doctor's preflight.results.CheckResult: the same fields), named `relay HOST:PORT`: PASS, WARN (tls = "may" and the session
would go in plain text) or FAIL with the reason (cannot connect, STARTTLS required and not
offered, handshake or certificate failed, no usable AUTH, AUTH refused). No relay to check: one
PASS result that says so. Reads the config and password files, opens SMTP connections; writes
nothing. Called by pipeline/cli/doctor.py (here, not in preflight: it is the sender's own
session logic, relaysession.py, and preflight and sender do not import each other).
"""

from __future__ import annotations

import smtplib
import socket
import ssl

from dataclasses import dataclass, field

from ..core.errors import ConfigError
from .relaysession import RelayPolicy, read_password, tls_context
from .routes import Relay, Router, parse_relay

AUTH_MECHANISMS = ("PLAIN", "LOGIN")   # what relaysession uses


@dataclass(frozen=True)
class CheckResult:
    """One relay's verdict: status pass | warn | fail, what was found, what to do, facts for --json
    (the fields of pipeline.preflight.results.CheckResult)."""

    name: str
    status: str
    detail: str
    fix: str = ""
    data: dict = field(default_factory=dict)


def relays_to_check(cfg) -> list[tuple[str, object]]:
    """(relay "host:port", its sender.relays entry or None), in name order."""
    s = cfg.sender
    out: dict[Relay, tuple[str, object]] = {}
    for key, entry in (s.relays or {}).items():
        r = parse_relay(key, where=f"sender.relays.{key!r}")
        out[Relay(r.host.lower(), r.port)] = (key, entry)
    if s.tls in ("encrypt", "verify"):
        used = set(Router.from_config(s).relays())
        if cfg.intake.reply_relay:
            used.add(parse_relay(cfg.intake.reply_relay, where="intake.reply_relay"))
        for r in used:
            out.setdefault(Relay(r.host.lower(), r.port), (str(r), None))
    return [out[r] for r in sorted(out)]


def check_relays(cfg, *, timeout: float = 10.0, login: bool = False) -> list[CheckResult]:
    s = cfg.sender
    todo = relays_to_check(cfg)
    if not todo:
        return [CheckResult("relays", "pass",
                            'no relays configured ([sender.relays] is empty and sender.tls = "may"): nothing to check',
                            data={"relays": []})]
    helo = s.helo or socket.getfqdn()
    return [check_relay(key, entry, s, helo=helo, timeout=timeout, login=login) for key, entry in todo]


def _policy(key: str, entry, s) -> RelayPolicy:
    where = f"sender.relays.{key!r}"
    username = getattr(entry, "username", "") if entry is not None else ""
    password_file = getattr(entry, "password_file", "") if entry is not None else ""
    if bool(username) != bool(password_file):
        raise ConfigError(f"{where}: username and password_file go together: give both for AUTH, or neither")
    password = read_password(password_file, where) if password_file else ""
    implicit = bool(getattr(entry, "implicit_tls", False)) if entry is not None else False
    tls = entry.tls if entry is not None and entry.tls else s.tls
    return RelayPolicy(tls="encrypt" if implicit and tls == "may" else tls,
                       ca_file=(entry.ca_file if entry is not None and entry.ca_file else s.tls_ca_file),
                       username=username, password=password, implicit_tls=implicit)


def check_relay(key: str, entry, s, *, helo: str, timeout: float, login: bool = False) -> CheckResult:
    name = f"relay {key}"
    relay = parse_relay(key, where=f"sender.relays.{key!r}")
    try:
        policy = _policy(key, entry, s)
        ctx = tls_context(policy)
    except ConfigError as exc:
        return CheckResult(name, "fail", str(exc), "fix the [sender.relays] entry; the daemon would not start")
    data = {"relay": str(relay), "tls": policy.tls, "ca_file": policy.ca_file or None,
            "username": policy.username or None, "implicit_tls": policy.implicit_tls}
    needs_tls = policy.tls in ("encrypt", "verify") or bool(policy.username)
    why_tls = (f'tls = "{policy.tls}"' if policy.tls != "may" else "AUTH is only ever sent over TLS")

    def fail(detail, fix):
        return CheckResult(name, "fail", policy.mask(detail), fix, data)

    try:
        if policy.implicit_tls:   # SMTPS: TLS from the first byte, no STARTTLS
            smtp = smtplib.SMTP_SSL(relay.host, relay.port, local_hostname=helo, timeout=timeout, context=ctx)
        else:
            smtp = smtplib.SMTP(relay.host, relay.port, local_hostname=helo, timeout=timeout)
    except ssl.SSLCertVerificationError as exc:
        return fail(f"TLS certificate of {relay} not trusted (implicit TLS, tls = \"verify\"): "
                    f"{exc.verify_message or exc}",
                    "give the relay's CA in ca_file (or sender.tls_ca_file), or fix the relay's certificate and host name")
    except ssl.SSLError as exc:
        return fail(f"TLS handshake with {relay} failed (implicit_tls = true): {exc}: the daemon would send nothing "
                    "through it", "check that the port speaks TLS from the first byte (SMTPS, 465); for a "
                    "STARTTLS port (25, 587) remove implicit_tls")
    except (OSError, smtplib.SMTPException) as exc:
        return fail(f"cannot connect to {relay}: {exc}", "check the host and port, that the relay runs, and the firewall")
    try:
        code, resp = smtp.ehlo()
        if not 200 <= code < 300:
            return fail(f"{relay} refused EHLO: {code} {_text(resp)}", "the relay must accept EHLO from this host")
        if not policy.implicit_tls:
            if not smtp.has_extn("starttls"):
                data["starttls"] = False
                if needs_tls:
                    return fail(f"{relay} offers no STARTTLS ({why_tls}): the daemon would send nothing through it",
                                "enable STARTTLS on the relay, or use the relay's submission port (587)")
                return CheckResult(name, "warn", f"{relay} offers no STARTTLS: mail goes in plain text (tls = \"may\")",
                                   'enable STARTTLS on the relay; tls = "encrypt" once it has it', data)
            try:
                smtp.starttls(context=ctx)
            except smtplib.SMTPResponseException as exc:
                reason = f"STARTTLS refused by {relay}: {exc.smtp_code} {_text(exc.smtp_error)}"
                return _tls_failed(name, reason, needs_tls, why_tls, policy, data)
            except ssl.SSLCertVerificationError as exc:
                return fail(f"TLS certificate of {relay} not trusted (tls = \"verify\"): {exc.verify_message or exc}",
                            "give the relay's CA in ca_file (or sender.tls_ca_file), or fix the relay's certificate "
                            "and host name")
            except (ssl.SSLError, OSError) as exc:
                return _tls_failed(name, f"TLS handshake with {relay} failed: {exc}", needs_tls, why_tls, policy, data)
            data["starttls"] = True
            smtp.ehlo()
        sock = smtp.sock
        data["tls_version"] = sock.version() if isinstance(sock, ssl.SSLSocket) else None
        done = [("implicit TLS" if policy.implicit_tls else "STARTTLS") + f" ({data['tls_version'] or 'TLS'}, certificate "
                + ("verified" if policy.tls == "verify" else "not checked") + ")"]
        if policy.username:
            offered = smtp.esmtp_features.get("auth", "").upper().split() if smtp.has_extn("auth") else []
            data["auth_offered"] = offered
            usable = [m for m in AUTH_MECHANISMS if m in offered]
            if not usable:
                what = f"only {' '.join(offered)}" if offered else "no AUTH"
                return fail(f"{relay} offers {what} over TLS, but sender.relays gives it a username",
                            "enable AUTH PLAIN or LOGIN on the relay (over TLS), or remove username/password_file")
            if login:
                smtp.user, smtp.password = policy.username, policy.password
                try:
                    smtp.auth(usable[0], getattr(smtp, f"auth_{usable[0].lower()}"))
                except smtplib.SMTPException as exc:
                    code = getattr(exc, "smtp_code", "")
                    return fail(f"AUTH {usable[0]} as {policy.username} refused by {relay}: {code} "
                                f"{_text(getattr(exc, 'smtp_error', exc))}",
                                "check username and password_file (its first line is the password)")
                done.append(f"AUTH {usable[0]} as {policy.username} accepted")
            else:
                done.append(f"AUTH {' '.join(usable)} offered (password not sent; --login tries it)")
        return CheckResult(name, "pass", f"{relay}: " + ", ".join(done), "", data)
    except (OSError, smtplib.SMTPException) as exc:
        return fail(f"session with {relay} failed: {exc}", "check the relay's log")
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _tls_failed(name, reason, needs_tls, why_tls, policy, data) -> CheckResult:
    data["starttls"] = False
    if needs_tls:
        return CheckResult(name, "fail", policy.mask(f"{reason} ({why_tls}): the daemon would send nothing through it"),
                           "fix the relay's TLS setup (certificate, protocols, ciphers)", data)
    return CheckResult(name, "warn", f'{reason}: tls = "may" falls back to plain text',
                       "fix the relay's TLS setup", data)


def _text(resp) -> str:
    return resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp or "")
