"""Relay mode: `mailhygiene send mta-config` output run by the real programs.

- Postfix: a private instance (tests/test_closed_loop_postfix.py) configured with the generated
  transport map, master.cf transports and main.cf limits. The daemon hands everything to it at
  full speed (sender.mode = "relay"); the au look-alike answers 421 to the first attempts, so
  Postfix's own retries are measured too: at the look-alike, no two RCPT attempts closer than the
  generated rate delay. Every SoftBank/Y!mobile domain reaches the SoftBank 特定接続 look-alike.
  The 550 comes back as a real Postfix DSN to the VERP return path, and `mailhygiene bounces`
  turns it into an event.
- sendmail: the generated mailertable is compiled and dumped by sendmail's own makemap (unpacked
  from Debian's sendmail-bin by .ci/fetch_sendmail.sh, since sendmail conflicts with postfix).
- qmail (not packaged in Debian): control/smtproutes checked against qmail-remote's documented
  grammar and lookup order.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import pipeline
from pipeline.core.config import load_config
from pipeline.ingest.engine import ingest
from pipeline.report.reports import build_report
from pipeline.sender.daemon import run_daemon
from pipeline.sender.enqueue import enqueue
from pipeline.sender.mtaconfig import carrier_domains, mta_config, postfix_config
from pipeline.sender.testing import RecordingServer

from fixtures import DAEMON_DIR, POSTFIX, PrivatePostfix, shared_path

REPO = Path(__file__).resolve().parents[1]


def _cfg(tmp: Path, toml: str):
    p = tmp / "mailhygiene.toml"
    p.write_text(toml, encoding="utf-8")
    return load_config(p, data_dir=tmp / "mh-data", timezone="UTC")   # (tmp/data is Postfix's)


def _reference_domains(carrier_row: str) -> list[str]:
    """The domains of one row of the carriers table in shared/reference/carriers.md, expanded."""
    from pipeline.classify.carriers import expand_pattern

    carriers_md = shared_path("reference", "carriers.md", what="the carriers reference table")
    for line in carriers_md.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 2 and cells[1].startswith(carrier_row):
            return [d for pat in re.findall(r"`([^`]+)`", cells[2]) for d in expand_pattern(pat)]
    raise AssertionError(f"no row {carrier_row!r} in {carriers_md}")


SB_SAMPLES = ["a@i.softbank.jp", "b@d.vodafone.ne.jp", "c@jp-k.ne.jp", "d@email.sky.tdp.ne.jp", "e@disney.ne.jp",
              "f@ymobile.ne.jp", "g@x.pdx.ne.jp", "h@emnet.ne.jp", "i@willcom.com", "j@yahoo.ne.jp"]


@pytest.mark.parametrize("routes, ymobile_via", [
    # Y!mobile on SoftBank's 特定接続 relay: SoftBank's transport, one Postfix destination, one rate
    ('{softbank = "[tokutei-sb.example.jp]:2525"}', "mh_softbank:[tokutei-sb.example.jp]:2525"),
    # a relay of its own: its own transport and rate
    ('{softbank = "[tokutei-sb.example.jp]:2525", ymobile = "[tokutei-ym.example.jp]:25"}',
     "mh_ymobile:[tokutei-ym.example.jp]"),
])
def test_every_softbank_and_ymobile_domain_is_routed(tmp_path, routes, ymobile_via):
    cfg = _cfg(tmp_path, f'[sender]\nfrom_address = "news@mail.example.jp"\nroutes = {routes}\n')
    files = postfix_config(cfg)
    routed = dict(line.split("\t") for line in files["mailhygiene_transport"].splitlines()
                  if line and not line.startswith("#"))
    reference = _reference_domains("SoftBank") + _reference_domains("Y!mobile")
    assert len(reference) >= 30
    for d in reference:
        want = ymobile_via if d in carrier_domains(cfg)["ymobile"] else "mh_softbank:[tokutei-sb.example.jp]:2525"
        assert routed[d] == routed["." + d] == want, d


@pytest.mark.slow
@pytest.mark.skipif(POSTFIX is None or not os.path.exists(f"{DAEMON_DIR}/master"),
                    reason="Postfix is not installed (apt-get install postfix; .ci/run does this in CI)")
@pytest.mark.skipif(os.geteuid() != 0, reason="a private Postfix master must be started as root")
def test_postfix_relay_mode_holds_the_rate_through_its_own_retries():
    attempts = {"n": 0}

    def au_reply(addr):
        attempts["n"] += 1
        if attempts["n"] <= 3:
            return "421 4.7.0 Too many connections, try again later"
        return "550 <gone@au.com>: User unknown" if addr == "gone@au.com" else None

    au = RecordingServer(rcpt_reply=au_reply).start()
    sb = RecordingServer().start()
    bounces = RecordingServer().start()
    root = Path(tempfile.mkdtemp(prefix="mh-relay-", dir="/tmp"))
    os.chmod(root, 0o755)
    try:
        maps = root / "maps"
        maps.mkdir()
        toml = f"""timezone = "UTC"
