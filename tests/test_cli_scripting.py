"""Quiet and scriptable (issue 14 item 7), Japanese terminal summaries (item 8) and the CLI's
safety net (item 6): on the real sample logs, through click's CliRunner.

- `--json` on suppress, suppression list/show, clean and report: the documented shapes, figures
  that agree with the text output and with the files written;
- `--quiet` on suppress and report: nothing when all is well, the problem when not;
- `suppression add --from-file` (lines, CSV with a header, Shift_JIS, stdin) and
  `--ignore-existing`: all or nothing;
- `--lang ja` / report.lang: Japanese words from pipeline.report.labels, columns aligned in
  display columns (a Japanese character takes two);
- an unexpected exception is `Error: internal error: ...` and exit 70; MailHygieneError keeps
  its exit status.
"""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
from click.testing import CliRunner

from pipeline.cli import EX_SOFTWARE, cli
from pipeline.report.labels import display_width

from fixtures import SAMPLES

# What the rule marks in the sample logs (sample_logs/README.md): Postfix, sendmail and qmail.
EXPECTED_SUPPRESSED = {
    "taro.dead@docomo.ne.jp", "taro..yamada.@docomo.ne.jp", "jiro.old@au.com", "full@docomo.ne.jp",
    "a@nohost.example.jp", "kenji.gone@ezweb.ne.jp", "saburo@i.softbank.jp", "late@au.com",
}
NEW_ENTRY_KEYS = ["address", "carrier", "reasons", "error_count", "distinct_days", "first_error", "last_error",
                  "window_start", "last_dsn", "last_reply_code", "last_diagnostic", "last_sent", "event_ids"]


def invoke(data, *args, ok=True, input=None, env=None):
    result = CliRunner().invoke(cli, ["--data-dir", str(data), "--timezone", "Asia/Tokyo", *map(str, args)],
                                input=input, env=env)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def ingested_template(tmp_path_factory):
    data = tmp_path_factory.mktemp("scripting") / "data"
    invoke(data, "ingest", *sorted((SAMPLES / "postfix").glob("mail.log*")), SAMPLES / "sendmail" / "maillog",
           SAMPLES / "qmail" / "current")
    return data


@pytest.fixture
def ingested(tmp_path, ingested_template):
    data = tmp_path / "data"
    shutil.copytree(ingested_template, data)
    return data


def entries(data) -> set[str]:
    return {e["address"] for e in json.loads(invoke(data, "suppression", "list", "--json").stdout)["entries"]}


# ----------------------------------------------------------------------------- --json
def test_suppress_dry_run_json_is_the_documented_shape(ingested):
    r = invoke(ingested, "suppress", "--dry-run", "--json")
    doc = json.loads(r.stdout)
    assert list(doc) == ["as_of", "timezone", "rule", "dry_run", "applied", "forced", "marked",
                         "already_listed", "new", "guard", "engine"]
    assert doc["engine"] == "duckdb"  # the default engine (docs/scale-out.md: --engine spark)
    assert doc["dry_run"] is True and doc["applied"] is False and doc["timezone"] == "Asia/Tokyo"
    assert doc["rule"] == {"min_errors": 2, "min_days": 2, "window_days": 7,
                           "counted_reasons": ["user_unknown", "host_unknown", "mailbox_disabled", "mailbox_full"]}
    assert {e["address"] for e in doc["new"]} == EXPECTED_SUPPRESSED
    assert all(list(e) == NEW_ENTRY_KEYS for e in doc["new"])
    dead = next(e for e in doc["new"] if e["address"] == "taro.dead@docomo.ne.jp")
    assert dead["carrier"] == "docomo" and dead["reasons"] == "user_unknown"
    assert dead["error_count"] >= 2 and dead["distinct_days"] >= 2 and dead["first_error"].endswith("+00:00")
    assert doc["guard"] == {"checked": False, "tripped": False, "reasons": [], "active_addresses": None,
                            "new_fraction": None}
    assert entries(ingested) == set()  # a dry run writes nothing
    # applied: the same addresses land on the list; a second run adds none
    applied = json.loads(invoke(ingested, "suppress", "--json").stdout)
    assert applied["applied"] is True and applied["guard"]["checked"] is True
    assert {e["address"] for e in applied["new"]} == EXPECTED_SUPPRESSED == entries(ingested)
    again = json.loads(invoke(ingested, "suppress", "--json").stdout)
    assert again["new"] == [] and again["already_listed"] == len(EXPECTED_SUPPRESSED)


