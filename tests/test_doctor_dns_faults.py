"""`doctor setup` against a programmable DNS server on 127.0.0.1 (tests/dnsstub.py): answers that
BIND cannot be made to give per name (SERVFAIL, REFUSED or silence for one name and type), and
record trees shaped to test one rule. A DNS error is never a verdict on the domain: it is a WARN
("could not look up"), never a PASS and never a FAIL.
"""

from __future__ import annotations

import dataclasses

import pytest

from dnsstub import StubDNS
from fixtures import CLI, alarm
from pipeline.core.config import DoctorSettings
from pipeline.preflight import check_setup

DOMAIN = "ex.test"
IP = "192.0.2.10"
SOA = ["ns.ex.test. hostmaster.ex.test. 1 60 60 600 60"]
GOOD = {
    (DOMAIN, "SOA"): SOA,
    (DOMAIN, "MX"): ["10 mx.ex.test."],
    (DOMAIN, "TXT"): ['"v=spf1 ip4:192.0.2.10 -all"'],
    ("mx.ex.test", "A"): ["192.0.2.10"],
    ("mail.ex.test", "A"): ["192.0.2.10"],
    ("10.2.0.192.in-addr.arpa", "PTR"): ["mail.ex.test."],
    ("_dmarc.ex.test", "TXT"): ['"v=DMARC1; p=reject; rua=mailto:dmarc@ex.test"'],
    ("2.0.0.127.bl.test", "A"): ["127.0.0.2"],
    ("2.0.0.127.bl.test", "TXT"): ['"test entry"'],
    # names that always exist (pipeline.preflight.resolver.KNOWN_NAMES): a resolver reaching the internet answers them
    ("a.root-servers.net", "A"): ["198.41.0.4"],
    ("a.gtld-servers.net", "A"): ["192.5.6.30"],
}


def run(records=None, behaviour=None, drop=(), *, domain=DOMAIN, ip=IP, helo="mail.ex.test", dnsbls=("bl.test",),
        stub_out=None):
    """check_setup against a stub serving GOOD updated by `records` (a None value removes a key)."""
    zone = dict(GOOD)
    for key, value in (records or {}).items():
        if value is None:
            zone.pop(key, None)
        else:
            zone[key] = value
    with StubDNS(zone, behaviour) as stub:
        settings = dataclasses.replace(DoctorSettings(), resolver="127.0.0.1", resolver_port=stub.port,
                                       timeout=1.0, probe_timeout=2.0, dnsbls=dnsbls, domain_blocklists=())
        results = {r.name: r for r in check_setup(domain, ip, settings, helo=helo)}
        if stub_out is not None:
            stub_out.append(stub)
        return results


def test_the_stub_serves_a_good_setup():
    r = run()
    assert {n: x.status for n, x in r.items()} == {
        "ip": "warn", "ptr": "pass", "helo": "pass", "mx": "pass", "spf": "pass", "spf-lookups": "pass",
        "spf-ip": "pass", "dmarc": "pass", "dkim": "warn", "dnsbl:bl.test": "pass"}


# ------------------------------------------------------------------ DNS errors are not verdicts
@pytest.mark.parametrize("how", ["SERVFAIL", "REFUSED", "DROP"])
def test_mx_host_address_lookup_error_is_not_a_dead_mx(how):
    mx = run(behaviour={("mx.ex.test", "*"): how})["mx"]
    assert mx.status == "warn", mx
    assert "could not look up" in mx.detail and "mx.ex.test" in mx.detail
    assert "no MX host has an address" not in mx.detail


def test_mx_host_without_address_still_fails():
    mx = run(records={("mx.ex.test", "A"): None, ("mx.ex.test", "TXT"): ['"no address here"']})["mx"]
    assert mx.status == "fail" and "no MX host has an address" in mx.detail


def test_one_mx_host_unknown_one_working_is_a_warning_naming_it():
    mx = run(records={(DOMAIN, "MX"): ["10 mx.ex.test.", "20 mx2.ex.test."]},
             behaviour={("mx2.ex.test", "*"): "SERVFAIL"})["mx"]
    assert mx.status == "warn" and "could not look up mx2.ex.test" in mx.detail