[sender]
from_address = "news@mail.example.jp"
mode = "relay"
verp = true
default_rate = {{count = 1000, interval = 1.0}}
rates = {{au = {{count = 1, interval = 1.0}}}}
routes = {{au = "[127.0.0.1]:{au.port}", softbank = "[127.0.0.1]:{sb.port}"}}
"""
        cfg = _cfg(root, toml)
        files = postfix_config(cfg, map_type="texthash", map_dir=str(maps))
        assert "mh_au_destination_rate_delay = 2s" in files["main.cf"]     # 1 s + Postfix's clock
        (maps / "mailhygiene_transport").write_text(files["mailhygiene_transport"])
        (maps / "local_transport").write_text(f"mail.example.jp smtp:[127.0.0.1]:{bounces.port}\n")
        main_extra = files["main.cf"] + (f"transport_maps = texthash:{maps}/local_transport, "
                                         f"texthash:{maps}/mailhygiene_transport\n"
                                         "bounce_queue_lifetime = 0\nmaximal_queue_lifetime = 1h\n")
        pf = PrivatePostfix(root, {}, transport="", main_extra=main_extra, master_extra=files["master.cf"])
        pf.start()
        toml += f'default_relay = "127.0.0.1:{pf.port}"\n'
        cfg = _cfg(root, toml)
        au_live = [f"u{i}@au.com" for i in range(5)]
        enqueue(cfg, subject="中継テスト", body="本文", addresses=au_live + ["gone@au.com"] + SB_SAMPLES)
        stats = run_daemon(cfg, exit_when_done=True, max_seconds=60)
        assert stats.sent == len(au_live) + 1 + len(SB_SAMPLES)      # handed to Postfix at full speed
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if set(au.addresses()) >= set(au_live) and len(sb.addresses()) == len(SB_SAMPLES) and bounces.received:
                break
            time.sleep(0.25)
        log = pf.log_text()
        assert set(au.addresses()) == set(au_live), log[-3000:]
        assert sorted(sb.addresses()) == sorted(SB_SAMPLES)          # every SoftBank/Y!mobile domain
        times = sorted(t for t, _ in au.rcpt_attempts)
        gaps = [b - a for a, b in zip(times, times[1:])]
        print(f"au RCPT attempts: {len(times)}, gaps: {[round(g, 2) for g in gaps]}")
        assert len(times) >= len(au_live) + 1 + 3                   # the 421s were retried by Postfix
        assert "421 4.7.0" in log and "status=deferred" in log
        assert min(gaps) >= 1.0                                      # never faster than 1 a second

        # the 550 came back as Postfix's own DSN to the VERP return path
        dsn = bounces.received[0]
        assert dsn.rcpt_tos == ["news+gone=au.com@mail.example.jp"]
        r = subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "--config",
                            str(cfg.source), "--data-dir", str(cfg.data_dir), "bounces", "--recipient",
                            dsn.rcpt_tos[0]], input=dsn.data, capture_output=True, cwd=REPO, timeout=60)
        assert r.returncode == 0 and b"gone@au.com bounced user_unknown" in r.stdout, r.stdout + r.stderr
        row = pipeline.connect(cfg.data_dir).execute(
            "SELECT status, reason, smtp_phase, reply_code FROM events WHERE recipient = 'gone@au.com'").fetchall()
        assert row == [("bounced", "user_unknown", "rcpt", 550)]

        # Postfix's log, ingested, records the same refusal: two witnesses, one attempt in the report
        pf_log = root / "postfix.log"
        pf_log.write_text(pf.log_text())
        ingest(cfg, [pf_log], fmt="postfix", progress=False)
        con = pipeline.connect(cfg.data_dir)
        assert con.execute("SELECT mta FROM events WHERE recipient = 'gone@au.com' AND status = 'bounced' "
                           "ORDER BY mta").fetchall() == [("mailhygiene",), ("postfix",)]
        report = build_report(cfg.data_dir, cfg.report, cfg.rule, cfg.timezone_name)
        au_row = report.tables["carrier_totals"].set_index("carrier").loc["au"]
        assert (au_row["delivered"], au_row["bounced"], au_row["finished"]) == (len(au_live), 1, len(au_live) + 1)
        # Postfix's relay of that DSN (from=<>) to the bounce mailbox is in its log too: no attempt
        dsn_rows = con.execute("SELECT recipient, status, not_attempt FROM witnessed_events WHERE sender = ''").fetchall()
        assert dsn_rows and set(dsn_rows) == {("news+gone=au.com@mail.example.jp", "sent", "null_sender")}, dsn_rows
        assert con.execute("SELECT count(*) FROM attempts WHERE sender = ''").fetchone() == (0,)
    finally:
        try:
            pf.stop()
        except NameError:
            pass
        for s in (au, sb, bounces):
            s.stop()
        shutil.rmtree(root, ignore_errors=True)


def _makemap() -> str | None:
    # .ci/fetch_sendmail.sh unpacks Debian's sendmail there (it conflicts with postfix: never installed)
    for cand in (os.environ.get("MAILHYGIENE_MAKEMAP"), "/opt/mailhygiene-test/sendmail/usr/libexec/sendmail/makemap",
                 shutil.which("makemap")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


@pytest.mark.skipif(_makemap() is None, reason="sendmail's makemap is not unpacked (.ci/run does it with "
                                                ".ci/fetch_sendmail.sh)")
def test_sendmail_mailertable_compiles_with_makemap(tmp_path):
    cfg = _cfg(tmp_path, '[sender]\nfrom_address = "news@mail.example.jp"\n'
                         'routes = {softbank = "[tokutei-sb.example.jp]:2525", docomo = "[10.1.2.3]"}\n'
                         'session_recipients = {softbank = 20}\nmessages_per_connection = 100\n')
    files = mta_config(cfg, "sendmail")
    src = tmp_path / "mailertable"
    src.write_text(files["mailertable"])
    (tmp_path / "empty.cf").write_text("")
    mm = _makemap()
    made = subprocess.run([mm, "-C", str(tmp_path / "empty.cf"), "hash", str(tmp_path / "mailertable")],
                          stdin=src.open("rb"), capture_output=True, timeout=60)
    complaints = [ln for ln in made.stderr.decode().splitlines() if "World writable directory" not in ln]
    assert made.returncode == 0 and not complaints, made.stderr
    dump = subprocess.run([mm, "-C", str(tmp_path / "empty.cf"), "-u", "hash", str(tmp_path / "mailertable")],
                          capture_output=True, text=True, timeout=60)
    entries = dict(line.split("\t", 1) for line in dump.stdout.splitlines())
    assert entries["i.softbank.jp"] == "mh_softbank:[tokutei-sb.example.jp]"
    assert entries[".pdx.ne.jp"] == "mh_ymobile:[tokutei-sb.example.jp]"
    assert entries["docomo.ne.jp"] == "mh_docomo:[10.1.2.3]" and entries["au.com"] == "mh_au:au.com"
    assert len(entries) == len(files["mailertable"].splitlines())       # nothing dropped or merged
    mc = files["mailhygiene.mc"]
    assert re.search(r"^Mmh_softbank, P=\[IPC\], .* m=20, r=20, A=TCP \$h 2525$", mc, re.M)
    assert re.search(r"^Mmh_docomo, .* m=100, r=100, A=TCP \$h 25$", mc, re.M)


def _smtproutes_lookup(text: str, host: str) -> str | None:
    """qmail-remote's documented rule: each line `domain:relay` (relay may carry `:port`), no
    spaces; the host itself is tried first, then each `.suffix` from the longest, then the empty
    domain; the first match wins; an empty relay means "look up MX records as usual"."""
    routes: dict[str, str] = {}
    for line in text.splitlines():
        assert line and " " not in line and "\t" not in line and not line.startswith("#"), line
        domain, sep, relay = line.partition(":")
        assert sep and domain == domain.lower(), line
        host_part, _, port = relay.partition(":")
        assert host_part and (not port or port.isdigit()), line
        routes.setdefault(domain, relay)          # qmail keeps the first definition
    for i in range(len(host) + 1):
        if i == 0 or (i < len(host) and host[i] == "."):
            key = host[i:]
            if key in routes:
                return routes[key]
    return routes.get("")


def test_qmail_smtproutes_follow_qmail_remote_grammar(tmp_path):
    cfg = _cfg(tmp_path, '[sender]\nfrom_address = "news@mail.example.jp"\n'
                         'routes = {softbank = "[tokutei-sb.example.jp]:2525", docomo = "10.1.2.3"}\n')
    text = mta_config(cfg, "qmail")["smtproutes"]
    for addr in SB_SAMPLES:
        assert _smtproutes_lookup(text, addr.split("@")[1]) == "tokutei-sb.example.jp:2525", addr
    assert _smtproutes_lookup(text, "sub.mopera.net") == "10.1.2.3"
    assert _smtproutes_lookup(text, "au.com") is None and _smtproutes_lookup(text, "ezweb.ne.jp") is None
    assert _smtproutes_lookup(text, "notsoftbank.ne.jp") is None          # a suffix must end at a dot


TLS_AUTH_TOML = """[sender]
from_address = "news@mail.example.jp"
routes = {{docomo = "relay-d.example.jp:587", softbank = "relay-d.example.jp:587", au = "[relay-a.example.jp]:25"}}
[sender.relays."relay-d.example.jp:587"]
username = "news"
password_file = "{pw}"
[sender.relays."relay-a.example.jp:25"]
tls = "verify"
ca_file = "/etc/ssl/relay-ca.pem"
"""


def _master_options(master_cf: str) -> dict[str, list[str]]:
    """transport -> its `-o` settings, from generated master.cf text."""
    out: dict[str, list[str]] = {}
    name = None
    for line in master_cf.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if not line[0].isspace():
            name = line.split()[0]
            out[name] = []
        elif line.strip().startswith("-o "):
            out[name].append(line.strip()[3:])
    return out


def test_postfix_transports_carry_the_relays_tls_and_auth_and_never_the_password(tmp_path):
    pw = tmp_path / "relay.pass"
    pw.write_text("s3cret-Pa55\n")
    cfg = _cfg(tmp_path, TLS_AUTH_TOML.format(pw=pw))
    files = postfix_config(cfg)
    opts = _master_options(files["master.cf"])
    sasl = ["smtp_sasl_auth_enable=yes", "smtp_sasl_password_maps=hash:/etc/postfix/mailhygiene_sasl_passwd",
            "smtp_sasl_security_options=noanonymous,noplaintext", "smtp_sasl_tls_security_options=noanonymous"]
    # a relay with a username: AUTH, and at least "encrypt" (AUTH never in clear, as the daemon)
    assert opts["mh_docomo"][1:] == ["smtp_tls_security_level=encrypt", *sasl]
    assert opts["mh_softbank"][1:] == ["smtp_tls_security_level=encrypt", *sasl]
    assert opts["mh_au"][1:] == ["smtp_tls_security_level=verify", "smtp_tls_verify_cert_match=hostname",
                                 "smtp_tls_CAfile=/etc/ssl/relay-ca.pem"]
    assert opts["mh_rakuten"] == ["smtp_connection_reuse_count_limit=50"]     # the MX, sender.tls = "may"
    entries = [line for line in files["mailhygiene_sasl_passwd"].splitlines() if not line.startswith("#")]
    assert entries == ["[relay-d.example.jp]:587\tnews:@PASSWORD@"]          # keyed like the transport's next hop
    assert f"password_file {pw}" in files["mailhygiene_sasl_passwd"]
    assert "mh_docomo:[relay-d.example.jp]:587" in files["mailhygiene_transport"]
    assert all("s3cret-Pa55" not in text for text in files.values())
    # no relay needing anything: the files are as before, no credentials file
    plain = postfix_config(_cfg(tmp_path, '[sender]\nfrom_address = "news@mail.example.jp"\n'))
    assert "mailhygiene_sasl_passwd" not in plain and "smtp_tls" not in plain["master.cf"]
    # sender.tls = "encrypt": every transport, the MX ones too
    enc = _master_options(postfix_config(_cfg(tmp_path, '[sender]\nfrom_address = "news@mail.example.jp"\n'
                                                        'tls = "encrypt"\n'))["master.cf"])
    assert all("smtp_tls_security_level=encrypt" in o for o in enc.values())
    sendmail = mta_config(cfg, "sendmail")     # (its TLS/AUTH files: tests/test_mta_config_tls.py)
    assert "dnl relay-d.example.jp:587 (docomo, softbank, ymobile) needs STARTTLS (encrypt) and AUTH as news" \
        in sendmail["mailhygiene.mc"]
    assert all("s3cret-Pa55" not in text for text in sendmail.values())


@pytest.mark.slow
@pytest.mark.skipif(POSTFIX is None or not os.path.exists(f"{DAEMON_DIR}/master"),
                    reason="Postfix is not installed (apt-get install postfix; .ci/run does this in CI)")
@pytest.mark.skipif(os.geteuid() != 0, reason="a private Postfix master must be started as root")
def test_postfix_authenticates_over_starttls_with_the_generated_transport(tmp_path):
    """A private Postfix with the generated master.cf transport and credentials map relays to an
    aiosmtpd relay that requires STARTTLS before AUTH and AUTH before mail."""
    import smtplib

    from fixtures import PASSWORD, make_cert, password_file, server_tls

    (tmp_path / "cert").mkdir()
    cert = make_cert(tmp_path / "cert")
    relay = RecordingServer(tls_context=server_tls(cert), logins={"news": PASSWORD}).start()
    root = Path(tempfile.mkdtemp(prefix="mh-relay-tls-", dir="/tmp"))
    os.chmod(root, 0o755)
    pf = None
    try:
        maps = root / "maps"
        maps.mkdir()
        pw = password_file(tmp_path)
        cfg = _cfg(root, f"""[sender]
