"""DNS lookups for the doctor, through one configurable resolver (server, port, timeout).

Reads DNS only (UDP/TCP to the configured server, or the system resolver); writes nothing.
Called by dns_checks and spf_check. Also provides the hook that makes pyspf use the same resolver,
and probe(): the one quick question asked before any check, so that a resolver that does not
answer stops `doctor setup` with an error instead of turning every check into a slow warning.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import spf

from ..core.errors import ConfigError, MailHygieneError


class ResolverUnusable(MailHygieneError):
    """The resolver did not answer the probe, or refused it: no check could mean anything."""


@dataclass
class Answer:
    """Outcome of one query: `status` is ok | nxdomain | nodata | error (timeout, SERVFAIL…)."""

    status: str
    records: list = field(default_factory=list)
    error: str = ""
    alias_of: str = ""  # the name the records belong to when `name` is a CNAME (alias) for it

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def texts(self) -> list[str]:
        """TXT records with their character-strings joined (RFC 7208 3.3), as text."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self.records]

    def addresses(self) -> list[str]:
        return [r.address for r in self.records]

    def describe(self) -> str:
        return {"nxdomain": "no such name (NXDOMAIN)", "nodata": "no records of that type"}.get(
            self.status, self.error or self.status
        )


def make_resolver(server: str | None = "", port: int = 53, timeout: float = 5.0) -> dns.resolver.Resolver:
    """A dnspython Resolver asking `server` (an IP address) on `port`; "" or None = system resolver."""
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"doctor resolver port must be 1-65535 (got {port!r})")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or not 0 < timeout <= 120:
        raise ConfigError(f"doctor timeout must be a number of seconds from 0.1 to 120 (got {timeout!r})")
    if server:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            host, _, port_text = server.rpartition(":")
            hint = (f"; give the port separately: --resolver {host.strip('[]')} --port {port_text}"
                    if port_text.isdigit() and host else "")
            raise ConfigError(
                f"resolver {server!r} is not an IP address: give the DNS server's address, "
                f"e.g. 127.0.0.1 (set doctor.resolver or --resolver){hint}"
            ) from None
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = [server]
    else:
        try:
            res = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise ConfigError(
                "this machine has no resolver configured (/etc/resolv.conf): "
                "set doctor.resolver or pass --resolver"
            ) from None
    res.port = port
    res.timeout = float(timeout)
    res.lifetime = float(timeout)
    res.search = []
    res.use_search_by_default = False
    return res


def server_label(res: dns.resolver.Resolver, server: str | None = None) -> str:
    """`1.2.3.4:53`, `[2001:db8::53]:53`; several servers (system resolver) joined by commas."""
    servers = [server] if server else [str(s) for s in res.nameservers]
    return ", ".join(f"[{s}]:{res.port}" if ":" in s else f"{s}:{res.port}" for s in servers)


