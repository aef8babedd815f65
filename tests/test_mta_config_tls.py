"""`send mta-config` for sendmail and qmail with relays that need STARTTLS or AUTH: sendmail gets
access TLS_Srv:/TLS_Rcpt: requirements, an authinfo template (AuthInfo:, "P:@PASSWORD@", never the
password) and the FEATUREs they need, checked by m4, makemap and the rulesets of the unpacked
sendmail 8.17 (address test mode, no mail sent); qmail, whose qmail-remote has neither, refuses
with `Error:` and writes nothing."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.core.config import load_config
from pipeline.sender.mtaconfig import mta_config

from fixtures import CF_DIR, NAMESPACE_SH, SENDMAIL, SENDMAIL_MARKS

SECRET = "Zq9-not-in-any-file"

TOML = """[sender]
from_address = "news@mail.example.jp"
routes = {{docomo = "relay-d.example.jp:587", softbank = "relay-d.example.jp:587", au = "[relay-a.example.jp]:25", rakuten = "plain.example.jp:2525"}}
{extra}
[sender.relays."relay-d.example.jp:587"]
username = "news"
password_file = "{pw}"
[sender.relays."relay-a.example.jp:25"]
tls = "verify"
ca_file = "/etc/ssl/relay-ca.pem"
"""


def config(tmp_path: Path, extra: str = "", toml: str = TOML):
    pw = tmp_path / "relay.pass"
    pw.write_text(SECRET + "\n")
    pw.chmod(0o600)
    path = tmp_path / "mailhygiene.toml"
    path.write_text(toml.format(pw=pw, extra=extra), encoding="utf-8")
    return load_config(path, data_dir=tmp_path / "data", timezone="UTC")


def entries(text: str) -> dict[str, str]:
    """A makemap source as key -> value (comment lines skipped, as makemap does)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = re.split(r"\s+", line, maxsplit=1)
            assert key not in out, f"{key} twice"
            out[key] = value
    return out


def test_sendmail_gets_tls_requirements_an_authinfo_template_and_the_features_never_the_password(tmp_path):
    files = mta_config(config(tmp_path), "sendmail")
    assert set(files) == {"mailertable", "mailhygiene.mc", "access", "authinfo", "mailhygiene-features.mc"}
    assert entries(files["access"]) == {"TLS_Srv:relay-d.example.jp": "ENCR:112",          # AUTH: TLS required
                                        "TLS_Srv:relay-a.example.jp": "VERIFY:112+CN"}     # (plain.example.jp: none)
    assert entries(files["authinfo"]) == {
        "AuthInfo:relay-d.example.jp": '"U:news" "I:news" "P:@PASSWORD@" "M:PLAIN LOGIN"'}
    assert f"password_file {tmp_path / 'relay.pass'}" in files["authinfo"]
    features = files["mailhygiene-features.mc"]
    for line in ("FEATURE(`access_db')dnl", "FEATURE(`authinfo')dnl", "define(`confAUTH_OPTIONS', `p')dnl",
                 "FEATURE(`check_cert_altnames')dnl", "define(`confCACERT', `/etc/ssl/relay-ca.pem')dnl"):
        assert line in features.splitlines()
    assert re.search(r"^Mmh_docomo, .* A=TCP \$h 587$", files["mailhygiene.mc"], re.M)
    assert "relay-d.example.jp:587 (docomo, softbank, ymobile) needs STARTTLS (encrypt) and AUTH as news" \
        in files["mailhygiene.mc"]
    assert all(SECRET not in text for text in files.values())
    # sender.tls = "encrypt": the carriers delivered to their MX get TLS_Rcpt: for every domain
    enc = mta_config(config(tmp_path, toml='[sender]\nfrom_address = "news@mail.example.jp"\ntls = "encrypt"\n'
                                          'routes = {{docomo = "relay-d.example.jp:587"}}\n{extra}'), "sendmail")
    rcpt = entries(enc["access"])
    assert rcpt["TLS_Srv:relay-d.example.jp"] == "ENCR:112"
    assert rcpt["TLS_Rcpt:ezweb.ne.jp"] == "ENCR:112" and rcpt["TLS_Rcpt:i.softbank.jp"] == "ENCR:112"
    assert "TLS_Rcpt:docomo.ne.jp" not in rcpt                 # docomo goes through its relay (TLS_Srv:)
    # no relay needing anything: no access, authinfo or features file
    plain = mta_config(config(tmp_path, toml='[sender]\nfrom_address = "news@mail.example.jp"\n'
                                            'routes = {{docomo = "r.example.jp"}}\n{extra}'), "sendmail")
    assert set(plain) == {"mailertable", "mailhygiene.mc"}