from_address = "news@mail.example.jp"
routes = {{docomo = "127.0.0.1:{relay.port}"}}
[sender.relays."127.0.0.1:{relay.port}"]
username = "news"
password_file = "{pw}"
""")
        files = postfix_config(cfg, map_type="texthash", map_dir=str(maps))
        (maps / "mailhygiene_transport").write_text(files["mailhygiene_transport"])
        (maps / "mailhygiene_sasl_passwd").write_text(
            files["mailhygiene_sasl_passwd"].replace("@PASSWORD@", pw.read_text().splitlines()[0]))
        # (tlsmgr: in every stock master.cf, not in the private instance's minimal one)
        tlsmgr = "tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n"
        pf = PrivatePostfix(root, {}, transport="", master_extra=tlsmgr + files["master.cf"],
                            main_extra=files["main.cf"] + "bounce_queue_lifetime = 0\n")
        pf.start()
        with smtplib.SMTP("127.0.0.1", pf.port, timeout=10) as s:
            s.sendmail("news@mail.example.jp", ["taro@docomo.ne.jp"], b"Subject: t\r\n\r\nbody\r\n")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not relay.received:
            time.sleep(0.25)
        log = pf.log_text()
        assert [(r.rcpt_tos, r.tls, r.login) for r in relay.received] == [(["taro@docomo.ne.jp"], True, "news")], \
            "\n".join([line for line in log.splitlines() if "warning" in line or "fatal" in line][:10] + [log[-1500:]])
    finally:
        if pf is not None:
            pf.stop()
        relay.stop()
        shutil.rmtree(root, ignore_errors=True)
