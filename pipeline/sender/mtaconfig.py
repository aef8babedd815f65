"""Relay mode: the MTA's own routing and limits, generated from the carrier table and [sender].

Reads the carrier table (pipeline.classify.carriers, with the config's [carriers] additions) and
the [sender] settings (routes, rates, connections, session_recipients); writes nothing itself:
returns file texts for `mailhygiene send mta-config --mta postfix|sendmail|qmail`.

Every domain of a carrier is routed, with its sub-domains (`.domain` entries), so no SoftBank or
Y!mobile domain (legacy vodafone/jp-?/emnet/pdx...) is missed. A carrier's relay is its route in
`sender.routes` (its 特定接続 relay, e.g. `softbank = "[tokutei.example.jp]:25"`; Y!mobile falls back
to SoftBank's, the carriers' group); without one the MTA delivers to the recipient domain's MX.

What each MTA can enforce:
  postfix   one transport per carrier (master.cf) with
            <transport>_destination_rate_delay = ceil(interval / count) + 1 seconds (Postfix's timers
              count whole seconds, so a delay of N s can fire after N - 1 s and a bit: the extra
              second keeps every gap >= interval / count; a rate above 1/2 s is held to 1 per 2 s,
              never above), applied to every delivery to that destination, Postfix's own retries
              after a 421 included;
            <transport>_destination_concurrency_limit = connections (the carrier's session limit);
            <transport>_destination_concurrency_failed_cohort_limit = 10 (Postfix's advice with a
              rate delay: one 421 must not mark the destination dead and reset its timer);
            <transport>_destination_recipient_limit = session_recipients (>= 2: with 1, Postfix's
              rate delay would count per recipient instead of per destination);
            smtp_connection_reuse_count_limit (per transport) = session_recipients;
            STARTTLS and AUTH as the daemon would use them with the carrier's relay
            ([sender.relays] tls, ca_file, username; sender.tls), per transport (-o, so main.cf's
            own settings for other mail stay as they are): smtp_tls_security_level may | encrypt |
            verify (with smtp_tls_CAfile and a host-name match), and with a username
            smtp_sasl_auth_enable + smtp_sasl_password_maps (the file mailhygiene_sasl_passwd,
            keyed by the transport's next hop; the password is never written, only where it is)
            with AUTH over TLS only, as the daemon: a username raises "may" to "encrypt".
            With a 特定接続 relay, every domain of the carrier shares one destination, so one rate;
            without one the rate applies per recipient domain. Y!mobile on SoftBank's relay
            (routes.shared_windows) goes through SoftBank's transport: one destination, so the
            relay sees SoftBank's rate of both carriers together, not the two rates added.
  sendmail  mailertable entries with one mailer per carrier (m= messages and r= recipients per
            connection; the port in A=TCP $h PORT, since a mailertable cannot carry a port); sendmail
            has no per-destination rate: pace in direct mode if the rate matters. STARTTLS and AUTH
            as the daemon would use them: access map entries `TLS_Srv:relay ENCR:112` (encrypt, and
            every relay with a username) or `VERIFY:112+CN` (verify: a verified certificate naming
            the relay), `TLS_Rcpt:domain` for carriers delivered to their MX when sender.tls requires
            TLS; an authinfo map template `AuthInfo:relay "U:user" "I:user" "P:@PASSWORD@" "M:PLAIN
            LOGIN"` (the password never written); and the FEATUREs/defines they need
            (mailhygiene-features.mc: access_db, authinfo, confAUTH_OPTIONS `p`, check_cert_altnames,
            confCACERT). sendmail's tls_server ruleset then refuses a session without STARTTLS
            before AUTH: no password and no mail in clear (tests/test_mta_config_tls.py runs the
            rulesets of a real sendmail 8.17).
  qmail     control/smtproutes `domain:relay:port` (and `.domain:` for sub-domains); qmail has no
            per-destination rate or session limits (concurrencyremote is global). netqmail's
            qmail-remote has neither STARTTLS nor AUTH: a route that needs either (or sender.tls
            requiring TLS to the MX) is refused with a ConfigError naming them and the ways out,
            never written to go in clear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..classify.carriers import CarrierTable
from ..core.vocabulary import CARRIERS
from .routes import Relay, Router, parse_relay, shared_windows
from .throttle import Rate

MTAS = ("postfix", "sendmail", "qmail")


def carrier_domains(cfg) -> dict[str, list[str]]:
    """carrier -> its domains (expanded, sorted), from the package table and [carriers]."""
    table = CarrierTable.from_config(cfg.carriers)
    out: dict[str, list[str]] = {}
    for domain, carrier in table.domains.items():
        out.setdefault(carrier, []).append(domain)
    return {c: sorted(out[c]) for c in CARRIERS if c in out}


def carrier_relay(sender, carrier: str) -> Relay | None:
    """The carrier's route (or its group's), read as the daemon reads sender.routes (Router: a
    mistyped carrier name is a ConfigError there too)."""
    return Router.from_config(sender).lookup("", carrier)


def _limits(sender, carrier: str) -> tuple[Rate, int, int, int]:
    """(rate, rate delay in whole seconds, session limit, recipients per session)."""
    rate = sender.rate_for(carrier)
    # Postfix's timers count whole seconds of time(): a delay of N s set at hh:mm:18.9 fires at
    # :20.0, only 1.1 s later (measured by tests/test_relay_postfix.py). One second more keeps
    # every gap at or above interval / count.
    delay = max(1, math.ceil(rate.interval / rate.count - 1e-9)) + 1
    sessions = int(sender.connections.get(carrier, sender.default_connections) or sender.concurrency)
    per_session = int(sender.session_recipients.get(carrier, sender.max_recipients_per_session))
    return rate, delay, sessions, max(2, min(per_session, int(sender.messages_per_connection)))


def _transport(carrier: str) -> str:
    return f"mh_{carrier}"


def _postfix_nexthop(relay: Relay | None) -> str:
    if relay is None:
        return ""
    host = f"[{relay.host}]"
    return host if relay.port == 25 else f"{host}:{relay.port}"


def postfix_config(cfg, *, map_type: str = "hash", map_dir: str = "/etc/postfix") -> dict[str, str]:
    s = cfg.sender
    domains = carrier_domains(cfg)
    transport, master, main = [], [], []
    transport.append("# Generated by `mailhygiene send mta-config --mta postfix`: carrier domains -> transports.")
    transport.append(f"# postmap {map_dir}/mailhygiene_transport after every change.")
    main.append("# Generated by `mailhygiene send mta-config --mta postfix`: add to main.cf, then `postfix reload`.")
    main.append(f"transport_maps = {map_type}:{map_dir}/mailhygiene_transport")
    master.append("# Generated by `mailhygiene send mta-config --mta postfix`: add to master.cf.")
    shared = shared_windows(s.routes)
    sasl: dict[str, RelayTls] = {}
    for carrier, names in domains.items():
        relay = carrier_relay(s, carrier)
        rate, delay, sessions, per_session = _limits(s, carrier)
        t = _transport(carrier)
        nexthop = _postfix_nexthop(relay)
        group = shared.get(carrier)
        via_group = relay is not None and group in domains
        if via_group:
            # the group's relay: the group's transport, so Postfix keeps one rate for it
            t = _transport(group)
            transport.append(f"# {carrier}: {group}'s 特定接続 relay {relay}, through {t} "
                             f"(one destination: {group}'s rate for both)")
        else:
            transport.append(f"# {carrier}: " + (f"特定接続 relay {relay}" if relay else "the recipient domain's MX"))
        for d in names:
            transport.append(f"{d}\t{t}:{nexthop}")
            transport.append(f".{d}\t{t}:{nexthop}")
        if via_group:
            continue  # (the group's transport and its limits are written with the group)
        master.append(f"{t:<10} unix  -       -       n       -       {sessions:<7} smtp")
        master.append(f"  -o smtp_connection_reuse_count_limit={per_session}")
        tls = relay_tls(s, relay)
        if tls is not None:
            master.extend(f"  -o {o}" for o in postfix_tls_options(tls, f"{map_type}:{map_dir}/mailhygiene_sasl_passwd"))
            if tls.username:
                sasl[nexthop] = tls
        main.append(f"# {carrier}: configured {rate.count} per {rate.interval:g} s = {rate.count / rate.interval:.3f}/s; "
                    f"Postfix: at least {delay - 1} s between deliveries (delay {delay} s on its whole-second clock)"
                    + (" (Postfix cannot pace faster than one per 2 s per destination)"
                       if rate.interval / rate.count < 1 else ""))
        main.append(f"{t}_destination_rate_delay = {delay}s")
        main.append(f"{t}_destination_concurrency_limit = {sessions}")
        main.append(f"{t}_initial_destination_concurrency = 1")
        # Postfix's own advice for rate-delayed transports: without it one 421 marks the
        # destination dead, and its revived queue starts without the delay timer
        main.append(f"{t}_destination_concurrency_failed_cohort_limit = 10")
        main.append(f"{t}_destination_recipient_limit = {per_session}")
    files = {"mailhygiene_transport": "\n".join(transport) + "\n", "main.cf": "\n".join(main) + "\n",
             "master.cf": "\n".join(master) + "\n"}
    if sasl:
        files["mailhygiene_sasl_passwd"] = _sasl_passwd(sasl, map_dir)
    return files


@dataclass(frozen=True)
class RelayTls:
    """What the local MTA must do with a relay: TLS level, CA file, AUTH user and password file."""

    level: str
    ca_file: str = ""
    username: str = ""
    password_file: str = ""
    implicit_tls: bool = False      # SMTPS (TLS from the first byte): Postfix's smtp_tls_wrappermode


def relay_tls(sender, relay: Relay | None) -> RelayTls | None:
    """The relay's STARTTLS/AUTH as the daemon reads them ([sender.relays] entry, else sender.tls);
    None when there is nothing to say (no entry for the relay and sender.tls = "may", or the
    recipient domain's MX with sender.tls = "may"). A username needs TLS: "may" becomes "encrypt"
    (relaysession never sends a password in clear; Postfix would, under "may")."""
    entries = {}
    for key, entry in (sender.relays or {}).items():
        r = parse_relay(key, where=f"sender.relays.{key!r}")
        entries[Relay(r.host.lower(), r.port)] = entry
    entry = entries.get(Relay(relay.host.lower(), relay.port)) if relay is not None else None
    if entry is None and sender.tls == "may":
        return None
    level = (entry.tls if entry is not None and entry.tls else sender.tls) or "may"
    ca_file = (entry.ca_file if entry is not None and entry.ca_file else sender.tls_ca_file) or ""
    username = entry.username if entry is not None else ""
    implicit = bool(getattr(entry, "implicit_tls", False)) if entry is not None else False
    if (username or implicit) and level == "may":
        level = "encrypt"
    return RelayTls(level, ca_file if level == "verify" else "", username,
                    entry.password_file if entry is not None else "", implicit)


def postfix_tls_options(tls: RelayTls, sasl_map: str) -> list[str]:
    """master.cf `-o` settings of a transport for `tls` (no spaces in any value)."""
    out = [f"smtp_tls_security_level={tls.level}"]
    if tls.implicit_tls:
        out.append("smtp_tls_wrappermode=yes")
    if tls.level == "verify":
        out.append("smtp_tls_verify_cert_match=hostname")
        if tls.ca_file:
            out.append(f"smtp_tls_CAfile={tls.ca_file}")
    if tls.username:
        out += ["smtp_sasl_auth_enable=yes", f"smtp_sasl_password_maps={sasl_map}",
                # PLAIN/LOGIN only inside TLS (the level above guarantees it), never anonymous
                "smtp_sasl_security_options=noanonymous,noplaintext",
                "smtp_sasl_tls_security_options=noanonymous"]
    return out


def _sasl_passwd(sasl: dict[str, RelayTls], map_dir: str) -> str:
    path = f"{map_dir}/mailhygiene_sasl_passwd"
    lines = ["# Generated by `mailhygiene send mta-config --mta postfix`: the relays' AUTH credentials",
             "# (smtp_sasl_password_maps of the transports in master.cf). The passwords are not written here:",
             "# replace each @PASSWORD@ with the first line of the password_file named above it, then",
             f"#   chmod 600 {path} && postmap {path}"]
    for nexthop, tls in sorted(sasl.items()):
        lines.append(f"# {nexthop}: password_file {tls.password_file}")
        lines.append(f"{nexthop}\t{tls.username}:@PASSWORD@")
    return "\n".join(lines) + "\n"


def _needs_tls(tls: RelayTls | None) -> bool:
    """Whether the MTA must do something for this relay: STARTTLS required, or AUTH."""
    return tls is not None and (tls.level != "may" or bool(tls.username))


def secured_routes(cfg) -> tuple[dict[Relay, tuple[RelayTls, list[str]]], tuple[RelayTls, list[str]] | None]:
    """The routes whose STARTTLS/AUTH the MTA must do, as the daemon would: {relay: (its RelayTls,
    carriers routed through it)}, and (RelayTls, carriers) of the carriers delivered to their
    recipient domain's MX when sender.tls requires STARTTLS there too (else None)."""
    s = cfg.sender
    relays: dict[Relay, tuple[RelayTls, list[str]]] = {}
    mx: list[str] = []
    for carrier in carrier_domains(cfg):
        relay = carrier_relay(s, carrier)
        if relay is None:
            mx.append(carrier)
            continue
        tls = relay_tls(s, relay)
        if _needs_tls(tls):
            relays.setdefault(relay, (tls, []))[1].append(carrier)
    mx_tls = relay_tls(s, None)
    return relays, ((mx_tls, mx) if mx and _needs_tls(mx_tls) else None)


# sendmail's access map requirement (cf/README "STARTTLS", ruleset TLS_connection): at least 112
# bits of symmetric encryption; VERIFY also wants the certificate chain verified (confCACERT), and
# "+CN" its name to be that of the server connected to ({TLS_Name}; with
# FEATURE(`check_cert_altnames') the subjectAltNames count too, as the daemon and Postfix check them)
_SENDMAIL_REQUIREMENT = {"encrypt": "ENCR:112", "verify": "VERIFY:112+CN"}


def _sendmail_key(relay: Relay) -> str:
    """The access/authinfo map key of a relay: sendmail looks up {server_name}, then {server_addr}."""
    return relay.host


def sendmail_config(cfg) -> dict[str, str]:
    """mailertable and mailers; for relays that need STARTTLS or AUTH also the access map entries
    (TLS_Srv:), an authinfo map template (AuthInfo:, the password never written: @PASSWORD@) and
    the FEATUREs and defines sendmail.mc needs for them (mailhygiene-features.mc)."""
    from ..core.errors import ConfigError

    s = cfg.sender
    domains = carrier_domains(cfg)
    table, mailers = [], []
    secured, mx = secured_routes(cfg)
    mailers.append("dnl Generated by `mailhygiene send mta-config --mta sendmail`: add to sendmail.mc after the")
    mailers.append("dnl MAILER() lines, with FEATURE(`mailertable') enabled; then rebuild sendmail.cf.")
    mailers.append("dnl sendmail has no per-destination rate: m= and r= limit each connection only.")
    access: dict[str, tuple[str, str]] = {}      # map key -> (requirement, why)
    auth: dict[str, tuple[RelayTls, Relay]] = {}
    implicit = [f"{relay} ({', '.join(carriers)})" for relay, (tls, carriers) in sorted(secured.items())
                if tls.implicit_tls]
    if implicit:
        raise ConfigError(f"sendmail's SMTP client (8.17) speaks STARTTLS, not implicit TLS (SMTPS): {'; '.join(implicit)} "
                          "has implicit_tls = true. Nothing was written. Use the relay's STARTTLS port (587 or 25) "
                          "without implicit_tls, or Postfix (`--mta postfix`: smtp_tls_wrappermode), or direct mode")
    for relay, (tls, carriers) in sorted(secured.items()):
        key = _sendmail_key(relay)
        what = f"{relay} ({', '.join(carriers)})"
        mailers.append(f"dnl {what} needs STARTTLS ({tls.level})" + (f" and AUTH as {tls.username}" if tls.username else "")
                       + ": TLS_Srv: in the file access" + (", AuthInfo: in the file authinfo" if tls.username else "")
                       + ", FEATUREs in mailhygiene-features.mc")
        level = tls.level if tls.level != "may" else "encrypt"    # (AUTH: relay_tls raised it already)
        old = access.get(f"TLS_Srv:{key}")
        if old is None or old[0] == "ENCR:112":
            access[f"TLS_Srv:{key}"] = (_SENDMAIL_REQUIREMENT[level], what)
        if tls.username:
            if key in auth and (auth[key][0].username, auth[key][0].password_file) != (tls.username, tls.password_file):
                raise ConfigError(f"sendmail keys AUTH credentials by host only, and {auth[key][1]} and {relay} "
                                  "have different ones: give the two relays one username and password_file, "
                                  "or use Postfix (`--mta postfix`), whose map is keyed by host and port")
            auth[key] = (tls, relay)
    if mx is not None:
        tls, carriers = mx
        mailers.append(f"dnl the recipient domains' MX ({', '.join(carriers)}) need STARTTLS ({tls.level}, sender.tls): "
                       "TLS_Rcpt: in the file access, FEATUREs in mailhygiene-features.mc")
        for carrier in carriers:
            for d in domains[carrier]:
                access.setdefault(f"TLS_Rcpt:{d}", (_SENDMAIL_REQUIREMENT[tls.level], f"{carrier}'s MX"))
    mailers.append("MAILER_DEFINITIONS")
    for carrier, names in domains.items():
        relay = carrier_relay(s, carrier)
        rate, delay, sessions, per_session = _limits(s, carrier)
        mailer = _transport(carrier)
        port = relay.port if relay else 25
        mailers.append(f"M{mailer}, P=[IPC], F=mDFMuXa, S=EnvFromSMTP/HdrFromSMTP, R=EnvToSMTP, E=\\r\\n, L=990, "
                       f"T=DNS/RFC822/SMTP, m={per_session}, r={per_session}, A=TCP $h {port}")
        for d in names:
            if relay is not None:
                table.append(f"{d}\t{mailer}:[{relay.host}]")
                table.append(f".{d}\t{mailer}:[{relay.host}]")
            else:  # the domain's own MX (an unbracketed host is MX-expanded); sub-domains keep the default
                table.append(f"{d}\t{mailer}:{d}")
    files = {"mailertable": "\n".join(table) + "\n", "mailhygiene.mc": "\n".join(mailers) + "\n"}
    if access:
        files["access"] = _sendmail_access(access)
        files["mailhygiene-features.mc"] = _sendmail_features(secured, mx, bool(auth))
    if auth:
        files["authinfo"] = _sendmail_authinfo(auth)
    return files


def _sendmail_access(access: dict[str, tuple[str, str]]) -> str:
    lines = ["# Generated by `mailhygiene send mta-config --mta sendmail`: add to /etc/mail/access (FEATURE(`access_db')),",
             "# then `makemap hash /etc/mail/access < /etc/mail/access`. Mail to these relays (TLS_Srv:) or",
             "# recipient domains (TLS_Rcpt:) goes only over STARTTLS (ENCR: at least 112-bit encryption; VERIFY:",
             "# also a verified certificate naming the server, +CN): never in plain text, as the daemon."]
    for key, (req, why) in access.items():
        lines.append(f"# {why}")
        lines.append(f"{key}\t{req}")
    return "\n".join(lines) + "\n"


def _sendmail_authinfo(auth: dict[str, tuple[RelayTls, Relay]]) -> str:
    lines = ["# Generated by `mailhygiene send mta-config --mta sendmail`: the relays' AUTH credentials for",
             "# FEATURE(`authinfo') (/etc/mail/authinfo). The passwords are not written here: replace each",
             "# @PASSWORD@ with the first line of the password_file named above it (a password holding a double",
             "# quote: write \"P=<its base64>\" instead of \"P:...\"), then",
             "#   chmod 600 /etc/mail/authinfo && makemap hash /etc/mail/authinfo < /etc/mail/authinfo"]
    for key, (tls, relay) in sorted(auth.items()):
        lines.append(f"# {relay}: password_file {tls.password_file}")
        lines.append(f'AuthInfo:{key}\t"U:{tls.username}" "I:{tls.username}" "P:@PASSWORD@" "M:PLAIN LOGIN"')
    return "\n".join(lines) + "\n"


def _sendmail_features(secured, mx, auth: bool) -> str:
    levels = {tls.level for tls, _ in secured.values()} | ({mx[0].level} if mx else set())
    cas = sorted({tls.ca_file for tls, _ in secured.values() if tls.level == "verify" and tls.ca_file}
                 | ({mx[0].ca_file} if mx and mx[0].level == "verify" and mx[0].ca_file else set()))
    out = ["dnl Generated by `mailhygiene send mta-config --mta sendmail`: add to sendmail.mc BEFORE the MAILER()",
           "dnl lines, then rebuild sendmail.cf. sendmail must be built with STARTTLS" + (" and SASL" if auth else "")
           + " (`sendmail -d0.1 -bv root`",
           "dnl lists them under Compiled with" + (", and the SASL PLAIN and LOGIN client modules installed (Debian:"
                                                   " libsasl2-modules)" if auth else "") + ").",
           "dnl the TLS_Srv:/TLS_Rcpt: requirements of the file access:",
           "FEATURE(`access_db')dnl"]
    if auth:
        out += ["dnl the AuthInfo: credentials of the file authinfo (a map of its own, not readable by others):",
                "FEATURE(`authinfo')dnl",
                "dnl PLAIN and LOGIN only inside TLS (the access requirement already refuses a session without it):",
                "define(`confAUTH_OPTIONS', `p')dnl",
                "dnl confAUTH_MECHANISMS (if this sendmail sets it) must list PLAIN and LOGIN."]
    if "verify" in levels:
        out += ["dnl verify: the certificate's subjectAltNames count for +CN (sendmail 8.16 and later):",
                "FEATURE(`check_cert_altnames')dnl"]
        if len(cas) == 1:
            out += ["dnl the CA the relays' certificates are checked against:",
                    f"define(`confCACERT', `{cas[0]}')dnl",
                    f"define(`confCACERT_PATH', `{cas[0].rpartition('/')[0] or '/'}')dnl"]
        elif cas:
            out.append("dnl sendmail has one CA file (confCACERT): put these in one bundle and name it there: "
                       + ", ".join(cas))
        else:
            out.append("dnl set confCACERT / confCACERT_PATH to the system CA store (sender.tls_ca_file is not set)")
    return "\n".join(out) + "\n"


def qmail_config(cfg) -> dict[str, str]:
    """control/smtproutes. Stock netqmail's qmail-remote has neither STARTTLS nor AUTH: a route
    that needs either is refused (ConfigError naming them), never written to send in the clear."""
    from ..core.errors import ConfigError

    s = cfg.sender
    secured, mx = secured_routes(cfg)
    if secured or mx is not None:
        needs = [f"{relay} ({', '.join(carriers)}) needs " + ("implicit TLS" if tls.implicit_tls else "STARTTLS")
                 + f" ({tls.level})"
                 + (f" and AUTH as {tls.username}" if tls.username else "")
                 for relay, (tls, carriers) in sorted(secured.items())]
        if mx is not None:
            needs.append(f"the recipient domains' MX ({', '.join(mx[1])}) need STARTTLS ({mx[0].level}, sender.tls)")
        raise ConfigError(
            "qmail cannot send these routes safely: its qmail-remote (netqmail 1.06) has no STARTTLS and no SMTP "
            "AUTH, so it would send the mail in plain text" + (" (and could not log in)" if any(
                t.username for t, _ in secured.values()) else "") + ": " + "; ".join(needs)
            + ". Nothing was written. Instead: send in direct mode (the daemon does STARTTLS and AUTH itself); or "
            "let a local Postfix or sendmail carry these carriers (`mailhygiene send mta-config --mta postfix` or "
            "`--mta sendmail` writes their TLS/AUTH) and point qmail's smtproutes for their domains at it; or use a "
            "qmail-remote patched for STARTTLS with a verified certificate (the qmail-tls patch, control/tlshosts/) "
            "and for AUTH (e.g. s/qmail, or an smtproutes AUTH patch) and write those routes by hand")
    lines = []
    for carrier, names in carrier_domains(cfg).items():
        relay = carrier_relay(s, carrier)
        if relay is None:
            continue  # qmail delivers to the MX by itself: no route needed
        target = relay.host + (f":{relay.port}" if relay.port != 25 else "")
        for d in names:
            lines.append(f"{d}:{target}")
            lines.append(f".{d}:{target}")
    return {"smtproutes": "\n".join(lines) + ("\n" if lines else "")}


def mta_config(cfg, mta: str) -> dict[str, str]:
    """File name -> text for `mta` (postfix, sendmail or qmail)."""
    if mta not in MTAS:
        from ..core.errors import InputError

        raise InputError(f"unknown MTA {mta!r}: use one of {', '.join(MTAS)}")
    return {"postfix": postfix_config, "sendmail": sendmail_config, "qmail": qmail_config}[mta](cfg)