def probe(res: dns.resolver.Resolver, name: str, budget: float, system: bool = False) -> str:
    """Ask the resolver for `name` SOA once, within `budget` seconds (resent each second while
    time remains, across the servers in turn, against packet loss). Returns the answer's rcode
    text (NOERROR or NXDOMAIN: the resolver works). Raises ResolverUnusable when nothing answers
    in time, when the resolver REFUSES us, or when it answers SERVFAIL or NXDOMAIN for the root as
    well (NXDOMAIN for the root: a resolver without an upstream, which would fail every check). When
    the domain's SOA gets no reply but the root does, the resolver works (the domain's servers are
    silent): the checks run and report what they cannot look up. Last, KNOWN_NAMES: a resolver
    that says one of them does not exist cannot be trusted (ResolverUnusable) either.
    """
    where = server_label(res) + (" (the system resolver, /etc/resolv.conf)" if system else "")
    how_to_fix = ("check that it runs and that UDP port {port} reaches it, or name a working one "
                  "with --resolver IP / doctor.resolver (e.g. 127.0.0.1 for a local unbound)").format(port=res.port)
    rcode, sent, problems = _ask(res, name, "SOA", budget)
    if rcode is None and not problems:
        # Silence may be the domain's own name servers: a recursive resolver waits for them longer
        # than our budget before it answers SERVFAIL. The root depends on the resolver alone.
        root, _sent, _problems = _ask(res, ".", "NS", max(1.0, budget / 2))
        if root == dns.rcode.NOERROR:
            _check_known_names(res, where, how_to_fix, max(1.0, budget / 2))
            return "no reply (the resolver answers for the root: the domain's name servers are slow or down)"
    if rcode is None:
        why = f"; {problems[-1]}" if problems else ""
        raise ResolverUnusable(
            f"resolver {where} not answering (no reply within {budget:g}s to a probe for {name} SOA, "
            f"sent {sent} time{'' if sent == 1 else 's'}{why}): {how_to_fix}")
    if rcode == dns.rcode.REFUSED:
        raise ResolverUnusable(
            f"resolver {where} refuses our queries (REFUSED for {name} SOA): allow this host in its "
            f"access list (BIND allow-query/allow-recursion, unbound access-control), or {how_to_fix}")
    if rcode == dns.rcode.NXDOMAIN:
        # "no such domain" is a verdict (mx, spf and dmarc fail) only from a resolver that can
        # resolve: one without an upstream (a sandbox, a captive or filtering resolver) answers
        # NXDOMAIN for every name, and the root, which always exists, tells it apart (an
        # authoritative server asked directly may refuse the root: its NXDOMAIN stands).
        root, _sent, _problems = _ask(res, ".", "NS", max(1.0, budget / 2))
        if root == dns.rcode.NXDOMAIN:
            raise ResolverUnusable(
                f"resolver {where} answers but resolves nothing (NXDOMAIN for {name} SOA, "
                f"NXDOMAIN for the root, which always exists): nothing could be checked; it may have no route to the "
                f"internet, or be a filtering or captive resolver; {how_to_fix}")
    if rcode == dns.rcode.SERVFAIL:
        # SERVFAIL for one name may be that domain's broken name servers; for the root it is the
        # resolver that cannot resolve anything (no upstream, broken DNSSEC trust anchor).
        root, _sent, _problems = _ask(res, ".", "NS", max(1.0, budget / 2))
        if root != dns.rcode.NOERROR:
            raise ResolverUnusable(
                f"resolver {where} answers but cannot resolve (SERVFAIL for {name} SOA, "
                f"{dns.rcode.to_text(root) if root is not None else 'no reply'} for the root): it may "
                f"have no route to the internet or a broken DNSSEC setup; {how_to_fix}")
    _check_known_names(res, where, how_to_fix, max(1.0, budget / 2))
    return dns.rcode.to_text(rcode)


# Names that exist as long as the DNS does (the root's and .com's name servers), each a level
# below a TLD so that only a resolver reaching the internet can answer them: a captive,
# blackholing or offline split-horizon resolver that answers the root (or its own zones) and says
# "no such name" to everything else gives itself away here.
KNOWN_NAMES = (("a.root-servers.net", "A"), ("a.gtld-servers.net", "A"))


def _check_known_names(res, where: str, how_to_fix: str, budget: float) -> None:
    """ResolverUnusable when the resolver says that a name of KNOWN_NAMES does not exist (NXDOMAIN)
    or has no address (an empty answer): its "no such name" answers, which would FAIL the mx,
    spf, dmarc and ptr checks, cannot be trusted. REFUSED, SERVFAIL or silence prove nothing
    (an authoritative server asked directly refuses them; a slow path out): the checks run and
    say what they could not look up."""
    for name, rdtype in KNOWN_NAMES:
        reply, _sent, _problems = _ask_reply(res, name, rdtype, budget)
        if reply is None:
            break  # silence: the way out is slow or closed, the second name would wait as long
        rcode = reply.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            said = "NXDOMAIN"
        elif rcode == dns.rcode.NOERROR and not any(r.rdtype == dns.rdatatype.from_text(rdtype) for r in reply.answer):
            said = "an empty answer"
        else:
            continue
        raise ResolverUnusable(
            f"resolver {where} cannot be trusted, nothing was checked: it answers {said} for {name} "
            f"{rdtype}, a name that always exists, so its \"no such name\" for the domain's records "
            f"would be no verdict (a captive, blackholing or offline split-horizon resolver without "
            f"a way to the internet); {how_to_fix}")


def _ask(res, name: str, rdtype: str, budget: float) -> tuple[int | None, int, list[str]]:
    reply, sent, problems = _ask_reply(res, name, rdtype, budget)
    return (reply.rcode() if reply is not None else None), sent, problems