def test_no_mx_and_address_lookup_error_is_not_no_address():
    mx = run(records={(DOMAIN, "MX"): None}, behaviour={(DOMAIN, "A"): "SERVFAIL", (DOMAIN, "AAAA"): "SERVFAIL"})["mx"]
    assert mx.status == "warn", mx
    assert "could not be looked up" in mx.detail and "no MX and no A/AAAA" not in mx.detail


@pytest.mark.parametrize("how", ["SERVFAIL", "DROP"])
def test_ptr_name_lookup_error_is_not_a_forward_confirmation_failure(how):
    r = run(behaviour={("mail.ex.test", "A"): how})
    assert r["ptr"].status == "warn", r["ptr"]
    assert "could not look up" in r["ptr"].detail and "not forward-confirmed" not in r["ptr"].detail
    assert r["helo"].status == "warn" and "could not look up HELO name" in r["helo"].detail


def test_ptr_name_resolving_elsewhere_still_fails():
    ptr = run(records={("mail.ex.test", "A"): ["198.51.100.99"]})["ptr"]
    assert ptr.status == "fail" and "not forward-confirmed" in ptr.detail


# ------------------------------------------------------------------ block lists
@pytest.mark.parametrize("how", ["SERVFAIL", "DROP"])
@pytest.mark.parametrize("listed", [True, False])
def test_block_list_whose_never_listed_entry_does_not_answer_is_not_trusted(how, listed):
    # a list that lists everything would be caught by 127.0.0.1; unanswered, that proof is missing
    records = {("10.2.0.192.bl.test", "A"): ["127.0.0.2"]} if listed else {}
    r = run(records=records, behaviour={("1.0.0.127.bl.test", "*"): how})["dnsbl:bl.test"]
    assert r.status == "warn", r
    assert "could not query bl.test" in r.detail and "1.0.0.127.bl.test" in r.detail


@pytest.mark.parametrize("code", ["127.255.255.254", "127.255.255.252", "127.255.255.255"])
def test_spamhaus_error_codes_are_could_not_check(code):
    r = run(records={("10.2.0.192.bl.test", "A"): [code]})["dnsbl:bl.test"]
    assert r.status == "warn" and "refused" in r.detail and code in r.detail


@pytest.mark.parametrize("how", ["SERVFAIL", "REFUSED", "DROP"])
def test_block_list_query_error_is_not_not_listed(how):
    r = run(behaviour={("10.2.0.192.bl.test", "*"): how})["dnsbl:bl.test"]
    assert r.status == "warn" and "could not query bl.test" in r.detail


# ------------------------------------------------------------------ SPF
def _include_tree(levels: int, fanout: int) -> dict:
    """A record tree where every record includes `fanout` records of the next level (shared by
    every branch, no loop): receivers stop at 10 lookups; a walk per path fetches fanout**levels."""
    records = {}
    for level in range(levels):
        for j in range(fanout):
            name = f"l{level}x{j}.ex.test"
            terms = ("ip4:198.51.100.1" if level == levels - 1 else
                     " ".join(f"include:l{level + 1}x{k}.ex.test" for k in range(fanout)))
            records[(name, "TXT")] = [f'"v=spf1 {terms} -all"']
    records[(DOMAIN, "TXT")] = ['"v=spf1 ip4:192.0.2.10 include:l0x0.ex.test -all"']
    return records


def test_spf_lookup_count_stops_once_over_the_limit():
    stubs = []
    with alarm(60):  # before: 9,840 records fetched, one per path
        r = run(records=_include_tree(8, 3), stub_out=stubs)
    fetched = sum(n for (name, rdtype), n in stubs[0].asked.items() if rdtype == "TXT" and name.startswith("l"))
    assert fetched <= 10, fetched
    lookups = r["spf-lookups"]
    assert lookups.status == "fail" and "over the limit of 10" in lookups.detail
    assert lookups.data["lookups"] > 10 and lookups.data["stopped"] and "at least" in lookups.detail
    assert r["spf-ip"].status == "pass"  # ip4 comes first: receivers stop there for this IP


