"""Reports: every sql/ report file on a fixture store with known figures, the HTML file, the CLI.

The fixture store (Asia/Tokyo calendar days; 2026-11-09 and 2026-11-16 are Mondays):

  2026-11-10  docomo  a1 sent, a2 sent, u1 + u2 bounced user_unknown (hard), f1 bounced filtered
                      (scope sender), m1 deferred mailbox_full, m1 expired (hard) at 23:30
              au      b1 sent at 00:30 (= 2026-11-09 UTC), b2 deferred rate_limited (sender),
                      b2 sent, u3 bounced user_unknown (hard)
  2026-11-16  docomo  a1 sent, u1 bounced user_unknown (hard)
              au      b3@ezweb.ne.jp bounced blocked (sender)
              other   typo@docomo.ne.jpp bounced host_unknown (hard),
                      nobody@gone.example undeliverable host_unknown (hard)
  2026-11-17  au      b1 sent at 00:10 (= 2026-11-16 UTC)
"""

from __future__ import annotations

import html.parser
from datetime import date

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.core.config import load_config
from pipeline.core.errors import InputError, NoDataError
from pipeline.report import reports
from pipeline.report.reports import open_warehouse, write_report
from pipeline.suppression.counted import counted_params, keep_counted_errors
from pipeline.suppression.store import SuppressionStore
from pipeline.store.warehouse import run_sql

from fixtures import SAMPLES, at, event, fixture_events, history_rows, make_config, store_events

COUNTED = ["user_unknown", "host_unknown", "mailbox_disabled", "mailbox_full"]


def build_report(cfg, since=None, until=None, **kw):
    return reports.build_report(cfg.data_dir, cfg.report, cfg.rule, cfg.timezone_name, since, until, **kw)


def generate(cfg, out, since=None, until=None, **kw):
    return reports.generate(cfg.data_dir, out, cfg.report, cfg.rule, cfg.timezone_name, since, until, **kw)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("reports")
    cfg = load_config(None, data_dir=d / "data", timezone="Asia/Tokyo")
    store_events(cfg, fixture_events())
    sup = SuppressionStore(cfg.data_dir)
    sup.dir.mkdir(parents=True)
    pq.write_table(history_rows(), sup.history_path)   # a history only: the report reads nothing else
    return cfg


@pytest.fixture(scope="module")
def con(store):
    c = open_warehouse(store.data_dir)
    keep_counted_errors(c, counted_params("Asia/Tokyo", COUNTED, 7), marks_kept=True)  # as build_report does
    yield c
    c.close()


def q(con, name, tz="Asia/Tokyo", since=None, until=None, **extra):
    params = {"tz": tz, "since": since, "until": until, "counted_reasons": COUNTED, "limit": 20,
              "edge_minutes": 5, **extra}
    return run_sql(con, name, params).df()


def rows(df, columns):
    return [tuple(r) for r in df[columns].itertuples(index=False)]


# --------------------------------------------------------------------------- carrier_figures.sql
FIGURES = ["carrier", "attempts", "delivered", "deferred", "bounced", "expired", "undeliverable",
           "finished", "recipients", "counted_errors", "hard_bounces", "unknown_user", "filtered"]


def test_carrier_figures_over_the_period(con):
    df = q(con, "carrier_figures", grain="period")
    assert rows(df, FIGURES) == [
        ("au", 6, 3, 1, 2, 0, 0, 5, 4, 1, 1, 1, 0),
        ("docomo", 9, 3, 1, 4, 1, 0, 8, 6, 4, 4, 3, 1),
        ("other", 2, 0, 0, 1, 0, 1, 2, 2, 1, 2, 0, 0),
        ("all", 17, 6, 2, 7, 1, 1, 15, 12, 6, 7, 4, 1),
    ]
    rates = {r.carrier: (r.bounce_rate, r.unknown_user_rate) for r in df.itertuples()}
    assert rates["docomo"] == pytest.approx((5 / 8, 3 / 8))
    assert rates["au"] == pytest.approx((2 / 5, 1 / 5))
    assert rates["other"] == pytest.approx((1.0, 0.0))
    assert rates["all"] == pytest.approx((9 / 15, 4 / 15))
    assert set(df["period_start"].dt.date) == {date(2026, 11, 10)}
    assert set(df["period_end"].dt.date) == {date(2026, 11, 17)}


