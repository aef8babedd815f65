"""A relay that cannot be used (refused, unreachable, silent, dropping or refusing us at its
greeting, its host name unresolvable) pauses that relay with a growing pause, not the carrier:
its messages wait (never lost, never expired, never a recipient's error), a probe retries it when
the pause ends, the pause survives a restart and shows in `send status`, and the other relays go
on. Real sockets on loopback; every run bounded by max_seconds, timeouts short."""

from __future__ import annotations

import socket
import time

import pytest
from click.testing import CliRunner

import pipeline
from pipeline.cli import cli
from pipeline.sender.daemon import run_daemon
from pipeline.sender.enqueue import enqueue
from pipeline.sender.queue import Queue
from pipeline.sender.testing import BrokenRelay, RecordingServer, free_port
from pipeline.sender.throttle import Rate, Throttle

from fixtures import make_config, sender_toml


def make_cfg(tmp_path, default_relay, extra="", concurrency=1):
    tmp_path.mkdir(parents=True, exist_ok=True)
    return make_config(tmp_path, sender_toml(default_relay) + f"""default_rate = {{count = 1000, interval = 1.0}}
backoff_base = 0.1
backoff_max = 0.1
timeout = 0.3
max_attempts = 1
concurrency = {concurrency}
{extra}
""")


def rows(cfg):
    return {r["address"]: r for r in Queue.for_config(cfg).rows()}


def events(cfg):
    return pipeline.connect(cfg.data_dir).execute(
        "SELECT recipient, status, reason, scope, diagnostic FROM events ORDER BY recipient").fetchall()


def status(cfg, *args):
    return CliRunner().invoke(cli, ["--config", str(cfg.source), "--data-dir", str(cfg.data_dir), "send", "status",
                                    *args], catch_exceptions=False).output


class Refused:
    """A closed port: the connection is refused."""

    def __init__(self):
        self.relay = f"127.0.0.1:{free_port()}"
        self.accepted: list[float] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


class Unresolvable:
    """A relay host whose name does not resolve (getaddrinfo fails as for NXDOMAIN)."""

    host = "relay.mailhygiene-test.invalid"

    def __init__(self, monkeypatch):
        real = socket.getaddrinfo

        def getaddrinfo(host, *a, **kw):
            if str(host).lower() == self.host:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return real(host, *a, **kw)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        self.relay = f"{self.host}:25"
        self.accepted: list[float] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


