"""Throttle (fake clock), backoff, routes and config defaults: pure logic, no sockets."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pipeline.core.config import load_config
from pipeline.core.errors import ConfigError
from pipeline.sender.daemon import classify_reply
from pipeline.sender.routes import Relay, Router, parse_relay
from pipeline.sender.testing import max_in_window
from pipeline.sender.throttle import Rate, Throttle

TOKYO = ZoneInfo("Asia/Tokyo")


class Clock:
    def __init__(self, t=datetime(2026, 11, 28, 10, 30, tzinfo=TOKYO).timestamp()):
        self.t = t

    def __call__(self):
        return self.t


def test_window_never_exceeds_count_even_with_slow_sends():
    clock = Clock()
    th = Throttle({"au": Rate(3, 10.0)}, Rate(100, 1.0), clock=clock)
    starts, ends = [], []
    for step in range(400):                     # 0.1 s ticks; each send takes 0.7 s
        for token, started in list(_inflight.items()):
            if clock.t - started >= 0.7:
                th.release("au", token)
                ends.append(clock.t)
                del _inflight[token]
        tok = th.try_acquire("au")
        if tok:
            starts.append(clock.t)
            _inflight[tok] = clock.t
        clock.t += 0.1
    # what a server sees lies between a send's start and end: check both
    assert max_in_window(starts, 10.0) <= 3 and max_in_window(ends, 10.0) <= 3
    assert len(starts) >= 10  # ~3 per 10.7 s over 40 s


_inflight: dict[int, float] = {}


def test_unreleased_sends_block_until_released_and_other_carriers_are_independent():
    clock = Clock()
    th = Throttle({"au": Rate(2, 60.0)}, Rate(5, 1.0), clock=clock)
    a, b = th.try_acquire("au"), th.try_acquire("au")
    assert a and b and th.try_acquire("au") is None
    assert th.wait_time("au") is None               # only a release can help
    assert th.try_acquire("docomo")                 # default rate, separate window
    th.release("au", a)
    assert th.wait_time("au") == pytest.approx(60.0)
    clock.t += 60.0
    assert th.try_acquire("au")
    th.cancel("au", b)                              # slot given back without a hold
    assert th.try_acquire("au")


def test_pause_after_rate_limit_reply():
    clock = Clock()
    th = Throttle({}, Rate(100, 1.0), clock=clock)
    th.pause("softbank", 30)
    assert th.try_acquire("softbank") is None and th.wait_time("softbank") == pytest.approx(30)
    assert th.try_acquire("au")
    clock.t += 30
    assert th.try_acquire("softbank")


def test_quiet_minutes_around_the_hour():
    clock = Clock(datetime(2026, 11, 28, 10, 58, 30, tzinfo=TOKYO).timestamp())
    th = Throttle({}, Rate(100, 1.0), quiet_minutes=2, quiet_carriers=["docomo"], tz=TOKYO, clock=clock)
    assert th.wait_time("docomo") == pytest.approx(210)  # until 11:02:00
    assert th.wait_time("au") == 0.0
    clock.t += 200
    assert th.try_acquire("docomo") is None
    clock.t += 10
    assert th.try_acquire("docomo")
    clock.t = datetime(2026, 11, 28, 11, 30, tzinfo=TOKYO).timestamp()
    assert th.wait_time("docomo") == 0.0


def test_reply_classification():
    assert classify_reply(250, "ok", "end_of_data", "au").state == "sent"
    unknown = classify_reply(550, "Unknown user x@docomo.ne.jp", "rcpt", "docomo")
    assert (unknown.state, unknown.reason) == ("failed", "user_unknown")
    slow = classify_reply(421, "4.7.0 too many connections", "connect", "au")
    assert slow.state == "deferred" and slow.rate_limited and slow.drop_connection
    assert classify_reply(450, "4.7.1 too many messages, slow down", "rcpt", "au").rate_limited
    mbox = classify_reply(452, "4.2.2 mailbox full", "rcpt", "au")
    assert mbox.state == "deferred" and not mbox.rate_limited
    ours = classify_reply(553, "<mail.example.jp> does not exist", "mail", "softbank")
    assert ours.state == "deferred" and ours.rate_limited       # our domain, not the recipient
    lost = classify_reply(None, "connection lost during data", "data", "au")
    assert lost.state == "deferred" and lost.drop_connection


def test_routes_like_mailertable():
    r = Router({"docomo": "[10.0.0.1]:2525", ".ezweb.ne.jp": "ez:25", "au.com": "au-relay:587",
                ".example.jp": "jp:26"}, "127.0.0.1:25")
    assert r.route("docomo.ne.jp", "docomo") == Relay("10.0.0.1", 2525)       # carrier
    assert r.route("mopera.net", "docomo") == Relay("10.0.0.1", 2525)
    assert r.route("au.com", "au") == Relay("au-relay", 587)                  # exact domain
    assert r.route("biz.ezweb.ne.jp", "au") == Relay("ez", 25)                # longest suffix
    assert r.route("ezweb.ne.jp", "au") == Relay("127.0.0.1", 25)             # .ezweb.ne.jp needs a sub-domain
    assert r.route("a.b.example.jp", "other") == Relay("jp", 26)
    assert r.route("gmail.com", "other") == Relay("127.0.0.1", 25)            # default
    assert parse_relay("[::1]:25") == Relay("::1", 25) and parse_relay("mx") == Relay("mx", 25)
    with pytest.raises(ConfigError):
        parse_relay("host:port")


def test_config_defaults_and_key_checking(tmp_path):
    cfg = load_config(None, data_dir=tmp_path, timezone="UTC")
    s = cfg["sender"]
    assert s["rates"]["au"] == {"count": 100, "interval": 60.0}
    assert s["default_relay"] == "127.0.0.1:25" and s["max_recipients_per_session"] == 100
    p = tmp_path / "c.toml"
    p.write_text('[sender]\nrates = {docomo = {count = 5, interval = 1}}\nroutes = {".ezweb.ne.jp" = "x:25"}\n'
                 'charsets = {au = "utf-8"}\n')
    s = load_config(p, data_dir=tmp_path, timezone="UTC")["sender"]
    assert s["rates"]["docomo"]["count"] == 5 and s["rates"]["au"]["count"] == 100
    p.write_text("[sender]\nconcurency = 3\n")
    with pytest.raises(ConfigError, match="concurency"):
        load_config(p, data_dir=tmp_path, timezone="UTC")
    p.write_text("[intake]\nshared_secert = 'x'\n")
    with pytest.raises(ConfigError, match="shared_secert"):
        load_config(p, data_dir=tmp_path, timezone="UTC")


def test_a_wall_clock_step_neither_empties_nor_stalls_a_window():
    """NTP stepping the clock, a VM resumed, `date -s`: the carrier's server counts real seconds,
    so the window must too. A step forward used to let a second full burst through at once; a
    step back held every slot for the length of the step."""
    wall, mono = Clock(), Clock(t=1000.0)
    saved = {}
    th = Throttle({"au": Rate(2, 60.0)}, Rate(5, 1.0), clock=wall, monotonic=mono,
                  on_state=lambda c, p, f, at: saved.update({c: (p, f, at)}))
    for token in (th.try_acquire("au"), th.try_acquire("au")):
        th.release("au", token)
    wall.t += 3600                                   # one hour forward, no real time passed
    assert th.try_acquire("au") is None and th.wait_time("au") == pytest.approx(60.0)
    wall.t -= 7200                                   # an hour back from the start
    mono.t += 60
    assert th.try_acquire("au")                      # the window ended after 60 real seconds
    until, _ = th.rate_limited("docomo", 30.0)       # the pause too runs on real seconds ...
    assert until == pytest.approx(wall.t + 30) and saved["docomo"][0] == pytest.approx(wall.t + 30)
    wall.t += 3600
    assert th.try_acquire("docomo") is None
    mono.t += 30
    assert th.try_acquire("docomo")
    # ... and what outlives the process is wall time, read back on the new process's clocks
    wall2, mono2 = Clock(t=wall.t), Clock(t=5.0)
    restarted = Throttle({"au": Rate(2, 60.0)}, Rate(5, 1.0), clock=wall2, monotonic=mono2)
    restarted.restore([("au", wall.t - 10, wall.t - 10)] * 2, {})
    assert restarted.try_acquire("au") is None and restarted.wait_time("au") == pytest.approx(50.0)


# --- carriers that share servers share a window (Y!mobile's MX and 特定接続 relay are SoftBank's)

def _drive(th, clock, carriers, seconds, send_time=0.5):
    """Offer a send of each carrier every 0.1 s for `seconds` (each takes send_time): the
    start times the shared servers saw, per carrier."""
    inflight, starts = {}, {c: [] for c in carriers}
    for _ in range(int(seconds * 10)):
        for (carrier, token), started in list(inflight.items()):
            if clock.t - started >= send_time:
                th.release(carrier, token)
                del inflight[(carrier, token)]
        for carrier in carriers:
            tok = th.try_acquire(carrier)
            if tok:
                starts[carrier].append(clock.t)
                inflight[(carrier, tok)] = clock.t
        clock.t += 0.1
    return starts


def test_ymobile_sends_count_in_softbanks_window_when_they_reach_the_same_servers():
    clock = Clock()
    th = Throttle.from_config({"rates": {"softbank": {"count": 3, "interval": 10.0},
                                         "ymobile": {"count": 3, "interval": 10.0}},
                               "default_rate": {"count": 100, "interval": 1.0}}, clock=clock)
    starts = _drive(th, clock, ["softbank", "ymobile"], 60)
    both = sorted(starts["softbank"] + starts["ymobile"])
    # what SoftBank's servers saw: never more than SoftBank's 3 in any 10 s, of both carriers
    assert max_in_window(both, 10.0) <= 3
    assert starts["softbank"] and starts["ymobile"]          # neither starves the other for good
    assert len(both) >= 12                                   # ~3 per 10.5 s over 60 s
    # and Y!mobile's own (lower) count still holds for its own sends
    th2 = Throttle({"softbank": Rate(10, 10.0), "ymobile": Rate(2, 10.0)}, Rate(100, 1.0), clock=clock,
                   shared={"ymobile": "softbank"})
    ym = _drive(th2, clock, ["ymobile"], 30)["ymobile"]
    assert max_in_window(ym, 10.0) <= 2


def test_ymobile_routed_to_a_relay_of_its_own_keeps_its_own_window():
    for routes, shared in (({}, True), ({"softbank": "[tokutei-sb.example.jp]:25"}, True),
                           ({"softbank": "tokutei-sb.example.jp:25", "ymobile": "[TOKUTEI-SB.example.jp]:25"}, True),
                           ({"ymobile": "relay-ym.example.jp:25"}, False),
                           ({"softbank": "a.example.jp:25", "ymobile": "b.example.jp:25"}, False)):
        clock = Clock()
        th = Throttle.from_config({"rates": {"softbank": {"count": 2, "interval": 60.0}}, "routes": routes,
                                   "default_rate": {"count": 2, "interval": 60.0}}, clock=clock)
        assert th.try_acquire("softbank") and th.try_acquire("softbank")
        assert (th.try_acquire("ymobile") is None) == shared, routes
        assert th.try_acquire("docomo")                      # other carriers never share


def test_a_shared_window_holds_across_a_restart_and_a_rate_limit_reply_slows_the_group():
    clock = Clock()
    th = Throttle({"softbank": Rate(4, 60.0)}, Rate(4, 60.0), clock=clock, shared={"ymobile": "softbank"})
    # the attempt log of the last daemon: three Y!mobile sends a few seconds ago
    th.restore([("ymobile", clock.t - 5, clock.t - 4)] * 3, {})
    first = th.try_acquire("softbank")
    assert first and th.try_acquire("softbank") is None
    th.release("softbank", first)
    clock.t += 61
    # a 421 from SoftBank's servers to a Y!mobile recipient pauses and slows SoftBank's sends too
    th.rate_limited("ymobile", 30.0)
    assert th.wait_time("softbank") == pytest.approx(30.0)
    assert th.effective_count("softbank") == 2
    clock.t += 31
    a, b = th.try_acquire("softbank"), th.try_acquire("softbank")
    assert a and b and th.try_acquire("ymobile") is None     # the group's reduced count is full
    th.cancel("softbank", a)
    assert th.try_acquire("ymobile")                         # a cancelled slot is given back
