"""STARTTLS and SMTP AUTH towards relays (sender.tls, sender.relays), against aiosmtpd on loopback
with a self-signed certificate made here (openssl). Every run is bounded by max_seconds."""

from __future__ import annotations

import logging
import ssl
import time
from pathlib import Path

import pytest

import pipeline
from pipeline.core.errors import ConfigError
from pipeline.sender.daemon import run_daemon
from pipeline.sender.enqueue import enqueue
from pipeline.sender.queue import Queue
from pipeline.sender.testing import RecordingServer

from fixtures import PASSWORD, make_cert, make_config, password_file, sender_toml, server_tls

@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> Path:
    return make_cert(tmp_path_factory.mktemp("cert"))


def make_cfg(tmp_path, relay, extra=""):
    tmp_path.mkdir(parents=True, exist_ok=True)
    return make_config(tmp_path, sender_toml(relay) + f"""default_rate = {{count = 1000, interval = 1.0}}
backoff_base = 60
backoff_max = 60
timeout = 5
concurrency = 1
rate_limit_pause = 60
{extra}
""")


def send(cfg, addresses, seconds=3.0):
    enqueue(cfg, subject="件名", body="本文", addresses=addresses)
    return run_daemon(cfg, exit_when_done=True, max_seconds=seconds)


def rows(cfg):
    return {r["address"]: r for r in Queue.for_config(cfg).rows()}


def events(cfg):
    con = pipeline.connect(cfg.data_dir)
    return con.execute("SELECT recipient, status, reason, scope, diagnostic FROM events ORDER BY recipient").fetchall()


def test_may_uses_starttls_when_the_relay_offers_it(tmp_path, cert):
    with RecordingServer(tls_context=server_tls(cert)) as srv:
        cfg = make_cfg(tmp_path, srv.relay)          # tls = "may" by default
        assert send(cfg, ["a@docomo.ne.jp"]).sent == 1
    assert [r.tls for r in srv.received] == [True]


def test_may_sends_in_plain_text_to_a_relay_without_starttls(tmp_path):
    with RecordingServer() as srv:
        cfg = make_cfg(tmp_path, srv.relay)
        assert send(cfg, ["a@docomo.ne.jp"]).sent == 1
    assert [r.tls for r in srv.received] == [False]


def test_encrypt_defers_when_starttls_is_not_offered_and_sends_nothing_in_clear(tmp_path):
    with RecordingServer() as srv:
        cfg = make_cfg(tmp_path, srv.relay, 'tls = "encrypt"')
        stats = send(cfg, ["a@docomo.ne.jp"])
        assert stats.sent == 0 and stats.deferred == 1
        assert srv.received == [] and srv.rcpt_attempts == []     # not even RCPT went out
    row = rows(cfg)["a@docomo.ne.jp"]
    assert row["state"] == "deferred"
    assert f"STARTTLS not offered by {srv.relay}" in row["reply"]
    (ev,) = events(cfg)
    assert ev[1] == "deferred" and ev[3] == "sender"              # never the address's fault
    assert f"STARTTLS not offered by {srv.relay}" in ev[4]


def test_verify_refuses_a_self_signed_certificate_unless_its_ca_file_is_configured(tmp_path, cert):
    with RecordingServer(tls_context=server_tls(cert)) as srv:
        cfg = make_cfg(tmp_path / "system", srv.relay, 'tls = "verify"')
        stats = send(cfg, ["a@docomo.ne.jp"])
        assert stats.deferred == 1 and srv.received == [] and srv.rcpt_attempts == []
        row = rows(cfg)["a@docomo.ne.jp"]
        assert "certificate" in row["reply"] and srv.relay in row["reply"]
        assert events(cfg)[0][3] == "sender"

        cfg = make_cfg(tmp_path / "ca", srv.relay, f'[sender.relays."{srv.relay}"]\ntls = "verify"\nca_file = "{cert}"')
        assert send(cfg, ["b@docomo.ne.jp"]).sent == 1
    assert [(r.rcpt_tos, r.tls) for r in srv.received] == [(["b@docomo.ne.jp"], True)]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_with_the_right_password_delivers(tmp_path, cert, mechanism):
    with RecordingServer(tls_context=server_tls(cert), logins={"news": PASSWORD},
                         auth_mechanisms=(mechanism,)) as srv:
        pw = password_file(tmp_path)
        cfg = make_cfg(tmp_path, srv.relay,
                       f'[sender.relays."{srv.relay}"]\ntls = "encrypt"\nusername = "news"\npassword_file = "{pw}"')
        assert send(cfg, ["a@docomo.ne.jp", "b@au.com"]).sent == 2
    assert [(r.tls, r.login) for r in srv.received] == [(True, "news")] * 2