def test_carrier_figures_per_local_day(con):
    df = q(con, "carrier_figures", grain="day")
    got = {(r.period_start.date().day, r.carrier): r for r in df.itertuples()}
    assert sorted(got) == [(10, "all"), (10, "au"), (10, "docomo"), (16, "all"), (16, "au"),
                           (16, "docomo"), (16, "other"), (17, "all"), (17, "au")]
    d10 = got[(10, "docomo")]
    assert (d10.attempts, d10.delivered, d10.deferred, d10.bounced, d10.expired, d10.finished,
            d10.recipients, d10.counted_errors, d10.hard_bounces, d10.unknown_user, d10.filtered) == \
        (7, 2, 1, 3, 1, 6, 6, 3, 3, 2, 1)
    assert (d10.bounce_rate, d10.unknown_user_rate) == pytest.approx((4 / 6, 2 / 6))
    a10 = got[(10, "au")]  # b1 at 00:30 JST belongs to the 10th, not to the UTC 9th
    assert (a10.attempts, a10.delivered, a10.recipients, a10.bounce_rate) == (4, 2, 3, pytest.approx(1 / 3))
    assert (got[(17, "au")].attempts, got[(17, "au")].bounce_rate) == (1, 0.0)
    assert got[(16, "all")].attempts == 5


def test_carrier_figures_days_follow_the_time_zone(con):
    df = q(con, "carrier_figures", tz="UTC", grain="day")
    days = {(r.period_start.date().day, r.carrier): r.attempts for r in df.itertuples()}
    assert days[(9, "au")] == 1 and days[(10, "au")] == 3 and days[(16, "au")] == 2
    assert (17, "au") not in days


def test_carrier_figures_per_week(con):
    df = q(con, "carrier_figures", grain="week")
    got = {(r.period_start.date(), r.carrier): r for r in df.itertuples()}
    assert sorted({k[0] for k in got}) == [date(2026, 11, 9), date(2026, 11, 16)]
    w2 = got[(date(2026, 11, 16), "au")]  # 16th and 17th
    assert (w2.attempts, w2.delivered, w2.bounced, w2.recipients, w2.period_end.date()) == \
        (2, 1, 1, 2, date(2026, 11, 22))
    assert got[(date(2026, 11, 9), "all")].attempts == 11
    assert got[(date(2026, 11, 16), "all")].attempts == 6


def test_carrier_figures_since_until_are_inclusive_local_days(con):
    df = q(con, "carrier_figures", since=date(2026, 11, 16), until=date(2026, 11, 16), grain="period")
    assert rows(df, ["carrier", "attempts"]) == [("au", 1), ("docomo", 2), ("other", 2), ("all", 5)]
    assert q(con, "carrier_figures", since=date(2026, 12, 1), grain="period").empty


# --------------------------------------------------------------------------- the other files
def test_reasons_by_carrier(con):
    df = q(con, "reasons_by_carrier")
    assert rows(df, ["carrier", "reason", "scope", "attempts", "deferred", "failed", "recipients"]) == [
        ("au", "blocked", "sender", 1, 0, 1, 1),
        ("au", "rate_limited", "sender", 1, 1, 0, 1),
        ("au", "user_unknown", "recipient", 1, 0, 1, 1),
        ("docomo", "user_unknown", "recipient", 3, 0, 3, 2),
        ("docomo", "expired", "unknown", 1, 0, 1, 1),
        ("docomo", "filtered", "sender", 1, 0, 1, 1),
        ("docomo", "mailbox_full", "recipient", 1, 1, 0, 1),
        ("other", "host_unknown", "recipient", 2, 0, 2, 2),
    ]
    share = {(r.carrier, r.reason): r.share_of_carrier for r in df.itertuples()}
    assert share[("docomo", "user_unknown")] == pytest.approx(0.5)
    assert share[("au", "blocked")] == pytest.approx(1 / 3)
    assert share[("other", "host_unknown")] == 1.0