def test_suppression_list_and_show_json(ingested):
    invoke(ingested, "suppress")
    invoke(ingested, "suppression", "add", "complainer@au.com", "--note", "asked to stop")
    doc = json.loads(invoke(ingested, "suppression", "list", "--json").stdout)
    assert doc["count"] == len(EXPECTED_SUPPRESSED) + 1 == len(doc["entries"])
    manual = next(e for e in doc["entries"] if e["address"] == "complainer@au.com")
    assert manual["source"] == "manual" and manual["note"] == "asked to stop" and manual["carrier"] == "au"
    # --limit shows fewer entries, never a smaller list: "2 suppressed address(es)" of a list of 9
    # told an operator (and a script reading count) that 7 opt-outs were gone
    limited = json.loads(invoke(ingested, "suppression", "list", "--json", "--limit", "2").stdout)
    assert (limited["count"], limited["shown"], len(limited["entries"])) == (doc["count"], 2, 2)
    assert doc["shown"] == doc["count"]
    first = invoke(ingested, "suppression", "list", "--limit", "2").stdout.splitlines()[0]
    assert first == f"{doc['count']} suppressed address(es), the first 2 shown (--limit 0: all)"

    show = json.loads(invoke(ingested, "suppression", "show", "taro.dead@docomo.ne.jp", "--json").stdout)
    assert list(show) == ["address", "suppressed", "entry", "history", "events"]
    assert show["suppressed"] is True and show["entry"]["source"] == "rule"
    assert show["history"][0]["action"] == "added" and isinstance(show["history"][0]["evidence"], dict)
    counted = [e for e in show["events"] if e["counted"]]
    assert len(counted) == show["entry"]["error_count"]
    text = invoke(ingested, "suppression", "show", "taro.dead@docomo.ne.jp").stdout
    assert f"delivery attempts: {len(show['events'])}" in text
    nobody = json.loads(invoke(ingested, "suppression", "show", "full@docomo.ne.jp", "--json").stdout)
    assert nobody["suppressed"] is True
    r = invoke(ingested, "suppression", "show", "never@seen.example.jp", "--json", ok=False)
    assert r.exit_code == 1 and r.stderr.startswith("Error: ") and r.stdout == ""