def _ask_reply(res, name: str, rdtype: str, budget: float):
    """(the reply or None, queries sent, problems met) for one question, resent within `budget`."""
    query = dns.message.make_query(name, rdtype)
    servers = [str(s) for s in res.nameservers] or ["127.0.0.1"]
    deadline = time.monotonic() + budget
    sent, problems = 0, []
    while (remaining := deadline - time.monotonic()) > 0.01:
        server = servers[sent % len(servers)]
        sent += 1
        started = time.monotonic()
        try:
            reply = dns.query.udp(query, server, timeout=min(1.0, remaining), port=res.port)
        except dns.exception.Timeout:
            continue
        except (OSError, dns.exception.DNSException) as exc:  # ICMP unreachable, malformed reply
            problems.append(f"{server_label(res, server)}: {_first_line(exc)}")
            # do not spin on an immediate error: wait out the rest of this second
            time.sleep(max(0.0, min(remaining, 1.0) - (time.monotonic() - started)))
            continue
        return reply, sent, problems
    return None, sent, problems


# A whole `doctor setup` run may spend at most this many per-query timeouts waiting: a server
# that is silent for many names (10 MX hosts, 10 includes, the lists) cost minutes, one
# doctor.timeout each. Answers take milliseconds, so only silence uses the budget up.
RUN_BUDGET_TIMEOUTS = 10


def set_run_budget(res: dns.resolver.Resolver, seconds: float) -> None:
    """From now on, lookups through `res` share `seconds`: once spent, they are not asked and
    return an error (each check then says WARN 'could not look up'), never a verdict."""
    res.mailhygiene_deadline = (time.monotonic() + seconds, seconds)


def lookup(res: dns.resolver.Resolver, name: str, rdtype: str) -> Answer:
    """One query; never raises for DNS trouble, so each check can say what went wrong."""
    try:
        qname = dns.name.from_text(name)
    except (dns.exception.DNSException, ValueError) as exc:
        return Answer("error", error=f"invalid DNS name {name!r}: {exc}")
    lifetime = res.lifetime
    deadline = getattr(res, "mailhygiene_deadline", None)
    if deadline is not None:
        remaining = deadline[0] - time.monotonic()
        if remaining <= 0.01:
            return Answer("error", error=f"{name} {rdtype} not asked: this run's DNS time "
                                         f"({deadline[1]:g}s) was spent waiting for servers that did not answer")
        lifetime = min(lifetime, remaining)
    try:
        ans = res.resolve(qname, rdtype, search=False, raise_on_no_answer=False, lifetime=lifetime)
    except dns.resolver.NXDOMAIN:
        return Answer("nxdomain")
    except dns.resolver.NoNameservers as exc:
        return Answer("error", error=f"no server answered {name} {rdtype} (SERVFAIL/REFUSED): {_first_line(exc)}")
    except dns.exception.Timeout:
        return Answer("error", error=f"timed out asking for {name} {rdtype} after {round(lifetime, 1):g}s")
    except dns.exception.DNSException as exc:
        return Answer("error", error=f"{name} {rdtype}: {_first_line(exc)}")
    records = list(ans.rrset) if ans.rrset is not None else []
    canonical = ans.canonical_name
    alias_of = canonical.to_text(omit_final_dot=True) if canonical != qname else ""
    return Answer("ok", records, alias_of=alias_of) if records else Answer("nodata", alias_of=alias_of)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# ------------------------------------------------------------------ pyspf hook
# pyspf resolves through the module-level function `spf.DNSLookup(name, qtype, strict, timeout)`
# (it picks the dnspython or pydns variant at import time; pyspf's own test suite replaces it the
# same way). We swap it for the duration of one evaluation, under a lock so that two evaluations
# in one process never see each other's resolver.
_SPF_HOOK_LOCK = threading.Lock()


def _pyspf_lookup(res: dns.resolver.Resolver):
    def DNSLookup(name, qtype, strict=True, timeout=30):  # noqa: N802 (pyspf's name)
        ans = lookup(res, name, qtype)
        if ans.status == "error":
            raise spf.TempError("DNS " + ans.error)
        out = []
        for r in ans.records:
            if qtype in ("A", "AAAA"):
                out.append(((name, qtype), r.address))
            elif qtype == "MX":
                out.append(((name, qtype), (r.preference, r.exchange)))
            elif qtype == "PTR":
                out.append(((name, qtype), r.target.to_text(True)))
            elif qtype in ("TXT", "SPF"):
                out.append(((name, qtype), r.strings))
        return out

    return DNSLookup


@contextmanager
def pyspf_resolver(res: dns.resolver.Resolver):
    """Within this block pyspf asks `res` (our server/port/timeout) instead of the system resolver."""
    with _SPF_HOOK_LOCK:
        saved = spf.DNSLookup
        spf.DNSLookup = _pyspf_lookup(res)
        try:
            yield
        finally:
            spf.DNSLookup = saved