def test_top_failing_domains(con):
    df = q(con, "top_failing_domains")
    assert rows(df, ["domain", "carrier", "attempts", "failed", "deferred", "failed_recipients", "top_reason"]) == [
        ("docomo.ne.jp", "docomo", 9, 5, 1, 4, "user_unknown"),
        ("au.com", "au", 5, 1, 1, 1, "rate_limited"),       # tie with user_unknown: alphabetical
        ("docomo.ne.jpp", "other", 1, 1, 0, 1, "host_unknown"),
        ("ezweb.ne.jp", "au", 1, 1, 0, 1, "blocked"),
        ("gone.example", "other", 1, 1, 0, 1, "host_unknown"),
    ]
    assert list(df["failure_rate"]) == pytest.approx([5 / 8, 1 / 4, 1.0, 1.0, 1.0])
    assert list(q(con, "top_failing_domains", limit=2)["domain"]) == ["docomo.ne.jp", "au.com"]


def test_sender_problems_daily(con):
    df = q(con, "sender_problems_daily")
    assert rows(df, ["carrier", "reason", "events", "deferred", "failed", "recipients", "carrier_attempts"]) == [
        ("au", "rate_limited", 1, 1, 0, 1, 4),
        ("docomo", "filtered", 1, 0, 1, 1, 7),
        ("au", "blocked", 1, 0, 1, 1, 1),
    ]
    assert [d.day for d in df["day"].dt.date] == [10, 10, 16]
    assert list(df["share_of_attempts"]) == pytest.approx([1 / 4, 1 / 7, 1.0])
    reply = df["top_reply"].iloc[1]
    assert "<address>" in reply and "f1@" not in reply


HOURLY = ["carrier", "hour", "attempts", "delivered", "deferred", "refused", "rate_limited",
          "on_the_hour_attempts", "on_the_hour_refused"]


def test_carrier_hourly(con):
    df = q(con, "carrier_hourly")
    got = {(r[0], r[1]): r[2:] for r in rows(df, HOURLY)}
    # au: b1 00:30 (10th) + b1 00:10 (17th); b2 09:00 deferred rate_limited (sender) + 09:30 sent;
    # u3 10:00; b3 12:00 blocked (sender). Minutes 0..4 are on the hour.
    assert {k: v for k, v in got.items() if k[0] == "au"} == {
        ("au", 0): (2, 2, 0, 0, 0, 0, 0),
        ("au", 9): (2, 1, 1, 1, 1, 1, 1),
        ("au", 10): (1, 0, 0, 0, 0, 1, 0),
        ("au", 12): (1, 0, 0, 1, 0, 1, 1),
    }
    # docomo: f1 14:00 filtered (sender) is refused; m1's expiry at 23:30 is not on the hour
    assert got[("docomo", 14)] == (1, 0, 0, 1, 0, 1, 1)
    assert got[("docomo", 23)] == (1, 0, 0, 0, 0, 0, 0)
    assert got[("docomo", 10)][:2] == (2, 2) and got[("docomo", 11)][:2] == (2, 1)
    assert sorted(k for k in got if k[0] == "other") == [("other", 13), ("other", 14)]
    assert int(df["attempts"].sum()) == 17
    assert str(df["hour"].dtype).lower().startswith("int64")
    rate = df.set_index(["carrier", "hour"])["refusal_rate"]
    assert rate[("au", 9)] == pytest.approx(0.5) and rate[("au", 0)] == 0.0
    # the local clock decides: in UTC, au's 09:00 JST deferral is at 00:00
    utc = {(r[0], r[1]): r[2:] for r in rows(q(con, "carrier_hourly", tz="UTC"), HOURLY)}
    assert utc[("au", 0)] == (2, 1, 1, 1, 1, 1, 1) and utc[("au", 15)] == (2, 2, 0, 0, 0, 0, 0)
    # a wider window: 00:10 and 00:30 count as on the hour with 31 minutes
    wide = q(con, "carrier_hourly", edge_minutes=31).set_index(["carrier", "hour"])
    assert wide.loc[("au", 0), "on_the_hour_attempts"] == 2 and wide.loc[("docomo", 23), "on_the_hour_attempts"] == 1
    one_day = q(con, "carrier_hourly", since=date(2026, 11, 17), until=date(2026, 11, 17))
    assert rows(one_day, ["carrier", "hour", "attempts"]) == [("au", 0, 1)]