@pytest.mark.parametrize("top, extra, said", [
    ("v=spf1 +all", {}, "ends in +all"),
    ("v=spf1 ip4:192.0.2.10 ?all", {}, "ends in ?all"),
    ("v=spf1 redirect=_spf.ex.test", {("_spf.ex.test", "TXT"): ['"v=spf1 ip4:192.0.2.10 +all"']},
     "ends in +all (through redirect=_spf.ex.test)"),
    ("v=spf1 redirect=_a.ex.test", {("_a.ex.test", "TXT"): ['"v=spf1 redirect=_b.ex.test"'],
                                    ("_b.ex.test", "TXT"): ['"v=spf1 ip4:192.0.2.10 ?all"']},
     "ends in ?all (through redirect=_a.ex.test -> _b.ex.test)"),
    ("v=spf1 ip4:192.0.2.10 include:_open.ex.test -all", {("_open.ex.test", "TXT"): ['"v=spf1 a +all"']},
     "includes _open.ex.test, which ends in +all"),
    ("v=spf1 include:_r.ex.test -all", {("_r.ex.test", "TXT"): ['"v=spf1 redirect=_open.ex.test"'],
                                        ("_open.ex.test", "TXT"): ['"v=spf1 all"']},
     "includes _r.ex.test, which ends in +all"),
    ("v=spf1 ip4:192.0.2.10", {}, "has no all term, so every other IP gets neutral"),
    ("v=spf1 redirect=_spf.ex.test", {("_spf.ex.test", "TXT"): ['"v=spf1 ip4:192.0.2.10"']},
     "has no all term (through redirect=_spf.ex.test)"),
])
def test_spf_that_lets_every_ip_pass_is_a_warning_wherever_the_all_is(top, extra, said):
    spf_line = run(records={(DOMAIN, "TXT"): [f'"{top}"'], **extra})["spf"]
    assert spf_line.status == "warn", spf_line
    assert said in spf_line.detail and "does not protect the domain" in spf_line.detail


@pytest.mark.parametrize("top, extra", [
    ("v=spf1 redirect=_spf.ex.test", {("_spf.ex.test", "TXT"): ['"v=spf1 ip4:192.0.2.10 -all"']}),
    # an `all` in the record makes its redirect= count for nothing (RFC 7208 6.1)
    ("v=spf1 ip4:192.0.2.10 -all redirect=_open.ex.test", {("_open.ex.test", "TXT"): ['"v=spf1 +all"']}),
    # ?all in an include is a non-match there: evaluation goes on to -all
    ("v=spf1 include:_n.ex.test ip4:192.0.2.10 -all", {("_n.ex.test", "TXT"): ['"v=spf1 ip4:198.51.100.1 ?all"']}),
])
def test_spf_closed_through_redirect_or_includes_passes(top, extra):
    assert run(records={(DOMAIN, "TXT"): [f'"{top}"'], **extra})["spf"].status == "pass"


