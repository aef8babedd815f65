"""`doctor setup` against a real BIND serving test zones on 127.0.0.1 (tests/fixtures/dns/).

The zones hold a good sending setup and one broken variant per check; see the zone files'
comments. Skips (with the reason) when BIND's `named` is not installed; .ci/run installs it.
"""

from __future__ import annotations

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
from pipeline.core.config import DEFAULTS
from pipeline.preflight import check_setup, failed
from pipeline.preflight.dns_checks import (
    DEFAULT_DNSBLS,
    DEFAULT_DOMAIN_LISTS,
    dnsbl_query_name,
    parse_tags,
    rsa_key_bits,
)

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
    q = dns.message.make_query("doctor.test.", "SOA")
    try:
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.5)
    except (OSError, dns.exception.Timeout):
        return False
    return r.rcode() == dns.rcode.NOERROR and bool(r.answer)


@pytest.fixture(scope="module")
def dns_port(tmp_path_factory):
    """Start `named -g` on a free loopback port with the fixture zones; yield the port."""
    if NAMED is None:
        pytest.skip("BIND (named) is not installed: apt-get install bind9 (.ci/run installs it)")
    work = tmp_path_factory.mktemp("named")
    template = (ZONES / "named.conf.in").read_text()
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
            break
        proc.kill()
        proc.wait()
    else:
        pytest.fail("named did not start answering within 10 s:\n" + log.read_text()[-3000:])
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(port, domain, ip, **kw):
    kw.setdefault("dnsbls", ["bl.test"])
    kw.setdefault("domain_lists", ["dbl.test"])
    kw.setdefault("timeout", 2.0)
    return check_setup(domain, ip, resolver="127.0.0.1", port=port, **kw)


def by_name(results):
    return {r.name: r for r in results}


# ------------------------------------------------------------------ against BIND
def test_good_setup_passes_every_check(dns_port):
    results = run(dns_port, "good.doctor.test", GOOD_IP, helo="mail.good.doctor.test", dkim_selector="s1")
    assert [(r.name, r.status) for r in results] == [
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
    run(dns_port, "good.doctor.test", GOOD_IP, dnsbls=[], domain_lists=[])
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
    r = by_name(run(dns_port, "good.doctor.test", GOOD_IP, dnsbls=["refusing.test"]))["dnsbl:refusing.test"]
    assert r.status == "warn" and "127.255.255.254" in r.detail


def test_unreachable_resolver_gives_warnings_not_exceptions():
    port = _free_port()  # nothing listens there
    results = check_setup("good.doctor.test", GOOD_IP, resolver="127.0.0.1", port=port,
                          dnsbls=[], domain_lists=[], timeout=0.3)
    r = by_name(results)
    assert r["ptr"].status == "warn" and r["mx"].status == "warn" and r["spf"].status == "warn"


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
    assert lines[0].startswith("PASS  ptr ")
    assert any(line.startswith("PASS  dnsbl:bl.test") for line in lines)  # list from the config
    assert lines[-1] == "10 passed, 0 warnings, 0 failed"
    # columns line up: the detail starts at the same offset on every check line
    offsets = {line.index(line.split()[2]) for line in lines[:-1]}
    assert len(offsets) == 1


def test_cli_failing_setup_exits_1_with_fixes(doctor_config):
    res = doctor("--domain", "spffail.doctor.test", "--ip", LISTED_IP, config=doctor_config)
    assert res.exit_code == 1
    assert "Error" not in res.output
    assert "FAIL  spf-ip" in res.output and "FAIL  dnsbl:bl.test" in res.output
    assert "fix: add ip4:192.0.2.13" in res.output


def test_cli_json(doctor_config):
    res = doctor("--domain", "nomx.doctor.test", "--ip", GOOD_IP, "--json", "--no-blocklists",
                 config=doctor_config)
    assert res.exit_code == 1
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
    (["--domain", "not a domain", "--ip", GOOD_IP], "is not a valid domain name"),
    (["--domain", "user@example.jp", "--ip", GOOD_IP], "looks like an address"),
    (["--domain", "good.doctor.test", "--ip", GOOD_IP, "--resolver", "dns.example"], "is not an IP address"),
    (["--domain", "good.doctor.test", "--ip", GOOD_IP, "--resolver", "127.0.0.1", "--port", "0"], "port"),
])
def test_cli_bad_input_is_an_error(args, message):
    res = doctor(*args)
    assert res.exit_code == 1
    assert res.output.startswith("Error: ") and message in res.output
    assert "Traceback" not in res.output


def test_cli_bad_config_value_is_an_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[doctor]\ndnsbls = "zen.spamhaus.org"\n')
    res = doctor("--domain", "good.doctor.test", "--ip", GOOD_IP, config=str(path))
    assert res.exit_code == 1 and res.output.startswith("Error: config file ") and "doctor.dnsbls must be a list" in res.output


# ------------------------------------------------------------------ pure helpers
def test_defaults_come_from_the_config():
    assert list(DEFAULT_DNSBLS) == DEFAULTS["doctor"]["dnsbls"]
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