def test_filtered_daily(con, tmp_path):
    df = q(con, "filtered_daily")
    assert rows(df, ["carrier", "filtered", "filtered_recipients", "carrier_attempts"]) == [("docomo", 1, 1, 7)]
    assert df["day"].dt.date.tolist() == [date(2026, 11, 10)]
    assert df["share_of_attempts"].tolist() == pytest.approx([1 / 7])
    assert df["top_reply"].iloc[0] == "550 5.7.1 <address>: Recipient address rejected: filtered"

    cfg = load_config(None, data_dir=tmp_path / "d", timezone="Asia/Tokyo")
    au_reply = "host msmx.au.com[111.86.141.160] said: 550 : User unknown (in reply to end of DATA command)"
    dc_reply = "host mfsmax.docomo.ne.jp[203.138.181.112] said: 550 Unknown user {a} (in reply to end of DATA command)"
    store_events(cfg, [
        event("h1@au.com", at(20, 9), reason="filtered", scope="sender", carrier="au", diagnostic=au_reply),
        event("h1@au.com", at(20, 10), reason="filtered", scope="sender", carrier="au", diagnostic=au_reply),
        event("h2@ezweb.ne.jp", at(20, 11), reason="filtered", scope="sender", carrier="au",
              diagnostic="550 5.7.1 refused due to recipient preferences"),
        event("ok@au.com", at(20, 12), status="sent", carrier="au"),
        event("d1@docomo.ne.jp", at(21, 0, 5), reason="filtered", scope="sender", carrier="docomo",
              diagnostic=dc_reply.format(a="d1@docomo.ne.jp")),
        event("d2@docomo.ne.jp", at(21, 0, 6), reason="filtered", scope="sender", carrier="docomo",
              diagnostic=dc_reply.format(a="d2@docomo.ne.jp")),
        event("d3@docomo.ne.jp", at(21, 0, 7), carrier="docomo"),                        # user unknown
    ])
    c = open_warehouse(cfg.data_dir)
    try:
        got = q(c, "filtered_daily")
    finally:
        c.close()
    assert rows(got, ["carrier", "filtered", "filtered_recipients", "carrier_attempts"]) == [
        ("au", 3, 2, 4), ("docomo", 2, 2, 3)]
    assert got["top_reply"].tolist() == [au_reply, dc_reply.format(a="<address>")]
    assert got["share_of_attempts"].tolist() == pytest.approx([3 / 4, 2 / 3])


def test_suppression_growth(con):
    df = q(con, "suppression_growth")
    assert [d.day for d in df["day"].dt.date] == [11, 12, 17]
    assert rows(df, ["added", "added_by_rule", "released", "net_change", "list_size"]) == [
        (2, 2, 0, 2, 2), (1, 0, 0, 1, 3), (0, 0, 1, -1, 2)]
    later = q(con, "suppression_growth", since=date(2026, 11, 12))
    assert list(later["list_size"]) == [3, 2]  # the size still counts the earlier days
    utc = q(con, "suppression_growth", tz="UTC")
    assert rows(utc, ["added", "list_size"]) == [(3, 3), (0, 2)]


