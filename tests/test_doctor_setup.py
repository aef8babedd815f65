"""`doctor setup` against a real BIND serving test zones on 127.0.0.1 (tests/fixtures/dns/).

The zones hold a good sending setup and one broken variant per check; see the zone files'
comments. Skips (with the reason) when BIND's `named` is not installed; .ci/run installs it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest
import spf
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.core.config import DEFAULTS, DoctorSettings
from pipeline.core.errors import ConfigError
from pipeline.preflight import check_setup, failed
from pipeline.preflight.dns_checks import (
    DEFAULT_DNSBLS,
    DEFAULT_DOMAIN_LISTS,
    check_ip,
    dnsbl_query_name,
    normalise_ip,
    parse_tags,
    rsa_key_bits,
)
from pipeline.preflight.resolver import ResolverUnusable

ZONES = Path(__file__).parent / "fixtures" / "dns"
GOOD_IP = "192.0.2.10"
UNCONFIRMED_IP = "192.0.2.11"  # PTR -> mail.liar.doctor.test, which resolves to 198.51.100.99
NO_PTR_IP = "192.0.2.12"
LISTED_IP = "192.0.2.13"  # forward-confirmed, but on bl.test
NAMED = shutil.which("named") or next((p for p in ("/usr/sbin/named",) if Path(p).exists()), None)


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (named needs both)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port on 127.0.0.1")


def _answers(port: int) -> bool:
    q = dns.message.make_query(".", "SOA")  # REFUSED (main zones) or NOERROR (empty root): it is up
    try:
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.5)
    except (OSError, dns.exception.Timeout):
        return False
    return r.rcode() in (dns.rcode.NOERROR, dns.rcode.REFUSED)


def _start_named(work: Path, template_name: str):
    """Start `named -g` on a free loopback port with `template_name` filled in; (process, port)."""
    template = (ZONES / template_name).read_text()
    log = work / "named.log"
    for _attempt in range(3):
        port = _free_port()
        conf = work / "named.conf"
        conf.write_text(template.replace("@WORKDIR@", str(work)).replace("@ZONES@", str(ZONES))
                        .replace("@PORT@", str(port)))
        with open(log, "wb") as out:
            proc = subprocess.Popen([NAMED, "-g", "-4", "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None and not _answers(port):
            time.sleep(0.1)
        if proc.poll() is None and _answers(port):
            return proc, port
        proc.kill()
        proc.wait()
    pytest.fail("named did not start answering within 10 s:\n" + log.read_text()[-3000:])


def _stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def dns_port(tmp_path_factory):
    """BIND serving the fixture zones (authoritative only); yield its port."""
    if NAMED is None:
        pytest.skip("BIND (named) is not installed: apt-get install bind9 (.ci/run installs it)")
    proc, port = _start_named(tmp_path_factory.mktemp("named"), "named.conf.in")
    try:
        yield port
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def nx_port(tmp_path_factory):
    """A second BIND that answers NXDOMAIN for every name (an empty root zone): the resolver that
    made every block list "pass"."""
    if NAMED is None:
        pytest.skip("BIND (named) is not installed: apt-get install bind9 (.ci/run installs it)")
    proc, port = _start_named(tmp_path_factory.mktemp("named-nx"), "named-nx.conf.in")
    try:
        yield port
    finally:
        _stop(proc)


def settings(port, **kw) -> DoctorSettings:
    kw.setdefault("dnsbls", ("bl.test",))
    kw.setdefault("domain_blocklists", ("dbl.test",))
    kw.setdefault("timeout", 2.0)
    kw.setdefault("probe_timeout", 2.0)
    return dataclasses.replace(DoctorSettings(), resolver="127.0.0.1", resolver_port=port, **kw)


def run(port, domain, ip, helo=None, dkim_selector=None, **kw):
    return check_setup(domain, ip, settings(port, **kw), helo=helo, dkim_selector=dkim_selector)


def by_name(results):
    return {r.name: r for r in results}


# ------------------------------------------------------------------ against BIND
def test_good_setup_passes_every_check(dns_port):
    results = run(dns_port, "good.doctor.test", GOOD_IP, helo="mail.good.doctor.test", dkim_selector="s1")
    assert [(r.name, r.status) for r in results] == [
        ("ip", "warn"),  # 192.0.2.0/24 is a documentation range: the zones use nothing else
        ("ptr", "pass"), ("helo", "pass"), ("mx", "pass"), ("spf", "pass"), ("spf-lookups", "pass"),
        ("spf-ip", "pass"), ("dmarc", "pass"), ("dkim", "pass"), ("dnsbl:bl.test", "pass"),
        ("domain-bl:dbl.test", "pass"),
    ]
    r = by_name(results)
    assert r["spf-lookups"].data["lookups"] == 2  # mx + a:
    assert r["dkim"].data["bits"] == 2048
    assert r["dmarc"].data["policy"] == "quarantine"
    assert not failed(results)


def test_pyspf_hook_is_restored_after_evaluation(dns_port):
    before = spf.DNSLookup
    run(dns_port, "good.doctor.test", GOOD_IP, dnsbls=(), domain_blocklists=())
    assert spf.DNSLookup is before


def test_ptr_not_forward_confirmed(dns_port):
    ptr = by_name(run(dns_port, "good.doctor.test", UNCONFIRMED_IP))["ptr"]
    assert ptr.status == "fail"
    assert "mail.liar.doctor.test" in ptr.detail and "not forward-confirmed" in ptr.detail
    assert "198.51.100.99" in ptr.detail


def test_ip_without_ptr(dns_port):
    ptr = by_name(run(dns_port, "good.doctor.test", NO_PTR_IP))["ptr"]
    assert ptr.status == "fail" and "no PTR" in ptr.detail
    assert "PTR" in ptr.fix


def test_helo_that_does_not_resolve_to_the_ip_warns(dns_port):
    helo = by_name(run(dns_port, "good.doctor.test", GOOD_IP, helo="mail.liar.doctor.test"))["helo"]
    assert helo.status == "warn" and "198.51.100.99" in helo.detail


def test_missing_mx_mentions_softbank(dns_port):
    mx = by_name(run(dns_port, "nomx.doctor.test", GOOD_IP))["mx"]
    assert mx.status == "fail" and "no MX" in mx.detail
    assert "SoftBank" in mx.fix and "553" in mx.fix


def test_domain_that_does_not_exist(dns_port):
    mx = by_name(run(dns_port, "missing.doctor.test", GOOD_IP))["mx"]
    assert mx.status == "fail" and "NXDOMAIN" in mx.detail


def test_missing_spf_fails_with_carrier_note(dns_port):
    results = by_name(run(dns_port, "nospf.doctor.test", GOOD_IP))
    assert results["spf"].status == "fail" and "no SPF record" in results["spf"].detail
    assert "なりすまし" in results["spf"].fix
    assert "spf-ip" not in results


def test_spf_not_authorising_the_ip(dns_port):
    results = by_name(run(dns_port, "spffail.doctor.test", GOOD_IP))
    assert results["spf"].status == "pass"
    assert results["spf-ip"].status == "fail"
    assert results["spf-ip"].data["result"] == "fail"
    assert "ip4:192.0.2.10" in results["spf-ip"].fix and "なりすまし" in results["spf-ip"].fix


def test_spf_over_ten_lookups(dns_port):
    results = by_name(run(dns_port, "spfdeep.doctor.test", GOOD_IP))
    lookups = results["spf-lookups"]
    assert lookups.status == "fail"
    assert lookups.data["lookups"] == 11  # 2 includes + (3 a + include) + 3 a + 2 a
    assert "11 DNS lookups" in lookups.detail
    assert results["spf-ip"].status == "fail" and results["spf-ip"].data["result"] == "permerror"


def test_two_spf_records(dns_port):
    spf_result = by_name(run(dns_port, "spftwo.doctor.test", GOOD_IP))["spf"]
    assert spf_result.status == "fail" and "2 SPF records" in spf_result.detail


def test_dmarc_missing_and_unparseable(dns_port):
    assert by_name(run(dns_port, "nospf.doctor.test", GOOD_IP))["dmarc"].status == "fail"
    bad = by_name(run(dns_port, "badmarc.doctor.test", GOOD_IP))["dmarc"]
    assert bad.status == "fail" and "p=" in bad.detail


def test_dkim_selector_missing_revoked_or_not_given(dns_port):
    assert by_name(run(dns_port, "good.doctor.test", GOOD_IP, dkim_selector="nope"))["dkim"].status == "fail"
    revoked = by_name(run(dns_port, "good.doctor.test", GOOD_IP, dkim_selector="old"))["dkim"]
    assert revoked.status == "fail" and "revoked" in revoked.detail
    assert by_name(run(dns_port, "good.doctor.test", GOOD_IP))["dkim"].status == "warn"


def test_listed_ip_and_domain(dns_port):
    results = by_name(run(dns_port, "spammy.doctor.test", LISTED_IP))
    listed = results["dnsbl:bl.test"]
    assert listed.status == "fail" and "127.0.0.2" in listed.detail
    assert "Listed by bl.test" in listed.data["reason"]
    assert "https://bl.test/lookup?ip=192.0.2.13" in listed.fix
    assert results["domain-bl:dbl.test"].status == "fail"


def test_block_list_refusing_the_query_is_a_warning_not_a_listing(dns_port):
    r = by_name(run(dns_port, "good.doctor.test", GOOD_IP, dnsbls=("refusing.test",)))["dnsbl:refusing.test"]
    assert r.status == "warn" and "127.255.255.254" in r.detail


# ------------------------------------------------------------------ the resolver probe
def test_unreachable_resolver_is_an_error_before_any_check():
    port = _free_port()  # nothing listens there
    with pytest.raises(ResolverUnusable, match=rf"resolver 127\.0\.0\.1:{port} not answering") as exc:
        check_setup("good.doctor.test", GOOD_IP, settings(port, probe_timeout=0.5))
    assert "good.doctor.test SOA" in str(exc.value) and "--resolver" in str(exc.value)


def test_resolver_that_refuses_us_is_an_error(dns_port):
    # authoritative only: names outside its zones are REFUSED, as by a resolver whose ACL excludes us
    with pytest.raises(ResolverUnusable, match="refuses our queries"):
        run(dns_port, "example.jp", GOOD_IP)


def test_resolver_answering_servfail_for_everything_is_an_error(dns_port):
    # broken.test fails to load (SERVFAIL) and this server refuses the root: it resolves nothing
    with pytest.raises(ResolverUnusable, match="answers but cannot resolve"):
        run(dns_port, "broken.test", GOOD_IP)


def test_resolver_answering_the_root_but_nothing_else_cannot_check(nx_port):
    # this BIND answers the root and NXDOMAIN for every other name, a.root-servers.net too: a
    # captive or blackholing resolver, whose "no such name" must not FAIL mx, spf, dmarc or ptr
    # (SERVFAIL for the domain alone, with a resolver that works: tests/test_doctor_dns_faults.py)
    for domain in ("broken.test", "nowhere.example"):
        with pytest.raises(ResolverUnusable, match="cannot be trusted, nothing was checked") as exc:
            run(nx_port, domain, GOOD_IP, dnsbls=(), domain_blocklists=())
        assert "NXDOMAIN for a.root-servers.net A" in str(exc.value)


# ------------------------------------------------------------------ block lists against their test entries
def test_block_lists_are_trusted_only_after_their_test_entry(dns_port):
    r = by_name(run(dns_port, "good.doctor.test", GOOD_IP))
    assert r["dnsbl:bl.test"].status == "pass" and "answers its test entry" in r["dnsbl:bl.test"].detail
    assert r["dnsbl:bl.test"].data["test_entry"] == "2.0.0.127.bl.test"
    assert r["domain-bl:dbl.test"].data["test_entry"] == "test.dbl.test"


def test_list_without_its_test_entry_is_not_usable(dns_port):
    r = by_name(run(dns_port, "good.doctor.test", GOOD_IP, dnsbls=("dead.test",),
                    domain_blocklists=("dead.test",)))
    assert r["dnsbl:dead.test"].status == "warn" and "2.0.0.127.dead.test" in r["dnsbl:dead.test"].detail
    assert r["domain-bl:dead.test"].status == "warn" and "test.dead.test" in r["domain-bl:dead.test"].detail


def test_list_that_lists_everything_is_not_trusted_either(dns_port):
    r = by_name(run(dns_port, "good.doctor.test", GOOD_IP, dnsbls=("everything.test",)))["dnsbl:everything.test"]
    assert r.status == "warn" and "1.0.0.127.everything.test" in r.detail and "everything" in r.detail
    assert "LISTED" not in r.detail


def test_configured_test_entry_replaces_the_rfc5782_one(dns_port):
    # dbl.test lists spammy.doctor.test; named as its test entry, the list is usable without TEST
    conf = {"blocklist_test_entries": {"dbl.test": "spammy.doctor.test"}}
    r = by_name(run(dns_port, "good.doctor.test", GOOD_IP, **conf))["domain-bl:dbl.test"]
    assert r.status == "pass" and r.data["test_entry"] == "spammy.doctor.test.dbl.test"
    dead = by_name(run(dns_port, "good.doctor.test", GOOD_IP, dnsbls=("dead.test",),
                       blocklist_test_entries={"dead.test": "192.0.2.13"}))["dnsbl:dead.test"]
    assert dead.status == "warn" and "13.2.0.192.dead.test" in dead.detail


@pytest.mark.parametrize("entries, message", [
    ({"bl.test": "not-an-ip"}, "must be an IPv4 address"),
    ({"dbl.test": "bad entry"}, "doctor.blocklist_test_entries"),
])
def test_bad_test_entries_are_config_errors(dns_port, entries, message):
    with pytest.raises(ConfigError, match=message):
        run(dns_port, "good.doctor.test", GOOD_IP, blocklist_test_entries=entries)


def test_default_table_names_spamhaus_dbl_test_domain():
    assert DoctorSettings().blocklist_test_entries == {"dbl.spamhaus.org": "dbltest.com"}


# ------------------------------------------------------------------ the IP itself
@pytest.mark.parametrize("ip, kind", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("172.16.5.4", "private"),
    ("192.168.1.10", "private"), ("fd00::25", "private"), ("169.254.10.20", "link-local"),
    ("fe80::1", "link-local"), ("100.64.1.2", "carrier-grade NAT"), ("0.0.0.0", "unspecified"),
    ("224.0.0.5", "multicast"), ("198.18.0.1", "not routed"), ("240.0.0.1", "not routed"),
])
def test_non_public_ip_fails(ip, kind):
    r = check_ip(normalise_ip(ip))
    assert r.status == "fail" and kind in r.detail and "skipped" in r.detail


def test_public_and_documentation_ips():
    assert check_ip("8.8.8.8").status == "pass" and check_ip("2a00:1450:4001::1").status == "pass"
    doc = check_ip("203.0.113.7")
    assert doc.status == "warn" and "documentation" in doc.detail
    assert check_ip("2001:db8::25").status == "warn"
    assert normalise_ip("::ffff:192.168.0.1") == "192.168.0.1"


def test_private_ip_skips_the_ip_checks(dns_port):
    results = run(dns_port, "good.doctor.test", "192.168.10.5", helo="mail.good.doctor.test")
    names = [r.name for r in results]
    assert names[0] == "ip" and results[0].status == "fail"
    assert not {"ptr", "helo", "spf-ip", "dnsbl:bl.test"} & set(names)
    assert {"mx", "spf", "spf-lookups", "dmarc", "dkim", "domain-bl:dbl.test"} <= set(names)
    assert failed(results)


# ------------------------------------------------------------------ the CLI
@pytest.fixture
def doctor_config(tmp_path, dns_port):
    path = tmp_path / "mailhygiene.toml"
    path.write_text(
        "[doctor]\n"
        'resolver = "127.0.0.1"\n'
        f"resolver_port = {dns_port}\n"
        "timeout = 2.0\n"
        'dnsbls = ["bl.test"]\n'
        'domain_blocklists = ["dbl.test"]\n'
    )
    return str(path)


def doctor(*args, config=None):
    pre = ["--config", config] if config else []
    return CliRunner().invoke(cli, [*pre, "doctor", "setup", *args])


def test_cli_good_setup_exits_0(doctor_config):
    res = doctor("--domain", "good.doctor.test", "--ip", GOOD_IP, "--helo", "mail.good.doctor.test",
                 "--dkim-selector", "s1", config=doctor_config)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("WARN  ip ")  # a documentation address
    assert any(line.startswith("PASS  dnsbl:bl.test") for line in lines)  # list from the config
    assert lines[-1] == "10 passed, 1 warnings, 0 failed"
    # columns line up: the detail starts at the same offset on every check line
    offsets = {line.index(line.split()[2]) for line in lines[:-1] if not line.lstrip().startswith("fix:")}
    assert len(offsets) == 1


def test_cli_strict_makes_warnings_fail(doctor_config):
    args = ["--domain", "good.doctor.test", "--ip", GOOD_IP, "--helo", "mail.good.doctor.test"]
    assert doctor(*args, config=doctor_config).exit_code == 0  # warnings: ip, dkim not given
    res = doctor(*args, "--strict", config=doctor_config)
    assert res.exit_code == 4, res.output
    assert "--strict: warnings count as failures" in res.output


def test_cli_strict_from_the_config(doctor_config):
    with open(doctor_config, "a") as fh:
        fh.write("strict = true\n")
    res = doctor("--domain", "good.doctor.test", "--ip", GOOD_IP, config=doctor_config)
    assert res.exit_code == 4


def test_cli_unreachable_resolver_fails_fast_with_one_error_line():
    port = _free_port()
    res = doctor("--domain", "good.doctor.test", "--ip", GOOD_IP, "--resolver", "127.0.0.1",
                 "--port", str(port), "--probe-timeout", "0.5")
    assert res.exit_code == 1
    assert res.output.startswith(f"Error: resolver 127.0.0.1:{port} not answering")
    assert res.output.count("\n") == 1 and "PASS" not in res.output and "WARN" not in res.output


def test_cli_nxdomain_resolver_is_one_error_not_a_verdict(nx_port, tmp_path):
    res = doctor("--domain", "nowhere.example", "--ip", GOOD_IP, "--resolver", "127.0.0.1",
                 "--port", str(nx_port), "--dnsbl", "zen.spamhaus.org", "--domain-list", "dbl.spamhaus.org")
    assert res.exit_code == 1, res.output  # before: exit 3, mx and spf FAILed on its word
    assert res.output.startswith(f"Error: resolver 127.0.0.1:{nx_port} cannot be trusted")
    assert res.output.count("\n") == 1 and "FAIL" not in res.output and "PASS" not in res.output


def test_cli_failing_setup_exits_3_with_fixes(doctor_config):
    res = doctor("--domain", "spffail.doctor.test", "--ip", LISTED_IP, config=doctor_config)
    assert res.exit_code == 3
    assert "Error" not in res.output
    assert "FAIL  spf-ip" in res.output and "FAIL  dnsbl:bl.test" in res.output
    assert "fix: add ip4:192.0.2.13" in res.output


def test_cli_json(doctor_config):
    res = doctor("--domain", "nomx.doctor.test", "--ip", GOOD_IP, "--json", "--no-blocklists",
                 config=doctor_config)
    assert res.exit_code == 3
    data = json.loads(res.output)
    assert {d["name"]: d["status"] for d in data}["mx"] == "fail"
    assert all(set(d) == {"name", "status", "detail", "fix", "data"} for d in data)
    assert not any(d["name"].startswith("dnsbl") for d in data)


def test_cli_options_override_the_config(doctor_config, dns_port):
    res = doctor("--domain", "good.doctor.test", "--ip", GOOD_IP, "--dnsbl", "refusing.test",
                 "--domain-list", "dbl.test", "--port", str(dns_port), config=doctor_config)
    assert "WARN  dnsbl:refusing.test" in res.output and "dnsbl:bl.test" not in res.output


@pytest.mark.parametrize("args, message", [
    (["--domain", "good.doctor.test", "--ip", "192.0.2.300"], "is not an IP address"),
    (["--domain", "good.doctor.test", "--ip", ""], "is not an IP address"),
    (["--domain", "good.doctor.test", "--ip", "mail.example.jp"], "is not an IP address"),
    (["--domain", "not a domain", "--ip", GOOD_IP], "is not a valid domain name"),
    (["--domain", "", "--ip", GOOD_IP], "is not a valid domain name"),
    (["--domain", "example", "--ip", GOOD_IP], "is not a valid domain name"),
    (["--domain", "a..example.jp", "--ip", GOOD_IP], "is not a valid domain name"),
    (["--domain", "-bad-.example.jp", "--ip", GOOD_IP], "is not a valid domain name"),
    (["--domain", "x" * 64 + ".example.jp", "--ip", GOOD_IP], "is not a valid domain name"),
    (["--domain", "192.0.2.10", "--ip", GOOD_IP], "is an IP address, not a domain name"),
    (["--domain", "_dmarc.good.doctor.test", "--ip", GOOD_IP], "give the mail domain itself"),
    (["--domain", "good.doctor.test", "--ip", GOOD_IP, "--helo", "mail_1.good.doctor.test"], "HELO name"),
    (["--domain", "user@example.jp", "--ip", GOOD_IP], "looks like an address"),
    (["--domain", "ｅｘａｍｐｌｅ．ｊｐ", "--ip", GOOD_IP], "type it in half-width (example.jp)"),
    (["--domain", "例え。jp", "--ip", GOOD_IP], "type it in half-width (例え.jp)"),
    (["--domain", "good.doctor.test", "--ip", GOOD_IP, "--helo", "ｍａｉｌ.good.doctor.test"],
     "HELO name 'ｍａｉｌ.good.doctor.test' holds full-width characters"),
    (["--domain", "good.doctor.test", "--ip", GOOD_IP, "--helo", "not valid"], "HELO name"),
    (["--domain", "good.doctor.test", "--ip", GOOD_IP, "--dkim-selector", "s 1"], "DKIM selector"),
    (["--domain", "good.doctor.test", "--ip", GOOD_IP, "--dkim-selector", "s1._domainkey.good.doctor.test"],
     "give only the selector"),
    (["--domain", "good.doctor.test", "--ip", GOOD_IP, "--dnsbl", "not a zone"], "doctor.dnsbls"),
    (["--domain", "good.doctor.test", "--ip", GOOD_IP, "--resolver", "dns.example"], "is not an IP address"),
    (["--domain", "good.doctor.test", "--ip", GOOD_IP, "--resolver", "127.0.0.1:5353"], "--port 5353"),
    (["--domain", "good.doctor.test", "--ip", GOOD_IP, "--resolver", "127.0.0.1", "--port", "0"], "port"),
    (["--domain", "good.doctor.test", "--ip", GOOD_IP, "--resolver", "127.0.0.1", "--port", "99999"], "port"),
    (["--domain", "good.doctor.test", "--ip", GOOD_IP, "--timeout", "nan"], "--timeout"),
    (["--domain", "good.doctor.test", "--ip", GOOD_IP, "--timeout", "-1"], "--timeout"),
    (["--domain", "good.doctor.test", "--ip", GOOD_IP, "--probe-timeout", "600"], "--probe-timeout"),
])
def test_cli_bad_input_is_an_error(args, message):
    res = doctor(*args)
    assert res.exit_code == 1, res.output
    assert res.output.startswith("Error: ") and message in res.output
    assert res.output.count("\n") == 1 and "Traceback" not in res.output


def test_cli_bad_config_value_is_an_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[doctor]\ndnsbls = "zen.spamhaus.org"\n')
    res = doctor("--domain", "good.doctor.test", "--ip", GOOD_IP, config=str(path))
    assert res.exit_code == 1 and res.output.startswith("Error: config file ") and "doctor.dnsbls must be a list" in res.output


# ------------------------------------------------------------------ pure helpers
def test_defaults_come_from_the_config():
    assert list(DEFAULT_DNSBLS) == DEFAULTS["doctor"]["dnsbls"]
    assert DEFAULTS["doctor"]["probe_timeout"] == 3.0 and DEFAULTS["doctor"]["strict"] is False
    assert "zen.spamhaus.org" in DEFAULT_DNSBLS and list(DEFAULT_DOMAIN_LISTS) == ["dbl.spamhaus.org"]


def test_dnsbl_query_names():
    assert dnsbl_query_name("192.0.2.10", "bl.test") == "10.2.0.192.bl.test"
    assert dnsbl_query_name("2001:db8::1", "bl.test") == (
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test")


def test_dkim_key_size_from_the_fixture_zone():
    import base64
    import re

    zone = (ZONES / "doctor.test.zone").read_text()
    parts = re.search(r's1\._domainkey\.good\s+TXT\s+\(\s*"([^"]*)"\s*"([^"]*)"', zone)
    key = parse_tags(parts.group(1) + parts.group(2))["p"]
    assert rsa_key_bits(base64.b64decode(key)) == 2048
    assert rsa_key_bits(b"not a key") is None


def test_idn_domains_are_taken_in_their_ascii_form():
    from pipeline.preflight.dns_checks import normalise_domain

    assert normalise_domain("例え.jp") == "xn--r8jz45g.jp"
    assert normalise_domain("Mail.Example.JP.") == "mail.example.jp"