@pytest.mark.slow
def test_clean_json_key_figures(tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    shutil.copytree(SAMPLES / "postfix", logs)
    conf = tmp_path / "mailhygiene.toml"
    conf.write_text(f'timezone = "Asia/Tokyo"\ndata_dir = "data"\n[[sources]]\npath = "{logs}/mail.log*"\n'
                    f'format = "postfix"\n[[sources]]\npath = "{tmp_path}/none*.log"\n', encoding="utf-8")
    r = CliRunner().invoke(cli, ["--config", str(conf), "clean", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert list(doc) == ["lines", "events", "already_stored", "rejects", "new_suppressions", "sender_events",
                         "export", "report", "ingest", "rule", "lake"]
    assert doc["lake"] is None  # no [store] url: nothing uploaded (tests/test_lake_engines.py uploads)
    lines = sum(len(p.read_bytes().splitlines()) for p in [logs / "mail.log"])
    assert doc["lines"] >= lines and doc["events"] > 0 and doc["already_stored"] == 0
    assert doc["new_suppressions"] == len(doc["rule"]["new"]) > 0
    export = tmp_path / "data" / "exports" / "suppression.csv"
    assert doc["export"] == {"path": str(export), "rows": doc["new_suppressions"]}
    rows = list(csv.DictReader(io.StringIO(export.read_text(encoding="utf-8-sig"))))
    assert {row["address"] for row in rows} == {e["address"] for e in doc["rule"]["new"]}
    assert doc["report"] == str(tmp_path / "data" / "reports" / "report.html")
    assert doc["ingest"]["sources_without_files"] == [f"{tmp_path}/none*.log"]
    # the problem still reaches stderr; stdout is the document alone
    assert f"ingest {tmp_path}/none*.log: no files match" in r.stderr
    again = json.loads(CliRunner().invoke(cli, ["--config", str(conf), "clean", "--json"]).stdout)
    assert again["events"] == 0 and again["new_suppressions"] == 0 and again["export"]["rows"] == doc["export"]["rows"]


@pytest.mark.slow
def test_report_json_and_quiet(ingested, tmp_path):
    out = tmp_path / "rep"
    doc = json.loads(invoke(ingested, "report", "--out", out, "--json").stdout)
    assert list(doc) == ["period", "carriers", "fail_over", "over_threshold", "html", "csv", "charts", "lang",
                         "warnings"]
    assert doc["period"]["timezone"] == "Asia/Tokyo" and doc["html"] == str(out / "report.html")
    by_carrier = {c["carrier"]: c for c in doc["carriers"]}
    totals = list(csv.DictReader(io.StringIO((out / "carrier_totals.csv").read_text(encoding="utf-8-sig"))))
    for row in totals:
        assert by_carrier[row["carrier"]]["attempts"] == int(row["attempts"])
    assert 0 <= by_carrier["docomo"]["bounce_rate"] <= 1
    # --quiet: nothing when no carrier is over; the alert (stderr) and exit 2 when one is
    assert invoke(ingested, "report", "--out", out, "--quiet").output == ""
    r = invoke(ingested, "report", "--out", out, "--quiet", "--fail-over", "0.01", ok=False)
    assert r.exit_code == 2 and r.stdout == "" and "ALERT: docomo unknown-user rate" in r.stderr
    r = invoke(ingested, "--quiet", "report", "--out", out, "--json", "--fail-over", "1%", ok=False)
    assert r.exit_code == 2 and json.loads(r.stdout)["over_threshold"]


def test_suppress_quiet(ingested):
    assert invoke(ingested, "suppress", "--quiet").output == ""
    assert len(entries(ingested)) == len(EXPECTED_SUPPRESSED)
    assert invoke(ingested, "-q", "suppress", "--dry-run").output == ""


# ----------------------------------------------------------------------------- add --from-file
def test_add_from_file_lines_csv_sjis_and_stdin(ingested, tmp_path):
    lines = tmp_path / "optouts.txt"
    lines.write_text("# opt-outs from the CRM\nA@docomo.ne.jp\n\nb@ezweb.ne.jp\na@docomo.ne.jp\n", encoding="utf-8")
    r = invoke(ingested, "suppression", "add", "--from-file", lines, "--note", "CRM")
    assert "added 2 address(es)" in r.stdout
    sjis = tmp_path / "excel.csv"
    sjis.write_bytes("名前,メールアドレス\n山田,c@au.com\n佐藤,d@softbank.ne.jp\n".encode("cp932"))
    invoke(ingested, "suppression", "add", "--from-file", sjis)
    invoke(ingested, "suppression", "add", "--from-file", "-", input="email\ne@au.com\n")
    listed = json.loads(invoke(ingested, "suppression", "list", "--json").stdout)["entries"]
    by = {e["address"]: e for e in listed}
    assert set(by) == {"a@docomo.ne.jp", "b@ezweb.ne.jp", "c@au.com", "d@softbank.ne.jp", "e@au.com"}
    assert by["b@ezweb.ne.jp"]["carrier"] == "au" and by["a@docomo.ne.jp"]["note"] == "CRM"


def test_add_from_file_is_all_or_nothing(ingested, tmp_path):
    invoke(ingested, "suppression", "add", "x@au.com")
    f = tmp_path / "list.csv"
    f.write_text("address,name\nnew1@au.com,a\nx@au.com,b\nnew2@docomo.ne.jp,c\n", encoding="utf-8")
    history = ingested / "suppression" / "history.parquet"
    before = history.read_bytes()
    r = invoke(ingested, "suppression", "add", "--from-file", f, ok=False)
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines() == [
        "Error: x@au.com already on the suppression list: nothing was added "
        "(add --ignore-existing to skip the addresses already listed)"]
    assert entries(ingested) == {"x@au.com"} and history.read_bytes() == before
    # a bad address anywhere: nothing added, the row named
    bad = tmp_path / "bad.txt"
    bad.write_text("ok@au.com\nnot-an-address\n", encoding="utf-8")
    r = invoke(ingested, "suppression", "add", "--from-file", bad, ok=False)
    assert r.exit_code == 1 and "address 2: 'not-an-address' is not an e-mail address" in r.stderr
    assert entries(ingested) == {"x@au.com"}
    # --ignore-existing: the others go in, the listed one is reported as skipped
    r = invoke(ingested, "suppression", "add", "--from-file", f, "--ignore-existing")
    assert "added 2 address(es)" in r.stdout and "skipped 1 already listed: x@au.com" in r.stdout
    assert entries(ingested) == {"x@au.com", "new1@au.com", "new2@docomo.ne.jp"}
    # one address by hand keeps its message; ADDRESS and --from-file together are refused
    r = invoke(ingested, "suppression", "add", "x@au.com", ok=False)
    assert "Error: x@au.com already on the suppression list" in r.stderr
    r = invoke(ingested, "suppression", "add", "y@au.com", "--from-file", f, ok=False)
    assert r.exit_code == 1 and "one ADDRESS or --from-file" in r.stderr


@pytest.mark.parametrize("content,message", [
    (b"", "holds no addresses"),
    (b"\x00\x01\x02binary", "is not a text file"),
    (b"name,phone\ntaro,090\n", "none named address or email"),
    (b"ok@au.com\x81 \n", "neither UTF-8 nor Shift_JIS"),
    # a stray quote ran the note on over the next rows: b and c were silently not suppressed
    (b'address,note\na@au.com,"asked by phone\nb@au.com,x\nc@au.com,y"\n', "holds what look like rows of addresses"),
    (b'address,note\na@au.com,"asked\nb@au.com,x\n', "stray double quote"),
])
def test_add_from_file_refuses_unusable_files(ingested, tmp_path, content, message):
    f = tmp_path / "f.csv"
    f.write_bytes(content)
    r = invoke(ingested, "suppression", "add", "--from-file", f, ok=False)
    assert r.exit_code == 1 and message in r.stderr and r.stderr.count("Error: ") == 1
    assert not (ingested / "suppression" / "current.parquet").exists()


# ----------------------------------------------------------------------------- Japanese
@pytest.mark.slow
def test_japanese_summaries_from_lang_option_and_config(ingested, tmp_path):
    dry = invoke(ingested, "--lang", "ja", "suppress", "--dry-run").stdout
    assert "該当アドレス: " in dry and "新規登録:" in dry and "試行のみ: 書き込みなし" in dry
    rows = [ln for ln in dry.splitlines() if ln.startswith("  + ")]
    assert len(rows) == len(EXPECTED_SUPPRESSED) and any("ドコモ" in ln and "宛先不明" in ln for ln in rows)
    # the evidence column starts at the same display column on every row, Japanese names or not
    starts = {display_width(ln[:ln.index("エラー ")]) for ln in rows}
    assert len(starts) == 1, rows
    # the label: value lines are aligned too
    labelled = [ln for ln in dry.splitlines() if not ln.startswith("  ")]
    assert len({display_width(ln.split(":", 1)[0] + ":") + len(ln.split(":", 1)[1]) - len(ln.split(":", 1)[1].lstrip())
                for ln in labelled}) == 1
    # per command --lang and report.lang in the config: the same words
    assert invoke(ingested, "suppress", "--dry-run", "--lang", "ja").stdout.replace(" ", "")[:40] == \
        dry.replace(" ", "")[:40]
    conf = tmp_path / "ja.toml"
    conf.write_text('[report]\nlang = "ja"\n', encoding="utf-8")
    invoke(ingested, "--config", conf, "suppress")
    listing = invoke(ingested, "--config", conf, "suppression", "list").stdout
    assert listing.startswith(f"配信停止アドレス {len(EXPECTED_SUPPRESSED)} 件")
    cols = {display_width(ln[:ln.index("登録 ")]) for ln in listing.splitlines()[1:]}
    assert len(cols) == 1
    show = invoke(ingested, "--config", conf, "suppression", "show", "taro.dead@docomo.ne.jp").stdout
    assert "配信停止中（ルール）" in show and "計上エラー" in show and "（* = 計上エラー）" in show
    assert "履歴: " in show and " 追加" in show
    # --lang en on the command wins over the config; JSON is the same in every language
    assert "suppressed address(es)" in invoke(ingested, "--config", conf, "suppression", "list", "--lang", "en").stdout
    assert json.loads(invoke(ingested, "--config", conf, "suppression", "list", "--json").stdout) == \
        json.loads(invoke(ingested, "suppression", "list", "--json").stdout)


@pytest.mark.slow
def test_clean_in_japanese(tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(SAMPLES / "postfix", logs)
    conf = tmp_path / "mailhygiene.toml"
    conf.write_text(f'timezone = "Asia/Tokyo"\ndata_dir = "data"\n[[sources]]\npath = "{logs}/mail.log*"\n'
                    'format = "postfix"\n[report]\nlang = "ja"\n', encoding="utf-8")
    r = CliRunner().invoke(cli, ["--config", str(conf), "clean"])
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert f"== 取り込み {logs}/mail.log*" in out and "読み込み" in out and "== 配信停止ルール" in out
    assert "== 書き出し" in out and "配信停止 CSV: " in out and "レポート: " in out
    html = (tmp_path / "data" / "reports" / "report.html").read_text(encoding="utf-8")
    assert 'lang="ja"' in html
    # --quiet in Japanese: the problems, in Japanese, on stderr; nothing else
    conf.write_text(conf.read_text(encoding="utf-8") + f'\n[[sources]]\npath = "{tmp_path}/none*.log"\n',
                    encoding="utf-8")
    q = CliRunner().invoke(cli, ["--config", str(conf), "clean", "--quiet"])
    assert q.exit_code == 0, q.output
    assert q.stdout == "" and q.stderr == f"取り込み {tmp_path}/none*.log: 一致するファイルがありません（[[sources]] の path を確認）\n"
    # the global --lang en wins over report.lang for this run
    en = CliRunner().invoke(cli, ["--config", str(conf), "--lang", "en", "clean"])
    assert "== suppress" in en.stdout and "配信" not in en.stdout


# ----------------------------------------------------------------------------- the safety net
def test_an_unexpected_exception_is_one_error_line_and_exit_70(ingested, monkeypatch):
    import pipeline.suppression.store as store

    def broken(*a, **kw):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(store, "listing", broken)  # (what `suppression list` reads the list with)
    r = invoke(ingested, "suppression", "list", ok=False)
    assert r.exit_code == EX_SOFTWARE == 70
    assert r.stderr == ("Error: internal error: RuntimeError: boom / second line (please report; run with "
                        "MAILHYGIENE_DEBUG=1 for the traceback)\n")
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    debug = invoke(ingested, "suppression", "list", ok=False, env={"MAILHYGIENE_DEBUG": "1"})
    assert debug.exit_code == 70 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.splitlines()[-1].startswith("Error: internal error: RuntimeError: boom")


def test_mailhygiene_errors_keep_their_exit_status(ingested, monkeypatch):
    from pipeline.core.errors import GuardTripped

    import pipeline.suppression.rule as rule

    def refuse(*a, **kw):
        raise GuardTripped("the suppression guard refused this run; nothing was changed")

    monkeypatch.setattr(rule, "run_rule", refuse)
    r = invoke(ingested, "suppress", ok=False)
    assert r.exit_code == 3 and r.stderr == "Error: the suppression guard refused this run; nothing was changed\n"
    # click's own usage errors stay exit 2
    assert invoke(ingested, "suppress", "--no-such-option", ok=False).exit_code == 2


def test_control_characters_never_reach_the_list_or_the_terminal(ingested):
    r = invoke(ingested, "suppression", "add", "ta\x0bro@docomo.ne.jp", ok=False)
    assert r.exit_code == 1 and "'ta\\x0bro@docomo.ne.jp' is not an e-mail address" in r.stderr
    assert "\x0b" not in r.stderr and entries(ingested) == set()
    # a note is free text, kept as given; the terminal shows its control characters escaped
    invoke(ingested, "suppression", "add", "ok@au.com", "--note", "line one\nline two\x00\x1b[31m")
    listing = invoke(ingested, "suppression", "list").stdout
    assert "note: line one / line two\\x00\\x1b[31m" in listing and "\x1b" not in listing
    assert json.loads(invoke(ingested, "suppression", "list", "--json").stdout)["entries"][0]["note"] == \
        "line one\nline two\x00\x1b[31m"


def test_the_environment_names_the_data_dir_and_zone_for_the_cli_as_for_the_notebook(tmp_path, monkeypatch):
    """MAILHYGIENE_DATA_DIR / MAILHYGIENE_TIMEZONE point the notebook and pipeline.connect() at a
    data dir; the CLI reads the same variables (flag > environment > config), so one export serves
    both."""
    import pipeline

    data = tmp_path / "data"
    monkeypatch.setenv("MAILHYGIENE_DATA_DIR", str(data))
    monkeypatch.setenv("MAILHYGIENE_TIMEZONE", "Asia/Tokyo")
    r = CliRunner().invoke(cli, ["ingest", str(SAMPLES / "postfix" / "mail.log")])
    assert r.exit_code == 0, r.output
    con = pipeline.connect()
    try:
        stored = con.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        con.close()
    assert stored > 0
    r = CliRunner().invoke(cli, ["report", "--json"])
    assert r.exit_code == 0, r.output
    shown = json.loads(r.output)
    assert shown["period"]["timezone"] == "Asia/Tokyo" and {c["carrier"] for c in shown["carriers"]} >= {"docomo", "au"}
    # the flag beats the environment: another data dir (that does not exist) is the one read
    r = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "other"), "report"])
    assert r.exit_code == 1 and f"data dir {tmp_path / 'other'} does not exist" in r.output


def test_add_to_a_mistyped_data_dir_is_refused_or_said(ingested, tmp_path):
    """`suppression add` created whatever --data-dir named and said "added": the opt-out went to
    a list no nightly job or sender reads. A data dir that does not exist is now an Error (as for
    export and suppress), and one that held nothing says a new list was started there."""
    typo = tmp_path / "dta"
    r = invoke(typo, "suppression", "add", "optout@docomo.ne.jp", ok=False)
    assert r.exit_code == 1 and r.output.startswith("Error: data dir") and "check --data-dir" in r.output
    assert not typo.exists()
    r = invoke(typo, "suppression", "add", "--from-file", "-", input="a@au.com\n", ok=False)
    assert r.exit_code == 1 and not typo.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    r = invoke(empty, "--quiet", "suppression", "add", "optout@docomo.ne.jp")
    assert "a new list was started there" in r.stderr and str(empty) in r.stderr
    r = invoke(ingested, "suppression", "add", "optout@docomo.ne.jp")  # the real store: no word
    assert r.stderr == "" and "added optout@docomo.ne.jp" in r.stdout
