"""SPF for the sending domain: one valid record, the 10-lookup budget, and whether it authorises IP.

Reads DNS through the doctor's resolver (resolver.py); writes nothing. Called by dns_checks.
Evaluation is pyspf's (RFC 7208, pointed at our resolver); the lookup count is our own static walk
of the record tree, because a receiver that meets the limit gives permerror whatever the order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import spf

from .resolver import Answer, lookup, pyspf_resolver
from .results import CheckResult

MAX_LOOKUPS = 10  # RFC 7208 4.6.4
_DNS_MECHANISMS = {"include", "a", "mx", "ptr", "exists"}
_SPF_START = re.compile(r"^v=spf1(\s|$)", re.IGNORECASE)
_TERM = re.compile(r"^([+\-~?]?)([a-z][a-z0-9_.\-]*)(?:([:=/])(.*))?$", re.IGNORECASE)

CARRIER_NOTE = (
    "docomo and au handsets' なりすまし (spoofing) filters drop or refuse mail that fails SPF, "
    "often without a bounce"
)


def spf_records(res, domain: str) -> tuple[Answer, list[str]]:
    ans = lookup(res, domain, "TXT")
    return ans, [t for t in ans.texts() if _SPF_START.match(t)] if ans.ok else []


@dataclass
class LookupWalk:
    """Static count of DNS-querying terms (include, a, mx, ptr, exists, redirect), recursively."""

    count: int = 0
    tree: list[str] = field(default_factory=list)  # "domain: N (record)" lines, indented by depth
    problems: list[str] = field(default_factory=list)
    uses_ptr: bool = False
    macros: bool = False
    stopped: bool = False  # counting stopped once over the limit: the verdict cannot change
    records: dict = field(default_factory=dict)  # domain (lower case) -> its one SPF record, as fetched
    includes: list = field(default_factory=list)  # include: targets met, in order
    voids: list = field(default_factory=list)  # "a:name (NXDOMAIN)": a/mx/exists lookups with no answer
    void_error: str = ""  # the lookup error that stopped the void-lookup count
    fetch_errors: int = 0  # include/redirect records that could not be fetched; at 2 the rest is not asked


MAX_VOID_LOOKUPS = 2  # RFC 7208 4.6.4


def count_lookups(res, domain: str, record: str, walk: LookupWalk | None = None,
                  depth: int = 0, seen: frozenset = frozenset(), address_type: str = "A") -> LookupWalk:
    """Count the record tree's DNS-querying terms; the a/mx/exists terms within the first 10 are
    also looked up (`address_type`: A or AAAA, the sender's family) to find void lookups."""
    walk = walk or LookupWalk()
    seen = seen | {domain.lower().rstrip(".")}
    walk.records.setdefault(domain.lower().rstrip("."), record)
    here = 0
    children: list[tuple[str, str]] = []
    for term in record.split()[1:]:
        m = _TERM.match(term)
        if not m:
            continue  # pyspf reports syntax errors; counting goes on
        name, sep, value = m.group(2).lower(), m.group(3), m.group(4) or ""
        if sep == "=" and name != "redirect":
            continue  # exp= and unknown modifiers cost nothing until a failure
        if name not in _DNS_MECHANISMS and name != "redirect":
            continue
        here += 1
        if name == "ptr":
            walk.uses_ptr = True
        if name in ("a", "mx", "exists") and walk.count + here <= MAX_LOOKUPS and not walk.void_error:
            target = value.split("/")[0] if sep == ":" else domain
            if target and "%" not in target:
                ans = lookup(res, target, "MX" if name == "mx" else ("A" if name == "exists" else address_type))
                if ans.status in ("nxdomain", "nodata"):
                    walk.voids.append(f"{name}:{target} ({ans.describe()})")
                elif ans.status == "error":
                    # one failed lookup is enough: a silent server would cost doctor.timeout per term
                    walk.void_error = ans.error
                    walk.problems.append(f"void lookups not all checked: {ans.error}")
        if name in ("include", "redirect"):
            if "%" in value:
                walk.macros = True
                walk.problems.append(f"{name}:{value} uses macros; its lookups are not counted")
            elif value:
                children.append((name, value))
                if name == "include":
                    walk.includes.append(value.lower().rstrip("."))
    walk.count += here
    walk.tree.append(f"{'  ' * depth}{domain}: {here}")
    for kind, target in children:
        if walk.count > MAX_LOOKUPS:
            # receivers stop here too (permerror); walking on would fetch a tree that may grow
            # exponentially (includes shared by several branches are fetched once per path)
            walk.stopped = True
            break
        key = target.lower().rstrip(".")
        if key in seen:
            walk.problems.append(f"{kind}:{target} loops back to a domain already included")
            continue
        if depth >= 10:
            walk.problems.append(f"{kind}:{target} nests too deep")
            continue
        if walk.fetch_errors >= 2:
            walk.problems.append(f"{kind}:{target} not fetched after 2 failed lookups")
            continue
        ans, recs = spf_records(res, target)
        if ans.status == "error":
            walk.fetch_errors += 1
            walk.problems.append(f"{kind}:{target} could not be fetched: {ans.error}")
        elif not recs:
            walk.problems.append(f"{kind}:{target} has no SPF record (permerror at receivers)")
        elif len(recs) > 1:
            walk.problems.append(f"{kind}:{target} has {len(recs)} SPF records (permerror at receivers)")
        else:
            count_lookups(res, target, recs[0], walk, depth + 1, seen, address_type)
    return walk


def ip_term(ip: str) -> str:
    return f"ip6:{ip}" if ":" in ip else f"ip4:{ip}"


def _all_qualifier(record: str) -> str | None:
    for term in record.split()[1:]:
        m = _TERM.match(term)
        if m and m.group(2).lower() == "all" and not m.group(3):
            return m.group(1) or "+"
    return None


def _redirect(record: str) -> str | None:
    for term in record.split()[1:]:
        m = _TERM.match(term)
        if m and m.group(2).lower() == "redirect" and m.group(3) == "=" and m.group(4):
            return m.group(4).lower().rstrip(".")
    return None


def effective_all(record: str, records: dict) -> tuple[str | None, list[str]]:
    """The qualifier of the `all` that ends this record's evaluation, following redirect= (RFC 7208
    6.1: ignored when the record has an `all`) through the records the walk fetched; and the
    redirect targets passed on the way. "" when the chain ends in a record with neither `all` nor
    redirect= (RFC 7208 4.7: the result is then neutral, as with ?all); None when it cannot be
    told (a redirect target not fetched, a loop)."""
    chain: list[str] = []
    for _ in range(MAX_LOOKUPS + 1):
        qualifier = _all_qualifier(record)
        if qualifier is not None:
            return qualifier, chain
        target = _redirect(record)
        if not target:
            return "", chain
        if target in chain or target not in records:
            return None, chain
        chain.append(target)
        record = records[target]
    return None, chain


def check_spf(res, domain: str, ip: str, helo: str | None, timeout: float,
              evaluate: bool = True) -> list[CheckResult]:
    """Results `spf` (one valid record), `spf-lookups` (budget) and `spf-ip` (pyspf's verdict;
    left out when `evaluate` is false: the IP is not one receivers could see)."""
    ans, recs = spf_records(res, domain)
    if ans.status == "error":
        return [CheckResult("spf", "warn", f"could not fetch TXT records of {domain}: {ans.error}",
                            "check the resolver and the domain's name servers, then run again")]
    if not recs:
        return [CheckResult(
            "spf", "fail", f"{domain} publishes no SPF record",
            f'publish one TXT record at {domain}: "v=spf1 {ip_term(ip)} -all" (or add {ip_term(ip)} to '
            f"what your provider gives you); {CARRIER_NOTE}",
        )]
    if len(recs) > 1:
        return [CheckResult(
            "spf", "fail", f"{domain} publishes {len(recs)} SPF records (receivers return permerror)",
            f"merge them into one TXT record starting with v=spf1; {CARRIER_NOTE}",
            {"records": recs},
        )]
    record = recs[0]
    results = []
    walk = count_lookups(res, domain, record, address_type="AAAA" if ":" in ip else "A")
    qualifier, chain = effective_all(record, walk.records)
    # an include whose record ends in +all matches every IP: the including record passes them all
    open_includes = [t for t in dict.fromkeys(walk.includes)
                     if t in walk.records and effective_all(walk.records[t], walk.records)[0] == "+"]
    if qualifier in ("+", "?", "") or open_includes:
        found = []
        through = f" (through redirect={' -> '.join(chain)})" if chain else ""
        if qualifier in ("+", "?"):
            found.append(f"ends in {qualifier}all{through}")
        elif qualifier == "":
            found.append(f"has no all term{through}, so every other IP gets neutral, as with ?all (RFC 7208 4.7)")
        if open_includes:
            found.append(f"includes {', '.join(open_includes)}, which end{'s' if len(open_includes) == 1 else ''} "
                         "in +all and so match every IP")
        results.append(CheckResult(
            "spf", "warn", f"{record!r} {' and '.join(found)}: it does not protect the domain",
            f"end the record with -all (or ~all) after listing your senders, e.g. {ip_term(ip)}"
            + ("; drop or fix the includes that end in +all" if open_includes else ""),
            {"record": record, "all": qualifier, "redirects": chain, "open_includes": open_includes},
        ))
    else:
        results.append(CheckResult("spf", "pass", record, data={"record": record}))

    lookup_data = {"lookups": walk.count, "limit": MAX_LOOKUPS, "tree": walk.tree, "problems": walk.problems,
                   "stopped": walk.stopped, "voids": walk.voids}
    voids = (f"; {len(walk.voids)} void lookup{'' if len(walk.voids) == 1 else 's'} (no answer): "
             + ", ".join(walk.voids)) if walk.voids else ""
    extra = ("; " + "; ".join(walk.problems)) if walk.problems else ""
    if walk.count > MAX_LOOKUPS:
        counted = f"at least {walk.count} DNS lookups (counting stopped)" if walk.stopped else f"{walk.count} DNS lookups"
        results.append(CheckResult(
            "spf-lookups", "fail",
            f"{counted}, over the limit of {MAX_LOOKUPS} (receivers return permerror){extra}",
            "flatten: replace include:/a/mx terms by the ip4:/ip6: ranges they stand for, or drop "
            f"senders you no longer use; {CARRIER_NOTE}",
            lookup_data,
        ))
    elif len(walk.voids) > MAX_VOID_LOOKUPS:
        results.append(CheckResult(
            "spf-lookups", "fail",
            f"{walk.count} of {MAX_LOOKUPS} DNS lookups, but over the limit of {MAX_VOID_LOOKUPS} void lookups "
            f"(receivers that get that far return permerror){voids}{extra}",
            f"remove the terms that name hosts without records, or give those hosts records; {CARRIER_NOTE}",
            lookup_data,
        ))
    elif walk.problems or walk.voids:
        results.append(CheckResult(
            "spf-lookups", "warn", f"{walk.count} of {MAX_LOOKUPS} DNS lookups{voids}{extra}",
            "fix the included records listed above" if walk.problems else
            f"remove the terms that name hosts without records (RFC 7208 4.6.4: more than {MAX_VOID_LOOKUPS} "
            "void lookups is permerror)", lookup_data,
        ))
    elif walk.uses_ptr:
        results.append(CheckResult(
            "spf-lookups", "warn", f"{walk.count} of {MAX_LOOKUPS} DNS lookups; uses the ptr mechanism",
            "replace ptr with ip4:/ip6: or a: terms (RFC 7208 5.5: ptr SHOULD NOT be used)", lookup_data,
        ))
    else:
        results.append(CheckResult("spf-lookups", "pass", f"{walk.count} of {MAX_LOOKUPS} DNS lookups",
                                   data=lookup_data))

    if not evaluate:
        return results
    with pyspf_resolver(res):
        q = spf.query(i=ip, s=f"postmaster@{domain}", h=helo or domain, timeout=timeout)
        verdict, _code, explanation = q.check()
    data = {"result": verdict, "explanation": explanation, "mechanism": getattr(q, "mechanism", None)}
    if verdict == "pass":
        results.append(CheckResult("spf-ip", "pass", f"{ip} is authorised (pass via {q.mechanism})", data=data))
    elif verdict == "temperror":
        results.append(CheckResult("spf-ip", "warn", f"SPF evaluation hit a DNS error: {explanation}",
                                   "check the domain's name servers answer for every included name", data))
    else:
        why = {
            "fail": "SPF fail: the record says this IP must not send for the domain",
            "softfail": "SPF softfail: the record does not list this IP (~all)",
            "neutral": "SPF neutral: the record does not list this IP",
            "none": "no SPF record was found during evaluation",
            "permerror": f"SPF permerror ({explanation})",
        }.get(verdict, f"SPF {verdict}: {explanation}")
        fix = (f"fix the record's error first; {CARRIER_NOTE}" if verdict == "permerror" else
               f"add {ip_term(ip)} (or the include: of your sending service) before the all term; {CARRIER_NOTE}")
        results.append(CheckResult("spf-ip", "fail", f"{ip}: {why}", fix, data))
    return results