def test_suppression_growth_without_a_list(tmp_path):
    cfg = load_config(None, data_dir=tmp_path / "d", timezone="Asia/Tokyo")
    store_events(cfg, fixture_events()[:2])
    report = build_report(cfg)
    growth = report.tables["suppression_growth"]
    assert growth.empty
    assert list(growth.columns) == ["day", "added", "added_by_rule", "released", "net_change", "list_size"]


# --------------------------------------------------------------------------- library
def test_build_report_inputs(store):
    report = build_report(store, "2026-11-16", "2026-11-17")
    assert (report.first_day, report.last_day) == (date(2026, 11, 16), date(2026, 11, 17))
    with pytest.raises(InputError, match="YYYY-MM-DD"):
        build_report(store, since="16/11/2026")
    with pytest.raises(InputError, match="after"):
        build_report(store, since="2026-11-17", until="2026-11-10")
    with pytest.raises(NoDataError, match="stored events cover 2026-11-10 .. 2026-11-17"):
        build_report(store, since="2027-01-01")
    with pytest.raises(InputError, match="0.05 or 5%"):
        build_report(store, fail_over="lots")
    assert build_report(store, fail_over="35%").over_threshold() == [("docomo", pytest.approx(0.375))]
    assert build_report(store).over_threshold() == []   # report.fail_over = 0: off