def test_a_wrong_password_defers_pauses_the_route_and_is_never_shown(tmp_path, cert, caplog):
    wrong = "wr0ng-Pa55-xyz"
    with RecordingServer(tls_context=server_tls(cert), logins={"news": PASSWORD}) as srv:
        pw = password_file(tmp_path, wrong + "\n")
        cfg = make_cfg(tmp_path, "127.0.0.1:9", f"""routes = {{docomo = "{srv.relay}"}}
[sender.relays."{srv.relay}"]
username = "news"
password_file = "{pw}"
""")
        with caplog.at_level(logging.DEBUG):
            stats = send(cfg, [f"u{i}@docomo.ne.jp" for i in range(5)], seconds=2.0)
        assert stats.sent == 0 and stats.deferred == 1
        assert srv.auth_attempts == ["news"]          # one refusal, then the route rests
        assert srv.received == [] and srv.rcpt_attempts == []
    q = Queue.for_config(cfg)
    states = q.throttle_states()
    assert states[f"relay:{srv.relay}"][0] > time.time() + 30    # the relay rests, not the carrier
    assert states.get("docomo", (0.0,))[0] < time.time()
    (row,) = [r for r in q.rows() if r["state"] == "deferred"]
    assert row["reply_code"] == 535 and "AUTH as news refused" in row["reply"]
    (ev,) = events(cfg)
    assert ev[1:4] == ("deferred", "auth", "sender")
    shown = caplog.text + repr(q.rows()) + repr(events(cfg))
    assert wrong not in shown
    for f in Path(cfg.data_dir).rglob("*"):
        if f.is_file():
            assert wrong.encode() not in f.read_bytes(), f


def test_auth_is_never_sent_in_plain_text(tmp_path):
    with RecordingServer() as srv:
        pw = password_file(tmp_path)
        cfg = make_cfg(tmp_path, srv.relay,
                       f'[sender.relays."{srv.relay}"]\nusername = "news"\npassword_file = "{pw}"')
        assert send(cfg, ["a@docomo.ne.jp"]).deferred == 1
        assert srv.received == [] and srv.rcpt_attempts == []
    assert "never sent in plain text" in rows(cfg)["a@docomo.ne.jp"]["reply"]


@pytest.mark.parametrize("mode", [0o644, 0o606])
def test_a_password_file_others_may_read_stops_the_start(tmp_path, mode):
    with RecordingServer() as srv:
        pw = password_file(tmp_path, mode=mode)
        cfg = make_cfg(tmp_path, srv.relay,
                       f'[sender.relays."{srv.relay}"]\nusername = "news"\npassword_file = "{pw}"')
        enqueue(cfg, subject="s", body="b", addresses=["a@docomo.ne.jp"])
        with pytest.raises(ConfigError) as err:
            run_daemon(cfg, exit_when_done=True, max_seconds=3)
        assert srv.rcpt_attempts == []
    assert "chmod 600" in str(err.value) and PASSWORD not in str(err.value)


@pytest.mark.parametrize("table, wanted", [
    ('[sender.relays."relay.example.jp:x"]\ntls = "encrypt"', "not host:port"),
    ('[sender.relays."relay.example.jp:587"]\nusername = "news"', "go together"),
    ('[sender.relays."relay.example.jp:587"]\npassword_file = "relay.pass"\nusername = "u"', "absolute path"),
    ('[sender.relays."relay.example.jp:587"]\ntls = "dane"', "choose from"),
    ('[sender.relays."relay.example.jp:587"]\ntls = "verify"\nca_file = "/nonexistent/ca.pem"', "CA file"),
    ('[sender.relays."127.0.0.1:10"]\ntls = "encrypt"', "no route, default_relay nor intake.reply_relay uses"),
])
def test_bad_relay_settings_stop_the_start(tmp_path, table, wanted):
    with pytest.raises(ConfigError, match=wanted):
        cfg = make_cfg(tmp_path, "127.0.0.1:9", 'routes = {docomo = "relay.example.jp:587"}\n' + table)
        run_daemon(cfg, exit_when_done=True, max_seconds=3)


def broken_tls(cert: Path) -> ssl.SSLContext:
    """A server context no default client completes a handshake with: TLS 1.2 with null
    encryption only (no shared cipher)."""
    ctx = server_tls(cert)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("eNULL:@SECLEVEL=0")
    return ctx


def test_a_failed_handshake_falls_back_to_plain_under_may_and_defers_under_encrypt(tmp_path, cert):
    with RecordingServer(tls_context=broken_tls(cert)) as srv:
        cfg = make_cfg(tmp_path / "may", srv.relay)
        assert send(cfg, ["a@docomo.ne.jp"]).sent == 1            # Postfix's `may`: plain, over a new connection
        assert [r.tls for r in srv.received] == [False]

        cfg = make_cfg(tmp_path / "encrypt", srv.relay, 'tls = "encrypt"')
        assert send(cfg, ["b@docomo.ne.jp"]).deferred == 1
        assert len(srv.received) == 1 and len(srv.rcpt_attempts) == 1   # b's never reached RCPT
    reply = rows(cfg)["b@docomo.ne.jp"]["reply"]
    assert f"TLS handshake with {srv.relay} failed" in reply and "nothing was sent" in reply