def _run_namespaced(root: Path, args: list[str], stdin: str) -> str:
    """The unpacked sendmail in a private mount/UTS namespace with our hosts and resolv.conf (as
    tests/test_sendmail_real.py runs it): no DNS query leaves the machine."""
    (root / "dev").mkdir(parents=True)
    for n in ("null", "zero", "random", "urandom"):
        (root / "dev" / n).touch()
    (root / "hosts").write_text("127.0.0.1 localhost mx.closedloop.test\n")
    (root / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", "ROOT": str(root)}
    return subprocess.run(["unshare", "-m", "-u", "sh", "-c", NAMESPACE_SH, "sh", *args], input=stdin,
                          capture_output=True, text=True, timeout=30, env=env).stdout


@pytest.mark.parametrize("_", [0], ids=["sendmail-8.17"])
@SENDMAIL_MARKS[0]
@SENDMAIL_MARKS[1]
@SENDMAIL_MARKS[2]
@SENDMAIL_MARKS[3]
def test_the_real_sendmail_builds_them_and_its_rulesets_enforce_them(tmp_path, _):
    """m4 builds a .cf with the generated FEATUREs and mailers, makemap compiles access and
    authinfo, and sendmail's own rulesets (address test mode, -bt) hand the relay its credentials,
    refuse a session without STARTTLS (no AUTH in clear), a certificate that does not verify or
    names another host."""
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["--config", str(config(tmp_path).source), "--data-dir", str(tmp_path / "data"),
                                 "send", "mta-config", "--mta", "sendmail", "--dir", str(out)])
    assert r.exit_code == 0, r.output
    mc = ("divert(0)dnl\nOSTYPE(`linux')dnl\nFEATURE(`mailertable')dnl\n" + (out / "mailhygiene-features.mc").read_text()
          + "MAILER(`local')dnl\nMAILER(`smtp')dnl\n" + (out / "mailhygiene.mc").read_text())
    (tmp_path / "t.mc").write_text(mc)
    built = subprocess.run(["m4", f"-D_CF_DIR_={CF_DIR}/", str(CF_DIR / "m4/cf.m4"), str(tmp_path / "t.mc")],
                           capture_output=True, text=True, timeout=30)
    assert built.returncode == 0 and not built.stderr, built.stderr
    cf = built.stdout
    for line in ("Kauthinfo hash /etc/mail/authinfo", "O AuthOptions=p", "O CACertFile=/etc/ssl/relay-ca.pem",
                 "O SetCertAltnames=true"):
        assert line in cf.splitlines()
    makemap = SENDMAIL.with_name("makemap")
    (tmp_path / "empty.cf").write_text("")
    for name in ("access", "authinfo"):
        made = subprocess.run([str(makemap), "-C", str(tmp_path / "empty.cf"), "hash", str(out / name)],
                              stdin=(out / name).open("rb"), capture_output=True, timeout=30)
        assert made.returncode == 0, made.stderr
    cf = (cf.replace("Kauthinfo hash /etc/mail/authinfo", f"Kauthinfo hash {out}/authinfo")
          .replace("Kaccess hash -T<TMPF> /etc/mail/access", f"Kaccess hash -T<TMPF> {out}/access"))
    (tmp_path / "t.cf").write_text(cf)
    script = """.D{server_addr}10.0.0.1
.D{server_name}relay-d.example.jp
authinfo x
.D{server_name}plain.example.jp
authinfo x
.D{server_name}relay-d.example.jp
.D{verify}NONE
tls_server NONE
.D{verify}OK
.D{cipher_bits}256
tls_server OK
.D{server_name}relay-a.example.jp
.D{cn_subject}relay-a.example.jp
tls_server OK
.D{cn_subject}evil.example.jp
tls_server OK
.D{cn_subject}relay-a.example.jp
.D{verify}FAIL
tls_server FAIL
"""
    text = _run_namespaced(tmp_path / "ns", [str(SENDMAIL), "-C", str(tmp_path / "t.cf"),
                                             "-ODontBlameSendmail=MapInUnsafeDirPath", "-bt"], script)
    results = [ln.split("returns:", 1)[1].strip() for ln in text.splitlines()
               if ln.startswith(("authinfo ", "tls_server ")) and "returns:" in ln]
    assert results[0] == '$# "U:news" "I:news" "P:@PASSWORD@" "M:PLAIN LOGIN"', text
    assert results[1] == "no"                                  # another host gets no credentials
    assert "454" in results[2] and "encryption too weak" in results[2]    # no STARTTLS: refused, AUTH never sent
    assert results[3] == "OK"
    assert results[4] == "OK"                                  # verified, and it names the relay
    assert "does not match" in results[5]                      # verified, but another host's certificate
    assert "authentication failed" in results[6]               # not verified
    assert len(results) == 7