FAULTS = {
    "refused": (lambda mp: Refused(), "connection to 127.0.0.1:"),
    "dns": (lambda mp: Unresolvable(mp), "cannot resolve the relay host relay.mailhygiene-test.invalid"),
    "silent": (lambda mp: BrokenRelay("silent"), "no answer from"),
    "connect_timeout": (lambda mp: BrokenRelay("backlog"), "no answer from"),
    "dropped": (lambda mp: BrokenRelay("drop"), "closed the connection before the session was open"),
    "greeting_421": (lambda mp: BrokenRelay("greet", "421 4.3.2 Service not available, closing channel"),
                     "refused the session at its greeting: 421"),
    "greeting_554": (lambda mp: BrokenRelay("greet", "554 5.7.1 user unknown"), "refused the session at its greeting: 554"),
    # implicit_tls = true towards a port that speaks plain SMTP: the TLS handshake fails
    "implicit_tls_handshake": (lambda mp: RecordingServer(), "TLS handshake with 127.0.0.1:"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_an_unusable_relay_is_paused_and_its_messages_wait_while_another_relay_sends(tmp_path, monkeypatch, fault):
    """docomo goes through the broken relay, au through a working one. One try reaches the broken
    relay, not one per message; the others wait untouched; au's mail goes on; nothing expires
    (max_attempts = 1) and nothing is the address's fault."""
    make, wording = FAULTS[fault]
    with make(monkeypatch) as bad, RecordingServer() as good:
        implicit = f'\n[sender.relays."{bad.relay}"]\nimplicit_tls = true' if fault == "implicit_tls_handshake" else ""
        cfg = make_cfg(tmp_path, good.relay, f'routes = {{docomo = "{bad.relay}"}}\nrelay_pause = 30{implicit}')
        enqueue(cfg, subject="s", body="b", addresses=[f"u{i}@docomo.ne.jp" for i in range(4)]
                + ["a@au.com", "b@au.com"])
        t0 = time.monotonic()
        stats = run_daemon(cfg, exit_when_done=True, max_seconds=0.7)
        assert time.monotonic() - t0 < 1.5
        assert len(getattr(bad, "accepted", ())) <= 1      # one try, not one per queued message
        assert not getattr(bad, "received", [])
        assert sorted(good.addresses()) == ["a@au.com", "b@au.com"]
    assert stats.sent == 2 and stats.deferred == 1 and stats.failed == 0
    r = rows(cfg)
    deferred = [a for a, row in r.items() if row["state"] == "deferred"]
    assert len(deferred) == 1 and sum(row["state"] == "queued" for row in r.values()) == 3
    row = r[deferred[0]]
    assert wording in row["reply"] and row["smtp_phase"] == "connect"
    assert row["next_attempt_at"] > time.time() + 25    # it waits for the relay's pause
    q = Queue.for_config(cfg)
    states = q.throttle_states()
    assert states[f"relay:{bad.relay}"][0] > time.time() + 25
    assert q.relay_strikes() == {f"relay:{bad.relay}": 1}
    if fault != "greeting_421":     # a 421 greeting is also the carrier's rate signal
        assert states.get("docomo", (0.0,))[0] < time.time()
    (ev,) = [e for e in events(cfg) if e[0] == deferred[0]]
    assert ev[1] == "deferred" and ev[3] != "recipient"          # never a counted error
    out = status(cfg)
    assert f"relay {bad.relay} paused" in out and "retried when the pause ends" in out


def test_the_pause_grows_to_its_cap_then_the_relay_is_retried_and_delivers_when_back(tmp_path):
    """relay_pause 0.05, cap 0.1: probes 0.05 then 0.1 s apart, one connection each though four
    workers wait; then the relay comes back on the same port, the next probe (0.1 s later: the cap)
    opens a session and everything goes, the run of failures over. (A pause is a lower bound: the
    gaps are checked from below, loosely from above, so a loaded machine does not fail it.)"""
    import threading

    port = free_port()
    relay = f"127.0.0.1:{port}"
    cfg = make_cfg(tmp_path, relay, "relay_pause = 0.05\nrelay_pause_max = 0.1", concurrency=4)
    enqueue(cfg, subject="s", body="b", addresses=[f"u{i}@docomo.ne.jp" for i in range(6)])
    bad = BrokenRelay("drop", port=port).__enter__()
    good = RecordingServer(port=port)

    def comes_back():      # after two probes: the next one finds it back
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and sum(b - a > 0.03 for a, b in zip(bad.accepted, bad.accepted[1:])) < 2:
            time.sleep(0.01)
        bad.__exit__()
        good.start()

    swap = threading.Thread(target=comes_back)
    swap.start()
    try:
        stats = run_daemon(cfg, exit_when_done=True, max_seconds=2.0)
    finally:
        swap.join()
        good.stop()
    starts = bad.accepted
    gaps = [round(b - a, 2) for a, b in zip(starts, starts[1:])]
    burst = [g for g in gaps if g <= 0.03]
    probes = [g for g in gaps if g > 0.03]
    # the first burst: at most `concurrency` workers connected before the first failure came back;
    # then one probe per pause, the pause doubling to its cap
    assert len(burst) <= 3 and gaps[:len(burst)] == burst, gaps
    assert len(probes) == 2 and 0.045 <= probes[0] < 0.09 and 0.095 <= probes[1] < 0.2, gaps
    assert sorted(good.addresses()) == [f"u{i}@docomo.ne.jp" for i in range(6)]
    assert stats.sent == 6 and stats.failed == 0            # max_attempts = 1: the outage expired nothing
    assert 0.095 <= min(good.times()) - starts[-1] < 0.3    # retried when the pause (the cap) ended
    assert Queue.for_config(cfg).relay_strikes() == {}      # the session that opened ended the run
    assert {r["state"] for r in rows(cfg).values()} == {"sent"}


def test_the_pause_and_its_run_of_failures_survive_a_restart(tmp_path):
    port = free_port()
    relay = f"127.0.0.1:{port}"
    with RecordingServer() as other:
        cfg = make_cfg(tmp_path, relay, f'routes = {{au = "{other.relay}"}}\nrelay_pause = 20\nrelay_pause_max = 100')
        enqueue(cfg, subject="s", body="b", addresses=["a@docomo.ne.jp", "b@docomo.ne.jp"])
        run_daemon(cfg, exit_when_done=True, max_seconds=0.5)           # refused: paused 20 s
        with RecordingServer(port=port) as srv:   # the relay is back, but its pause holds after the restart
            enqueue(cfg, subject="s2", body="b", addresses=["c@au.com"])
            run_daemon(cfg, exit_when_done=True, max_seconds=0.6)
            assert srv.received == []
        assert other.addresses() == ["c@au.com"]                          # the other relay went on
    q = Queue.for_config(cfg)
    assert q.throttle_states()[f"relay:{relay}"][0] > time.time() + 15
    assert q.relay_strikes() == {f"relay:{relay}": 1}
    assert f"relay {relay} paused" in status(cfg)
    import json

    assert json.loads(status(cfg, "--json"))["relay_failures"] == {relay: 1}
    # the next failure after a restart doubles the pause: the run of failures was restored
    cfg2 = make_cfg(tmp_path, relay, "relay_pause = 0\nrelay_pause_max = 0")
    Queue.for_config(cfg2).save_throttle_state(f"relay:{relay}", 0.0, 1.0, 0.0, strikes=1)
    th = Throttle({}, Rate(10, 1.0))
    th.restore([], q.throttle_states(), {f"relay:{relay}": 1})
    assert th.relay_strikes(relay) == 1


def test_a_relay_s_run_of_failures_doubles_its_pause_up_to_the_cap():
    now = [1000.0]
    saved = {}
    th = Throttle({}, Rate(10, 1.0), clock=lambda: now[0],
                  on_state=lambda c, p, f, at, strikes=None: saved.update({c: (p, strikes)}))
    r = "relay.example.jp:587"
    assert th.pause_relay(r, 10, 50) == (1010.0, 1)
    assert th.pause_relay(r, 10, 50) == (1010.0, 1)     # a session begun before the pause: same outage
    now[0] = 1010.0
    th.relay_taken(r)
    assert th.relay_wait(r) == th.probe_wait             # the probe is out: the others wait for it
    assert th.pause_relay(r, 10, 50) == (1030.0, 2)
    assert th.relay_wait(r) == 20.0
    now[0] = 1030.0
    assert th.pause_relay(r, 10, 50) == (1070.0, 3)
    now[0] = 1070.0
    assert th.pause_relay(r, 10, 50) == (1120.0, 4)      # 80 s, held to the cap
    assert saved[f"relay:{r}"] == (1120.0, 4)
    th.relay_ok(r)
    assert th.relay_strikes(r) == 0 and saved[f"relay:{r}"][1] == 0
    now[0] = 1200.0
    assert th.pause_relay(r, 10, 50) == (1210.0, 1)      # a new run starts short again


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    from fixtures import make_cert

    return make_cert(tmp_path_factory.mktemp("cert"))


def test_an_implicit_tls_relay_delivers_over_tls_from_the_first_byte(tmp_path, cert):
    """implicit_tls = true (SMTPS, port 465): TLS before the greeting, the certificate verified,
    AUTH inside it; `doctor relays` checks it the same way and fails a plain port."""
    from fixtures import PASSWORD, password_file, server_tls
    from pipeline.sender.relaycheck import check_relays

    with RecordingServer(implicit_tls_context=server_tls(cert), logins={"news": PASSWORD}) as srv, \
            RecordingServer() as plain:
        pw = password_file(tmp_path)
        cfg = make_cfg(tmp_path, srv.relay, f"""routes = {{au = "{plain.relay}"}}
[sender.relays."{srv.relay}"]
implicit_tls = true
tls = "verify"
ca_file = "{cert}"
username = "news"
password_file = "{pw}"
[sender.relays."{plain.relay}"]
implicit_tls = true
""")
        checks = {c.name: c for c in check_relays(cfg, timeout=2, login=True)}
        enqueue(cfg, subject="s", body="b", addresses=["a@docomo.ne.jp"])
        stats = run_daemon(cfg, exit_when_done=True, max_seconds=1.0)
        assert [(r.rcpt_tos, r.tls, r.login) for r in srv.received] == [(["a@docomo.ne.jp"], True, "news")]
    assert stats.sent == 1
    good = checks[f"relay {srv.relay}"]
    assert good.status == "pass" and "implicit TLS" in good.detail and "AUTH PLAIN as news accepted" in good.detail
    bad = checks[f"relay {plain.relay}"]
    assert bad.status == "fail" and "TLS handshake" in bad.detail and "465" in bad.fix