def test_the_intake_s_reply_uses_the_relay_s_tls_and_auth(tmp_path, cert):
    from pipeline.sender.intake import Request, send_reply

    with RecordingServer(tls_context=server_tls(cert), logins={"news": PASSWORD}) as srv:
        pw = password_file(tmp_path)
        cfg = make_cfg(tmp_path, srv.relay, f'[sender.relays."{srv.relay}"]\ntls = "verify"\nca_file = "{cert}"\n'
                                             f'username = "news"\npassword_file = "{pw}"')
        assert send_reply(cfg, Request(sender="ops@example.jp", message_id="<r1@example.jp>", request_key="k"), "3 queued")
    assert [(r.rcpt_tos, r.tls, r.login) for r in srv.received] == [(["ops@example.jp"], True, "news")]


def test_send_status_says_why_a_carrier_waits(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import cli

    with RecordingServer() as srv:
        cfg = make_cfg(tmp_path, srv.relay, 'tls = "encrypt"')
        send(cfg, ["a@docomo.ne.jp"])
    out = CliRunner().invoke(cli, ["--config", str(cfg.source), "--data-dir", str(cfg.data_dir), "send", "status"], catch_exceptions=False).output
    assert f"last deferral via {srv.relay}: STARTTLS not offered by {srv.relay}" in out


def wrong_auth_relay(cert):
    return RecordingServer(tls_context=server_tls(cert), logins={"news": PASSWORD})


def test_a_refused_auth_pauses_the_relay_for_every_carrier_routed_through_it(tmp_path, cert):
    """One relay shared by docomo and au: its 535 is one refusal, not one per carrier."""
    with wrong_auth_relay(cert) as srv:
        pw = password_file(tmp_path, "wr0ng\n")
        cfg = make_cfg(tmp_path, "127.0.0.1:9", f"""routes = {{docomo = "{srv.relay}", au = "{srv.relay}"}}
[sender.relays."{srv.relay}"]
username = "news"
password_file = "{pw}"
""")
        stats = send(cfg, ["a@docomo.ne.jp", "b@au.com", "c@docomo.ne.jp", "d@au.com"], seconds=2.0)
        assert srv.auth_attempts == ["news"] and srv.rcpt_attempts == []
    assert stats.deferred == 1 and stats.sent == 0
    states = Queue.for_config(cfg).throttle_states()
    assert states[f"relay:{srv.relay}"][0] > time.time() + 30
    assert all(states.get(c, (0.0,))[0] < time.time() for c in ("docomo", "au"))   # no carrier pause
    from click.testing import CliRunner

    from pipeline.cli import cli

    out = CliRunner().invoke(cli, ["--config", str(cfg.source), "--data-dir", str(cfg.data_dir), "send", "status"],
                             catch_exceptions=False).output
    assert f"relay {srv.relay} paused" in out


def test_a_refused_auth_leaves_the_carrier_s_other_relay_sending(tmp_path, cert):
    """docomo.ne.jp goes through a relay that refuses our password, the rest of docomo's mail
    (mopera.net) through another: that one goes on at once."""
    with wrong_auth_relay(cert) as bad, RecordingServer() as good:
        pw = password_file(tmp_path, "wr0ng\n")
        cfg = make_cfg(tmp_path, "127.0.0.1:9", f"""routes = {{"docomo.ne.jp" = "{bad.relay}", docomo = "{good.relay}"}}
[sender.relays."{bad.relay}"]
username = "news"
password_file = "{pw}"
""")
        stats = send(cfg, ["a@docomo.ne.jp", "b@mopera.net", "c@mopera.net"], seconds=2.0)
        assert bad.auth_attempts == ["news"]
        assert sorted(a for _, a in good.rcpt_attempts) == ["b@mopera.net", "c@mopera.net"]
    assert stats.sent == 2 and stats.deferred == 1
    assert rows(cfg)["a@docomo.ne.jp"]["state"] == "deferred"


def test_a_relay_without_the_required_starttls_is_tried_once_not_once_per_recipient(tmp_path):
    with RecordingServer() as srv:
        cfg = make_cfg(tmp_path, srv.relay, 'tls = "encrypt"')
        stats = send(cfg, [f"u{i}@docomo.ne.jp" for i in range(4)], seconds=1.5)
    assert stats.deferred == 1 and stats.sent == 0
    assert sum(r["state"] == "queued" for r in rows(cfg).values()) == 3     # the others wait, untouched