class Checker(html.parser.HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()


@pytest.mark.slow
def test_html_is_self_contained_well_formed_and_escaped(tmp_path):
    cfg = load_config(None, data_dir=tmp_path / "d", timezone="Asia/Tokyo")
    evil = event("x@<script>alert(1)</script>.jp", at(10, 9), reason="host_unknown", carrier="other")
    store_events(cfg, fixture_events() + [evil])
    written = generate(cfg, tmp_path / "out")
    text = written.html.read_text(encoding="utf-8")
    checker = Checker()
    checker.feed(text)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    assert '<meta charset="utf-8">' in text
    assert "<title>mailhygiene report 2026-11-10 .. 2026-11-17</title>" in text
    assert "Generated: " in text and "Asia/Tokyo" in text
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert pngs == ["bounce_rate_by_carrier.png", "hourly_by_carrier.png", "reasons_by_carrier.png",
                    "suppression_growth.png"]
    assert text.count("data:image/png;base64,") == len(pngs) == len(written.charts)
    for tag, attrs in checker.tags:
        for key in ("src", "href"):
            assert not attrs.get(key, "").startswith(("http:", "https:", "//")), (tag, attrs)
    assert "<script" not in text and "&lt;script&gt;" in text
    csvs = sorted(p.stem for p in (tmp_path / "out").glob("*.csv"))
    assert csvs == sorted(["carrier_totals", "carrier_daily", "carrier_weekly", "carrier_hourly",
                           "reasons_by_carrier", "top_failing_domains", "sender_problems_daily",
                           "filtered_daily", "suppression_growth"])
    totals = pd.read_csv(tmp_path / "out" / "carrier_totals.csv")
    assert list(totals["carrier"]) == ["au", "docomo", "other", "all"]


@pytest.mark.slow
def test_charts_leave_no_pyplot_state():
    plt = pytest.importorskip("matplotlib.pyplot")
    from pipeline.report import charts

    before = plt.get_fignums()
    figures = pd.DataFrame({"period_start": pd.to_datetime(["2026-11-10", "2026-11-11"]),
                            "carrier": ["docomo", "docomo"], "bounce_rate": [0.1, 0.2]})
    png = charts.to_png(charts.bounce_rate_chart(figures))
    assert png.startswith(b"\x89PNG") and plt.get_fignums() == before
    empty = charts.reasons_chart(pd.DataFrame(columns=["carrier", "reason", "attempts"]))
    assert charts.to_png(empty).startswith(b"\x89PNG")


# --------------------------------------------------------------------------- CLI and clean
def run(data, *args):
    return CliRunner().invoke(cli, ["--data-dir", str(data), "--timezone", "Asia/Tokyo", "report", *map(str, args)])


@pytest.mark.slow
def test_report_command(store, tmp_path):
    out = tmp_path / "out"
    r = run(store.data_dir, "--out", out)
    assert r.exit_code == 0, r.output
    assert "period: 2026-11-10 .. 2026-11-17 (Asia/Tokyo days)" in r.output
    lines = {ln.split()[0]: ln.split() for ln in r.output.splitlines() if ln.split()}
    # carrier attempts delivered bounce-rate % unknown-user-rate % filtered counted-errors
    assert lines["docomo"] == ["docomo", "9", "3", "62.5", "%", "37.5", "%", "1", "4"]
    assert lines["all"] == ["all", "17", "6", "60.0", "%", "26.7", "%", "1", "6"]
    assert (out / "report.html").is_file() and f"report: {out / 'report.html'}" in r.output

    r = run(store.data_dir, "--out", out, "--fail-over", "0.3")
    assert r.exit_code == 2
    assert "ALERT: docomo unknown-user rate 37.5 % is over 30.0 %" in r.output
    assert "ALERT: au" not in r.output and "<< over" in lines_of(r.output, "docomo")

    r = run(store.data_dir, "--since", "2026-11-32")                 # a usage error: README's exit 2
    assert r.exit_code == 2 and "Invalid value for '--since': '2026-11-32' is not a date" in r.output
    r = run(store.data_dir, "--fail-over", "5 percent")
    assert r.exit_code == 2 and "Invalid value for '--fail-over'" in r.output and "not a rate" in r.output
    r = run(tmp_path / "nothing", "--out", out)
    assert r.exit_code == 1 and f"Error: data dir {tmp_path / 'nothing'} does not exist" in r.output
    assert "mailhygiene ingest" in r.output
    (tmp_path / "empty").mkdir()
    r = run(tmp_path / "empty", "--out", out)
    assert r.exit_code == 1 and "Error: no events in" in r.output and "mailhygiene ingest" in r.output


def lines_of(output, first_word):
    return next(ln for ln in output.splitlines() if ln.startswith(first_word))


@pytest.mark.slow
def test_fail_over_from_config(tmp_path, store):
    conf = tmp_path / "mailhygiene.toml"
    conf.write_text("[report]\nfail_over = 0.25\n")
    r = CliRunner().invoke(cli, ["--config", str(conf), "--data-dir", str(store.data_dir), "--timezone",
                                 "Asia/Tokyo", "report", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "ALERT: docomo unknown-user rate 37.5 % is over 25.0 %" in r.output
    r = CliRunner().invoke(cli, ["--config", str(conf), "--data-dir", str(store.data_dir), "--timezone",
                                 "Asia/Tokyo", "report", "--out", str(tmp_path / "o"), "--fail-over", "0"])
    assert r.exit_code == 0, r.output  # the option overrides the config; 0 = off


@pytest.mark.slow
def test_clean_writes_the_report(tmp_path):
    toml = "\n".join(f'[[sources]]\npath = "{p}"\n' for p in
                     [SAMPLES / "postfix" / "mail.log*", SAMPLES / "sendmail" / "maillog", SAMPLES / "qmail" / "current"])
    cfg = make_config(tmp_path, toml)
    from pipeline.jobs.clean import clean

    result = clean(cfg, as_of="2026-11-30", progress=False)
    assert result.report_path == cfg.data_dir / "reports" / "report.html"
    text = result.report_path.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 4
    growth = pd.read_csv(cfg.data_dir / "reports" / "suppression_growth.csv")
    assert int(growth["list_size"].iloc[-1]) == 8
    assert write_report(cfg, out_dir=tmp_path / "again") == tmp_path / "again" / "report.html"