# ------------------------------------------------------------------ IPv6 senders on block lists
IP6 = "2001:db8::25"
IP6_ZONE = {
    ("5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "PTR"): ["mail.ex.test."],
    ("mail.ex.test", "AAAA"): [IP6],
    (DOMAIN, "TXT"): ['"v=spf1 ip6:2001:db8::/32 -all"'],
}
IP6_TEST_ENTRY = "2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test"
IP6_ENTRY = "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test"


def test_ipv4_only_list_is_not_a_pass_for_an_ipv6_sender():
    # bl.test carries 127.0.0.2 but no IPv6 entry at all: it cannot have listed 2001:db8::25
    r = run(ip=IP6, records=IP6_ZONE)["dnsbl:bl.test"]
    assert r.status == "warn", r
    assert "not usable" in r.detail and IP6_TEST_ENTRY in r.detail


def test_list_with_the_ipv6_test_entry_judges_an_ipv6_sender():
    zone = {**IP6_ZONE, (IP6_TEST_ENTRY, "A"): ["127.0.0.2"]}
    assert run(ip=IP6, records=zone)["dnsbl:bl.test"].status == "pass"
    listed = run(ip=IP6, records={**zone, (IP6_ENTRY, "A"): ["127.0.0.2"]})["dnsbl:bl.test"]
    assert listed.status == "fail" and "LISTED" in listed.detail


# ------------------------------------------------------------------ MX
def test_mx_naming_an_alias_is_a_warning():
    mx = run(records={(DOMAIN, "MX"): ["10 alias.ex.test."], ("alias.ex.test", "CNAME"): ["mx.ex.test."]})["mx"]
    assert mx.status == "warn", mx
    assert "alias.ex.test is an alias (CNAME) of mx.ex.test" in mx.detail and "RFC 2181" in mx.fix


def test_null_mx_fails():
    mx = run(records={(DOMAIN, "MX"): ["0 ."]})["mx"]
    assert mx.status == "fail" and "null MX" in mx.detail


# ------------------------------------------------------------------ DMARC
SUB = "news.ex.test"
SUB_ZONE = {(SUB, "SOA"): SOA, (SUB, "MX"): ["10 mx.ex.test."], (SUB, "TXT"): ['"v=spf1 ip4:192.0.2.10 -all"']}


@pytest.mark.parametrize("record, domain", [
    ("v=DMARC1; p=reject; sp=bogus; rua=mailto:d@ex.test", DOMAIN),  # sp= broken, p= applies here
    ("v=DMARC1; p=rejet; sp=reject; rua=mailto:d@ex.test", SUB),  # p= broken, sp= applies here
])
def test_dmarc_with_an_invalid_policy_tag_fails_whichever_applies(record, domain):
    dmarc = run(domain=domain, records={**SUB_ZONE, ("_dmarc.ex.test", "TXT"): [f'"{record}"']})["dmarc"]
    assert dmarc.status == "fail", dmarc
    assert "is not none, quarantine or reject" in dmarc.detail


def test_dmarc_subdomain_policy_comes_from_sp_at_the_parent():
    dmarc = run(domain=SUB, records={**SUB_ZONE, ("_dmarc.ex.test", "TXT"): [
        '"v=DMARC1; p=reject; sp=none; rua=mailto:d@ex.test"']})["dmarc"]
    assert dmarc.status == "pass" and dmarc.data["policy"] == "none" and "inherited by news.ex.test" in dmarc.detail


@pytest.mark.parametrize("terms, status, voids", [
    # our IP matches first, so evaluation passes; every other sender of the domain gets permerror
    ("ip4:192.0.2.10 a:gone1.ex.test a:gone2.ex.test mx:gone3.ex.test include:_s.ex.test -all", "fail", 3),
    ("ip4:192.0.2.10 a:gone1.ex.test include:_s.ex.test -all", "warn", 1),
    ("ip4:192.0.2.10 a:mail.ex.test mx include:_s.ex.test -all", "pass", 0),
])
def test_spf_void_lookups_are_counted_beyond_the_senders_match(terms, status, voids):
    r = run(records={(DOMAIN, "TXT"): [f'"v=spf1 {terms}"'], ("_s.ex.test", "TXT"): ['"v=spf1 ip4:198.51.100.0/24 -all"']})
    assert r["spf-ip"].status == "pass"
    assert r["spf-lookups"].status == status, r["spf-lookups"]
    assert len(r["spf-lookups"].data["voids"]) == voids
    if voids:
        assert "a:gone1.ex.test (no such name (NXDOMAIN))" in r["spf-lookups"].detail


def test_spf_a_term_is_looked_up_in_the_senders_family():
    zone = {**IP6_ZONE, (DOMAIN, "TXT"): ['"v=spf1 ip6:2001:db8::/32 a:v6only.ex.test -all"'],
            ("v6only.ex.test", "AAAA"): [IP6]}
    assert run(ip=IP6, records=zone, dnsbls=())["spf-lookups"].data["voids"] == []
    assert run(records={(DOMAIN, "TXT"): zone[(DOMAIN, "TXT")], ("v6only.ex.test", "AAAA"): [IP6]},
               dnsbls=())["spf-lookups"].data["voids"] == ["a:v6only.ex.test (no records of that type)"]


# ------------------------------------------------------------------ DKIM key tags
def _fixture_key() -> str:
    import re
    from pathlib import Path

    zone = (Path(__file__).parent / "fixtures" / "dns" / "doctor.test.zone").read_text()
    parts = re.search(r's1\._domainkey\.good\s+TXT\s+\(\s*"([^"]*)"\s*"([^"]*)"', zone)
    return (parts.group(1) + parts.group(2)).split("p=", 1)[1]


@pytest.mark.parametrize("tags, status, said", [
    ("", "pass", "RSA 2048-bit key"),
    ("h=sha1; ", "fail", "allows no sha256 signatures"),
    ("h=sha1:sha256; ", "pass", "RSA 2048-bit key"),
    ("s=tlsrpt; ", "fail", "does not allow the key for email"),
    ("t=y; ", "warn", "t=y: testing mode"),
])
def test_dkim_key_tags_that_stop_verification(tags, status, said):
    key = _fixture_key()
    zone = dict(GOOD)
    zone[("s1._domainkey.ex.test", "TXT")] = ['"v=DKIM1; k=rsa; ' + tags + 'p=' + key[:200] + '" "' + key[200:] + '"']
    with StubDNS(zone) as stub:
        settings = dataclasses.replace(DoctorSettings(), resolver="127.0.0.1", resolver_port=stub.port,
                                       timeout=1.0, probe_timeout=2.0, dnsbls=(), domain_blocklists=())
        dkim = {r.name: r for r in check_setup(DOMAIN, IP, settings, dkim_selector="s1")}["dkim"]
    assert dkim.status == status and said in dkim.detail, dkim


# ------------------------------------------------------------------ DMARC report addresses
@pytest.mark.parametrize("rua, extra, status", [
    ("mailto:d@ex.test", {}, "pass"),  # the domain itself
    ("mailto:d@reports.ex.test", {}, "pass"),  # a subdomain: the same organisation
    ("mailto:rua@dmarc-vendor.test", {}, "warn"),  # another organisation that has not agreed
    ("mailto:rua@dmarc-vendor.test", {("ex.test._report._dmarc.dmarc-vendor.test", "TXT"): ['"v=DMARC1"']}, "pass"),
])
def test_dmarc_reports_to_another_organisation_need_its_authorisation(rua, extra, status):
    dmarc = run(records={("_dmarc.ex.test", "TXT"): [f'"v=DMARC1; p=reject; rua={rua}"'], **extra})["dmarc"]
    assert dmarc.status == status, dmarc
    if status == "warn":
        assert "ex.test._report._dmarc.dmarc-vendor.test" in dmarc.detail and "RFC 7489 7.1" in dmarc.fix


def test_same_organisation_is_cautious_about_shared_second_levels():
    from pipeline.preflight.dns_checks import _same_organisation

    assert _same_organisation("news.example.co.jp", "example.co.jp")
    assert _same_organisation("reports.example.jp", "news.example.jp")
    assert not _same_organisation("vendor.co.jp", "example.co.jp")
    assert not _same_organisation("dmarc-vendor.test", "ex.test")


def test_void_lookup_count_stops_at_the_first_failed_lookup():
    terms = " ".join(f"a:h{n}.ex.test" for n in range(8))
    stubs = []
    r = run(records={(DOMAIN, "TXT"): [f'"v=spf1 ip4:192.0.2.10 {terms} -all"']},
            behaviour={(f"h{n}.ex.test", "*"): "DROP" for n in range(8)}, stub_out=stubs)
    asked = sum(stubs[0].asked[(f"h{n}.ex.test", "A")] for n in range(8))
    assert asked <= 3, asked  # dnspython may resend within one timeout; not once per term
    assert r["spf-lookups"].status == "warn" and "void lookups not all checked" in r["spf-lookups"].detail


# ------------------------------------------------------------------ bounded waits
def test_silent_mx_hosts_are_not_each_waited_for():
    hosts = [f"mx{n}.ex.test" for n in range(10)]
    stubs = []
    with alarm(60):
        mx = run(records={(DOMAIN, "MX"): [f"{n} {h}." for n, h in enumerate(hosts)]},
                 behaviour={(h, "*"): "DROP" for h in hosts}, stub_out=stubs)["mx"]
    asked = {name for (name, _t) in stubs[0].asked if name in hosts}
    assert len(asked) <= 2, asked  # before: all 10, A and AAAA each (20 timeouts)
    assert mx.status == "warn" and "not asked after 2 failed lookups" in mx.detail


def test_silent_include_targets_are_not_each_waited_for():
    includes = [f"i{n}.ex.test" for n in range(10)]
    stubs = []
    with alarm(60):
        r = run(records={(DOMAIN, "TXT"): ['"v=spf1 ip4:192.0.2.10 ' + " ".join(f"include:{i}" for i in includes) + ' -all"']},
                behaviour={(i, "*"): "DROP" for i in includes}, stub_out=stubs)
    asked = {name for (name, _t) in stubs[0].asked if name in includes}
    assert len(asked) <= 2, asked  # before: all 10
    assert r["spf-lookups"].status == "warn" and "not fetched after 2 failed lookups" in r["spf-lookups"].detail


def test_a_run_shares_one_dns_time_budget():
    from pipeline.preflight.resolver import lookup, make_resolver, set_run_budget

    with StubDNS({}, {("silent.ex.test", "*"): "DROP"}) as stub, alarm(30):
        res = make_resolver("127.0.0.1", stub.port, 1.0)
        set_run_budget(res, 0.3)
        first = lookup(res, "silent.ex.test", "A")
        asked = sum(stub.asked.values())
        later = [lookup(res, "silent.ex.test", t) for t in ("AAAA", "MX", "TXT")]
        assert sum(stub.asked.values()) == asked  # spent: nothing more is sent
    assert first.status == "error" and "timed out" in first.error and "0.3s" in first.error
    assert all(x.status == "error" and "not asked" in x.error for x in later)


# ------------------------------------------------------------------ the probe
def test_domain_whose_name_servers_are_silent_is_checked_not_blamed_on_the_resolver():
    # a recursive resolver waits for the domain's dead servers longer than the probe: the root
    # answers at once, so the resolver works and the checks report the domain's trouble
    with alarm(60):
        r = run(behaviour={(DOMAIN, "*"): "DROP", ("_dmarc.ex.test", "*"): "DROP"})
    assert r["mx"].status == "warn" and "could not look up MX" in r["mx"].detail
    assert r["spf"].status == "warn" and r["dmarc"].status == "warn"
    assert r["ptr"].status == "pass"  # the IP's own reverse zone answers


def test_resolver_answering_nxdomain_even_for_the_root_cannot_check():
    # a resolver without an upstream (a sandbox, a captive portal) says NXDOMAIN for every name:
    # mx, spf and dmarc must not FAIL on its word; the run stops with "resolves nothing"
    from pipeline.preflight.resolver import ResolverUnusable

    with alarm(60), pytest.raises(ResolverUnusable, match="resolves nothing") as exc:
        run(behaviour={(".", "*"): "NXDOMAIN", (DOMAIN, "*"): "NXDOMAIN"})
    assert "NXDOMAIN for ex.test SOA, NXDOMAIN for the root" in str(exc.value)
    assert "--resolver" in str(exc.value)


def test_nxdomain_for_the_domain_alone_fails_its_checks():
    # the root answers: the domain does not exist, a verdict the checks report
    with alarm(60):
        r = run(records={(DOMAIN, "SOA"): None, (DOMAIN, "MX"): None, (DOMAIN, "TXT"): None})
    assert r["mx"].status == "fail" and "NXDOMAIN" in r["mx"].detail


KNOWN = (("a.root-servers.net", "A"), ("a.gtld-servers.net", "A"))


@pytest.mark.parametrize("gone", [KNOWN, KNOWN[1:]], ids=["both", "one"])
def test_resolver_answering_the_root_but_nxdomain_for_the_world_cannot_check(gone):
    # a captive or blackholing resolver: the root answers, every other name is NXDOMAIN. Before,
    # mx, spf and dmarc FAILed the domain and ptr the IP on its word (exit 3)
    from pipeline.preflight.resolver import ResolverUnusable

    with alarm(60), pytest.raises(ResolverUnusable, match="cannot be trusted, nothing was checked") as exc:
        run(records={**{k: None for k in gone}, (DOMAIN, "SOA"): None, (DOMAIN, "MX"): None,
                     (DOMAIN, "TXT"): None, ("_dmarc.ex.test", "TXT"): None,
                     ("10.2.0.192.in-addr.arpa", "PTR"): None})
    assert f"NXDOMAIN for {gone[0][0]} A" in str(exc.value) and "--resolver" in str(exc.value)


def test_split_horizon_resolver_knowing_only_our_zone_cannot_check():
    # an offline split-horizon resolver: our own domain answers (SOA, MX, SPF, DMARC), the world
    # (the IP's reverse zone, the names that always exist) is NXDOMAIN: ptr must not FAIL on that
    from pipeline.preflight.resolver import ResolverUnusable

    with alarm(60), pytest.raises(ResolverUnusable, match="NXDOMAIN for a.root-servers.net A"):
        run(records={**{k: None for k in KNOWN}, ("10.2.0.192.in-addr.arpa", "PTR"): None})


def test_resolver_with_empty_answers_for_the_known_names_cannot_check():
    # NOERROR without the address (a resolver rewriting answers) is no proof either
    from pipeline.preflight.resolver import ResolverUnusable

    with alarm(60), pytest.raises(ResolverUnusable, match="an empty answer for a.root-servers.net A"):
        run(records={("a.root-servers.net", "A"): None, ("a.root-servers.net", "AAAA"): ["2001:503:ba3e::2:30"]})


def test_known_names_refused_or_silent_let_the_checks_run():
    # an authoritative server asked directly refuses them; a slow way out stays silent: no proof
    # of a lying resolver, and the domain's NXDOMAIN stays a verdict
    for how in ("REFUSED", "DROP"):
        with alarm(60):
            r = run(records={(DOMAIN, "SOA"): None, (DOMAIN, "MX"): None, (DOMAIN, "TXT"): None},
                    behaviour={(name, "*"): how for name, _ in KNOWN})
        assert r["mx"].status == "fail" and "NXDOMAIN" in r["mx"].detail, how


def test_servfail_for_the_domain_alone_lets_the_checks_run():
    # the root and the known names answer, so SERVFAIL is the domain's own problem: the checks report it
    with alarm(60):
        r = run(behaviour={(DOMAIN, "*"): "SERVFAIL"})
    assert r["mx"].status == "warn" and "SERVFAIL" in r["mx"].detail


def test_cli_resolver_answering_only_the_root_is_one_error_not_a_fail():
    import subprocess
    import sys

    zone = {k: v for k, v in GOOD.items() if k not in KNOWN and k[0] != DOMAIN}
    with alarm(60), StubDNS(zone) as stub:
        res = subprocess.run([sys.executable, "-c", CLI, "doctor", "setup", "--domain", DOMAIN,
                              "--ip", IP, "--resolver", "127.0.0.1", "--port", str(stub.port),
                              "--no-blocklists"], capture_output=True, text=True, timeout=50)
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stderr.startswith("Error: resolver 127.0.0.1:") and "cannot be trusted" in res.stderr
    assert "FAIL" not in res.stdout + res.stderr and res.stdout == ""
