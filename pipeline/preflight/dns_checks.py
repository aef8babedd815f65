"""Preflight of a sending setup: the IP itself, reverse DNS, HELO, MX, SPF, DMARC, DKIM, block lists.

Reads DNS only, through one configurable resolver (server, port, timeout); writes nothing.
Called by `check_setup()` (pipeline.preflight), which the `mailhygiene doctor setup` command and
notebooks use. One probe of the resolver comes first: when it does not answer, check_setup raises
(ResolverUnusable) before any check. After that every check returns CheckResult values; DNS
trouble in one check is a warn, never an exception, and never a PASS.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import unicodedata

import dns.exception
import dns.name
import dns.reversename

from ..core.config import DoctorSettings
from ..core.errors import ConfigError, InputError
from .resolver import RUN_BUDGET_TIMEOUTS, lookup, make_resolver, probe, set_run_budget
from .results import CheckResult
from .spf_check import check_spf

DEFAULT_DNSBLS = DoctorSettings().dnsbls
DEFAULT_DOMAIN_LISTS = DoctorSettings().domain_blocklists

SOFTBANK_NOTE = (
    "SoftBank refuses every recipient with `553 <domain> does not exist` when the envelope "
    "sender's domain has no DNS"
)
_GENERIC_PTR_WORDS = re.compile(
    r"(^|[.\-])(dyn|dynamic|dhcp|dsl|adsl|pool|ppp|cable|broadband|client|dial|dialup|customer|host)"
    r"([.\-\d]|$)", re.IGNORECASE)


# ------------------------------------------------------------------ input
def normalise_ip(ip: str) -> str:
    """The address in canonical form; an IPv4-mapped IPv6 address becomes the IPv4 address."""
    try:
        addr = ipaddress.ip_address(str(ip).strip())
    except ValueError:
        raise InputError(f"{ip!r} is not an IP address: give the sending IP, e.g. --ip 192.0.2.10") from None
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_IME_DOTS = re.compile("[\u3002\uff0e\uff61]")  # 。 ． ｡


def normalise_domain(domain: str, what: str = "domain") -> str:
    """Lower-case ASCII (IDNA) form of a host or domain name; InputError naming `what` if invalid."""
    raw = str(domain or "")
    d = raw.strip().rstrip(".").lower()
    halfwidth = unicodedata.normalize("NFKC", _IME_DOTS.sub(".", d))
    if halfwidth != d and any("\uff01" <= ch <= "\uff5e" or ch in "\u3002\uff61" for ch in d):
        # ｅｘａｍｐｌｅ．ｊｐ / 例え。jp: typed with a Japanese input method
        raise InputError(f"{what} {raw!r} holds full-width characters or 「。」: type it in half-width "
                         f"({halfwidth.rstrip('.')})")
    if "@" in d:
        raise InputError(f"{what} {raw!r} looks like an address: give only the part after @")
    try:
        ipaddress.ip_address(d.strip("[]"))
        raise InputError(f"{what} {raw!r} is an IP address, not a domain name: e.g. example.jp")
    except ValueError:
        pass
    try:
        if not d or "." not in d:
            raise ValueError("needs at least two labels")
        d = d.encode("idna").decode("ascii")
        dns.name.from_text(d)
        # mail domains and host names are letters, digits and hyphens (RFC 5321 4.1.2); `_` is
        # for DNS record names (_dmarc, _domainkey), which block list zones may use
        bad = [label for label in d.split(".") if not _LABEL.match(label) or ("_" in label and what != "block list zone")]
        if bad:
            hint = "; give the mail domain itself, e.g. example.jp for _dmarc.example.jp" if bad[0].startswith("_") else ""
            raise ValueError(f"label {bad[0]!r} is not letters, digits and inner hyphens{hint}")
    except (UnicodeError, ValueError, dns.exception.DNSException) as exc:
        raise InputError(f"{what} {raw!r} is not a valid domain name ({exc}): e.g. example.jp") from None
    return d


def normalise_selector(selector: str) -> str:
    s = str(selector).strip().rstrip(".").lower()
    if "._domainkey" in "." + s:
        raise InputError(f"DKIM selector {selector!r} is the whole key name: give only the selector, "
                         f"the s= tag of your DKIM-Signature header (here {s.split('._domainkey')[0] or 's1'!r})")
    if not s or not all(_LABEL.match(label) for label in s.split(".")):
        raise InputError(f"DKIM selector {selector!r} is not a DNS label (the s= tag of your "
                         "DKIM-Signature header, e.g. s1)")
    return s


def normalise_zone(zone: str, key: str) -> str:
    try:
        return normalise_domain(zone, "block list zone")
    except InputError as exc:
        raise ConfigError(f"doctor.{key} (or its command-line option): {exc}") from None


# ------------------------------------------------------------------ the IP itself
MAX_FAILED_LOOKUPS = 2  # per check, for lists of names (MX hosts): then the rest is not asked
_CGNAT = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 shared address space
_DOCUMENTATION = tuple(ipaddress.ip_network(n) for n in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"))  # RFC 5737, RFC 3849
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
IP_CHECKS = ("ptr", "helo", "spf-ip", "dnsbl")


def check_ip(ip: str) -> CheckResult:
    """Is `ip` an address receivers can see? FAIL for loopback, private, link-local, CGNAT and
    other non-global addresses (the IP-based checks are then skipped); WARN for documentation
    ranges (an example copied from the docs), which are otherwise checked as given."""
    addr = ipaddress.ip_address(ip)
    if addr.is_unspecified:
        kind = "the unspecified address"
    elif addr.is_loopback:
        kind = "a loopback address (this machine only)"
    elif addr.is_link_local:
        kind = "a link-local address (one network segment only)"
    elif addr.is_multicast:
        kind = "a multicast address"
    elif addr.version == 4 and addr in _CGNAT:
        kind = "a carrier-grade NAT address (100.64.0.0/10, RFC 6598: your provider's side of a NAT)"
    elif any(addr in net for net in _DOCUMENTATION):
        return CheckResult(
            "ip", "warn",
            f"{ip} is a documentation address (RFC 5737 / RFC 3849): no real mail comes from it",
            "give the public address your MTA really sends from (did you copy the example from the docs?)",
            {"ip": ip, "kind": "documentation"},
        )
    elif (addr.version == 4 and any(addr in net for net in _RFC1918)) or (
            addr.version == 6 and addr in ipaddress.ip_network("fc00::/7")):
        kind = "a private address (RFC 1918 / unique local), behind NAT"
    elif not addr.is_global:
        kind = "a reserved address that is not routed on the internet"
    else:
        return CheckResult("ip", "pass", f"{ip} is a public address", data={"ip": ip, "kind": "public"})
    return CheckResult(
        "ip", "fail",
        f"{ip} is {kind}: receivers never see it, so PTR, HELO, SPF-for-IP and block-list checks "
        "were skipped",
        "give the public address the mail leaves from: behind NAT, the router's or provider's public "
        "address (it is the one in the Received: header a receiver adds to a test message from you)",
        {"ip": ip, "kind": kind, "skipped": list(IP_CHECKS)},
    )


# ------------------------------------------------------------------ reverse DNS and HELO
def _forward_addresses(res, name: str, ip: str) -> tuple[list[str], str, bool]:
    """(addresses of `name` in `ip`'s family, why there are none, whether the lookup failed):
    a lookup that failed (timeout, SERVFAIL) says nothing about the name, unlike NXDOMAIN."""
    rdtype = "AAAA" if ":" in ip else "A"
    ans = lookup(res, name, rdtype)
    return ([str(ipaddress.ip_address(a)) for a in ans.addresses()], ("" if ans.ok else ans.describe()),
            ans.status == "error")


def check_ptr(res, ip: str) -> tuple[CheckResult, list[str]]:
    """Forward-confirmed reverse DNS: PTR(ip) = name and A/AAAA(name) contains ip."""
    rname = dns.reversename.from_address(ip).to_text()
    ans = lookup(res, rname, "PTR")
    if ans.status == "error":
        return CheckResult("ptr", "warn", f"could not look up the PTR of {ip}: {ans.error}",
                           "check the resolver; then run again"), []
    if not ans.ok:
        return CheckResult(
            "ptr", "fail", f"{ip} has no PTR record ({ans.describe()})",
            f"ask whoever owns {ip} (hosting provider / ISP) to set its PTR to your mail host name, "
            "e.g. mail.example.jp, and give that name an A record pointing back to the IP; carriers "
            "and most large receivers refuse or throttle mail from IPs without reverse DNS",
        ), []
    names = [r.target.to_text(omit_final_dot=True) for r in ans.records]
    confirmed, problems, unknown = [], [], []
    for name in names:
        addrs, why, failed = _forward_addresses(res, name, ip)
        if ip in addrs:
            confirmed.append(name)
        elif failed:
            unknown.append(f"{name}: {why}")
        else:
            problems.append(f"{name} -> {', '.join(addrs) or why}")
    data = {"ptr": names, "confirmed": confirmed}
    if not confirmed and unknown:
        return CheckResult(
            "ptr", "warn", f"PTR {ip} -> {', '.join(names)}, but could not look up its address "
            f"({'; '.join(unknown)}): forward confirmation not checked",
            "check the resolver and the PTR name's name servers, then run again", data), names
    if not confirmed:
        return CheckResult(
            "ptr", "fail", f"PTR {ip} -> {', '.join(names)}, but {'; '.join(problems)} (not forward-confirmed)",
            f"give {names[0]} an {'AAAA' if ':' in ip else 'A'} record for {ip} (or change the PTR to a "
            "name that has one): receivers check that the reverse name resolves back to the IP",
            data,
        ), names
    generic = [n for n in confirmed if _looks_generic(n, ip)]
    if generic:
        return CheckResult(
            "ptr", "warn", f"{ip} <-> {generic[0]} is forward-confirmed but looks like a generic/dynamic name",
            "ask for a PTR naming your mail host (e.g. mail.example.jp): generic names are scored as "
            "dynamic/residential by spam filters", data,
        ), names
    detail = f"{ip} <-> {confirmed[0]} (forward-confirmed)"
    if len(names) > 1:
        return CheckResult("ptr", "warn", detail + f"; {len(names)} PTR records",
                           "keep exactly one PTR per IP: receivers may pick any of them", data), names
    return CheckResult("ptr", "pass", detail, data=data), names


def _looks_generic(name: str, ip: str) -> bool:
    if ":" not in ip:
        octets = ip.split(".")
        for pattern in (octets, octets[::-1]):
            if re.search(r"[.\-x]?".join(pattern), name):
                return True
    return bool(_GENERIC_PTR_WORDS.search(name.split(".")[0]))


def check_helo(res, helo: str, ip: str, ptr_names: list[str]) -> CheckResult:
    addrs, why, failed = _forward_addresses(res, helo, ip)
    rr = "AAAA" if ":" in ip else "A"
    if ip not in addrs and failed:
        return CheckResult("helo", "warn", f"could not look up HELO name {helo} ({rr}): {why}",
                           "check the resolver and the HELO name's name servers, then run again",
                           {"addresses": addrs})
    if ip not in addrs:
        found = ", ".join(addrs) or why
        return CheckResult(
            "helo", "warn", f"HELO name {helo} does not resolve to {ip} ({rr}: {found})",
            f"give {helo} an {rr} record for {ip}, or set the MTA's HELO name (Postfix: "
            "smtp_helo_name / myhostname) to a name that has one", {"addresses": addrs},
        )
    if ptr_names and helo.lower() not in (n.lower() for n in ptr_names):
        return CheckResult(
            "helo", "warn", f"HELO {helo} resolves to {ip} but the PTR says {', '.join(ptr_names)}",
            "use the PTR name as HELO name (or change the PTR) so the two agree",
            {"addresses": addrs, "ptr": ptr_names},
        )
    return CheckResult("helo", "pass", f"{helo} -> {ip}" + (" (matches PTR)" if ptr_names else ""),
                       data={"addresses": addrs})


# ------------------------------------------------------------------ MX
def check_mx(res, domain: str) -> CheckResult:
    ans = lookup(res, domain, "MX")
    if ans.status == "error":
        return CheckResult("mx", "warn", f"could not look up MX of {domain}: {ans.error}",
                           "check the resolver and the domain's name servers, then run again")
    if ans.status == "nxdomain":
        return CheckResult(
            "mx", "fail", f"{domain} does not exist in DNS (NXDOMAIN)",
            f"register/publish the domain with an MX (and SPF) record before sending; {SOFTBANK_NOTE}",
        )
    if ans.status == "nodata":
        a = lookup(res, domain, "A")
        aaaa = lookup(res, domain, "AAAA")
        if a.ok or aaaa.ok:
            return CheckResult(
                "mx", "warn", f"{domain} has no MX record; mail to it falls back to its A/AAAA record",
                f"publish an MX record (e.g. {domain}. MX 10 mail.{domain}.) so bounces and replies "
                f"have a clear home; {SOFTBANK_NOTE}",
            )
        errors = [x.error for x in (a, aaaa) if x.status == "error"]
        if errors:
            return CheckResult(
                "mx", "warn", f"{domain} has no MX record, and its A/AAAA (the implicit MX) could not be "
                f"looked up: {'; '.join(errors)}",
                "check the resolver and the domain's name servers, then run again")
        return CheckResult(
            "mx", "fail", f"{domain} has no MX and no A/AAAA record: bounces and replies cannot come back",
            f"publish an MX record pointing at a host that accepts mail for {domain}; {SOFTBANK_NOTE}",
        )
    mxs = sorted((r.preference, r.exchange.to_text(omit_final_dot=True)) for r in ans.records)
    data = {"mx": [{"preference": p, "host": h} for p, h in mxs]}
    if len(mxs) == 1 and mxs[0][1] in ("", "."):
        return CheckResult(
            "mx", "fail", f"{domain} publishes a null MX (RFC 7505): it accepts no mail, so bounces are lost",
            f"replace the null MX by a real one if {domain} is used as envelope sender; {SOFTBANK_NOTE}", data,
        )
    dead, unknown, aliases = [], [], []
    for _pref, host in mxs:
        if len(unknown) >= MAX_FAILED_LOOKUPS:
            # the servers are not answering: asking for every host costs doctor.timeout each
            unknown.append(f"{host}: not asked after {MAX_FAILED_LOOKUPS} failed lookups")
            continue
        a = lookup(res, host, "A")
        aaaa = a if a.ok or a.status == "error" else lookup(res, host, "AAAA")
        if a.ok or aaaa.ok:
            alias = (a if a.ok else aaaa).alias_of
            if alias:
                aliases.append(f"{host} is an alias (CNAME) of {alias}")
            continue
        errors = [x.error for x in (a, aaaa) if x.status == "error"]
        if errors:
            unknown.append(f"{host}: {errors[0]}")
        else:
            dead.append(host)
    listing = ", ".join(f"{p} {h}" for p, h in mxs)
    if unknown and len(dead) + len(unknown) == len(mxs):
        # no host known to work, and a lookup failed: a broken resolver is no verdict on the domain
        data["unknown"] = unknown
        return CheckResult("mx", "warn", f"MX {listing}: could not look up the address of "
                           f"{'; '.join(unknown)}" + (f"; {', '.join(dead)} has no address" if dead else ""),
                           "check the resolver and the MX hosts' name servers, then run again", data)
    if len(dead) == len(mxs):
        return CheckResult("mx", "fail", f"MX {listing}: no MX host has an address",
                           f"give {', '.join(dead)} A/AAAA records (an MX must name a host, not a CNAME or IP); "
                           f"{SOFTBANK_NOTE}", data)
    if dead or unknown or aliases:
        found = ([f"{', '.join(dead)} has no address"] if dead else []) + \
            ([f"could not look up {'; '.join(unknown)}"] if unknown else []) + aliases
        fixes = (["fix or remove MX hosts that do not resolve"] if dead else []) + \
            (["check the resolver and the MX hosts' name servers, then run again"] if unknown else []) + \
            (["point the MX at the host name itself, not at an alias (RFC 2181 10.3, RFC 5321 5.1: an MX "
              "must not name a CNAME; some MTAs refuse or mis-route the mail)"] if aliases else [])
        if aliases:
            data["aliases"] = aliases
        return CheckResult("mx", "warn", f"MX {listing}: {'; '.join(found)}", "; ".join(fixes), data)
    return CheckResult("mx", "pass", f"MX {listing}", data=data)


# ------------------------------------------------------------------ DMARC and DKIM
def parse_tags(record: str) -> dict[str, str]:
    """`k=v; k=v` tag lists (DMARC, DKIM). Raises ValueError on a malformed or repeated tag."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ValueError(f"tag {part!r} has no '='")
        k, v = part.split("=", 1)
        k = k.strip().lower()
        if not re.fullmatch(r"[a-z][a-z0-9_]*", k):
            raise ValueError(f"bad tag name {k!r}")
        if k in tags:
            raise ValueError(f"tag {k!r} appears twice")
        tags[k] = v.strip()
    return tags


def check_dmarc(res, domain: str) -> CheckResult:
    """_dmarc.<domain>, walking up to parent domains like DMARCbis' tree walk."""
    labels = domain.split(".")
    for i in range(0, max(1, len(labels) - 1)):
        at = ".".join(labels[i:])
        ans = lookup(res, f"_dmarc.{at}", "TXT")
        if ans.status == "error":
            return CheckResult("dmarc", "warn", f"could not look up _dmarc.{at}: {ans.error}",
                               "check the resolver, then run again")
        recs = [t for t in ans.texts() if t.strip().lower().startswith("v=dmarc1")]
        if recs:
            result = _judge_dmarc(domain, at, recs)
            if result.status == "pass":
                result = _check_report_authorisation(res, at, result)
            return result
    return CheckResult(
        "dmarc", "fail", f"no DMARC record at _dmarc.{domain}",
        f'publish TXT at _dmarc.{domain}: "v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}" '
        "(start with p=none, move to quarantine/reject once reports show SPF/DKIM aligned); "
        "Gmail and Yahoo require DMARC from bulk senders",
    )


def _judge_dmarc(domain: str, at: str, recs: list[str]) -> CheckResult:
    where = f"_dmarc.{at}" + ("" if at == domain else f" (inherited by {domain})")
    if len(recs) > 1:
        return CheckResult("dmarc", "fail", f"{where} has {len(recs)} DMARC records: receivers ignore all of them",
                           "keep exactly one v=DMARC1 TXT record", {"records": recs})
    record = recs[0]
    try:
        tags = parse_tags(record)
        if tags.get("v") != "DMARC1" or next(iter(tags)) != "v":
            raise ValueError("must start with v=DMARC1")
        if tags.get("p") is None:
            raise ValueError("the p= tag (policy) is missing")
        # an invalid p= or sp= voids the record's policy for every receiver (RFC 7489 6.6.3: act
        # as p=none at best), whichever of the two applies to this domain
        for tag in ("p", "sp"):
            if tag in tags and tags[tag].lower() not in ("none", "quarantine", "reject"):
                raise ValueError(f"{tag}={tags[tag]!r} is not none, quarantine or reject "
                                 "(receivers then apply p=none at best)")
        policy = tags.get("sp", tags["p"]) if at != domain else tags["p"]
        if "pct" in tags and not (tags["pct"].isdigit() and 0 <= int(tags["pct"]) <= 100):
            raise ValueError(f"pct={tags['pct']!r} is not 0-100")
        for uri in filter(None, (u.strip() for u in tags.get("rua", "").split(","))):
            if not uri.lower().startswith("mailto:"):
                raise ValueError(f"rua URI {uri!r} is not mailto:")
    except (ValueError, StopIteration) as exc:
        return CheckResult("dmarc", "fail", f"{where}: {record!r} does not parse: {exc}",
                           f'fix it, e.g. "v=DMARC1; p=none; rua=mailto:dmarc-reports@{at}"', {"record": record})
    data = {"record": record, "policy": policy.lower(), "found_at": f"_dmarc.{at}"}
    detail = f"{where}: p={policy.lower()}"
    if "rua" not in tags:
        return CheckResult("dmarc", "warn", detail + ", no rua= (you get no aggregate reports)",
                           f"add rua=mailto:dmarc-reports@{at} to see who sends as your domain", data)
    note = " (monitoring only)" if policy.lower() == "none" else ""
    return CheckResult("dmarc", "pass", detail + note, data=data)


# second-level labels under which unrelated organisations register (example.co.jp, example.com.au)
_SHARED_SECOND_LEVEL = {"co", "ne", "or", "ac", "ad", "ed", "go", "gr", "lg", "com", "net", "org", "gov", "edu"}


def _same_organisation(a: str, b: str) -> bool:
    """A cautious stand-in for the public-suffix test (no list here): one name under the other, or
    the same last three labels, or the same last two unless the second is a shared one (co.jp)."""
    if a == b or a.endswith("." + b) or b.endswith("." + a):
        return True
    la, lb = a.split("."), b.split(".")
    if len(la) >= 3 and la[-3:] == lb[-3:]:
        return True
    return len(la) >= 2 and la[-2:] == lb[-2:] and la[-2] not in _SHARED_SECOND_LEVEL


def _check_report_authorisation(res, at: str, result: CheckResult) -> CheckResult:
    """RFC 7489 7.1: a receiver sends aggregate reports to a mailbox of another organisation only if
    that organisation publishes `<at>._report._dmarc.<its domain>` (v=DMARC1); without it, rua= to a
    reporting service is silently ignored."""
    record = result.data["record"]
    uris = [u.strip() for u in parse_tags(record).get("rua", "").split(",") if u.strip()]
    missing, unknown = [], []
    for uri in uris:
        target = uri.split(":", 1)[1].split("!", 1)[0].rsplit("@", 1)[-1].strip().rstrip(".").lower()
        if not target or _same_organisation(target, at):
            continue
        name = f"{at}._report._dmarc.{target}"
        ans = lookup(res, name, "TXT")
        if ans.status == "error":
            unknown.append(f"{name}: {ans.error}")
        elif not any(t.strip().lower().startswith("v=dmarc1") for t in ans.texts()):
            missing.append(name)
    data = {**result.data, "rua_unauthorised": missing}
    if missing:
        return CheckResult(
            "dmarc", "warn", result.detail + f"; rua= names another organisation that does not accept "
            f"reports for {at} (no v=DMARC1 at {', '.join(missing)}): receivers send it no reports",
            f"ask the report receiver to publish TXT \"v=DMARC1\" at {missing[0]} (RFC 7489 7.1), or "
            f"send the reports to a mailbox under {at}", data)
    if unknown:
        return CheckResult("dmarc", "warn", result.detail + f"; could not check the report address's "
                           f"authorisation ({'; '.join(unknown)})", "check the resolver, then run again", data)
    return result


def check_dkim(res, domain: str, selector: str | None) -> CheckResult:
    if not selector:
        return CheckResult(
            "dkim", "warn", "not checked: no DKIM selector given",
            "pass --dkim-selector S (the s= tag of your DKIM-Signature header) to check the key",
        )
    name = f"{selector}._domainkey.{domain}"
    ans = lookup(res, name, "TXT")
    if ans.status == "error":
        return CheckResult("dkim", "warn", f"could not look up {name}: {ans.error}", "check the resolver, then run again")
    recs = [t for t in ans.texts() if "p=" in t]
    if not recs:
        return CheckResult(
            "dkim", "fail", f"no DKIM key at {name} ({ans.describe() if not ans.ok else 'TXT without p='})",
            f"publish the public key your MTA signs with as TXT at {name} "
            '("v=DKIM1; k=rsa; p=<base64>"), or check the selector name',
        )
    record = recs[0]
    try:
        tags = parse_tags(record)
        if "v" in tags and (tags["v"] != "DKIM1" or next(iter(tags)) != "v"):
            raise ValueError("v= must be DKIM1 and come first")
        key_type = tags.get("k", "rsa").lower()
        if "p" not in tags:
            raise ValueError("no p= tag")
        tags["p"] = re.sub(r"\s+", "", tags["p"])  # long keys are often split with spaces
        if not tags["p"]:
            return CheckResult("dkim", "fail", f"{name}: the key is revoked (empty p=)",
                               "publish the current public key under this selector, or sign with the new selector")
        key = base64.b64decode(tags["p"], validate=True)
    except (ValueError, binascii.Error, StopIteration) as exc:
        return CheckResult("dkim", "fail", f"{name}: {record[:80]!r} does not parse: {exc}",
                           "re-publish the TXT record your DKIM tool generated, in one piece", {"record": record})
    data = {"selector": selector, "key_type": key_type}
    verdict = _judge_key(name, key_type, key, data)
    if verdict.status == "fail":
        return verdict
    # tags that make a sound key useless to verifiers (RFC 6376 3.6.1, RFC 8301)
    hashes = [h.strip().lower() for h in tags.get("h", "sha256").split(":") if h.strip()]
    services = [x.strip().lower() for x in tags.get("s", "*").split(":") if x.strip()]
    flags = [f.strip().lower() for f in tags.get("t", "").split(":") if f.strip()]
    if "sha256" not in hashes:
        return CheckResult("dkim", "fail", f"{name}: h={tags['h']} allows no sha256 signatures (RFC 8301: "
                           "verifiers must not accept sha1), so no signature verifies",
                           "drop the h= tag (or make it h=sha256) and sign with rsa-sha256", {**data, "h": hashes})
    if "*" not in services and "email" not in services:
        return CheckResult("dkim", "fail", f"{name}: s={tags['s']} does not allow the key for email",
                           "drop the s= tag (or make it s=email)", {**data, "s": services})
    if "y" in flags:
        return CheckResult("dkim", "warn", verdict.detail + "; t=y: testing mode, receivers may treat signed "
                           "mail as unsigned", "remove t=y once signing works (check a received message's "
                           "Authentication-Results: dkim=pass)", {**data, "t": flags})
    return verdict


def _judge_key(name: str, key_type: str, key: bytes, data: dict) -> CheckResult:
    if key_type == "rsa":
        bits = rsa_key_bits(key)
        data["bits"] = bits
        if bits is None:
            return CheckResult("dkim", "fail", f"{name}: p= is not an RSA public key",
                               "re-publish the public key your DKIM tool generated", data)
        if bits < 1024:
            return CheckResult("dkim", "fail", f"{name}: RSA key of {bits} bits (receivers ignore keys under 1024)",
                               "generate a 2048-bit key and publish it under a new selector", data)
        if bits < 2048:
            return CheckResult("dkim", "warn", f"{name}: RSA key of {bits} bits",
                               "move to a 2048-bit key (new selector) when you next rotate", data)
        return CheckResult("dkim", "pass", f"{name}: RSA {bits}-bit key", data=data)
    if key_type == "ed25519":
        ok = len(key) == 32
        return CheckResult("dkim", "pass" if ok else "fail", f"{name}: ed25519 key" + ("" if ok else " of wrong length"),
                           "" if ok else "re-publish the 32-byte ed25519 public key", data)
    return CheckResult("dkim", "warn", f"{name}: unknown key type k={key_type}",
                       "use k=rsa (2048 bits): every receiver supports it", data)


def rsa_key_bits(der: bytes) -> int | None:
    """Modulus size of a DER SubjectPublicKeyInfo (or bare RSAPublicKey); None if it is neither."""

    def read(buf: bytes, pos: int) -> tuple[int, int, int]:
        tag, length = buf[pos], buf[pos + 1]
        pos += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(buf[pos:pos + n], "big")
            pos += n
        return tag, pos, length

    try:
        tag, pos, _ = read(der, 0)
        if tag != 0x30:
            return None
        tag, inner, length = read(der, pos)
        if tag == 0x30:  # SubjectPublicKeyInfo: AlgorithmIdentifier, then BIT STRING
            tag, bpos, _ = read(der, inner + length)
            if tag != 0x03:
                return None
            tag, pos, _ = read(der, bpos + 1)  # skip the unused-bits byte
            if tag != 0x30:
                return None
            tag, mpos, mlen = read(der, pos)
        else:
            tag, mpos, mlen = tag, inner, length
        if tag != 0x02:
            return None
        modulus = der[mpos:mpos + mlen].lstrip(b"\x00")
        return int.from_bytes(modulus, "big").bit_length()
    except IndexError:
        return None


# ------------------------------------------------------------------ block lists
RFC5782_IP_TEST = ("127.0.0.2", "127.0.0.1")  # must be listed, must not be listed (RFC 5782 5)
RFC5782_IP6_TEST = ("::ffff:127.0.0.2", "::ffff:127.0.0.1")  # the same for lists of IPv6 addresses
RFC5782_DOMAIN_TEST = ("test", "invalid")


def dnsbl_query_name(ip: str, zone: str) -> str:
    addr = ipaddress.ip_address(ip)
    if addr.version == 4:
        return ".".join(reversed(str(addr).split("."))) + "." + zone
    return addr.reverse_pointer.removesuffix(".ip6.arpa") + "." + zone


def _refused_codes(codes: list[str]) -> list[str]:
    return [c for c in codes if c.startswith("127.255.255.") or (c.startswith("127.0.1.") and c.endswith(".255"))]


def _list_health(res, zone: str, check: str, positive: str, negative: str) -> CheckResult | None:
    """None when `zone` answers its test entries as RFC 5782 5 says (the test entry listed, the
    negative one not); otherwise the WARN that says why its answers mean nothing here."""
    ans = lookup(res, positive, "A")
    data = {"zone": zone, "test_entry": positive}
    if ans.status == "error":
        return CheckResult(check, "warn", f"could not query {zone}: {ans.error}",
                           f"check that {zone} is still a live list and that the resolver can reach it", data)
    unusable_fix = (
        f"query through a recursive resolver of your own (doctor.resolver): a resolver that answers "
        f"NXDOMAIN for every name (filtering, captive or misconfigured) hides every listing; if {zone} "
        f"itself is dead or misspelt, remove it from doctor.dnsbls / doctor.domain_blocklists")
    if not ans.ok:
        return CheckResult(
            check, "warn",
            f"{zone} is not usable through this resolver: its test entry {positive} is not listed "
            f"({ans.describe()}), so 'not listed' would mean nothing",
            unusable_fix, data)
    codes = sorted(ans.addresses())
    data["codes"] = codes
    refused = _refused_codes(codes)
    if refused:
        return CheckResult(
            check, "warn", f"{zone} refused the query (answer {', '.join(refused)} for its test entry)",
            "block lists such as Spamhaus refuse queries that come through public/open resolvers or "
            "exceed their free limits: query through your own resolver or a Data Query Service key", data)
    if any(not c.startswith("127.") for c in codes):
        return CheckResult(check, "warn", f"{zone} answered {', '.join(codes)} for its test entry, outside 127.0.0.0/8",
                           f"{zone} may be defunct or hijacked and answering everything: remove it from the list", data)
    neg = lookup(res, negative, "A")
    data["negative_entry"] = negative
    if neg.status == "error":
        # without this answer a list that lists everything cannot be told from a real listing
        return CheckResult(check, "warn", f"could not query {zone}: its never-listed entry {negative} "
                           f"did not answer ({neg.error}), so neither 'listed' nor 'not listed' can be trusted",
                           f"check that {zone} is still a live list and that the resolver can reach it", data)
    if neg.ok:
        return CheckResult(
            check, "warn",
            f"{zone} lists {negative}, which RFC 5782 says it must never list: it answers 'listed' for "
            "everything, so its answers mean nothing here",
            f"the list is defunct or the resolver rewrites answers: {unusable_fix}", data)
    return None


def _check_listing(res, name: str, zone: str, what: str, check: str, tests: tuple[str, str]) -> CheckResult:
    unusable = _list_health(res, zone, check, *tests)
    if unusable is not None:
        return unusable
    ans = lookup(res, name, "A")
    if ans.status in ("nxdomain", "nodata"):
        return CheckResult(check, "pass", f"{what} not listed on {zone} (the list answers its test entry)",
                           data={"zone": zone, "test_entry": tests[0]})
    if ans.status == "error":
        return CheckResult(check, "warn", f"could not query {zone}: {ans.error}",
                           f"check that {zone} is still a live list and that the resolver can reach it")
    codes = sorted(ans.addresses())
    data = {"zone": zone, "codes": codes}
    refused = _refused_codes(codes)
    if refused:
        return CheckResult(
            check, "warn", f"{zone} refused the query (answer {', '.join(refused)})",
            "block lists such as Spamhaus refuse queries that come through public/open resolvers or "
            "exceed their free limits: query through your own resolver or a Data Query Service key",
            data,
        )
    if any(not c.startswith("127.") for c in codes):
        return CheckResult(check, "warn", f"{zone} answered {', '.join(codes)}, outside 127.0.0.0/8",
                           f"{zone} may be defunct and answering everything: remove it from the list", data)
    txt = lookup(res, name, "TXT")
    reason = "; ".join(txt.texts()) if txt.ok else ""
    data["reason"] = reason
    return CheckResult(
        check, "fail", f"{what} is LISTED on {zone} ({', '.join(codes)})" + (f": {reason}" if reason else ""),
        f"find and stop the cause (compromised account, purchased list, high bounce rate), then request "
        f"removal on {zone}'s lookup page" + (f" ({reason})" if reason and "http" in reason else ""),
        data,
    )


def check_dnsbl(res, ip: str, zone: str, test_entry: str | None = None) -> CheckResult:
    """`ip` on the IP list `zone`, trusted only after the list answers its test entries
    (`test_entry`: an IP, default RFC 5782's 127.0.0.2; 127.0.0.1 must not be listed)."""
    zone = zone.strip().rstrip(".")
    if ipaddress.ip_address(ip).version == 6:
        # a list answers IPv6 questions only if it carries the IPv6 test entry (RFC 5782 5): an
        # IPv4-only list (most of them) answers NXDOMAIN for every IPv6 address, which means nothing
        positive, negative = (dnsbl_query_name(t, zone) for t in RFC5782_IP6_TEST)
    else:
        positive = dnsbl_query_name(test_entry or RFC5782_IP_TEST[0], zone)
        negative = dnsbl_query_name(RFC5782_IP_TEST[1], zone)
    return _check_listing(res, dnsbl_query_name(ip, zone), zone, ip, f"dnsbl:{zone}", (positive, negative))


def check_domain_list(res, domain: str, zone: str, test_entry: str | None = None) -> CheckResult:
    """`domain` on the domain list `zone`, after its test entries (RFC 5782: TEST listed, INVALID not)."""
    zone = zone.strip().rstrip(".")
    tests = (f"{test_entry or RFC5782_DOMAIN_TEST[0]}.{zone}", f"{RFC5782_DOMAIN_TEST[1]}.{zone}")
    return _check_listing(res, f"{domain}.{zone}", zone, domain, f"domain-bl:{zone}", tests)


# ------------------------------------------------------------------ all together
def check_setup(
    domain: str,
    ip: str,
    settings: DoctorSettings | None = None,
    *,
    helo: str | None = None,
    dkim_selector: str | None = None,
) -> list[CheckResult]:
    """Run every setup check for sending as `domain` from `ip`; returns results in a fixed order.

    `settings` (cfg.doctor; defaults when None) names the resolver ("" = the system resolver),
    its port, the per-query timeout, the probe's time limit and the block lists.
    Raises InputError for an invalid domain/IP/HELO/selector, ConfigError for an unusable
    resolver setting or zone name, ResolverUnusable when the resolver does not answer the probe.
    """
    settings = settings or DoctorSettings()
    domain = normalise_domain(domain)
    ip = normalise_ip(ip)
    helo = normalise_domain(helo, "HELO name") if helo else None
    dkim_selector = normalise_selector(dkim_selector) if dkim_selector else None
    dnsbls = [normalise_zone(z, "dnsbls") for z in settings.dnsbls]
    domain_lists = [normalise_zone(z, "domain_blocklists") for z in settings.domain_blocklists]
    test_entries = {normalise_zone(z, "blocklist_test_entries"): str(v).strip().rstrip(".")
                    for z, v in settings.blocklist_test_entries.items()}
    for zone in dnsbls:
        if zone in test_entries:
            try:
                ipaddress.IPv4Address(test_entries[zone])
            except ValueError:
                raise ConfigError(f"doctor.blocklist_test_entries: {zone} is an IP list (doctor.dnsbls), "
                                  f"so its test entry must be an IPv4 address, not {test_entries[zone]!r}") from None
    for zone in domain_lists:
        if zone in test_entries and test_entries[zone].lower() != "test":
            test_entries[zone] = normalise_zone(test_entries[zone], "blocklist_test_entries")
    timeout = settings.timeout
    res = make_resolver(settings.resolver or "", settings.resolver_port, timeout)
    probe_budget = settings.probe_timeout
    if isinstance(probe_budget, bool) or not isinstance(probe_budget, (int, float)) or not 0 < probe_budget <= 30:
        raise ConfigError(f"doctor.probe_timeout must be a number of seconds from 0.1 to 30 (got {probe_budget!r})")
    probe(res, domain, float(probe_budget), system=not settings.resolver)
    set_run_budget(res, RUN_BUDGET_TIMEOUTS * float(timeout))

    ip_result = check_ip(ip)
    ip_usable = ip_result.status != "fail"
    results = [ip_result]
    ptr_names: list[str] = []
    if ip_usable:
        ptr_result, ptr_names = check_ptr(res, ip)
        results.append(ptr_result)
        if helo:
            results.append(check_helo(res, helo, ip, ptr_names))
    results.append(check_mx(res, domain))
    results.extend(check_spf(res, domain, ip, helo, timeout, evaluate=ip_usable))
    results.append(check_dmarc(res, domain))
    results.append(check_dkim(res, domain, dkim_selector))
    if ip_usable:
        for zone in dnsbls:
            results.append(check_dnsbl(res, ip, zone, test_entries.get(zone)))
    for zone in domain_lists:
        results.append(check_domain_list(res, domain, zone, test_entries.get(zone)))
    return results
