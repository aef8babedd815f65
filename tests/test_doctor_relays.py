"""`doctor relays`: each configured relay's STARTTLS and AUTH, against aiosmtpd on loopback with
and without STARTTLS (a self-signed certificate made by openssl, as in test_sender_tls_auth.py).
The password is never sent without --login, and never in plain text."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.sender.relaycheck import check_relays
from pipeline.sender.testing import RecordingServer, free_port

import pytest

from fixtures import PASSWORD, make_cert, make_config, password_file, sender_toml, server_tls


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("cert"))


def cfg_with(tmp_path, relay, table="", extra=""):
    return make_config(tmp_path, sender_toml(relay) + extra + "\n" + table)


def one(results):
    (r,) = results
    return r


def test_no_relays_configured_says_so(tmp_path):
    r = one(check_relays(cfg_with(tmp_path, "127.0.0.1:25")))
    assert r.status == "pass" and "no relays configured" in r.detail


def test_a_relay_with_starttls_verified_and_auth_offered_passes_without_sending_the_password(tmp_path, cert):
    with RecordingServer(tls_context=server_tls(cert), logins={"news": PASSWORD}) as srv:
        pw = password_file(tmp_path)
        cfg = cfg_with(tmp_path, srv.relay, f'[sender.relays."{srv.relay}"]\ntls = "verify"\nca_file = "{cert}"\n'
                                            f'username = "news"\npassword_file = "{pw}"\n')
        r = one(check_relays(cfg, timeout=5))
        assert srv.auth_attempts == [] and srv.received == []
    assert r.status == "pass", r
    assert r.name == f"relay {srv.relay}" and "certificate verified" in r.detail and "AUTH PLAIN LOGIN offered" in r.detail
    assert r.data["starttls"] is True and r.data["tls_version"].startswith("TLS")


def test_login_tries_the_password_once_over_tls(tmp_path, cert):
    with RecordingServer(tls_context=server_tls(cert), logins={"news": PASSWORD}) as srv:
        good = password_file(tmp_path)
        cfg = cfg_with(tmp_path, srv.relay, f'[sender.relays."{srv.relay}"]\nusername = "news"\npassword_file = "{good}"\n')
        assert one(check_relays(cfg, timeout=5, login=True)).status == "pass"
        (tmp_path / "bad").mkdir()
        bad = password_file(tmp_path / "bad", "wr0ng-Pa55\n")
        cfg = cfg_with(tmp_path / "bad", srv.relay, f'[sender.relays."{srv.relay}"]\nusername = "news"\npassword_file = "{bad}"\n')
        r = one(check_relays(cfg, timeout=5, login=True))
        assert srv.auth_attempts == ["news", "news"]
    assert r.status == "fail" and "refused" in r.detail and "wr0ng-Pa55" not in r.detail


def test_a_relay_without_starttls_fails_when_it_has_a_username_and_never_gets_the_password(tmp_path):
    with RecordingServer() as srv:
        pw = password_file(tmp_path)
        cfg = cfg_with(tmp_path, srv.relay, f'[sender.relays."{srv.relay}"]\nusername = "news"\npassword_file = "{pw}"\n')
        r = one(check_relays(cfg, timeout=5, login=True))
        assert srv.auth_attempts == []
    assert r.status == "fail" and "offers no STARTTLS" in r.detail and "AUTH is only ever sent over TLS" in r.detail


def test_a_relay_without_starttls_warns_under_may_and_fails_under_encrypt(tmp_path):
    with RecordingServer() as srv:
        table = f'[sender.relays."{srv.relay}"]\n'
        assert one(check_relays(cfg_with(tmp_path, srv.relay, table + 'tls = "may"\n'), timeout=5)).status == "warn"
        r = one(check_relays(cfg_with(tmp_path, srv.relay, table + 'tls = "encrypt"\n'), timeout=5))
    assert r.status == "fail" and 'tls = "encrypt"' in r.detail


def test_an_untrusted_certificate_and_an_unreachable_relay_fail_with_their_reason(tmp_path, cert):
    closed = f"127.0.0.1:{free_port()}"
    with RecordingServer(tls_context=server_tls(cert)) as srv:
        # sender.tls = "verify": every relay used is checked, also those without a [sender.relays] entry
        cfg = cfg_with(tmp_path, srv.relay, extra=f'tls = "verify"\nroutes = {{au = "{closed}"}}')
        results = {r.name: r for r in check_relays(cfg, timeout=5)}
    assert set(results) == {f"relay {srv.relay}", f"relay {closed}"}
    assert results[f"relay {srv.relay}"].status == "fail" and "not trusted" in results[f"relay {srv.relay}"].detail
    assert results[f"relay {closed}"].status == "fail" and "cannot connect" in results[f"relay {closed}"].detail


def test_the_command_exits_3_on_a_failing_relay_and_prints_json(tmp_path):
    with RecordingServer() as srv:
        cfg = cfg_with(tmp_path, srv.relay, f'[sender.relays."{srv.relay}"]\ntls = "encrypt"\n')
        args = ["--config", str(cfg.source), "--data-dir", str(cfg.data_dir), "doctor", "relays", "--timeout", "5"]
        res = CliRunner().invoke(cli, args + ["--json"], catch_exceptions=False)
        text = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 3 and json.loads(res.output)[0]["status"] == "fail"
    assert text.exit_code == 3 and f"FAIL  relay {srv.relay}" in text.output and "fix:" in text.output