def mta_config_cli(cfg, *args):
    return CliRunner().invoke(cli, ["--config", str(cfg.source), "--data-dir", str(cfg.data_dir), "send",
                                    "mta-config", "--mta", "qmail", *args])


def test_qmail_refuses_routes_that_need_tls_or_auth_and_writes_nothing(tmp_path):
    cfg = config(tmp_path)
    r = mta_config_cli(cfg, "--dir", str(tmp_path / "qmail"))
    assert r.exit_code == 1
    assert r.output.startswith("Error: qmail cannot send these routes safely")
    assert "relay-d.example.jp:587 (docomo, softbank, ymobile) needs STARTTLS (encrypt) and AUTH as news" in r.output
    assert "relay-a.example.jp:25 (au) needs STARTTLS (verify)" in r.output
    assert "plain.example.jp" not in r.output                  # that one needs nothing
    assert "--mta postfix" in r.output and "direct mode" in r.output
    assert not (tmp_path / "qmail").exists() and SECRET not in r.output
    # the carriers' MX under sender.tls = "encrypt": refused too (qmail-remote would go in clear)
    mx = config(tmp_path, toml='[sender]\nfrom_address = "news@mail.example.jp"\ntls = "encrypt"\n{extra}')
    r = mta_config_cli(mx)
    assert r.exit_code == 1 and "the recipient domains' MX (docomo, au, softbank" in r.output, r.output
    # nothing needing TLS/AUTH: smtproutes as before
    ok = config(tmp_path, toml='[sender]\nfrom_address = "news@mail.example.jp"\n'
                               'routes = {{docomo = "r.example.jp:2525"}}\n{extra}')
    r = mta_config_cli(ok)
    assert r.exit_code == 0 and "docomo.ne.jp:r.example.jp:2525" in r.output.splitlines()


def test_an_implicit_tls_relay_is_postfix_wrappermode_and_refused_by_sendmail_and_qmail(tmp_path):
    from pipeline.core.errors import ConfigError
    from pipeline.sender.mtaconfig import postfix_config

    cfg = config(tmp_path, toml='[sender]\nfrom_address = "news@mail.example.jp"\n'
                                'routes = {{docomo = "smtps.example.jp:465"}}\n{extra}'
                                '[sender.relays."smtps.example.jp:465"]\nimplicit_tls = true\n')
    master = postfix_config(cfg)["master.cf"]
    assert "  -o smtp_tls_wrappermode=yes" in master.splitlines()
    assert "  -o smtp_tls_security_level=encrypt" in master.splitlines()     # "may" has no meaning there
    with pytest.raises(ConfigError, match=r"implicit TLS \(SMTPS\): smtps.example.jp:465 \(docomo\)"):
        mta_config(cfg, "sendmail")
    with pytest.raises(ConfigError, match=r"smtps.example.jp:465 \(docomo\) needs implicit TLS \(encrypt\)"):
        mta_config(cfg, "qmail")
