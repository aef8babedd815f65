"""The report's output for people: Japanese (--lang ja, report.lang), formula-safe CSVs, daily
tables collapsed by week, charts on the report period, one-line replies, the Japanese chart font
and the template notice for handset filters. Real store, real DuckDB, real matplotlib; the
fixture store is the one of test_reports.py.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from datetime import date

import matplotlib.dates as mdates
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.core.config import load_config
from pipeline.core.csvsafe import FORMULA_PREFIXES
from pipeline.core.errors import ConfigError
from pipeline.report import charts, fonts, labels, notice, reports
from pipeline.report.cells import clean_reply
from pipeline.report.csvfiles import csv_bytes
from pipeline.suppression.store import SuppressionStore

from fixtures import at, event, fixture_events, history_rows, make_config, store_events

JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")


def generate(cfg, out, since=None, until=None, **kw):
    return reports.generate(cfg.data_dir, out, cfg.report, cfg.rule, cfg.timezone_name, since, until, **kw)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("report-output")
    cfg = load_config(None, data_dir=d / "data", timezone="Asia/Tokyo")
    hostile = [
        # a recipient domain that a spreadsheet would run as a formula
        event("victim@=HYPERLINK(\"http://attacker.example\",\"x\").jp", at(16, 15), reason="host_unknown",
              carrier="other"),
        event("t@-2+3.example", at(16, 15, 1), reason="host_unknown", carrier="other"),
        # a multi-line reply (qmail writes them), starting with a formula character
        event("rl@au.com", at(16, 9, 2), status="deferred", reason="rate_limited", scope="sender", carrier="au",
              hard=False, diagnostic="=421 too many\nconnections\\ntry later"),
    ]
    store_events(cfg, fixture_events() + hostile)
    sup = SuppressionStore(cfg.data_dir)
    sup.dir.mkdir(parents=True)
    pq.write_table(history_rows(), sup.history_path)   # a history only: the report reads nothing else
    return cfg


@pytest.fixture(scope="module")
def written_ja(store, tmp_path_factory):
    return generate(store, tmp_path_factory.mktemp("out-ja"), lang="ja", sending_domain="mail.example.jp")


@pytest.fixture(scope="module")
def written_en(store, tmp_path_factory):
    return generate(store, tmp_path_factory.mktemp("out-en"))


def csv_cells(path):
    text = path.read_bytes().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def section(html_text: str, table: str) -> str:
    start = html_text.index(f'id="table-{table}"')
    end = html_text.find("<h2", start)
    return html_text[start:end if end > 0 else None]


# --------------------------------------------------------------------------- formula safety
@pytest.mark.slow
def test_every_report_csv_is_formula_safe(written_en, written_ja):
    for written in (written_en, written_ja):
        assert len(written.csv) == 9
        for path in written.csv:
            for row in csv_cells(path):
                for cell in row:
                    if cell.startswith(FORMULA_PREFIXES):
                        float(cell)   # only numbers (net_change -1) may start with - or +
    domains = pd.read_csv(written_en.html.parent / "top_failing_domains.csv")["domain"].tolist()
    assert "'=HYPERLINK(\"http://attacker.example\",\"x\").jp" in domains
    assert "'-2+3.example" in domains
    raw = (written_en.html.parent / "top_failing_domains.csv").read_text(encoding="utf-8")
    assert "\n=HYPERLINK" not in raw and ",=HYPERLINK" not in raw


def test_csv_bytes_neutralises_text_only():
    df = pd.DataFrame({"domain": ["=1+1", "@SUM(A1)", "ok.jp", None], "net_change": [-1, 2, 0, 1],
                       "top_reply": ["-x\nline two", "a\\nb", "c", None]})
    cells = list(csv.reader(io.StringIO(csv_bytes(df).decode("utf-8"))))
    assert cells[0] == ["domain", "net_change", "top_reply"]
    assert [r[0] for r in cells[1:]] == ["'=1+1", "'@SUM(A1)", "ok.jp", ""]
    assert [r[1] for r in cells[1:]] == ["-1", "2", "0", "1"]
    assert [r[2] for r in cells[1:]] == ["'-x line two", "a b", "c", ""]
    ja = csv_bytes(df, "ja", bom=True)
    assert ja.startswith(b"\xef\xbb\xbf") and ja.decode("utf-8-sig").splitlines()[0] == "ドメイン,増減,主な応答"


# --------------------------------------------------------------------------- Japanese
@pytest.mark.slow
def test_japanese_page_csv_headers_and_charts(written_ja, written_en):
    page = written_ja.html.read_text(encoding="utf-8")
    assert '<html lang="ja">' in page
    assert "<title>mailhygiene 配信レポート 2026-11-10 〜 2026-11-17</title>" in page
    for words in ("主要指標", "キャリア別バウンス率", "時間帯別の配信試行と拒否", "受信拒否設定による拒否",
                  "配信停止リストの推移", "用語の定義", "宛先不明率", "ドコモ", "全体"):
        assert words in page, words
    # reasons in Japanese, with the code beside them
    assert '宛先不明 <span class="code">user_unknown</span>' in page
    # the English page has none of the Japanese labels (only the template notice is Japanese)
    en = written_en.html.read_text(encoding="utf-8")
    assert '<html lang="en">' in en and "主要指標" not in en and "Key figures" in en
    before_notice = en[:en.index('id="handset-filters"')]
    assert set(JAPANESE.findall(before_notice)) <= set("指定受信・迷惑メール設定毎正時")   # named in two English notes

    totals = written_ja.html.parent / "carrier_totals.csv"
    assert totals.read_bytes().startswith(b"\xef\xbb\xbf")          # Excel reads it as UTF-8
    head = csv_cells(totals)[0]
    assert head[:4] == ["開始日", "終了日", "キャリア", "配信試行"] and "宛先不明率" in head
    assert csv_cells(totals)[1][2] == "au"                          # values stay codes
    en_head = csv_cells(written_en.html.parent / "carrier_totals.csv")[0]
    assert en_head[:3] == ["period_start", "period_end", "carrier"]
    assert not (written_en.html.parent / "carrier_totals.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert written_ja.warnings == []                                 # the Japanese font is there


@pytest.mark.slow
def test_report_lang_from_the_config_and_the_option(store, tmp_path):
    conf = tmp_path / "mailhygiene.toml"
    conf.write_text('[report]\nlang = "ja"\n', encoding="utf-8")
    base = ["--config", str(conf), "--data-dir", str(store.data_dir), "--timezone", "Asia/Tokyo", "report"]
    r = CliRunner().invoke(cli, base + ["--out", str(tmp_path / "a"), "--fail-over", "35%"])
    assert r.exit_code == 2, r.output
    assert "期間: 2026-11-10 〜 2026-11-17（Asia/Tokyo の暦日）" in r.output
    lines = r.output.splitlines()
    head = next(ln for ln in lines if ln.startswith("キャリア"))
    assert head.split() == ["キャリア", "配信試行", "配信成功", "バウンス率", "宛先不明率", "受信拒否設定", "計上エラー"]
    docomo = next(ln for ln in lines if ln.startswith("ドコモ"))
    assert docomo.split() == ["ドコモ", "9", "3", "62.5", "%", "37.5", "%", "1", "4", "<<", "超過"]
    # columns line up in a terminal: East Asian characters take two columns
    width = labels.display_width
    all_row = next(ln for ln in lines if ln.startswith("全体"))
    assert width(head) == width(all_row)
    assert "ALERT: ドコモの宛先不明率 37.5 % が閾値 35.0 % を超えています" in r.output
    assert "レポート: " in r.output and '<html lang="ja">' in (tmp_path / "a" / "report.html").read_text("utf-8")

    r = CliRunner().invoke(cli, base + ["--out", str(tmp_path / "b"), "--lang", "en"])
    assert r.exit_code == 0 and "period: 2026-11-10 .. 2026-11-17 (Asia/Tokyo days)" in r.output

    conf.write_text('[report]\nlang = "fr"\n', encoding="utf-8")
    r = CliRunner().invoke(cli, base + ["--out", str(tmp_path / "c")])
    assert r.exit_code == 1 and r.output.startswith("Error: ") and "report.lang" in r.output
    with pytest.raises(ConfigError):
        load_config(conf)
    r = CliRunner().invoke(cli, base[:-1] + ["report", "--lang", "fr"])
    assert r.exit_code == 2 and "Invalid value for '--lang'" in r.output


# --------------------------------------------------------------------------- the page's tables
def test_daily_tables_are_collapsed_by_week(written_en):
    page = written_en.html.read_text(encoding="utf-8")
    daily = section(page, "carrier_daily")
    summaries = re.findall(r"<summary>(.*?)</summary>", daily)
    assert summaries == [
        '<span class="week">Week 2026-11-09 .. 2026-11-15</span> · 11 attempts, bounce rate 55.6 %',
        '<span class="week">Week 2026-11-16 .. 2026-11-22</span> · 9 attempts, bounce rate 75.0 %',
    ]
    # every day row sits inside a <details>, none outside
    outside = re.sub(r"<details>.*?</details>", "", daily, flags=re.S)
    assert 'class="day"' not in outside and daily.count('<td class="day">') == 9
    for name in ("sender_problems_daily", "filtered_daily"):
        part = section(page, name)
        assert part.count("<details>") >= 1 and 'class="day"' not in re.sub(r"<details>.*?</details>", "", part, flags=re.S)
    # day cells do not wrap
    assert re.search(r"td\.day \{[^}]*white-space: nowrap", page)


def test_replies_are_clean_one_line_texts(written_en):
    page = written_en.html.read_text(encoding="utf-8")
    problems = section(page, "sender_problems_daily")
    assert "=421 too many connections try later" in problems
    assert "\\n" not in page.replace("\\\\n", "") and "&lt;&lt;address&gt;&gt;" not in page
    replies = pd.read_csv(written_en.html.parent / "sender_problems_daily.csv")["top_reply"].tolist()
    assert "'=421 too many connections try later" in replies
    assert all("\n" not in r and "\\n" not in r for r in replies)
    assert clean_reply("a\r\n b\\r\\nc  <<address>>\td") == "a b c <address> d"


@pytest.mark.slow
def test_handset_filter_notice_is_embedded_and_linked(written_ja, written_en):
    for written in (written_ja, written_en):
        page = written.html.read_text(encoding="utf-8")
        assert '<a href="#handset-filters">' in section(page, "filtered_daily")
        notice_part = page[page.index('id="handset-filters"'):]
        for words in ("受信リスト設定", "迷惑メールフィルター", "許可するメールの登録", "ドコモ", "au", "ソフトバンク"):
            assert words in notice_part
    ja = written_ja.html.read_text(encoding="utf-8")
    assert "「mail.example.jp」" in ja and notice.DOMAIN_PLACEHOLDER not in ja
    assert notice.DOMAIN_PLACEHOLDER in written_en.html.read_text(encoding="utf-8")  # no domain given
    text = notice.template("news.example.co.jp")
    assert text.startswith("件名: ") and text.count("news.example.co.jp") >= 6


def test_sending_domain_from_the_config(tmp_path):
    cfg = make_config(tmp_path, '[sender]\nfrom_address = "info@Shop.Example.JP"\n')
    assert reports.sending_domain_of(cfg) == "shop.example.jp"
    cfg = make_config(tmp_path, '[sender]\nfrom_address = "info@shop.example.jp"\n'
                                'envelope_from = "bounce@mail.shop.example.jp"\n')
    assert reports.sending_domain_of(cfg) == "mail.shop.example.jp"
    assert reports.sending_domain_of(make_config(tmp_path, "")) is None


# --------------------------------------------------------------------------- charts
def x_days(ax):
    lo, hi = ax.get_xlim()
    return mdates.num2date(lo).date(), mdates.num2date(hi).date()


@pytest.mark.slow
def test_charts_span_the_report_period():
    period = (date(2026, 11, 1), date(2026, 11, 30))
    growth = pd.DataFrame({"day": pd.to_datetime(["2026-10-20", "2026-11-12", "2026-12-04"]),
                           "added": [5, 3, 8], "added_by_rule": [5, 3, 8], "released": [0, 1, 0],
                           "net_change": [5, 2, 8], "list_size": [5, 7, 15]})
    fig = charts.suppression_growth_chart(growth, period=period)
    ax, size = fig.axes
    assert x_days(ax) == (date(2026, 10, 31), date(2026, 12, 1))      # the period, a day of margin
    bars = [p for p in ax.patches]
    assert len(bars) == 2                                           # added and released on 11-12 only
    step = size.get_lines()[0]
    assert list(step.get_ydata()) == [5, 7, 7]                       # size 5 when the period began
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "after the period: 8 added, 0 released (last on 2026-12-04)" in texts

    # installed after the period: an empty axis over the period that says so, not the install day
    later = growth.iloc[[2]].assign(list_size=[8])
    ax = charts.suppression_growth_chart(later, period=period, lang="ja").axes[0]
    assert x_days(ax) == (date(2026, 10, 31), date(2026, 12, 1))
    assert "この期間にリストの変更はありません（リスト件数 0）" in " ".join(t.get_text() for t in ax.texts)

    figures = pd.DataFrame({"period_start": pd.to_datetime(["2026-11-10", "2026-11-11"]),
                            "carrier": ["docomo", "docomo"], "bounce_rate": [0.1, 0.2]})
    ax = charts.bounce_rate_chart(figures, period=period).axes[0]
    assert x_days(ax) == (date(2026, 10, 31), date(2026, 12, 1))


def test_hourly_chart_has_one_panel_per_carrier(written_en):
    hourly = written_en.report.tables["carrier_hourly"]
    fig = charts.hourly_chart(hourly, timezone="Asia/Tokyo")
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert [t.split(":")[0] for t in titles] == ["docomo", "au", "other"]
    assert titles[1] == "au: 7 attempts (57% on the hour), 3 refused = 42.9% (100% on the hour)"
    ja = charts.hourly_chart(hourly, lang="ja", timezone="Asia/Tokyo")
    assert ja.axes[0].get_title(loc="left").startswith("ドコモ: 試行 9 件")
    empty = charts.hourly_chart(hourly.iloc[0:0])
    assert charts.to_png(empty).startswith(b"\x89PNG")


# --------------------------------------------------------------------------- the Japanese font
def chart_texts(fig) -> str:
    from matplotlib.text import Text

    fig.canvas.draw()
    return "".join(t.get_text() for t in fig.findobj(Text))


def draw_all_ja(report):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pngs = reports.chart_pngs(report, "ja")
    return pngs, [str(w.message) for w in caught]


@pytest.mark.slow
def test_japanese_charts_have_no_tofu(written_ja):
    font = fonts.japanese_font()
    if font is None:
        pytest.skip(f"no Japanese font installed (apt-get install {fonts.DEBIAN_PACKAGE}); "
                    "the fallback is tested below")
    # every character of every Japanese label has a glyph in the fonts the charts use
    words = labels.all_words("ja")
    assert len(set(words)) > 250 and fonts.missing_glyphs(words, font) == ""
    # drawing the real charts warns about no missing glyph, and they hold Japanese text
    pngs, messages = draw_all_ja(written_ja.report)
    assert len(pngs) == 4 and not [m for m in messages if "missing from font" in m], messages
    fig = charts.reasons_chart(written_ja.report.tables["reasons_by_carrier"], lang="ja")
    assert JAPANESE.search(chart_texts(fig))
    from matplotlib.font_manager import FontProperties, findfont
    with fig.fonts():
        assert findfont(FontProperties(family=fig.rc["font.family"][0])) == font.path
    # the check can fail: DejaVu Sans alone has no kana, and matplotlib says so
    bare = charts.ChartFigure(rc={"font.family": ["DejaVu Sans"]})
    bare.text(0.5, 0.5, "配信レポート")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        charts.to_png(bare)
    assert [w for w in caught if "missing from font" in str(w.message)]


def test_without_a_japanese_font_charts_fall_back_to_english():
    assert fonts.chart_language("en", None) == ("en", None)
    lang, warning = fonts.chart_language("ja", None)
    assert lang == "en" and fonts.DEBIAN_PACKAGE in warning and "English" in warning
    assert fonts.chart_language("ja", fonts.JapaneseFont("X", "/x.ttf")) == ("ja", None)
    # an English chart shows no Japanese label that could turn into boxes
    growth = pd.DataFrame(columns=["day", "added", "added_by_rule", "released", "net_change", "list_size"])
    assert not JAPANESE.search(chart_texts(charts.suppression_growth_chart(growth, lang=lang)))


@pytest.mark.slow
def test_summary_prints_warnings_and_write_errors(written_ja, store, tmp_path, capsys):
    import dataclasses

    from pipeline.cli.report import print_key_figures

    print_key_figures(dataclasses.replace(written_ja, warnings=["no Japanese font found"]))
    captured = capsys.readouterr()
    assert "警告: no Japanese font found" in captured.err and "期間: " in captured.out
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = CliRunner().invoke(cli, ["--data-dir", str(store.data_dir), "--timezone", "Asia/Tokyo", "report",
                                 "--out", str(blocker / "sub")])
    assert r.exit_code == 1 and r.output.startswith(f"Error: cannot write the report into {blocker / 'sub'}")
    assert "Traceback" not in r.output
